//! The crash journal survives `kill -9` (issue 9, PROTOCOLS.md §4): the real `trunkgate`
//! binary answers a call, journals it and checkpoints it; SIGKILL while the call is up; a
//! second daemon on the same config reports the call — `call.completed` with `end_reason`
//! `gateway_restart`, the duration up to the last checkpoint, billed per `[billing]` — to the
//! callback receiver (a real in-process HTTP server) and in the CDR, and empties the journal.
//! A graceful stop (SIGTERM) of a live call leaves no journal entry behind.
//! The journal directory is polled (bounded, 20 ms steps): nothing else signals its state.
//!
//! RTP range 37040-37059.

mod support;

use std::path::Path;

use serde_json::Value;

use support::baresip::TempDir;
use support::bridge::poll_until;
// Journal files are found as a spool directory's are: `*.json`, not `corrupt/`.
use support::bridge::spooled as journal_files;
use support::daemon::Daemon;
use support::http::CallbackServer;
use support::leg::{dial_to, WAIT};
use support::restart::{kill_9, write_config, Conf};

const CALLER_HZ: f32 = 1000.0;

/// The call's latest checkpoint, once it has a running duration.
fn checkpoint(dir: &Path) -> Option<Value> {
    let path = journal_files(dir)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".ckpt.json"))?;
    let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    (v["call"]["duration_s"].as_f64() > Some(0.5)).then_some(v)
}

fn cdr_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_up_at_kill_9_is_reported_on_the_next_start() {
    let dir = TempDir::new("tg-journal-restart").expect("temp dir");
    let mut cb = CallbackServer::start(0).await;
    let cfg = write_config(
        dir.path(),
        &Conf {
            ports: (37040, 37059),
            api: None,
            callback: &cb.url,
            cdr: true,
            extra: "[billing]\nminimum_s = 0\nincrement_s = 1\n".to_owned(),
            agent: r#"{ url = "builtin:echo", dialect = "raw", sample_rate = 8000 }"#.to_owned(),
        },
    );
    let journal = dir.path().join("spool").join("journal");
    let cdr = dir.path().join("cdr.jsonl");

    let mut first = Daemon::start(&cfg).await;
    let mut call = dial_to(first.udp).await.expect_answer(CALLER_HZ).await;
    assert!(
        call.caller
            .wait_until(WAIT, |h| h.tone_times(CALLER_HZ).len() >= 10)
            .await,
        "the call is up (the echo agent plays the caller's tone back)"
    );
    poll_until("a checkpoint of the running call", WAIT, || {
        checkpoint(&journal).is_some()
    })
    .await;
    kill_9(&mut first).await;
    // The last checkpoint the dead daemon left (it cannot write another now).
    let ckpt = checkpoint(&journal).expect("the checkpoint outlives the daemon");
    let call_id = ckpt["call"]["call_id"]
        .as_str()
        .expect("call_id")
        .to_owned();
    assert!(cb.deliveries().is_empty(), "nothing sent for the call yet");
    assert!(cdr_lines(&cdr).is_empty(), "no CDR line for the call yet");

    let second = Daemon::start(&cfg).await;
    let got = cb.success(WAIT).await;
    let body = got.json();
    assert_eq!(body["event"], "call.completed", "{body}");
    assert_eq!(body["call_id"], call_id.as_str(), "{body}");
    assert_eq!(body["end_reason"], "gateway_restart", "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["sip_status"], 200, "{body}");
    assert_eq!(body["seq"], 1, "its first event: {body}");
    assert_eq!(body["ended_at"], ckpt["checkpoint_at"], "{body}");
    let duration = body["duration_s"].as_f64().unwrap_or(-1.0);
    let at_ckpt = ckpt["call"]["duration_s"].as_f64().unwrap_or(-2.0);
    assert!(duration > 0.0, "{body}");
    assert!(
        (duration - at_ckpt).abs() <= 0.051,
        "duration {duration} vs the checkpoint's {at_ckpt}"
    );
    // Billed per [billing] (0 minimum, per second): the duration rounded up.
    assert_eq!(
        body["billable_s"].as_u64(),
        Some((at_ckpt * 1000.0).round() as u64).map(|ms| ms.div_ceil(1000)),
        "{body}"
    );
    assert_eq!(body["billing"]["counted"], "duration", "{body}");

    // In the CDR, the same record; and the journal is empty.
    let lines = cdr_lines(&cdr);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0], body);
    poll_until("the journal to empty", WAIT, || {
        journal_files(&journal).is_empty()
    })
    .await;

    // A graceful stop is not a crash: the call it hangs up is reported once, as `shutdown`,
    // and its journal entry is gone when the daemon has exited (or the next start would
    // report it again).
    let mut live = dial_to(second.udp).await.expect_answer(CALLER_HZ).await;
    assert!(
        live.caller
            .wait_until(WAIT, |h| h.tone_times(CALLER_HZ).len() >= 5)
            .await,
        "the second call is up"
    );
    poll_until("the second call's checkpoint", WAIT, || {
        checkpoint(&journal).is_some()
    })
    .await;
    let stopping = tokio::spawn(second.stop());
    live.expect_bye(WAIT).await;
    stopping.await.expect("stopped");
    assert!(
        journal_files(&journal).is_empty(),
        "{:?}",
        journal_files(&journal)
    );
    let ended = cb.success(WAIT).await.json();
    assert_eq!(ended["end_reason"], "shutdown", "{ended}");
    assert_ne!(ended["call_id"], call_id.as_str(), "{ended}");
    assert_eq!(cdr_lines(&cdr).len(), 2);
}
