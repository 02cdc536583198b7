//! Transcripts against an in-process OpenAI-compatible `/v1/audio/transcriptions` server
//! (axum on 127.0.0.1) that parses each multipart request for real: the fields, the bearer
//! key, and the uploaded file, which must be a valid mono WAV. It tells the channels apart by
//! their samples (the test recording's left channel is all 1000, the right all -1000) and
//! answers each with its own segments; other modes answer 500, garbage, or never.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use trunkgate::app::transcribe::{TranscribeError, Transcriber};
use trunkgate::config::TranscriptionConfig;
use trunkgate::core::media::wav::StereoWavWriter;
use trunkgate::core::transcript::Turn;

const KEY: &str = "sk-test-0123456789";
const CALLER_VALUE: i16 = 1000;
const AGENT_VALUE: i16 = -1000;

#[derive(Clone, Copy)]
enum Mode {
    Transcribe,
    Fail500,
    Garbage,
    Never,
}

/// What the server saw in one request.
#[derive(Debug, Clone, Default)]
struct Seen {
    authorization: Option<String>,
    model: Option<String>,
    response_format: Option<String>,
    granularity: Option<String>,
    filename: Option<String>,
    file_type: Option<String>,
    /// The uploaded file's samples, if it was a valid 8 kHz mono PCM16 WAV.
    samples: Option<Vec<i16>>,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(mode: Mode) -> Server {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/audio/transcriptions", post(handle))
            .with_state((mode, seen.clone()));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            url: format!("http://{addr}/v1/audio/transcriptions"),
            seen,
            task,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn handle(
    State((mode, seen)): State<(Mode, Arc<Mutex<Vec<Seen>>>)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let got = parse_request(&headers, &body);
    let samples = got.samples.clone();
    if let Ok(mut list) = seen.lock() {
        list.push(got);
    }
    match mode {
        Mode::Fail500 => return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Garbage => return (StatusCode::OK, "{\"text\": \"unterminated").into_response(),
        Mode::Never => std::future::pending::<()>().await,
        Mode::Transcribe => {}
    }
    let answer = match samples.as_deref() {
        Some(s) if !s.is_empty() && s.iter().all(|&v| v == CALLER_VALUE) => serde_json::json!({
            "task": "transcribe", "duration": 5.0,
            "text": " Hello, I need help. with my order Thanks",
            "segments": [
                {"id": 0, "start": 0.0, "end": 1.2, "text": " Hello, I need help."},
                {"id": 1, "start": 1.5, "end": 2.0, "text": " with my order"},
                {"id": 2, "start": 4.5, "end": 5.0, "text": " Thanks "},
            ]
        }),
        Some(s) if !s.is_empty() && s.iter().all(|&v| v == AGENT_VALUE) => serde_json::json!({
            "text": " Sure.",
            "segments": [{"id": 0, "start": 2.4, "end": 4.0, "text": " Sure."}]
        }),
        _ => return (StatusCode::BAD_REQUEST, "which channel is this?").into_response(),
    };
    (StatusCode::OK, axum::Json(answer)).into_response()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn quoted(header: &str, param: &str) -> Option<String> {
    let start = header.find(&format!("{param}=\""))? + param.len() + 2;
    let len = header[start..].find('"')?;
    Some(header[start..start + len].to_string())
}

/// Parses a multipart/form-data request the way a server would.
fn parse_request(headers: &HeaderMap, body: &[u8]) -> Seen {
    let mut seen = Seen {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ..Seen::default()
    };
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(boundary) = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .map(|b| format!("--{b}"))
    else {
        return seen;
    };
    let mut rest = body;
    while let Some(at) = find(rest, boundary.as_bytes()) {
        rest = &rest[at + boundary.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let part_end = find(rest, boundary.as_bytes()).unwrap_or(rest.len());
        let part = rest[..part_end]
            .strip_prefix(b"\r\n")
            .and_then(|p| p.strip_suffix(b"\r\n"))
            .unwrap_or_default();
        let Some(split) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let content = &part[split + 4..];
        let mut disposition = String::new();
        let mut part_type = None;
        for line in head.split("\r\n") {
            let (name, value) = line.split_once(": ").unwrap_or_default();
            if name.eq_ignore_ascii_case("content-disposition") {
                disposition = value.to_string();
            } else if name.eq_ignore_ascii_case("content-type") {
                part_type = Some(value.to_string());
            }
        }
        let text = String::from_utf8_lossy(content).to_string();
        match quoted(&disposition, "name").as_deref() {
            Some("model") => seen.model = Some(text),
            Some("response_format") => seen.response_format = Some(text),
            Some("timestamp_granularities[]") => seen.granularity = Some(text),
            Some("file") => {
                seen.filename = quoted(&disposition, "filename");
                seen.file_type = part_type;
                seen.samples = mono_samples(content);
            }
            _ => {}
        }
    }
    seen
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The samples of a canonical 8 kHz mono PCM16 WAV whose sizes match its length.
fn mono_samples(wav: &[u8]) -> Option<Vec<i16>> {
    let ok = wav.len() >= 44
        && &wav[0..4] == b"RIFF"
        && u32_at(wav, 4) as usize == wav.len() - 8
        && &wav[8..16] == b"WAVEfmt "
        && u32_at(wav, 16) == 16
        && u16_at(wav, 20) == 1
        && u16_at(wav, 22) == 1
        && u32_at(wav, 24) == 8000
        && u32_at(wav, 28) == 16000
        && u16_at(wav, 32) == 2
        && u16_at(wav, 34) == 16
        && &wav[36..40] == b"data"
        && u32_at(wav, 40) as usize == wav.len() - 44;
    ok.then(|| {
        wav[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    })
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "trunkgate-transcribe-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// A recording of `frames` frames: left all `left`, right all `right`.
fn recording(dir: &std::path::Path, left: i16, right: i16, frames: usize) -> PathBuf {
    let path = dir.join("call.wav");
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut w = StereoWavWriter::new(file).unwrap_or_else(|e| panic!("{e}"));
    w.write_frames(&vec![left; frames], &vec![right; frames])
        .unwrap_or_else(|e| panic!("{e}"));
    w.finish().unwrap_or_else(|e| panic!("{e}"));
    path
}

fn transcriber(url: &str, key_file: Option<PathBuf>, timeout: Duration) -> Transcriber {
    trunkgate::io::tls::install_default_provider();
    let tls = trunkgate::io::tls::client_config(None).unwrap_or_else(|e| panic!("{e}"));
    let config = TranscriptionConfig {
        url: Some(url.to_string()),
        model: "whisper-large-v3".to_string(),
        api_key_file: key_file,
        timeout,
    };
    match Transcriber::from_config(&config, &tls) {
        Ok(Some(t)) => t,
        Ok(None) => panic!("off"),
        Err(e) => panic!("{e}"),
    }
}

fn key_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("key");
    std::fs::write(&path, format!("{KEY}\n")).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn turn(speaker: &str, start_ms: u64, end_ms: u64, text: &str) -> Turn {
    Turn {
        speaker: speaker.to_string(),
        start_ms,
        end_ms,
        text: text.to_string(),
    }
}

#[tokio::test]
async fn each_channel_is_transcribed_on_its_own_and_merged() {
    let dir = temp_dir("merged");
    let server = Server::start(Mode::Transcribe).await;
    let wav = recording(&dir, CALLER_VALUE, AGENT_VALUE, 8000);
    let t = transcriber(&server.url, Some(key_file(&dir)), Duration::from_secs(10));
    assert!(!format!("{t:?}").contains(KEY), "{t:?}");
    let turns = t
        .transcribe(&wav, ("caller", "agent"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        turns,
        [
            turn("caller", 0, 2000, "Hello, I need help. with my order"),
            turn("agent", 2400, 4000, "Sure."),
            turn("caller", 4500, 5000, "Thanks"),
        ]
    );
    let mut seen = server.seen();
    seen.sort_by_key(|s| s.filename.clone());
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (s, (name, value)) in seen
        .iter()
        .zip([("agent.wav", AGENT_VALUE), ("caller.wav", CALLER_VALUE)])
    {
        assert_eq!(s.filename.as_deref(), Some(name), "{s:?}");
        assert_eq!(s.file_type.as_deref(), Some("audio/wav"));
        assert_eq!(s.model.as_deref(), Some("whisper-large-v3"));
        assert_eq!(s.response_format.as_deref(), Some("verbose_json"));
        assert_eq!(s.granularity.as_deref(), Some("segment"));
        assert_eq!(s.authorization.as_deref(), Some(&*format!("Bearer {KEY}")));
        assert_eq!(s.samples.as_deref(), Some(&vec![value; 8000][..]));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_a_key_no_authorization_and_silence_is_not_sent() {
    let dir = temp_dir("keyless");
    let server = Server::start(Mode::Transcribe).await;
    let wav = recording(&dir, 0, AGENT_VALUE, 800);
    let t = transcriber(&server.url, None, Duration::from_secs(10));
    let turns = t
        .transcribe(&wav, ("manager", "client"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(turns, [turn("client", 2400, 4000, "Sure.")]);
    let seen = server.seen();
    assert_eq!(
        seen.len(),
        1,
        "the silent left channel is not sent: {seen:?}"
    );
    assert_eq!(seen[0].authorization, None);
    assert_eq!(seen[0].filename.as_deref(), Some("client.wav"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn http_error_is_its_status() {
    let dir = temp_dir("500");
    let server = Server::start(Mode::Fail500).await;
    let wav = recording(&dir, CALLER_VALUE, AGENT_VALUE, 160);
    let t = transcriber(&server.url, Some(key_file(&dir)), Duration::from_secs(10));
    let err = t.transcribe(&wav, ("caller", "agent")).await;
    match &err {
        Err(TranscribeError::Status { status: 500, .. }) => {}
        other => panic!("{other:?}"),
    }
    let text = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("HTTP 500") && !text.contains(KEY), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn garbage_answer_is_a_bad_response() {
    let dir = temp_dir("garbage");
    let server = Server::start(Mode::Garbage).await;
    let wav = recording(&dir, CALLER_VALUE, AGENT_VALUE, 160);
    let t = transcriber(&server.url, None, Duration::from_secs(10));
    match t.transcribe(&wav, ("caller", "agent")).await {
        Err(TranscribeError::BadResponse { .. }) => {}
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let dir = temp_dir("never");
    let server = Server::start(Mode::Never).await;
    let wav = recording(&dir, CALLER_VALUE, AGENT_VALUE, 160);
    let timeout = Duration::from_millis(300);
    let t = transcriber(&server.url, Some(key_file(&dir)), timeout);
    match t.transcribe(&wav, ("caller", "agent")).await {
        Err(TranscribeError::Timeout { timeout: got, .. }) => assert_eq!(got, timeout),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unreadable_inputs_are_typed_errors() {
    let dir = temp_dir("inputs");
    let t = transcriber("http://127.0.0.1:9/", None, Duration::from_secs(1));
    match t
        .transcribe(&dir.join("missing.wav"), ("caller", "agent"))
        .await
    {
        Err(TranscribeError::Read { .. }) => {}
        other => panic!("{other:?}"),
    }
    let not_wav = dir.join("x.wav");
    std::fs::write(&not_wav, b"ID3 mp3 bytes").unwrap_or_else(|e| panic!("{e}"));
    match t.transcribe(&not_wav, ("caller", "agent")).await {
        Err(TranscribeError::Wav { .. }) => {}
        other => panic!("{other:?}"),
    }
    let tls = trunkgate::io::tls::client_config(None).unwrap_or_else(|e| panic!("{e}"));
    let mut config = TranscriptionConfig {
        url: None,
        model: "whisper-1".into(),
        api_key_file: Some(dir.join("no-such-key")),
        timeout: Duration::from_secs(1),
    };
    assert!(matches!(Transcriber::from_config(&config, &tls), Ok(None)));
    config.url = Some("http://127.0.0.1:9/".into());
    match Transcriber::from_config(&config, &tls) {
        Err(TranscribeError::Key(_)) => {}
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}
