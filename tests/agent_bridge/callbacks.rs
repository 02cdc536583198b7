//! Callback delivery (PROTOCOLS.md §4) in a running gateway: a receiver that fails the first
//! three deliveries gets exactly one success, every attempt carries the same event_id and
//! body and is signed, retries back off, the spool empties, and the CDR has the record once.
//! A number's own `callback_url` wins over `[callbacks] url`.
//! (Surviving a `kill -9` is `tests/callback_restart.rs`.)

use std::time::Duration;

use super::support::baresip::TempDir;
use super::support::bridge::{poll_until, spooled};
use super::support::http::CallbackServer;
use super::support::leg::{dial, WAIT};
use super::{assert_signed, check_end, setup, Expect, CALLER_HZ};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_retried_until_2xx_with_one_event_id() {
    let dir = TempDir::new("tg-cb-retry").expect("temp dir");
    let mut cb = CallbackServer::start(3).await;
    let mut setup = setup((35200, 35219), &dir, &cb);
    setup.static_agent =
        Some(r#"{ url = "builtin:echo", dialect = "raw", sample_rate = 8000 }"#.to_owned());
    setup.retry_backoff = "50ms";
    let cdr = dir.path().join("cdr.jsonl");
    setup.cdr_file = Some(cdr.clone());
    let gw = setup.start().await;
    let mut events = gw.subscribe();

    let mut call = dial(&gw).await.expect_answer(CALLER_HZ).await;
    assert!(
        call.caller
            .wait_until(WAIT, |h| h.tone_times(CALLER_HZ).len() >= 25)
            .await,
        "the echo agent plays the caller's tone back"
    );
    let bye_at = call.hangup().await;
    let want = Expect {
        end_reason: "caller_hangup",
        status: "completed",
        sip_status: 200,
        duration: Some((bye_at - call.answered).as_secs_f64()),
        billing: setup.billing,
    };
    let body = check_end(&mut events, &mut cb, &want).await;
    assert!(body["talk_s"]["caller"].as_f64() > Some(0.0), "{body}");

    // Delivered: the file leaves the spool, so no further attempt can follow.
    poll_until("the spool to empty", WAIT, || {
        spooled(&setup.spool_dir).is_empty()
    })
    .await;
    let all = cb.deliveries().to_vec();
    let answered: Vec<u16> = all.iter().map(|r| r.answered).collect();
    assert_eq!(
        answered,
        [500, 500, 500, 204],
        "three failures, then one success"
    );
    for r in &all {
        assert_signed(r);
        assert_eq!(r.body, all[0].body, "every attempt sends the same record");
        assert_eq!(r.event_id(), body["event_id"].as_str().map(str::to_owned));
        assert_eq!(
            r.header("X-Trunkgate-Event-Id"),
            body["event_id"].as_str(),
            "event id header"
        );
    }
    // Backoff from 50 ms, doubling: 50, 100, 200 ms between attempts (timer slack allowed).
    let gaps: Vec<Duration> = all.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, min_ms) in gaps.iter().zip([45u64, 90, 180]) {
        assert!(*gap >= Duration::from_millis(min_ms), "retry gaps {gaps:?}");
    }
    assert!(
        std::fs::read_dir(setup.spool_dir.join("dead"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "nothing given up"
    );

    let cdr_text = std::fs::read_to_string(&cdr).expect("CDR file");
    let lines: Vec<&str> = cdr_text.lines().collect();
    assert_eq!(lines.len(), 1, "one CDR line per call");
    let line: serde_json::Value = serde_json::from_str(lines[0]).expect("CDR JSON");
    assert_eq!(line["event_id"], body["event_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_callback_url_overrides_the_global_one() {
    let dir = TempDir::new("tg-cb-number").expect("temp dir");
    let mut global = CallbackServer::start(0).await;
    let mut own = CallbackServer::start(0).await;
    let mut setup = setup((35220, 35239), &dir, &global);
    setup.static_agent =
        Some(r#"{ url = "builtin:echo", dialect = "raw", sample_rate = 8000 }"#.to_owned());
    setup.number_callback_url = Some(own.url.clone());
    let gw = setup.start().await;
    let mut events = gw.subscribe();
    let mut call = dial(&gw).await.expect_answer(CALLER_HZ).await;
    // A call of some length (see answered_call_always_bills_the_minimum for sub-ms ones).
    assert!(
        call.caller
            .wait_until(WAIT, |h| h.tone_times(CALLER_HZ).len() >= 5)
            .await
    );
    let bye_at = call.hangup().await;
    let want = Expect {
        end_reason: "caller_hangup",
        status: "completed",
        sip_status: 200,
        duration: Some((bye_at - call.answered).as_secs_f64()),
        billing: setup.billing,
    };
    check_end(&mut events, &mut own, &want).await;
    poll_until("the spool to empty", WAIT, || {
        spooled(&setup.spool_dir).is_empty()
    })
    .await;
    assert!(
        global.deliveries().is_empty(),
        "the global URL is not called"
    );
}

/// PROTOCOLS.md §4 / `[billing]`: "Seconds billed as soon as a call is answered". Calls that
/// the UA hangs up right after its ACK end within a millisecond of the answer on loopback;
/// each one is still answered and must bill `minimum_s`. Ten calls, so that a call starting
/// and ending inside one wall-clock millisecond is all but certain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_always_bills_the_minimum() {
    let dir = TempDir::new("tg-cb-instant").expect("temp dir");
    let mut cb = CallbackServer::start(0).await;
    let mut setup = setup((35240, 35259), &dir, &cb);
    setup.static_agent =
        Some(r#"{ url = "builtin:echo", dialect = "raw", sample_rate = 8000 }"#.to_owned());
    setup.billing = (60, 1);
    let gw = setup.start().await;
    let mut billed = Vec::new();
    for _ in 0..10 {
        let mut call = dial(&gw).await.expect_answer(0.0).await;
        call.hangup().await;
        let body = cb.success(WAIT).await.json();
        assert!(body["answered_at"].is_string(), "{body}");
        billed.push(body["billable_s"].as_u64().unwrap_or(0));
    }
    assert!(
        billed.iter().all(|&b| b == 60),
        "every answered call bills the first minute: {billed:?}"
    );
}
