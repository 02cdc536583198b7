//! Admission across configuration reloads: `Gateway::reload` during a live call (the call goes
//! on, counters and windows survive), and SIGHUP on the real `trunkgate` binary (a broken
//! file changes nothing, a valid one changes the policy).
//!
//! RTP ranges 36400-36459 (one per test).

mod support;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use support::admit::{Spec, TestDir};
use support::call::{retry_after, ua_from, Call, WAIT};
use support::daemon::Daemon;
use support::gw::wait_event;
use support::rtp::RtpPeer;
use support::ua::Ua;
use trunkgate::app::{Gateway, GatewayEvent};
use trunkgate::core::sip::endpoint::EndReason;

/// `Gateway::reload` only queues the new policy for the endpoint task, which reads its
/// control queue and the SIP sockets in one `select!`: an OPTIONS answered after the reload
/// was queued means the task has come round since, and with nothing else ready it takes the
/// queued policy before our next datagram can arrive.
async fn reload_barrier(ua: &mut Ua) {
    // A fresh branch: the same branch from the same socket would be a retransmission.
    let probe = Call::new();
    let branch = format!("barrier{:x}", fastrand::u32(..));
    ua.send(&probe.request(ua, "OPTIONS", &branch, 1, "")).await;
    ua.expect(WAIT, "the barrier OPTIONS answer", |m| {
        m.header("Call-ID") == Some(probe.call_id.as_str())
    })
    .await;
}

async fn reload(gw: &Gateway, spec: &Spec<'_>, dir: &TestDir, ua: &mut Ua) {
    gw.reload(spec.config(dir.path())).await;
    reload_barrier(ua).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_during_a_live_call_keeps_the_call_and_the_counters() {
    let ports = (36400, 36419);
    let (gw, dir) = Spec::new(ports, "max_calls_per_hour = 2").start().await;
    let mut events = gw.subscribe();
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut live = Call::new();
    live.establish(&mut ua, rtp.addr()).await;

    // Lower the concurrency to 1: the live call, admitted before, still holds the slot.
    let tighter = Spec::new(ports, "max_calls_per_hour = 2\nmax_concurrent = 1");
    reload(&gw, &tighter, &dir, &mut ua).await;
    Call::new().refused(&mut ua, rtp.addr(), 486).await;

    // The live call goes on and ends normally.
    live.hang_up(&mut ua).await;
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded {
        reason, end_reason, ..
    } = ended
    else {
        unreachable!()
    };
    assert_eq!(reason, EndReason::RemoteBye);
    assert_eq!(end_reason, "caller_hangup");

    // The hourly window kept the pre-reload admission: one more call fits, then 503.
    let mut second = Call::new();
    second.establish(&mut ua, rtp.addr()).await;
    second.hang_up(&mut ua).await;
    let r = Call::new().refused(&mut ua, rtp.addr(), 503).await;
    let secs = retry_after(&r).expect("503 has Retry-After");
    assert!((3590..=3600).contains(&secs), "Retry-After {secs}");
    assert_eq!(gw.stats().policy_rejected.load(Relaxed), 2);
}

/// A daemon config: SIP on 127.0.0.1 (a free port, read from the log), `policy` lines.
fn daemon_config(dir: &TestDir, policy: &str) -> String {
    Spec::new((36440, 36459), policy)
        .text(dir.path())
        .replace("level = \"warn\"", "level = \"info\"")
}

async fn admitted(daemon: &Daemon, ip: &str, rtp: &RtpPeer) {
    let mut ua = ua_from(ip, daemon.udp).await;
    let mut call = Call::new();
    call.establish(&mut ua, rtp.addr()).await;
    call.hang_up(&mut ua).await;
}

async fn refused(daemon: &Daemon, ip: &str, rtp: &RtpPeer) {
    let mut ua = ua_from(ip, daemon.udp).await;
    Call::new().refused(&mut ua, rtp.addr(), 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_file_changes_nothing_and_a_valid_one_applies() {
    let dir = TestDir::new("sighup");
    let path = dir.path().join("trunkgate.toml");
    let write = |text: &str| std::fs::write(&path, text).expect("write config");
    write(&daemon_config(&dir, r#"allow_cidrs = ["127.0.0.1/32"]"#));
    let mut daemon = Daemon::start(&path).await;
    let rtp = RtpPeer::bind().await;
    refused(&daemon, "127.0.0.2", &rtp).await;
    admitted(&daemon, "127.0.0.1", &rtp).await;

    write("[policy\nallow_cidrs = = garbage\n\u{0}");
    daemon.signal("HUP");
    daemon.wait_log("reload rejected", WAIT).await;
    assert!(daemon.alive(), "trunkgate exited on a broken reload");
    refused(&daemon, "127.0.0.2", &rtp).await;
    admitted(&daemon, "127.0.0.1", &rtp).await;

    write(&daemon_config(&dir, "allow_cidrs = []"));
    daemon.signal("HUP");
    daemon.wait_log("configuration reloaded", WAIT).await;
    // The log line follows `Gateway::reload`, which only queued the policy: see
    // `reload_barrier`.
    let mut ua = ua_from("127.0.0.2", daemon.udp).await;
    reload_barrier(&mut ua).await;
    let mut call = Call::new();
    call.establish(&mut ua, rtp.addr()).await;
    call.hang_up(&mut ua).await;
    assert!(daemon.alive());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changing_the_flood_limit_applies_it() {
    let ports = (36420, 36439);
    let (gw, dir) = Spec::new(ports, "").start().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let strict = Spec::new(ports, "flood_per_source = { burst = 2, per_second = 1 }");
    reload(&gw, &strict, &dir, &mut ua).await;
    let mut flooder = ua_from("127.0.0.6", gw.udp_addrs[0]).await;
    for i in 0..10 {
        let text = Call::new().request(&flooder, "OPTIONS", &format!("f{i}"), 1, "");
        flooder.send(&text).await;
    }
    // In-order processing (see admission.rs, flood test): once 127.0.0.1's probe is
    // answered, the 10 OPTIONS were handled; the receive timeout only ends the drain.
    reload_barrier(&mut ua).await;
    let mut answers = 0;
    while flooder.recv(Duration::from_millis(100)).await.is_some() {
        answers += 1;
    }
    assert!((2..=3).contains(&answers), "{answers} answered");
    assert_eq!(gw.stats().flood_dropped.load(Relaxed), 10 - answers);
}
