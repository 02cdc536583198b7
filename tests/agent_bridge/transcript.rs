//! Speaker-labelled transcripts of recorded agent calls over real sockets: the webhook answer
//! says `record: true`, `[transcription] url` names an in-process server speaking the
//! OpenAI-compatible `/v1/audio/transcriptions` API (multipart upload, `verbose_json`
//! answer). The server tells the channels apart by their audio — the caller's 1000 Hz tone,
//! the agent's 500 Hz — never by the file name the gateway chose, and answers each with its
//! own segments; the `call.transcript` callback must carry them merged, with the right
//! speakers, after `call.completed`. A call with no talk time gets none and its record says
//! why; a failing server gives a `call.transcript` with an error.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::support::agent::{AgentServer, Dialect, Script};
use super::support::baresip::TempDir;
use super::support::http::{CallbackServer, Req};
use super::support::leg::{dial, WAIT};
use super::support::recorded::{ended_record, hears_the_caller, recording_webhook, tone_script};
use super::support::transcriber::{file_part, merged_turns, segments, serve, whose};
use super::{assert_signed, setup, AGENT_HZ, CALLER_HZ};

const KEY: &str = "sk-transcript-test-42";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Transcribe,
    Fail503,
}

/// One upload as the server saw it.
#[derive(Debug, Clone)]
struct Upload {
    filename: Option<String>,
    authorization: Option<String>,
    /// Whose tone the uploaded mono WAV carries: "caller", "agent", or "unknown".
    heard: &'static str,
}

type Seen = Arc<Mutex<Vec<Upload>>>;

struct Stt {
    url: String,
    seen: Seen,
    task: JoinHandle<()>,
}

impl Drop for Stt {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stt {
    async fn start(mode: Mode) -> Stt {
        let seen = Seen::default();
        let app = Router::new()
            .route("/v1/audio/transcriptions", post(transcribe))
            .with_state((mode, seen.clone()));
        let (url, task) = serve(app).await;
        Stt { url, seen, task }
    }

    fn seen(&self) -> Vec<Upload> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn transcribe(
    State((mode, seen)): State<(Mode, Seen)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (filename, wav) = file_part(&headers, &body).unwrap_or_default();
    let heard = whose(&wav, CALLER_HZ, AGENT_HZ);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Ok(mut s) = seen.lock() {
        s.push(Upload {
            filename,
            authorization,
            heard,
        });
    }
    if mode == Mode::Fail503 {
        return (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response();
    }
    let Some(mut answer) = segments(heard) else {
        return (StatusCode::BAD_REQUEST, "which channel is this?").into_response();
    };
    if heard == "caller" {
        // The caller's answer in full `verbose_json` shape (`task`, `duration` beside segments).
        answer["task"] = json!("transcribe");
        answer["duration"] = json!(2.5);
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// What one recorded call left: its record, the callback receiver, and the gateway (alive:
/// the transcript is made after the call).
struct Outcome {
    record: Value,
    cb: CallbackServer,
    _gw: trunkgate::app::Gateway,
}

/// A recorded call with transcription at `stt`, hung up by the caller once the agent has
/// heard 1.5 s: with `speak`, the caller's tone throughout and the agent's for 1.5 s; without,
/// both silent.
async fn recorded_call(ports: (u16, u16), dir: &TempDir, stt: &Stt, speak: bool) -> Outcome {
    let script = if speak {
        tone_script(AGENT_HZ, 1500)
    } else {
        Script::default()
    };
    let mut agent = AgentServer::start(Dialect::Twilio, script).await;
    let hook = recording_webhook(&agent).await;
    let cb = CallbackServer::start(0).await;
    let key = dir.path().join("stt-key");
    std::fs::write(&key, format!("{KEY}\n")).expect("write key");
    let mut s = setup(ports, dir, &cb);
    s.webhook_url = Some(hook.url.clone());
    s.callback_events = r#"["ringing", "answered", "completed"]"#;
    s.extra = format!(
        "[recording]\ndir = \"{}\"\n[transcription]\nurl = \"{}\"\nmodel = \"whisper-1\"\napi_key_file = \"{}\"\ntimeout = \"5s\"\n",
        dir.path().join("rec").display(),
        stt.url,
        key.display()
    );
    let gw = s.start().await;
    let mut events = gw.subscribe();
    let mut call = dial(&gw)
        .await
        .expect_answer(if speak { CALLER_HZ } else { 0.0 })
        .await;
    hears_the_caller(&mut agent).await;
    call.hangup().await;
    let record = ended_record(&mut events).await;
    Outcome {
        record: serde_json::to_value(&record).expect("record JSON"),
        cb,
        _gw: gw,
    }
}

/// Deliveries until the one for which `done` holds over all of them (each within [`WAIT`]),
/// in `seq` order (deliveries may overtake each other).
async fn deliveries(cb: &mut CallbackServer, done: impl Fn(&[Value]) -> bool) -> Vec<Req> {
    let mut seen: Vec<Req> = Vec::new();
    loop {
        seen.push(cb.success(WAIT).await);
        let bodies: Vec<Value> = seen.iter().map(Req::json).collect();
        if done(&bodies) {
            seen.sort_by_key(|r| r.json()["seq"].as_u64());
            return seen;
        }
    }
}

/// Every event up to and including the call's `call.transcript` (the last seq) has come.
fn through_transcript(bodies: &[Value]) -> bool {
    let last = bodies
        .iter()
        .find(|b| b["event"] == "call.transcript")
        .and_then(|b| b["seq"].as_u64());
    last == Some(bodies.len() as u64)
}

/// The transcript delivery (the last by seq), checked against the call's completed one.
fn transcript_after_completed(seen: &[Req], record: &Value) -> Value {
    let bodies: Vec<Value> = seen.iter().map(Req::json).collect();
    let events: Vec<&str> = bodies.iter().filter_map(|b| b["event"].as_str()).collect();
    assert_eq!(
        events,
        [
            "call.ringing",
            "call.answered",
            "call.completed",
            "call.transcript"
        ],
        "{bodies:?}"
    );
    let completed = &bodies[2];
    assert_eq!(completed["event_id"], record["event_id"]);
    assert_eq!(completed["transcript"], "pending", "{completed}");
    let t = &bodies[3];
    let id = record["call_id"].as_str().unwrap_or_default();
    let seq = completed["seq"].as_u64().unwrap_or(0) + 1;
    assert_eq!(t["seq"].as_u64(), Some(seq), "{t}");
    assert_eq!(t["call_id"], id, "{t}");
    assert_eq!(t["event_id"], format!("evt-{id}-{seq}"), "{t}");
    let req = &seen[3];
    assert_signed(req);
    assert_eq!(
        req.header("X-Trunkgate-Event-Id"),
        t["event_id"].as_str(),
        "{t}"
    );
    t.clone()
}

fn assert_both_channels_sent(stt: &Stt) {
    let mut seen = stt.seen();
    seen.sort_by_key(|u| u.filename.clone());
    let got: Vec<(Option<&str>, &str)> = seen
        .iter()
        .map(|u| (u.filename.as_deref(), u.heard))
        .collect();
    // Each label on the channel that carries that speaker's audio.
    assert_eq!(
        got,
        [(Some("agent.wav"), "agent"), (Some("caller.wav"), "caller")],
        "{seen:?}"
    );
    let bearer = format!("Bearer {KEY}");
    assert!(
        seen.iter()
            .all(|u| u.authorization.as_deref() == Some(&*bearer)),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_gets_its_channels_transcribed_and_merged_after_completed() {
    let dir = TempDir::new("tg-transcript").expect("temp dir");
    let stt = Stt::start(Mode::Transcribe).await;
    let mut out = recorded_call((37800, 37815), &dir, &stt, true).await;
    assert_eq!(out.record["transcript"], "pending", "{}", out.record);
    let seen = deliveries(&mut out.cb, through_transcript).await;
    let t = transcript_after_completed(&seen, &out.record);
    assert_eq!(t["turns"], merged_turns(), "{t}");
    assert!(t.get("error").is_none(), "{t}");
    assert_both_channels_sent(&stt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_transcriber_gives_a_transcript_with_an_error() {
    let dir = TempDir::new("tg-transcript-503").expect("temp dir");
    let stt = Stt::start(Mode::Fail503).await;
    let mut out = recorded_call((37816, 37831), &dir, &stt, true).await;
    assert_eq!(out.record["transcript"], "pending", "{}", out.record);
    let seen = deliveries(&mut out.cb, through_transcript).await;
    let t = transcript_after_completed(&seen, &out.record);
    assert_eq!(
        (&t["turns"], &t["error"]),
        (&json!([]), &json!("http_status"))
    );
    let body = String::from_utf8_lossy(&seen[3].body).to_string();
    assert!(
        !body.contains(KEY) && !body.contains("overloaded"),
        "{body}"
    );
    assert_both_channels_sent(&stt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_talk_time_gets_no_transcript_and_its_record_says_why() {
    let dir = TempDir::new("tg-transcript-silent").expect("temp dir");
    let stt = Stt::start(Mode::Transcribe).await;
    let mut out = recorded_call((37832, 37849), &dir, &stt, false).await;
    let record = &out.record;
    assert_eq!(record["transcript"], "no_talk_time", "{record}");
    assert_eq!(
        (
            record["talk_s"]["caller"].as_f64(),
            record["talk_s"]["agent"].as_f64()
        ),
        (Some(0.0), Some(0.0)),
        "{record}"
    );
    assert!(record["recording_url"].is_string(), "recorded: {record}");
    // The decision is made before call.completed is written: by the time it is delivered,
    // nothing was uploaded, and nothing but the status events came.
    let seen = deliveries(&mut out.cb, |b| {
        b.iter().any(|b| b["event"] == "call.completed")
    })
    .await;
    let events: Vec<Value> = seen.iter().map(|r| r.json()["event"].clone()).collect();
    assert!(!events.contains(&json!("call.transcript")), "{events:?}");
    assert_eq!(stt.seen().len(), 0, "{:?}", stt.seen());
}
