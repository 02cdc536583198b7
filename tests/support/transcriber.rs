//! The fake OpenAI-compatible transcription server's common parts (`/v1/audio/transcriptions`,
//! multipart upload, `verbose_json` answer): serving a test's router on a loopback port, the
//! upload's `file` part, whose tone an uploaded channel carries (the caller's or the
//! agent's — never judged by the file name the gateway chose), and each speaker's segments.
//! Must not: outlive the test (the caller aborts the returned task on drop).

#![allow(dead_code)]

use axum::http::HeaderMap;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::wav::{decode_wav, tone_amplitude};

/// Serves `app` on 127.0.0.1:0: the transcriptions URL, and the server's task.
pub async fn serve(app: Router) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind stt");
    let addr = listener.local_addr().expect("stt addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/v1/audio/transcriptions"), task)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `file` part of a multipart body: its file name and its bytes.
pub fn file_part(headers: &HeaderMap, body: &[u8]) -> Option<(Option<String>, Vec<u8>)> {
    let boundary = headers
        .get("content-type")?
        .to_str()
        .ok()?
        .strip_prefix("multipart/form-data; boundary=")?
        .to_string();
    let at = find(body, b"name=\"file\"")?;
    let head_end = at + find(&body[at..], b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&body[at..head_end]).to_string();
    let filename = head
        .split("filename=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(str::to_string);
    let content = &body[head_end + 4..];
    let end = find(content, format!("\r\n--{boundary}").as_bytes())?;
    Some((filename, content[..end].to_vec()))
}

/// Whose tone a mono 8 kHz WAV carries, by which tone is far above the other: "caller"
/// (`caller_hz`), "agent" (`agent_hz`) or "unknown".
pub fn whose(wav: &[u8], caller_hz: f32, agent_hz: f32) -> &'static str {
    let Ok(w) = decode_wav(wav) else {
        return "unknown";
    };
    if w.channels != 1 || w.sample_rate != 8000 {
        return "unknown";
    }
    let caller = tone_amplitude(&w.samples, 8000, f64::from(caller_hz));
    let agent = tone_amplitude(&w.samples, 8000, f64::from(agent_hz));
    if caller > 0.02 && caller > 5.0 * agent {
        "caller"
    } else if agent > 0.02 && agent > 5.0 * caller {
        "agent"
    } else {
        "unknown"
    }
}

/// The answer for a speaker's channel (`None` for "unknown"): the caller says "Hello, I need
/// help." at 0.0-0.9 s and "Thanks, bye." at 2.0-2.4 s, the agent "Sure, one moment." at
/// 1.0-1.8 s.
pub fn segments(heard: &str) -> Option<Value> {
    match heard {
        "caller" => Some(json!({"text": "Hello, I need help. Thanks, bye.",
            "segments": [{"id": 0, "start": 0.0, "end": 0.9, "text": " Hello, I need help."},
                         {"id": 1, "start": 2.0, "end": 2.4, "text": " Thanks, bye."}]})),
        "agent" => Some(json!({"text": " Sure, one moment.",
            "segments": [{"id": 0, "start": 1.0, "end": 1.8, "text": " Sure, one moment."}]})),
        _ => None,
    }
}

/// The `turns` of a `call.transcript` merged from both [`segments`] answers, in time order.
pub fn merged_turns() -> Value {
    json!([
        {"speaker": "caller", "start_ms": 0, "end_ms": 900, "text": "Hello, I need help."},
        {"speaker": "agent", "start_ms": 1000, "end_ms": 1800, "text": "Sure, one moment."},
        {"speaker": "caller", "start_ms": 2000, "end_ms": 2400, "text": "Thanks, bye."},
    ])
}
