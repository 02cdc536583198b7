//! Speaker-labelled transcripts of a call's recording (PROTOCOLS.md §4 `call.transcript`):
//! the stereo WAV is split into its two channels and each is sent on its own to an
//! OpenAI-compatible `/v1/audio/transcriptions` endpoint (`[transcription]`), so every
//! turn's speaker is exact; the answers are merged by `core::transcript`.
//!
//! Owns: the channel split (the canonical PCM16 8 kHz stereo WAV of `core::media::wav` → two
//! mono WAVs), the multipart/form-data request (built by hand: `file`, `model`,
//! `response_format=verbose_json`, `timestamp_granularities[]=segment`) and the typed
//! failures with their short codes ([`TranscribeError::code`]). Must not: retry, log or put into an error the API key or an answer's body
//! (an error answer may echo the key), or decide when a call gets a transcript (the caller
//! does).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{read_secret_file, Secret, SecretError, TranscriptionConfig};
use crate::core::media::wav::{encode_header, HEADER_LEN, RATE};
use crate::core::transcript::{merge, parse_response, Segment, TranscriptError, Turn};
use crate::io::http;

/// Largest answer read from the endpoint; a transcript of hours of speech is far below it.
const MAX_ANSWER: usize = 8 << 20;

/// Why a recording gave no transcript. Never carries the API key or an answer's body.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("transcription.api_key_file: {0}")]
    Key(#[from] SecretError),
    #[error("cannot build the transcription HTTP client: {0}")]
    Client(String),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Wav { path: PathBuf, source: WavError },
    #[error("transcription of the {speaker} channel: HTTP {status}")]
    Status { speaker: String, status: u16 },
    #[error("transcription of the {speaker} channel: no answer within {timeout:?}")]
    Timeout { speaker: String, timeout: Duration },
    #[error("transcription of the {speaker} channel failed: {message}")]
    Transport { speaker: String, message: String },
    #[error("transcription of the {speaker} channel: {source}")]
    BadResponse {
        speaker: String,
        source: TranscriptError,
    },
}

impl TranscribeError {
    /// The short code a `call.transcript` carries as its `error` (PROTOCOLS.md §4): what
    /// failed, without paths, addresses or anything the endpoint said.
    pub fn code(&self) -> &'static str {
        match self {
            TranscribeError::Key(_) | TranscribeError::Client(_) => "config",
            TranscribeError::Read { .. } | TranscribeError::Wav { .. } => "recording",
            TranscribeError::Status { .. } => "http_status",
            TranscribeError::Timeout { .. } => "timeout",
            TranscribeError::Transport { .. } => "unavailable",
            TranscribeError::BadResponse { .. } => "bad_response",
        }
    }
}

/// Why bytes are not a recording this module can split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWav,
    #[error("no fmt chunk before the data")]
    NoFormat,
    #[error("no data chunk")]
    NoData,
    #[error("not 16-bit PCM stereo at 8000 Hz (format {format}, {channels} channels, {rate} Hz, {bits} bits)")]
    Unsupported {
        format: u16,
        channels: u16,
        rate: u32,
        bits: u16,
    },
}

/// Sends recordings to the configured endpoint. `Debug` never shows the key.
#[derive(Clone)]
pub struct Transcriber {
    url: String,
    model: String,
    api_key: Option<Secret>,
    timeout: Duration,
    client: reqwest::Client,
}

impl fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcriber")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Transcriber {
    /// `Ok(None)` when `[transcription] url` is off. Reads `api_key_file` now (call it again
    /// on reload to pick up a new key); `tls` is the daemon's shared client config
    /// (`io::tls::client_config`), so `[agent] extra_ca_file` is trusted here too.
    pub fn from_config(
        config: &TranscriptionConfig,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Option<Transcriber>, TranscribeError> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let api_key = config
            .api_key_file
            .as_deref()
            .map(read_secret_file)
            .transpose()?;
        let client = http::client(tls, config.timeout)
            .map_err(|e| TranscribeError::Client(e.to_string()))?;
        Ok(Some(Transcriber {
            url: url.clone(),
            model: config.model.clone(),
            api_key,
            timeout: config.timeout,
            client,
        }))
    }

    /// Transcribes the recording at `wav_path`: the left channel as `speakers.0`, the right
    /// as `speakers.1` (both requests at once), merged into turns. A channel that is silent
    /// throughout (all samples 0, or none) is not sent: it has nothing to say, and Whisper
    /// invents words for silence. Reading, splitting and building the requests run on the
    /// blocking pool (a long recording is tens of MB), never on the calling runtime's thread.
    pub async fn transcribe(
        &self,
        wav_path: &Path,
        speakers: (&str, &str),
    ) -> Result<Vec<Turn>, TranscribeError> {
        let (path, model) = (wav_path.to_path_buf(), self.model.clone());
        let names = (file_name(speakers.0), file_name(speakers.1));
        let (left, right) = tokio::task::spawn_blocking(move || uploads(&path, &model, names))
            .await
            .map_err(|e| TranscribeError::Read {
                path: wav_path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let (left, right) = tokio::join!(
            self.channel(speakers.0, left),
            self.channel(speakers.1, right)
        );
        Ok(merge((speakers.0, left?), (speakers.1, right?)))
    }

    async fn channel(
        &self,
        speaker: &str,
        upload: Option<Upload>,
    ) -> Result<Vec<Segment>, TranscribeError> {
        let Some(Upload { boundary, body }) = upload else {
            return Ok(Vec::new());
        };
        let mut req = self
            .client
            .post(&self.url)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("Accept", "application/json")
            .timeout(self.timeout)
            .body(body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key.expose());
        }
        let failed = |e: reqwest::Error| self.failure(speaker, e);
        let mut resp = req.send().await.map_err(failed)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(TranscribeError::Status {
                speaker: speaker.to_string(),
                status: status.as_u16(),
            });
        }
        let mut answer = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(failed)? {
            if answer.len() + chunk.len() > MAX_ANSWER {
                return Err(TranscribeError::Transport {
                    speaker: speaker.to_string(),
                    message: format!("the answer is larger than {MAX_ANSWER} bytes"),
                });
            }
            answer.extend_from_slice(&chunk);
        }
        parse_response(&answer).map_err(|source| TranscribeError::BadResponse {
            speaker: speaker.to_string(),
            source,
        })
    }

    fn failure(&self, speaker: &str, e: reqwest::Error) -> TranscribeError {
        if e.is_timeout() {
            TranscribeError::Timeout {
                speaker: speaker.to_string(),
                timeout: self.timeout,
            }
        } else {
            TranscribeError::Transport {
                speaker: speaker.to_string(),
                message: error_chain(&e.without_url()),
            }
        }
    }
}

/// One channel's request body and its multipart boundary.
struct Upload {
    boundary: String,
    body: Vec<u8>,
}

/// The recording's two channels as request bodies (`None`: a silent channel, not sent).
/// Blocking: reads the whole file.
fn uploads(
    path: &Path,
    model: &str,
    names: (String, String),
) -> Result<(Option<Upload>, Option<Upload>), TranscribeError> {
    let bytes = std::fs::read(path).map_err(|source| TranscribeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (left, right) = split_channels(&bytes).map_err(|source| TranscribeError::Wav {
        path: path.to_path_buf(),
        source,
    })?;
    drop(bytes);
    let upload = |wav: Vec<u8>, name: &str| {
        (!is_silent(&wav)).then(|| {
            let boundary = format!("trunkgate-{:032x}", fastrand::u128(..));
            let body = multipart(&boundary, model, name, &wav);
            Upload { boundary, body }
        })
    };
    Ok((upload(left, &names.0), upload(right, &names.1)))
}

/// An error and its sources on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `<speaker>.wav`, with anything but letters, digits, `-` and `_` replaced (the name goes
/// into a header line).
fn file_name(speaker: &str) -> String {
    let clean: String = speaker
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "audio.wav".to_string()
    } else {
        format!("{clean}.wav")
    }
}

/// The request body: the text fields, then the file (servers that stream the upload see the
/// parameters first). `model` has no line breaks (validated config).
fn multipart(boundary: &str, model: &str, file_name: &str, wav: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(wav.len() + 1024);
    for (name, value) in [
        ("model", model),
        ("response_format", "verbose_json"),
        ("timestamp_granularities[]", "segment"),
    ] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// A mono WAV from [`split_channels`] whose samples are all 0 (or that has none).
fn is_silent(mono: &[u8]) -> bool {
    mono.get(HEADER_LEN..)
        .is_none_or(|data| data.iter().all(|&b| b == 0))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Splits a PCM16 8 kHz stereo WAV into two mono WAVs (left, right), each with a canonical
/// 44-byte header. Chunks other than `fmt ` and `data` are skipped. A data size of 0 or one
/// past the end of the bytes (a recording whose sizes were never patched, or a cut file) is
/// read as "to the end"; a trailing partial frame is dropped.
pub fn split_channels(wav: &[u8]) -> Result<(Vec<u8>, Vec<u8>), WavError> {
    if wav.get(0..4) != Some(b"RIFF") || wav.get(8..12) != Some(b"WAVE") {
        return Err(WavError::NotWav);
    }
    let mut at = 12usize;
    let mut format_ok = false;
    let data = loop {
        // `at` never passes the end (checked below), so offsets from it cannot overflow.
        let chunk = wav.get(at..).unwrap_or_default();
        let (Some(id), Some(size)) = (chunk.get(0..4), u32_at(chunk, 4)) else {
            return Err(WavError::NoData);
        };
        let body = chunk.get(8..).unwrap_or_default();
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        match id {
            b"fmt " => {
                let Some(fmt) = body.get(..16).filter(|_| size >= 16) else {
                    return Err(WavError::NoFormat);
                };
                let field = |off: usize| u16_at(fmt, off).unwrap_or(0);
                let rate = u32_at(fmt, 4).unwrap_or(0);
                let (format, channels, bits) = (field(0), field(2), field(14));
                // Ours is always plain PCM (1), never WAVE_FORMAT_EXTENSIBLE.
                if format != 1 || channels != 2 || rate != RATE || bits != 16 {
                    return Err(WavError::Unsupported {
                        format,
                        channels,
                        rate,
                        bits,
                    });
                }
                format_ok = true;
            }
            b"data" if !format_ok => return Err(WavError::NoFormat),
            b"data" => {
                let len = if size == 0 || size > body.len() {
                    body.len()
                } else {
                    size
                };
                break body.get(..len / 4 * 4).unwrap_or_default();
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        at = at
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
        if at > wav.len() {
            return Err(WavError::NoData);
        }
    };
    let frames = data.len() / 4;
    let mono_len = u32::try_from(frames * 2).unwrap_or(u32::MAX);
    let mut left = Vec::with_capacity(HEADER_LEN + frames * 2);
    let mut right = Vec::with_capacity(HEADER_LEN + frames * 2);
    left.extend_from_slice(&encode_header(1, RATE, mono_len));
    right.extend_from_slice(&encode_header(1, RATE, mono_len));
    for frame in data.chunks_exact(4) {
        left.extend_from_slice(&frame[..2]);
        right.extend_from_slice(&frame[2..]);
    }
    Ok((left, right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::media::wav::StereoWavWriter;
    use std::io::Cursor;

    fn stereo(left: &[i16], right: &[i16]) -> Vec<u8> {
        let mut w = StereoWavWriter::new(Cursor::new(Vec::new())).unwrap_or_else(|e| panic!("{e}"));
        w.write_frames(left, right)
            .unwrap_or_else(|e| panic!("{e}"));
        w.finish().unwrap_or_else(|e| panic!("{e}")).into_inner()
    }

    fn samples(mono: &[u8]) -> Vec<i16> {
        mono[HEADER_LEN..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn splits_into_valid_mono_files() {
        let (l, r) = split_channels(&stereo(&[1, 2, i16::MIN], &[-1, -2, i16::MAX]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l[..HEADER_LEN], encode_header(1, 8000, 6));
        assert_eq!(r[..HEADER_LEN], encode_header(1, 8000, 6));
        assert_eq!(samples(&l), [1, 2, i16::MIN]);
        assert_eq!(samples(&r), [-1, -2, i16::MAX]);
        let (l, r) = split_channels(&stereo(&[], &[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((l.len(), r.len()), (HEADER_LEN, HEADER_LEN));
        assert!(is_silent(&l) && is_silent(&r));
    }

    #[test]
    fn unpatched_or_cut_files_read_to_the_end() {
        let mut wav = stereo(&[5, 6], &[7, 8]);
        wav[40..44].copy_from_slice(&0u32.to_le_bytes());
        wav.push(9); // a partial frame
        let (l, r) = split_channels(&wav).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((samples(&l), samples(&r)), (vec![5, 6], vec![7, 8]));
        wav[40..44].copy_from_slice(&1000u32.to_le_bytes());
        let (l, _) = split_channels(&wav).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(samples(&l), [5, 6]);
        // A declared size shorter than the bytes wins (trailing chunks are not audio).
        wav[40..44].copy_from_slice(&4u32.to_le_bytes());
        let (l, r) = split_channels(&wav).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((samples(&l), samples(&r)), (vec![5], vec![7]));
    }

    #[test]
    fn skips_other_chunks() {
        let wav = stereo(&[3], &[4]);
        let mut with_list = wav[..12].to_vec();
        with_list.extend_from_slice(b"LIST\x03\x00\x00\x00abc\x00");
        with_list.extend_from_slice(&wav[12..]);
        let (l, r) = split_channels(&with_list).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((samples(&l), samples(&r)), (vec![3], vec![4]));
    }

    #[test]
    fn rejects_what_it_cannot_split() {
        let good = stereo(&[1], &[1]);
        let mono = {
            let mut b = good.clone();
            b[..HEADER_LEN].copy_from_slice(&encode_header(1, 8000, 4));
            b
        };
        let wide = {
            let mut b = good.clone();
            b[..HEADER_LEN].copy_from_slice(&encode_header(2, 16000, 4));
            b
        };
        let no_fmt = {
            let mut b = good.clone();
            b[12..16].copy_from_slice(b"junk");
            b
        };
        let cases: [(&[u8], WavError); 8] = [
            (b"", WavError::NotWav),
            (b"RIFF\0\0\0\0WAVX", WavError::NotWav),
            (&good[..12], WavError::NoData),
            (&good[..30], WavError::NoFormat),
            (&good[..36], WavError::NoData),
            (&no_fmt, WavError::NoFormat),
            (
                &mono,
                WavError::Unsupported {
                    format: 1,
                    channels: 1,
                    rate: 8000,
                    bits: 16,
                },
            ),
            (
                &wide,
                WavError::Unsupported {
                    format: 1,
                    channels: 2,
                    rate: 16000,
                    bits: 16,
                },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(split_channels(bytes), Err(want), "{bytes:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let good = stereo(&[1, 2, 3], &[4, 5, 6]);
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..b.len());
                b[i] = rng.u8(..);
            }
            b.truncate(rng.usize(..=b.len()));
            let _ = split_channels(&b);
        }
        let mut huge = good[..HEADER_LEN].to_vec();
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(split_channels(&huge), Err(WavError::NoData));
    }

    #[test]
    fn error_codes_name_what_failed_and_nothing_else() {
        let who = || "caller".to_string();
        let cases = [
            (TranscribeError::Client("tls".into()), "config"),
            (
                TranscribeError::Read {
                    path: "/srv/rec/x.wav".into(),
                    source: std::io::ErrorKind::NotFound.into(),
                },
                "recording",
            ),
            (
                TranscribeError::Wav {
                    path: "/srv/rec/x.wav".into(),
                    source: WavError::NotWav,
                },
                "recording",
            ),
            (
                TranscribeError::Status {
                    speaker: who(),
                    status: 503,
                },
                "http_status",
            ),
            (
                TranscribeError::Timeout {
                    speaker: who(),
                    timeout: Duration::from_secs(1),
                },
                "timeout",
            ),
            (
                TranscribeError::Transport {
                    speaker: who(),
                    message: "connection refused".into(),
                },
                "unavailable",
            ),
            (
                TranscribeError::BadResponse {
                    speaker: who(),
                    source: TranscriptError::NotObject,
                },
                "bad_response",
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e}");
        }
    }

    #[test]
    fn multipart_body_shape() {
        let body = multipart("B", "whisper-1", "caller.wav", b"RIFFxx");
        let text = String::from_utf8_lossy(&body);
        assert_eq!(
            text,
            "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
             --B\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\nverbose_json\r\n\
             --B\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nsegment\r\n\
             --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"caller.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFFxx\r\n\
             --B--\r\n"
        );
        assert_eq!(file_name("agent"), "agent.wav");
        assert_eq!(file_name("a\"b\r\n"), "a_b__.wav");
        assert_eq!(file_name(""), "audio.wav");
    }
}
