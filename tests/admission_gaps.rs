//! Admission edge cases found while writing the admission tests: the number layer follows
//! routing's DID, a trunk's own User-Agent blocklist and flood limit apply to its sources,
//! and retransmissions of a dropped INVITE count once.
//!
//! RTP ranges 36300-36399 (one per test).

mod support;

use std::time::Duration;

use support::admit::{number, trunk, Spec};
use support::call::{assert_nothing_answered, ua_from, Call};
use support::rtp::RtpPeer;
use support::ua::Ua;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_policy_applies_to_the_number_the_call_is_routed_to() {
    let layers = number("+48111000001", r#"allow_cidrs = ["192.0.2.0/24"]"#);
    let (gw, _dir) = Spec::new((36300, 36319), "").layers(&layers).start().await;
    let rtp = RtpPeer::bind().await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    // RFC 4694 number-portability parameters in the Request-URI user, as carriers send them.
    let mut npdi = Call::new().did("+48111000001");
    npdi.ruri_user = "+48111000001;npdi".into();
    let r = npdi.invite(&mut ua, rtp.addr()).await;
    if r.status() == Some(200) {
        npdi.hang_up(&mut ua).await;
    }
    assert_eq!(r.status(), Some(403), "Request-URI with ;npdi: {}", r.start);
    // A Request-URI user that is no number; the DID is in To.
    let mut by_to = Call::new().did("+48111000001");
    by_to.ruri_user = "trunkgate".into();
    let r = by_to.invite(&mut ua, rtp.addr()).await;
    if r.status() == Some(200) {
        by_to.hang_up(&mut ua).await;
    }
    assert_eq!(r.status(), Some(403), "DID only in To: {}", r.start);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_user_agent_blocklist_applies() {
    let layers = trunk(
        "pbx",
        "127.0.0.3/32",
        r#"policy = { user_agent_blocklist = ["evil-pbx"] }"#,
    );
    let (gw, _dir) = Spec::new((36320, 36339), "").layers(&layers).start().await;
    let rtp = RtpPeer::bind().await;
    let mut pbx = ua_from("127.0.0.3", gw.udp_addrs[0]).await;
    let call = Call::new().user_agent("evil-pbx/2.0");
    let sdp = support::ua::offer(rtp.addr(), "0");
    pbx.send(&call.request(&pbx, "INVITE", "evil1", 1, &sdp))
        .await;
    assert_nothing_answered(&mut pbx, "the INVITE from evil-pbx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_flood_limit_applies() {
    let layers = trunk(
        "pbx",
        "127.0.0.3/32",
        "policy = { flood_per_source = { burst = 2, per_second = 1 } }",
    );
    let (gw, _dir) = Spec::new((36340, 36359), "").layers(&layers).start().await;
    let mut pbx = ua_from("127.0.0.3", gw.udp_addrs[0]).await;
    for i in 0..10 {
        let text = Call::new().request(&pbx, "OPTIONS", &format!("tf{i}"), 1, "");
        pbx.send(&text).await;
    }
    // In-order processing (see the flood test): once another source's probe is answered,
    // the 10 OPTIONS were handled; the receive timeout only ends the drain.
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    assert_nothing_answered(&mut ua, "nothing (barrier)").await;
    let mut answers = 0;
    while pbx.recv(Duration::from_millis(100)).await.is_some() {
        answers += 1;
    }
    assert!(answers <= 3, "{answers} of 10 OPTIONS answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmissions_of_a_dropped_invite_are_one_attempt() {
    let policy = "allow_cidrs = [\"127.0.0.1/32\"]\nreject_action = \"drop\"";
    let (gw, _dir) = Spec::new((36360, 36379), policy).start().await;
    let rtp = RtpPeer::bind().await;
    let mut stranger = ua_from("127.0.0.2", gw.udp_addrs[0]).await;
    let call = Call::new();
    let invite = call.request(
        &stranger,
        "INVITE",
        "rtx1",
        1,
        &support::ua::offer(rtp.addr(), "0"),
    );
    // The same datagram four times: the caller's Timer A retransmissions (RFC 3261 §17.1.1.2).
    for _ in 0..4 {
        stranger.send(&invite).await;
    }
    assert_nothing_answered(&mut stranger, "the INVITE from 127.0.0.2").await;
    assert_eq!(
        gw.stats()
            .policy_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "one attempt, judged once"
    );
}
