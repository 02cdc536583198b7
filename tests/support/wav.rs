//! Test-support WAV I/O: writes 16-bit PCM mono RIFF/WAVE files (the format baresip's `aufile`
//! plays) and reads 16-bit PCM files back, skipping unknown chunks (`LIST`, `fact`, ...).
//! Also tiny signal helpers (tone, silence, Goertzel amplitude) for asserting on recordings.
//! Must not: resample, convert bit depths, or panic on malformed files (they are `Err`).

use std::io;
use std::path::Path;

/// Decoded PCM: `samples` are interleaved when `channels > 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

impl Wav {
    pub fn duration_secs(&self) -> f64 {
        let frames = self.samples.len() / usize::from(self.channels.max(1));
        frames as f64 / f64::from(self.sample_rate.max(1))
    }
}

const FORMAT_PCM: u16 = 1;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Size marker streaming writers use when the length is unknown.
const SIZE_UNKNOWN: u32 = u32::MAX;

/// Encodes mono 16-bit PCM as a canonical 44-byte-header WAV.
pub fn encode_wav(sample_rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&FORMAT_PCM.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples.iter().take(data_len as usize / 2) {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

pub fn write_wav(path: &Path, sample_rate: u32, samples: &[i16]) -> io::Result<()> {
    std::fs::write(path, encode_wav(sample_rate, samples))
}

/// The telephony case: 8000 Hz mono, what G.711 carries without resampling.
pub fn write_wav_8k(path: &Path, samples: &[i16]) -> io::Result<()> {
    write_wav(path, 8000, samples)
}

pub fn read_wav(path: &Path) -> io::Result<Wav> {
    decode_wav(&std::fs::read(path)?)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

/// True when the RIFF size field matches the byte length: writers like libsndfile (baresip's
/// `sndfile` module) leave it at a placeholder until the file is closed.
pub fn is_finalized(bytes: &[u8]) -> bool {
    bytes.get(0..4) == Some(b"RIFF")
        && le_u32(bytes, 4).is_some_and(|riff| riff as usize + 8 == bytes.len())
}

pub fn decode_wav(b: &[u8]) -> io::Result<Wav> {
    if b.get(0..4) != Some(b"RIFF") || b.get(8..12) != Some(b"WAVE") {
        return Err(invalid("not a RIFF/WAVE file"));
    }
    let mut fmt: Option<(u16, u32)> = None;
    let mut pos = 12usize;
    while let (Some(id), Some(size)) = (b.get(pos..pos + 4), le_u32(b, pos + 4)) {
        let body = pos + 8;
        match id {
            b"fmt " => fmt = Some(parse_fmt(b.get(body..).unwrap_or_default(), size)?),
            b"data" => {
                let (channels, sample_rate) = fmt.ok_or_else(|| invalid("data before fmt"))?;
                let avail = b.len().saturating_sub(body);
                let len = if size == SIZE_UNKNOWN {
                    avail
                } else {
                    size as usize
                };
                if len > avail {
                    return Err(invalid(format!(
                        "data chunk says {len} bytes, {avail} present"
                    )));
                }
                let frame = 2 * usize::from(channels);
                let usable = len - len % frame;
                let samples = b
                    .get(body..body + usable)
                    .unwrap_or_default()
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok(Wav {
                    sample_rate,
                    channels,
                    samples,
                });
            }
            _ => {}
        }
        // Chunks are word aligned: odd sizes carry one pad byte.
        pos = body
            .saturating_add(size as usize)
            .saturating_add(size as usize & 1);
    }
    Err(invalid("no data chunk"))
}

fn parse_fmt(body: &[u8], size: u32) -> io::Result<(u16, u32)> {
    if size < 16 {
        return Err(invalid("fmt chunk too short"));
    }
    let field = |at| le_u16(body, at).ok_or_else(|| invalid("fmt chunk truncated"));
    let tag = field(0)?;
    let channels = field(2)?;
    let rate = le_u32(body, 4).ok_or_else(|| invalid("fmt chunk truncated"))?;
    let bits = field(14)?;
    if tag != FORMAT_PCM && tag != FORMAT_EXTENSIBLE {
        return Err(invalid(format!("unsupported WAV format tag {tag:#x}")));
    }
    if bits != 16 || channels == 0 || rate == 0 {
        return Err(invalid(format!(
            "unsupported WAV: {bits} bits, {channels} ch, {rate} Hz"
        )));
    }
    Ok((channels, rate))
}

/// A sine at `amplitude` (0.0..=1.0 of full scale).
pub fn tone(freq_hz: f64, ms: u32, amplitude: f64, sample_rate: u32) -> Vec<i16> {
    let n = sample_rate as usize * ms as usize / 1000;
    let step = 2.0 * std::f64::consts::PI * freq_hz / f64::from(sample_rate);
    (0..n)
        .map(|i| ((i as f64 * step).sin() * amplitude.clamp(0.0, 1.0) * 32767.0) as i16)
        .collect()
}

pub fn silence(ms: u32, sample_rate: u32) -> Vec<i16> {
    vec![0; sample_rate as usize * ms as usize / 1000]
}

/// Amplitude (0.0..=1.0 of full scale) of the `freq_hz` component, by the Goertzel algorithm;
/// a `tone(f, _, 0.5, _)` measures about 0.5 at `f` and near 0 elsewhere.
pub fn tone_amplitude(samples: &[i16], sample_rate: u32, freq_hz: f64) -> f64 {
    if samples.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq_hz / f64::from(sample_rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    2.0 * power.sqrt() / samples.len() as f64
}

/// Root mean square level (0.0..=1.0 of full scale).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| (f64::from(s) / 32768.0).powi(2))
        .sum();
    (sum / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tone_measure() {
        let t = tone(1000.0, 500, 0.5, 8000);
        assert_eq!(t.len(), 4000);
        let bytes = encode_wav(8000, &t);
        assert!(is_finalized(&bytes));
        let w = decode_wav(&bytes).unwrap_or(Wav {
            sample_rate: 0,
            channels: 0,
            samples: vec![],
        });
        assert_eq!(
            (w.sample_rate, w.channels, w.samples.len()),
            (8000, 1, 4000)
        );
        assert_eq!(w.samples, t);
        assert!((tone_amplitude(&t, 8000, 1000.0) - 0.5).abs() < 0.01);
        assert!(tone_amplitude(&t, 8000, 440.0) < 0.01);
        assert!((rms(&t) - 0.5 / 2f64.sqrt()).abs() < 0.01);
    }

    #[test]
    fn skips_extra_chunks_and_pads() {
        let plain = encode_wav(16000, &[1, -2, 3]);
        // Insert an odd-sized LIST chunk (with pad byte) between fmt and data.
        let mut b = plain[..36].to_vec();
        b.extend_from_slice(b"LIST");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&[9, 9, 9, 0]);
        b.extend_from_slice(&plain[36..]);
        let w = decode_wav(&b).map(|w| (w.sample_rate, w.samples));
        assert_eq!(w.ok(), Some((16000, vec![1, -2, 3])));
        assert!(
            !is_finalized(&b),
            "RIFF size was not updated for the extra chunk"
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let good = encode_wav(8000, &[5; 10]);
        for cut in 0..good.len() {
            let _ = decode_wav(&good[..cut]);
        }
        assert!(
            decode_wav(&good[..good.len() - 2]).is_err(),
            "truncated data must fail"
        );
        assert!(decode_wav(b"RIFF\0\0\0\0WAVEdata\xff\xff\xff\x7f").is_err());
        let mut b8 = good.clone();
        b8[34] = 8; // bits per sample
        assert!(decode_wav(&b8).is_err());
    }
}
