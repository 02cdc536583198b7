//! Daemon tests of admission control (issue 4) over real loopback sockets: every rule, at the
//! global, trunk and number layers, with the exact SIP status (and Retry-After where there is
//! one). Sources other than 127.0.0.1 are real: Linux routes all of 127/8 on `lo`, so a UA
//! socket bound to 127.0.0.2 sends from 127.0.0.2.
//!
//! Reloads (in-process and SIGHUP on the real binary) are in `admission_reload.rs`, known
//! gaps between the config's layers and what is enforced in `admission_gaps.rs`.
//! Each test runs its own gateway with its own RTP range (36000-36299 here).

mod support;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use support::admit::{find_record, number, trunk, Spec};
use support::call::{answer, assert_nothing_answered, retry_after, ua_from, Call, WAIT};
use support::gw::wait_event;
use support::rtp::RtpPeer;
use support::sink::Sink;
use support::ua::Ua;
use trunkgate::app::GatewayEvent;
use trunkgate::core::sip::endpoint::EndReason;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_allowlist_refuses_127_0_0_2_with_403_and_admits_127_0_0_1() {
    let (gw, dir) = Spec::new((36000, 36019), r#"allow_cidrs = ["127.0.0.1/32"]"#)
        .start()
        .await;
    let rtp = RtpPeer::bind().await;
    let mut stranger = ua_from("127.0.0.2", gw.udp_addrs[0]).await;
    let refused = Call::new().refused(&mut stranger, rtp.addr(), 403).await;
    assert_eq!(retry_after(&refused), None, "403 carries no Retry-After");
    // Refused before anything else: the record is written before the 403 is sent.
    let records = dir.cdr();
    assert!(
        find_record(&records, 403, "policy_source_not_allowed").is_some(),
        "{records:?}"
    );

    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut call = Call::new();
    call.establish(&mut ua, rtp.addr()).await;
    call.hang_up(&mut ua).await;
    assert_eq!(gw.stats().policy_rejected.load(Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_allowlist_ipv6_cidr_admits_and_refuses_loopback_v6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("note: [::1] cannot be bound on this machine; IPv6 admission test skipped");
        return;
    }
    let listen: &[&str] = &["127.0.0.1:0", "[::1]:0"];
    let rtp = RtpPeer::bind().await;

    // ::1 inside the allowed IPv6 CIDR; 127.0.0.1 outside it.
    let (gw, _dir) = Spec::new((36020, 36039), r#"allow_cidrs = ["::1/128"]"#)
        .listen(listen)
        .start()
        .await;
    let v6 = *gw
        .udp_addrs
        .iter()
        .find(|a| a.is_ipv6())
        .expect("a [::1] listener");
    let v4 = *gw
        .udp_addrs
        .iter()
        .find(|a| a.is_ipv4())
        .expect("a v4 listener");
    let mut ua6 = ua_from("[::1]", v6).await;
    let mut call = Call::new();
    call.establish(&mut ua6, rtp.addr()).await;
    call.hang_up(&mut ua6).await;
    let mut ua4 = ua_from("127.0.0.1", v4).await;
    Call::new().refused(&mut ua4, rtp.addr(), 403).await;

    // ::1 outside every allowed CIDR.
    let (gw, _dir) = Spec::new(
        (36040, 36059),
        r#"allow_cidrs = ["fd00::/8", "127.0.0.1/32"]"#,
    )
    .listen(listen)
    .start()
    .await;
    let v6 = *gw
        .udp_addrs
        .iter()
        .find(|a| a.is_ipv6())
        .expect("a [::1] listener");
    let mut ua6 = ua_from("[::1]", v6).await;
    Call::new().refused(&mut ua6, rtp.addr(), 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_action_drop_answers_nothing_at_all() {
    let policy = "allow_cidrs = [\"127.0.0.1/32\"]\nreject_action = \"drop\"";
    let (gw, _dir) = Spec::new((36060, 36079), policy).start().await;
    let rtp = RtpPeer::bind().await;
    let mut stranger = ua_from("127.0.0.2", gw.udp_addrs[0]).await;
    let call = Call::new();
    let invite = call.request(
        &stranger,
        "INVITE",
        "drop1",
        1,
        &support::ua::offer(rtp.addr(), "0"),
    );
    stranger.send(&invite).await;
    assert_nothing_answered(&mut stranger, "the INVITE from 127.0.0.2").await;
    assert_eq!(gw.stats().policy_dropped.load(Relaxed), 1);

    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut call = Call::new();
    call.establish(&mut ua, rtp.addr()).await;
    call.hang_up(&mut ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_layer_overrides_global_allowlist_and_concurrency() {
    // Global: only 127.0.0.1, 5 at once. The trunk (127.0.0.3) allows itself and 1 at once.
    let layers = trunk(
        "pbx",
        "127.0.0.3/32",
        r#"policy = { allow_cidrs = ["127.0.0.3/32"], max_concurrent = 1 }"#,
    );
    let policy = "allow_cidrs = [\"127.0.0.1/32\"]\nmax_concurrent = 5";
    let (gw, dir) = Spec::new((36080, 36099), policy)
        .layers(&layers)
        .start()
        .await;
    let rtp = RtpPeer::bind().await;
    let mut pbx = ua_from("127.0.0.3", gw.udp_addrs[0]).await;
    let mut a = Call::new();
    a.establish(&mut pbx, rtp.addr()).await;
    let busy = Call::new().refused(&mut pbx, rtp.addr(), 486).await;
    assert_eq!(retry_after(&busy), None);
    // The global layer still refuses other sources, and counts its own calls against 5.
    let mut stranger = ua_from("127.0.0.2", gw.udp_addrs[0]).await;
    Call::new().refused(&mut stranger, rtp.addr(), 403).await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut c = Call::new();
    c.establish(&mut ua, rtp.addr()).await;
    // Once the trunk's call ends, the trunk admits again.
    a.hang_up(&mut pbx).await;
    let mut d = Call::new();
    d.establish(&mut pbx, rtp.addr()).await;
    d.hang_up(&mut pbx).await;
    c.hang_up(&mut ua).await;
    assert!(find_record(&dir.cdr(), 486, "policy_busy").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_require_headers_403_unless_equal() {
    let layers = trunk(
        "ameyo",
        "127.0.0.4/32",
        r#"require_headers = { "X-Workspace-ID" = "2b37ba17-7b20-4b3e-b138-1161e351d5c5" }"#,
    );
    let (gw, dir) = Spec::new((36100, 36119), "").layers(&layers).start().await;
    let rtp = RtpPeer::bind().await;
    let mut pbx = ua_from("127.0.0.4", gw.udp_addrs[0]).await;
    Call::new().refused(&mut pbx, rtp.addr(), 403).await;
    Call::new()
        .header("X-Workspace-ID", "2b37ba17-0000-0000-0000-000000000000")
        .refused(&mut pbx, rtp.addr(), 403)
        .await;
    assert_eq!(
        dir.cdr()
            .iter()
            .filter(|r| r["end_reason"] == "policy_missing_header")
            .count(),
        2
    );
    // Equal value (header names are case-insensitive) → admitted.
    let mut ok = Call::new().header("x-workspace-id", "2b37ba17-7b20-4b3e-b138-1161e351d5c5");
    ok.establish(&mut pbx, rtp.addr()).await;
    ok.hang_up(&mut pbx).await;
    // The header is the trunk's rule: a source outside the trunk needs none.
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut other = Call::new();
    other.establish(&mut ua, rtp.addr()).await;
    other.hang_up(&mut ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_layer_overrides_global() {
    // Global allows every source and caller and 5 calls at once; +48111000001 allows none
    // of our sources, +48111000002 one call at a time, +48111000003 no +486 caller.
    let layers = number("+48111000001", r#"allow_cidrs = ["192.0.2.0/24"]"#)
        + &number("+48111000002", "max_concurrent = 1")
        + &number("+48111000003", r#"blocked_prefixes = ["+486"]"#);
    let (gw, _dir) = Spec::new((36120, 36139), "max_concurrent = 5")
        .layers(&layers)
        .start()
        .await;
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    Call::new()
        .did("+48111000001")
        .refused(&mut ua, rtp.addr(), 403)
        .await;
    // Blocks our default caller (+48600100200), whom the global layer lets through.
    Call::new()
        .did("+48111000003")
        .refused(&mut ua, rtp.addr(), 403)
        .await;
    let mut other = Call::new().did("+48123456789");
    other.establish(&mut ua, rtp.addr()).await;
    let mut first = Call::new().did("+48111000002");
    first.establish(&mut ua, rtp.addr()).await;
    Call::new()
        .did("+48111000002")
        .refused(&mut ua, rtp.addr(), 486)
        .await;
    first.hang_up(&mut ua).await;
    let mut again = Call::new().did("+48111000002");
    again.establish(&mut ua, rtp.addr()).await;
    again.hang_up(&mut ua).await;
    other.hang_up(&mut ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_prefixes_allowed_and_blocked_blocked_wins() {
    let policy = "allowed_prefixes = [\"0048\", \"+91\"]\nblocked_prefixes = [\"+9199\"]";
    let (gw, dir) = Spec::new((36140, 36159), policy).start().await;
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    for caller in ["+48600100200", "0048600100201", "+918001234567"] {
        let mut call = Call::new().caller(caller);
        call.establish(&mut ua, rtp.addr()).await;
        call.hang_up(&mut ua).await;
    }
    // Not allowed; blocked (though +91 is allowed), also written with 00; no number at all.
    for caller in [
        "+441234567890",
        "+919990152080",
        "00919990152081",
        "anonymous",
    ] {
        Call::new()
            .caller(caller)
            .refused(&mut ua, rtp.addr(), 403)
            .await;
    }
    let records = dir.cdr();
    for (reason, n) in [
        ("policy_caller_not_allowed", 1),
        ("policy_caller_blocked", 2),
        ("policy_no_caller_number", 1),
    ] {
        let got = records.iter().filter(|r| r["end_reason"] == reason).count();
        assert_eq!(got, n, "{reason}: {records:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_486_then_admitted_after_bye() {
    let (gw, _dir) = Spec::new((36160, 36179), "max_concurrent = 1")
        .start()
        .await;
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut a = Call::new();
    a.establish(&mut ua, rtp.addr()).await;
    let busy = Call::new().refused(&mut ua, rtp.addr(), 486).await;
    assert!(busy.start.starts_with("SIP/2.0 486"), "{}", busy.start);
    assert_eq!(retry_after(&busy), None);
    a.hang_up(&mut ua).await;
    let mut b = Call::new();
    b.establish(&mut ua, rtp.addr()).await;
    b.hang_up(&mut ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_per_hour_and_per_day_503_with_retry_after() {
    let layers = number("+48100000001", "max_calls_per_hour = 1")
        + &number("+48100000002", "max_calls_per_day = 2");
    let (gw, dir) = Spec::new((36180, 36199), "").layers(&layers).start().await;
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;

    let mut call = Call::new().did("+48100000001");
    call.establish(&mut ua, rtp.addr()).await;
    call.hang_up(&mut ua).await;
    // Strict sliding window: the ended call still counts; retry when it leaves the hour.
    let r = Call::new()
        .did("+48100000001")
        .refused(&mut ua, rtp.addr(), 503)
        .await;
    let secs = retry_after(&r).expect("503 has Retry-After");
    assert!((3590..=3600).contains(&secs), "Retry-After {secs}");
    // The window is the number's: other DIDs are not limited.
    let mut other = Call::new();
    other.establish(&mut ua, rtp.addr()).await;
    other.hang_up(&mut ua).await;

    for _ in 0..2 {
        let mut call = Call::new().did("+48100000002");
        call.establish(&mut ua, rtp.addr()).await;
        call.hang_up(&mut ua).await;
    }
    let r = Call::new()
        .did("+48100000002")
        .refused(&mut ua, rtp.addr(), 503)
        .await;
    let secs = retry_after(&r).expect("503 has Retry-After");
    assert!((86390..=86400).contains(&secs), "Retry-After {secs}");
    let records = dir.cdr();
    assert!(find_record(&records, 503, "policy_hourly_limit").is_some());
    assert!(find_record(&records, 503, "policy_daily_limit").is_some());
}

/// `HH:MM` of a minute of the day.
fn hhmm(min: i64) -> String {
    let m = min.rem_euclid(1440);
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_closed_480_with_retry_after_open_admitted() {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let sec = i64::from(now.hour()) * 3600 + i64::from(now.minute()) * 60 + i64::from(now.second());
    let m = sec / 60;
    // Opens in two hours, for an hour.
    let later = format!("hours = \"{}-{} UTC\"", hhmm(m + 120), hhmm(m + 180));
    // Closed only for the two hours around now: crosses midnight (except when run between
    // 22:00 and 23:00 UTC, when it is an ordinary window).
    let gap = format!("hours = \"{}-{} Etc/UTC\"", hhmm(m + 60), hhmm(m - 60));
    // Open now: 23 hours that cross midnight (except 22:00-23:00 UTC, as above).
    let wrap_open = format!("hours = \"{}-{} UTC\"", hhmm(m + 120), hhmm(m + 60));
    let open = format!("hours = \"{}-{} UTC\"", hhmm(m - 60), hhmm(m + 60));
    let layers = number("+48200000001", &later)
        + &number("+48200000002", &gap)
        + &number("+48200000003", &wrap_open)
        + &number("+48200000004", &open);
    let (gw, dir) = Spec::new((36200, 36219), "").layers(&layers).start().await;
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;

    // Retry-After: until the start minute (a minute tick during the test may shave ≤ 60 s).
    for (did, opens_in) in [("+48200000001", 120 * 60), ("+48200000002", 60 * 60)] {
        let r = Call::new().did(did).refused(&mut ua, rtp.addr(), 480).await;
        let secs = retry_after(&r).expect("480 has Retry-After");
        let exact = u64::try_from(opens_in - sec % 60).expect("positive");
        assert!(
            (exact.saturating_sub(61)..=exact).contains(&secs),
            "{did}: Retry-After {secs}, expected about {exact} ({layers})"
        );
    }
    for did in ["+48200000003", "+48200000004"] {
        let mut call = Call::new().did(did);
        call.establish(&mut ua, rtp.addr()).await;
        call.hang_up(&mut ua).await;
    }
    assert_eq!(
        dir.cdr()
            .iter()
            .filter(|r| r["end_reason"] == "policy_outside_hours")
            .count(),
        2
    );
}

/// Establishes a call to `did`, waits for the gateway's BYE (answering it 200) and returns
/// how long after the 200 OK it came, with the record's `end_reason`.
async fn call_until_cut(gw: &trunkgate::app::Gateway, did: &str) -> (Duration, String) {
    let mut events = gw.subscribe();
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut call = Call::new().did(did);
    call.establish(&mut ua, rtp.addr()).await;
    let answered = Instant::now();
    let bye = ua
        .expect(WAIT, "BYE from the gateway", |m| m.method() == Some("BYE"))
        .await;
    let after = answered.elapsed();
    assert_eq!(bye.header("Call-ID"), Some(call.call_id.as_str()));
    answer(&mut ua, &bye, 200).await;
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded {
        reason,
        end_reason,
        record,
        ..
    } = ended
    else {
        unreachable!()
    };
    assert_eq!(reason, EndReason::LocalBye(200));
    assert_eq!(record.call.end_reason.as_deref(), Some(end_reason.as_str()));
    (after, end_reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_call_duration_makes_the_gateway_send_bye() {
    let (gw, _dir) = Spec::new((36220, 36229), "max_call_duration = \"1s\"")
        .start()
        .await;
    let (after, end_reason) = call_until_cut(&gw, "+48123456789").await;
    assert!(
        after >= Duration::from_millis(800) && after < Duration::from_secs(3),
        "BYE {after:?} after the answer"
    );
    assert_eq!(end_reason, "duration_cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_call_duration_is_recorded_as_duration_cap() {
    // The agent rings 300 ms before answering: the cap counts from admission, ringing
    // included, and is recorded as the per-call cap.
    let layers = "[[number]]\ndid = \"+48300000001\"\n\
                  agent = { url = \"builtin:echo?answer_delay_ms=300\", dialect = \"raw\", sample_rate = 8000 }\n";
    let (gw, _dir) = Spec::new((36230, 36239), "max_call_duration = \"1s\"")
        .layers(layers)
        .start()
        .await;
    let (_, end_reason) = call_until_cut(&gw, "+48300000001").await;
    assert_eq!(end_reason, "duration_cap");
}

const ALERT_SECRET: &[u8] = b"fraud-alert-test-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_alert_posts_once_per_episode() {
    let mut sink = Sink::start().await;
    let policy = format!(
        "allow_cidrs = [\"127.0.0.1/32\"]\n\
         fraud_alert = {{ calls = 2, within = \"5m\", url = \"{}\" }}",
        sink.url("/alert")
    );
    // A second alert on one DID, used as a barrier (below).
    let barrier = format!(
        "fraud_alert = {{ calls = 1, within = \"5m\", url = \"{}\" }}",
        sink.url("/barrier")
    );
    let layers = number("+48700000000", &barrier);
    let (gw, _dir) = Spec::new((36240, 36259), &policy)
        .layers(&layers)
        .secret(ALERT_SECRET)
        .start()
        .await;
    let rtp = RtpPeer::bind().await;
    // Attempts count whether admitted or not: these are all refused (403).
    let mut stranger = ua_from("127.0.0.2", gw.udp_addrs[0]).await;
    for _ in 0..2 {
        Call::new().refused(&mut stranger, rtp.addr(), 403).await;
    }
    assert!(sink.drain().is_empty(), "2 attempts are not more than 2");
    Call::new().refused(&mut stranger, rtp.addr(), 403).await;
    let hit = sink.next(WAIT).await.expect("the fraud alert POST");
    assert_eq!(hit.path, "/alert");
    assert_eq!(hit.body["event"], "fraud.alert");
    assert_eq!(hit.body["scope"], "global");
    assert_eq!(hit.body["calls"], 3);
    assert_eq!(hit.body["threshold"], 2);
    assert_eq!(hit.body["within_s"], 300);
    assert!(
        hit.signed_by(ALERT_SECRET),
        "the alert is signed with the webhook secret: {:?}",
        hit.signature
    );
    assert!(!hit.signed_by(b"another secret"));

    // More attempts in the same episode: no new global alert. The last attempt also fires
    // the DID's own alert; the gateway queues alerts while judging an attempt and spawns
    // their POSTs in that order, so a wrong second global alert would be spawned no later
    // than the barrier's. Once the barrier arrives, a short bounded wait (scheduling jitter
    // between two already-spawned POSTs, not a guess at processing time) covers it.
    for _ in 0..2 {
        Call::new()
            .did("+48700000000")
            .refused(&mut stranger, rtp.addr(), 403)
            .await;
    }
    let barrier = sink.next(WAIT).await.expect("the barrier alert");
    assert_eq!(barrier.path, "/barrier", "second global alert: {barrier:?}");
    assert_eq!(barrier.body["scope"], "number:+48700000000");
    if let Some(extra) = sink.next(Duration::from_millis(300)).await {
        panic!("a second alert in one episode: {extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_user_agent_gets_no_answer_at_all() {
    let (gw, _dir) = Spec::new((36260, 36279), "").start().await;
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let scan = Call::new().user_agent("friendly-scanner");
    ua.send(&scan.request(&ua, "OPTIONS", "scan1", 1, "")).await;
    let scan = Call::new().user_agent("Friendly-Scanner/1.0");
    let sdp = support::ua::offer(rtp.addr(), "0");
    ua.send(&scan.request(&ua, "INVITE", "scan2", 1, &sdp))
        .await;
    assert_nothing_answered(&mut ua, "OPTIONS and INVITE from friendly-scanner").await;
    assert_eq!(gw.stats().blocked_user_agent.load(Relaxed), 2);
    assert_eq!(gw.stats().calls_started.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_limit_drops_excess_while_another_source_connects() {
    let (gw, _dir) = Spec::new(
        (36280, 36299),
        "flood_per_source = { burst = 5, per_second = 1 }",
    )
    .start()
    .await;
    let rtp = RtpPeer::bind().await;
    let mut flooder = ua_from("127.0.0.5", gw.udp_addrs[0]).await;
    for i in 0..40 {
        let probe = Call::new();
        let text = probe.request(&flooder, "OPTIONS", &format!("fl{i}"), 1, "");
        flooder.send(&text).await;
    }
    // Right after, a legitimate call from another source: admitted and answered.
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut call = Call::new();
    call.establish(&mut ua, rtp.addr()).await;
    // The gateway reads its socket in order: the 200 to that INVITE means every OPTIONS
    // before it was handled and any answer to it already sent, so the short receive timeout
    // below only ends the drain of answers already queued on our socket.
    let mut answers = 0;
    while flooder.recv(Duration::from_millis(100)).await.is_some() {
        answers += 1;
    }
    let dropped = gw.stats().flood_dropped.load(Relaxed);
    assert!((5..=6).contains(&answers), "{answers} OPTIONS answered");
    assert_eq!(dropped, 40 - answers, "every other request dropped");
    call.hang_up(&mut ua).await;
}
