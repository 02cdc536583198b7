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
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use support::baresip::TempDir;
use support::bridge::poll_until;
use support::daemon::Daemon;
use support::http::CallbackServer;
use support::leg::{dial_to, WAIT};
use support::recorded::{hears_the_caller, tone_agent};
use support::restart::{files, kill_9, recording, twilio_agent, write_config, Conf};
use support::transcriber::{file_part, merged_turns, segments, serve, whose};

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
        let (url, task) = serve(app).await;
        Stt {
            url,
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

async fn transcribe(
    State(state): State<Arc<SttState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let wav = file_part(&headers, &body).map(|(_, wav)| wav);
    let heard = whose(&wav.unwrap_or_default(), CALLER_HZ, AGENT_HZ);
    let _ = state.heard.send(heard);
    if !state.answering.load(Ordering::SeqCst) {
        // Held open: the transcription stays in progress until the daemon dies.
        std::future::pending::<()>().await;
    }
    let Some(answer) = segments(heard) else {
        return (StatusCode::BAD_REQUEST, "which channel is this?").into_response();
    };
    (StatusCode::OK, axum::Json(answer)).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_pending_at_kill_9_is_delivered_by_the_next_start() {
    let dir = TempDir::new("tg-transcript-restart").expect("temp dir");
    let mut stt = Stt::start().await;
    let mut agent = tone_agent(AGENT_HZ, 1500).await;
    let mut cb = CallbackServer::start(0).await;
    let transcription = format!(
        "[transcription]\nurl = \"{}\"\nmodel = \"whisper-1\"\napi_key_file = \"{}\"\ntimeout = \"120s\"\n",
        stt.url,
        dir.path().join("stt-key").display()
    );
    let cfg = write_config(
        dir.path(),
        &Conf {
            ports: (38200, 38239),
            api: Some(("127.0.0.1:38245", "restart-token")),
            callback: &cb.url,
            cdr: false,
            extra: recording(dir.path()) + &transcription,
            agent: twilio_agent(&agent.url),
        },
    );
    std::fs::write(dir.path().join("stt-key"), "sk-restart-test\n").expect("key");
    let spool = dir.path().join("spool");

    let mut first = Daemon::start(&cfg).await;
    let mut call = dial_to(first.udp).await.expect_answer(CALLER_HZ).await;
    hears_the_caller(&mut agent).await;
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

    kill_9(&mut first).await;
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
    assert_eq!(t["turns"], merged_turns(), "{t}");
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
