//! Daemon tests over loopback: a scripted UA and a test RTP peer against a running gateway.

mod support;

use std::time::Duration;

use support::gw::{self, wait_event};
use support::leg::ok_for;
use support::rtp::RtpPeer;
use support::ua::{offer, Ua};
use trunkgate::app::GatewayEvent;
use trunkgate::core::media::tone::detect_tone;
use trunkgate::core::sip::endpoint::EndReason;

const WAIT: Duration = Duration::from_secs(5);

/// INVITE → 100/200 → ACK on `ua`; returns the gateway's tag and RTP address.
async fn establish(ua: &mut Ua, rtp: &RtpPeer) -> (String, std::net::SocketAddr) {
    let invite = ua.request("INVITE", "inv1", 1, None, &offer(rtp.addr(), "0 8"));
    ua.send(&invite).await;
    ua.expect_status(100).await;
    let ok = ua.expect_status(200).await;
    assert_eq!(ok.header("Content-Type"), Some("application/sdp"));
    assert!(ok
        .header("Contact")
        .is_some_and(|c| c.contains("sip:trunkgate@127.0.0.1")));
    let tag = ok.to_tag().expect("to tag");
    let media = ok.sdp_media().expect("sdp answer with c= and m=");
    assert!(
        ok.body.contains("a=rtpmap:0 PCMU/8000")
            || ok.body.contains("m=audio") && ok.body.contains(" 0")
    );
    ua.send(&ua.request("ACK", "ack1", 1, Some(&tag), "")).await;
    (tag, media)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_call_echoes_audio_sees_dtmf_and_ends_on_bye() {
    let gw = gw::start((30000, 30099), "builtin:echo", "").await;
    let mut events = gw.subscribe();
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let mut rtp = RtpPeer::bind().await;
    let (tag, media) = establish(&mut ua, &rtp).await;
    let started = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallStarted { .. })
    })
    .await;
    let GatewayEvent::CallStarted { call_id, .. } = started else {
        unreachable!()
    };

    rtp.stream(media, 1000.0, 50).await;
    rtp.collect(Duration::from_millis(200)).await;
    assert!(
        rtp.packets_in >= 40,
        "gateway sent {} packets",
        rtp.packets_in
    );
    let tail = &rtp.received[rtp.received.len().saturating_sub(4000)..];
    let power = detect_tone(tail, 8000, 1000.0);
    assert!(power > 0.5, "1000 Hz echoed back (relative power {power})");

    rtp.send_dtmf(media, '7').await;
    let ev = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::Dtmf { .. })
    })
    .await;
    assert_eq!(
        ev,
        GatewayEvent::Dtmf {
            call_id: call_id.clone(),
            digit: '7'
        }
    );

    ua.send(&ua.request("BYE", "bye1", 2, Some(&tag), "")).await;
    ua.expect_status(200).await;
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded { reason, rtp_in, .. } = ended else {
        unreachable!()
    };
    assert_eq!(reason, EndReason::RemoteBye);
    assert!(rtp_in >= 50);
    assert_eq!(gw.rtp_ports_in_use(), 0, "RTP port released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_framing_split_and_coalesced() {
    let gw = gw::start((30100, 30199), "builtin:echo", "").await;
    let mut events = gw.subscribe();
    let mut ua = Ua::tcp(gw.tcp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    // Keep-alive ping first, then an INVITE split at awkward places.
    ua.send("\r\n\r\n").await;
    let invite = ua.request("INVITE", "tcp1", 1, None, &offer(rtp.addr(), "0"));
    let bytes = invite.as_bytes();
    for chunk in [
        &bytes[..7],
        &bytes[7..200],
        &bytes[200..bytes.len() - 3],
        &bytes[bytes.len() - 3..],
    ] {
        ua.send_bytes(chunk).await;
    }
    ua.expect_status(100).await;
    let ok = ua.expect_status(200).await;
    assert!(ok
        .header("Contact")
        .is_some_and(|c| c.contains("transport=tcp")));
    let tag = ok.to_tag().unwrap();
    // ACK and BYE coalesced into one write.
    let both = ua.request("ACK", "tcp2", 1, Some(&tag), "")
        + &ua.request("BYE", "tcp3", 2, Some(&tag), "");
    ua.send(&both).await;
    let bye_ok = ua.expect_status(200).await;
    assert!(bye_ok.header("CSeq").is_some_and(|c| c.ends_with("BYE")));
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    assert!(matches!(
        ended,
        GatewayEvent::CallEnded {
            reason: EndReason::RemoteBye,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_ringing_gives_487() {
    let gw = gw::start((30200, 30299), "builtin:echo?answer_delay_ms=20000", "").await;
    let mut events = gw.subscribe();
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    ua.send(&ua.request("INVITE", "c1", 1, None, &offer(rtp.addr(), "0")))
        .await;
    ua.expect_status(180).await;
    ua.send(&ua.request("CANCEL", "c1", 1, None, "")).await;
    let ok = ua.expect_status(200).await;
    assert!(ok.header("CSeq").is_some_and(|c| c.ends_with("CANCEL")));
    let term = ua.expect_status(487).await;
    ua.send(&ua.request("ACK", "c1", 1, term.to_tag().as_deref(), ""))
        .await;
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    assert!(matches!(
        ended,
        GatewayEvent::CallEnded {
            reason: EndReason::Canceled,
            ..
        }
    ));
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmissions_never_make_a_second_call() {
    let gw = gw::start((30300, 30399), "builtin:echo", "").await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    let invite = ua.request("INVITE", "r1", 1, None, &offer(rtp.addr(), "0"));
    ua.send(&invite).await;
    ua.expect_status(100).await;
    let ok = ua.expect_status(200).await;
    let tag = ok.to_tag().unwrap();
    // We "lose" the ACK: the gateway retransmits its 2xx (Timer T1 = 500 ms).
    let again = ua.expect_status(200).await;
    assert_eq!(again.to_tag(), Some(tag.clone()));
    // A retransmitted INVITE after the 2xx is absorbed: no new call, no 100.
    ua.send(&invite).await;
    ua.send(&ua.request("ACK", "r2", 1, Some(&tag), "")).await;
    ua.send(&ua.request("OPTIONS", "probe", 9, None, "")).await;
    let next = ua
        .expect(WAIT, "OPTIONS answer", |m| {
            m.header("CSeq").is_some_and(|c| c.ends_with("OPTIONS"))
        })
        .await;
    assert_eq!(next.status(), Some(200));
    assert_eq!(gw.stats().active_calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_timeout_makes_the_gateway_send_bye() {
    let gw = gw::start((30400, 30499), "builtin:echo", "").await;
    let mut text = gw::config_text((30400, 30499), "builtin:echo", "");
    text = text.replace("rtp_timeout = \"30s\"", "rtp_timeout = \"1s\"");
    gw.reload(trunkgate::config::parse(&text, "test").unwrap())
        .await;
    let mut events = gw.subscribe();
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    let (_tag, _media) = establish(&mut ua, &rtp).await;
    // We send no RTP: after 1 s the gateway hangs up.
    let bye = ua
        .expect(WAIT, "BYE from the gateway", |m| m.method() == Some("BYE"))
        .await;
    assert!(bye.header("CSeq").is_some_and(|c| c == "1 BYE"));
    let answer = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        bye.header("Via").unwrap(),
        bye.header("From").unwrap(),
        bye.header("To").unwrap(),
        bye.header("Call-ID").unwrap()
    );
    ua.send(&answer).await;
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    assert!(
        matches!(
            ended,
            GatewayEvent::CallEnded {
                reason: EndReason::LocalBye(200),
                ..
            }
        ),
        "{ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvite_hold_and_unhold_keep_the_call() {
    let gw = gw::start((30500, 30599), "builtin:echo", "").await;
    let mut events = gw.subscribe();
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    let (tag, _) = establish(&mut ua, &rtp).await;
    let hold = offer(rtp.addr(), "0").replace("a=sendrecv", "a=sendonly");
    ua.send(&ua.request("INVITE", "h1", 2, Some(&tag), &hold))
        .await;
    let ok = ua.expect_status(200).await;
    assert!(
        ok.body.contains("a=recvonly"),
        "hold answered recvonly: {}",
        ok.body
    );
    ua.send(&ua.request("ACK", "h2", 2, Some(&tag), "")).await;
    ua.send(&ua.request("INVITE", "u1", 3, Some(&tag), &offer(rtp.addr(), "0")))
        .await;
    let ok = ua.expect_status(200).await;
    assert!(ok.body.contains("a=sendrecv") || !ok.body.contains("a=recvonly"));
    ua.send(&ua.request("ACK", "u2", 3, Some(&tag), "")).await;
    ua.send(&ua.request("BYE", "b1", 4, Some(&tag), "")).await;
    ua.expect_status(200).await;
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    assert!(matches!(
        ended,
        GatewayEvent::CallEnded {
            reason: EndReason::RemoteBye,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_common_codec_is_488_and_options_is_200() {
    let gw = gw::start((30600, 30699), "builtin:echo", "").await;
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    let g729 =
        offer(rtp.addr(), "18").replace("a=rtpmap:101", "a=rtpmap:18 G729/8000\r\na=rtpmap:101");
    ua.send(&ua.request("INVITE", "n1", 1, None, &g729)).await;
    ua.expect_status(100).await;
    let r = ua.expect_status(488).await;
    ua.send(&ua.request("ACK", "n1", 1, r.to_tag().as_deref(), ""))
        .await;
    ua.send(&ua.request("OPTIONS", "o1", 2, None, "")).await;
    let ok = ua.expect_status(200).await;
    assert!(ok
        .header("Allow")
        .is_some_and(|a| a.contains("INVITE") && a.contains("BYE")));
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_refuses_new_calls_and_ends_running_ones() {
    let gw = gw::start((30700, 30799), "builtin:echo", "").await;
    let mut events = gw.subscribe();
    let addr = gw.udp_addrs[0];
    let mut ua = Ua::udp(addr).await;
    let rtp = RtpPeer::bind().await;
    let (_tag, _) = establish(&mut ua, &rtp).await;
    gw.drain(Duration::from_millis(300)).await;
    // A new call while draining: 503 with Retry-After.
    let mut late = Ua::udp(addr).await;
    late.send(&late.request("INVITE", "late1", 1, None, &offer(rtp.addr(), "0")))
        .await;
    let refused = late.expect_status(503).await;
    assert!(refused.header("Retry-After").is_some());
    // A dispatcher's OPTIONS probe: 503 too, so it stops sending calls here.
    late.send(&late.request("OPTIONS", "probe1", 1, None, ""))
        .await;
    let probe = late.expect_status(503).await;
    assert!(probe.header("Retry-After").is_some());
    // The running call is hung up once the grace period is over.
    let bye = ua
        .expect(WAIT, "BYE at the end of the grace period", |m| {
            m.method() == Some("BYE")
        })
        .await;
    ua.send(&ok_for(&bye)).await;
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded { end_reason, .. } = ended else {
        unreachable!()
    };
    assert_eq!(end_reason, "shutdown");
    // Everything has ended: shutdown returns at once.
    tokio::time::timeout(WAIT, gw.shutdown(Duration::ZERO))
        .await
        .expect("shutdown completes");
}

/// `shutdown` returns only once the records of the calls it hung up are on disk: the SIP side
/// of a call ends before its task has written the record, and the process exits right after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_with_the_hung_up_calls_records_on_disk() {
    let dir = gw::scratch_dir("shutdown-cdr");
    let cdr = dir.join("cdr.jsonl");
    let text = gw::config_text((36600, 36699), "builtin:echo", "").replace(
        "cdr_file = \"\"",
        &format!("cdr_file = \"{}\"", cdr.display()),
    );
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    let gw = trunkgate::app::Gateway::start(cfg).await.expect("gateway");
    let addr = gw.udp_addrs[0];
    let mut ua = Ua::udp(addr).await;
    let rtp = RtpPeer::bind().await;
    let (_tag, _) = establish(&mut ua, &rtp).await;
    // The caller answers the gateway's BYE whenever it comes.
    let answering = tokio::spawn(async move {
        let bye = ua
            .expect(WAIT, "BYE from the shutdown", |m| m.method() == Some("BYE"))
            .await;
        ua.send(&ok_for(&bye)).await;
    });
    tokio::time::timeout(WAIT, gw.shutdown(Duration::from_millis(100)))
        .await
        .expect("shutdown completes");
    let text = std::fs::read_to_string(&cdr).unwrap_or_default();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("CDR line is JSON"))
        .collect();
    assert_eq!(
        records.len(),
        1,
        "one record, on disk when shutdown returns: {text}"
    );
    assert_eq!(records[0]["end_reason"], "shutdown");
    let _ = answering.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_address_is_advertised_in_contact_and_sdp() {
    let text = gw::config_text((30900, 30999), "builtin:echo", "").replace(
        "listen_tcp = [\"127.0.0.1:0\"]",
        "listen_tcp = [\"127.0.0.1:0\"]\npublic_address = \"203.0.113.9\"",
    );
    assert!(text.contains("public_address"), "config layout changed");
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    let gw = trunkgate::app::Gateway::start(cfg).await.expect("start");
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    ua.send(&ua.request("INVITE", "pa1", 1, None, &offer(rtp.addr(), "0")))
        .await;
    let ok = ua.expect_status(200).await;
    let contact = ok.header("Contact").expect("Contact");
    assert!(contact.contains("@203.0.113.9:"), "{contact}");
    assert!(ok.body.contains("c=IN IP4 203.0.113.9"), "{}", ok.body);
    let tag = ok.to_tag().expect("tag");
    ua.send(&ua.request("ACK", "pa2", 1, Some(&tag), "")).await;
    ua.send(&ua.request("BYE", "pa3", 2, Some(&tag), "")).await;
    ua.expect_status(200).await;
}
