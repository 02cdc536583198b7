//! A pending transcript survives `kill -9` (PROTOCOLS.md §4 `call.transcript`: durable, like
//! the other events): the real `trunkgate` binary records every call (`[recording] enabled`)
//! and transcribes it at an in-process OpenAI-compatible server that tells the channels apart
//! by their audio (the caller's 1000 Hz tone, the agent's 500 Hz). A call with both tones
//! ends; `call.completed` says `transcript: "pending"`; the server holds every request of the
//! first daemon open (never answers), so its transcript job stays on disk
//! (`<spool_dir>/transcripts/<call_id>.json`, naming call.completed's seq + 1). SIGKILL. A
//! second daemon on the same config, with the server now answering, resumes the job: the
//! `call.transcript` arrives with the merged speaker turns, seq = call.completed's + 1 and
//! that seq's event_id, and the job file is gone.
//! Waits are events (the server's and the callback receiver's channels); only the job file
//! and the journal directory are polled (bounded, 20 ms steps): nothing else signals them.
//!
//! RTP range 38200-38239, API on 127.0.0.1:38245.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use support::agent::{Action, AgentServer, Dialect, Script};
use support::baresip::TempDir;
use support::bridge::poll_until;
use support::daemon::Daemon;
use support::http::CallbackServer;
use support::leg::{dial_to, WAIT};
use support::wav::{decode_wav, tone_amplitude};

const CALLER_HZ: f32 = 1000.0;
const AGENT_HZ: f32 = 500.0;
/// The resumed transcript: a restart, two uploads and a spooled delivery.
const RESUMED: Duration = Duration::from_secs(20);

/// The transcription server's state: whether it answers yet, and whose audio each upload
/// carried ("caller", "agent" or "unknown"), in arrival order.
struct SttState {
    answering: AtomicBool,
    heard: mpsc::UnboundedSender<&'static str>,
}

struct Stt {
    url: String,
    state: Arc<SttState>,
    heard: mpsc::UnboundedReceiver<&'static str>,
    task: JoinHandle<()>,
}

impl Drop for Stt {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stt {
    /// A server that holds every request open until [`Stt::answer`].
    async fn start() -> Stt {
        let (tx, heard) = mpsc::unbounded_channel();
        let state = Arc::new(SttState {
            answering: AtomicBool::new(false),
            heard: tx,
        });
        let app = Router::new()
            .route("/v1/audio/transcriptions", post(transcribe))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind stt");
        let addr = listener.local_addr().expect("stt addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Stt {
            url: format!("http://{addr}/v1/audio/transcriptions"),
            state,
            heard,
            task,
        }
    }

    /// From now on every request is answered.
    fn answer(&self) {
        self.state.answering.store(true, Ordering::SeqCst);
    }

    /// Whose audio the next upload carries.
    async fn upload(&mut self, wait: Duration) -> &'static str {
        match tokio::time::timeout(wait, self.heard.recv()).await {
            Ok(Some(who)) => who,
            _ => panic!("no transcription request within {wait:?}"),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The bytes of the `file` part of a multipart body.
fn file_part(headers: &HeaderMap, body: &[u8]) -> Option<Vec<u8>> {
    let boundary = headers
        .get("content-type")?
        .to_str()
        .ok()?
        .strip_prefix("multipart/form-data; boundary=")?
        .to_string();
    let at = find(body, b"name=\"file\"")?;
    let head_end = at + find(&body[at..], b"\r\n\r\n")?;
    let content = &body[head_end + 4..];
    let end = find(content, format!("\r\n--{boundary}").as_bytes())?;
    Some(content[..end].to_vec())
}

/// Whose tone a mono 8 kHz WAV carries, by which tone is far above the other.
fn whose(wav: &[u8]) -> &'static str {
    let Ok(w) = decode_wav(wav) else {
        return "unknown";
    };
    if w.channels != 1 || w.sample_rate != 8000 {
        return "unknown";
    }
    let caller = tone_amplitude(&w.samples, 8000, f64::from(CALLER_HZ));
    let agent = tone_amplitude(&w.samples, 8000, f64::from(AGENT_HZ));
    if caller > 0.02 && caller > 5.0 * agent {
        "caller"
    } else if agent > 0.02 && agent > 5.0 * caller {
        "agent"
    } else {
        "unknown"
    }
}

async fn transcribe(
    State(state): State<Arc<SttState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let heard = whose(&file_part(&headers, &body).unwrap_or_default());
    let _ = state.heard.send(heard);
    if !state.answering.load(Ordering::SeqCst) {
        // Held open: the transcription stays in progress until the daemon dies.
        std::future::pending::<()>().await;
    }
    let answer = match heard {
        "caller" => json!({"text": "Hello, I need help. Thanks, bye.",
            "segments": [{"id": 0, "start": 0.0, "end": 0.9, "text": " Hello, I need help."},
                         {"id": 1, "start": 2.0, "end": 2.4, "text": " Thanks, bye."}]}),
        "agent" => json!({"text": " Sure, one moment.",
            "segments": [{"id": 0, "start": 1.0, "end": 1.8, "text": " Sure, one moment."}]}),
        _ => return (StatusCode::BAD_REQUEST, "which channel is this?").into_response(),
    };
    (StatusCode::OK, axum::Json(answer)).into_response()
}

fn config(dir: &Path, callback: &str, agent: &str, stt: &str) -> String {
    format!(
        r#"
[sip]
listen_udp = ["127.0.0.1:0"]
listen_tcp = []
[rtp]
bind = "127.0.0.1"
port_min = 38200
port_max = 38239
[api]
listen = "127.0.0.1:38245"
token_file = "{token}"
[callbacks]
url = "{callback}"
spool_dir = "{spool}"
cdr_file = ""
retry_backoff = "100ms"
checkpoint = "200ms"
[recording]
enabled = true
dir = "{rec}"
[transcription]
url = "{stt}"
model = "whisper-1"
api_key_file = "{key}"
timeout = "120s"
[policy]
flood_per_source = {{ burst = 100000, per_second = 100000 }}
[log]
level = "info"
format = "text"
[[number]]
did = "*"
agent = {{ url = "{agent}", dialect = "twilio", sample_rate = 8000 }}
"#,
        spool = dir.join("spool").display(),
        rec = dir.join("rec").display(),
        key = dir.join("stt-key").display(),
        token = dir.join("api.token").display(),
    )
}

/// The files in `dir` whose names end with `suffix`.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_pending_at_kill_9_is_delivered_by_the_next_start() {
    let dir = TempDir::new("tg-transcript-restart").expect("temp dir");
    let mut stt = Stt::start().await;
    let script = Script {
        on_start: vec![Action::Tone {
            freq: AGENT_HZ,
            ms: 1500,
            chunk_ms: 20,
        }],
        on_dtmf: None,
    };
    let mut agent = AgentServer::start(Dialect::Twilio, script).await;
    let mut cb = CallbackServer::start(0).await;
    let cfg = dir.path().join("trunkgate.toml");
    std::fs::write(&cfg, config(dir.path(), &cb.url, &agent.url, &stt.url)).expect("config");
    std::fs::write(dir.path().join("stt-key"), "sk-restart-test\n").expect("key");
    std::fs::write(dir.path().join("api.token"), "restart-token").expect("API token");
    let spool = dir.path().join("spool");

    let mut first = Daemon::start(&cfg).await;
    let mut call = dial_to(first.udp).await.expect_answer(CALLER_HZ).await;
    agent.start_msg(WAIT).await;
    assert!(
        agent.wait_heard(WAIT, |h| h.frames >= 75).await,
        "1.5 s of caller audio reaches the agent"
    );
    call.hangup().await;
    let completed = cb.success(WAIT).await.json();
    assert_eq!(completed["event"], "call.completed", "{completed}");
    assert_eq!(completed["transcript"], "pending", "{completed}");
    let call_id = completed["call_id"].as_str().expect("call_id").to_owned();
    let seq = completed["seq"].as_u64().expect("seq") + 1;

    // Transcription has started (its job is written before): both channels are uploaded,
    // and held.
    let mut first_uploads = vec![stt.upload(WAIT).await, stt.upload(WAIT).await];
    first_uploads.sort_unstable();
    assert_eq!(first_uploads, ["agent", "caller"]);
    let job_path = spool.join("transcripts").join(format!("{call_id}.json"));
    let job: Value =
        serde_json::from_slice(&std::fs::read(&job_path).expect("the transcript job is on disk"))
            .expect("the job is JSON");
    assert_eq!(job["call_id"], call_id.as_str(), "{job}");
    assert_eq!(job["callback_url"], cb.url.as_str(), "{job}");
    assert_eq!(job["seq"].as_u64(), Some(seq), "{job}");
    assert_eq!(job["speakers"], json!(["caller", "agent"]), "{job}");
    // The call's journal entry goes once its record is on disk (its own thread): gone before
    // the kill, so the restart has no call to report, only the transcript to finish.
    let journal = spool.join("journal");
    poll_until("the call's journal entry to go", WAIT, || {
        files(&journal, ".call.json").is_empty()
    })
    .await;

    first.signal("KILL");
    let deadline = tokio::time::Instant::now() + WAIT;
    while first.alive() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGKILL took effect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(job_path.is_file(), "the job outlives the daemon");
    let sent: Vec<Value> = cb.deliveries().iter().map(|r| r.json()).collect();
    assert_eq!(sent.len(), 1, "only call.completed so far: {sent:?}");

    stt.answer();
    let second = Daemon::start(&cfg).await;
    let req = cb.success(RESUMED).await;
    let t = req.json();
    assert_eq!(t["event"], "call.transcript", "{t}");
    assert_eq!(t["call_id"], call_id.as_str(), "{t}");
    assert_eq!(
        t["seq"].as_u64(),
        Some(seq),
        "call.completed's seq + 1: {t}"
    );
    let event_id = format!("evt-{call_id}-{seq}");
    assert_eq!(t["event_id"], event_id.as_str(), "{t}");
    assert_eq!(req.header("X-Trunkgate-Event-Id"), Some(event_id.as_str()));
    assert_eq!(
        t["turns"],
        json!([
            {"speaker": "caller", "start_ms": 0, "end_ms": 900, "text": "Hello, I need help."},
            {"speaker": "agent", "start_ms": 1000, "end_ms": 1800, "text": "Sure, one moment."},
            {"speaker": "caller", "start_ms": 2000, "end_ms": 2400, "text": "Thanks, bye."},
        ]),
        "{t}"
    );
    assert!(t.get("error").is_none(), "{t}");
    let mut resumed = vec![stt.upload(WAIT).await, stt.upload(WAIT).await];
    resumed.sort_unstable();
    assert_eq!(
        resumed,
        ["agent", "caller"],
        "the second daemon uploads both channels again"
    );
    // Removed once the event is spooled (the delivery may overtake the removal).
    poll_until("the transcript job to go", WAIT, || !job_path.exists()).await;
    let sent: Vec<Value> = cb.deliveries().iter().map(|r| r.json()).collect();
    assert_eq!(sent.len(), 2, "nothing else was sent: {sent:?}");
    second.stop().await;
}
