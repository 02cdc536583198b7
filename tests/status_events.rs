//! Status events (PROTOCOLS.md §4, issue 9): `call.ringing`, `call.answered` and
//! `call.completed` over real sockets — the scripted UA calls a gateway whose inbound
//! webhook (in-process HTTP) names an in-process twilio agent; the events arrive at a real
//! in-process callback receiver, each with its own `event_id` and the call's `seq` from 1 in
//! the order sent, and only `call.completed` reaches the CDR.
//!
//! RTP ranges 37000-37039 (one per test).

mod support;

use std::path::Path;

use serde_json::{json, Value};

use trunkgate::app::Gateway;

use support::agent::{AgentServer, Dialect, Script};
use support::baresip::TempDir;
use support::bridge::Setup;
use support::http::{Answer, CallbackServer, Req, WebhookServer};
use support::leg::{dial, WAIT};

const CALLER_HZ: f32 = 1000.0;

fn cdr_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

/// `n` successful deliveries, sorted by `seq` (delivery order is not guaranteed: retries and
/// parallel sends may reorder them; `seq` is what a receiver orders by).
async fn by_seq(cb: &mut CallbackServer, n: usize) -> Vec<Value> {
    let mut got: Vec<Req> = Vec::new();
    for _ in 0..n {
        got.push(cb.success(WAIT).await);
    }
    let mut bodies: Vec<Value> = got.iter().map(Req::json).collect();
    bodies.sort_by_key(|b| b["seq"].as_u64());
    bodies
}

/// Places one answered call through the webhook (answering `answer`) and hangs it up; the
/// gateway is returned so that it lives on while its records are delivered.
async fn one_call(
    setup: &mut Setup,
    dir: &TempDir,
    answer: Value,
    agent: &mut AgentServer,
) -> (Gateway, WebhookServer) {
    let hook = WebhookServer::start(Answer::json(answer)).await;
    setup.webhook_url = Some(hook.url.clone());
    setup.cdr_file = Some(dir.path().join("cdr.jsonl"));
    let gw = setup.start().await;
    let mut ringing = dial(&gw).await;
    ringing.expect_ringing().await;
    let mut call = ringing.expect_answer(CALLER_HZ).await;
    agent.start_msg(WAIT).await;
    call.hangup().await;
    (gw, hook)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringing_answered_completed_in_seq_order_to_the_answers_callback_url() {
    let dir = TempDir::new("tg-status-events").expect("temp dir");
    // The configured receiver, and the one the webhook answer names for this call.
    let mut configured = CallbackServer::start(0).await;
    let mut per_call = CallbackServer::start(0).await;
    let mut agent = AgentServer::start(Dialect::Twilio, Script::default()).await;
    let mut setup = Setup::new((37000, 37019), dir.path());
    setup.callback_url = Some(configured.url.clone());
    let answer = json!({
        "websocket_url": agent.url,
        "dialect": "twilio",
        "callback_url": per_call.url,
        "callback_events": ["ringing", "answered", "completed"],
    });
    let _gw = one_call(&mut setup, &dir, answer, &mut agent).await;

    let events = by_seq(&mut per_call, 3).await;
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names, ["call.ringing", "call.answered", "call.completed"]);
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let call_id = events[0]["call_id"].as_str().expect("call_id");
    assert!(
        call_id.starts_with("tg-") || call_id.starts_with("CA"),
        "{call_id}"
    );
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| {
            assert_eq!(e["call_id"], call_id, "one call: {e}");
            e["event_id"].as_str().expect("event_id")
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "unique event ids: {events:?}");
    // Each carries the call as it stood.
    assert_eq!(events[0]["status"], "ringing", "{}", events[0]);
    assert!(events[0].get("answered_at").is_none(), "{}", events[0]);
    assert_eq!(events[1]["status"], "in-progress", "{}", events[1]);
    assert!(events[1]["answered_at"].is_string(), "{}", events[1]);
    assert_eq!(events[2]["status"], "completed", "{}", events[2]);
    assert_eq!(events[2]["end_reason"], "caller_hangup", "{}", events[2]);
    assert_eq!(events[2]["answered_at"], events[1]["answered_at"]);
    assert_eq!(events[2]["billing"]["counted"], "duration", "{}", events[2]);

    // Only the completed record is a CDR line (it is on disk before the callback is sent).
    let cdr = cdr_lines(&dir.path().join("cdr.jsonl"));
    assert_eq!(cdr.len(), 1, "{cdr:?}");
    assert_eq!(cdr[0], events[2]);
    // The answer redirected everything: the configured receiver got nothing.
    assert!(configured.deliveries().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_events_count_only_what_is_sent() {
    let dir = TempDir::new("tg-status-config").expect("temp dir");
    let mut cb = CallbackServer::start(0).await;
    let mut agent = AgentServer::start(Dialect::Twilio, Script::default()).await;
    let mut setup = Setup::new((37020, 37039), dir.path());
    setup.callback_url = Some(cb.url.clone());
    setup.callback_events = r#"["answered", "completed"]"#;
    let answer = json!({ "websocket_url": agent.url, "dialect": "twilio" });
    let _gw = one_call(&mut setup, &dir, answer, &mut agent).await;

    let events = by_seq(&mut cb, 2).await;
    let got: Vec<(&str, u64)> = events
        .iter()
        .filter_map(|e| Some((e["event"].as_str()?, e["seq"].as_u64()?)))
        .collect();
    // No call.ringing was sent, so none was counted: answered is the call's first event.
    assert_eq!(got, [("call.answered", 1), ("call.completed", 2)]);
    assert_eq!(cdr_lines(&dir.path().join("cdr.jsonl")).len(), 1);
    assert_eq!(cb.deliveries().len(), 2, "nothing else was sent");
}
