//! The far-end trunk against a scripted gateway UAC over loopback: ring and answer, media,
//! the far end's BYE, the gateway's BYE, CANCEL while ringing, a retransmitted INVITE, and
//! a click-to-call's two legs (manager and client, media relayed between them).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trunkgate::core::sip::message::{Limits, Message};

use super::{Settings, Trunk};
use crate::media::Engine;
use crate::timeline::{End, Event, Leg, Timeline};
use crate::trunk_msg as msg;

struct Gateway {
    sip: UdpSocket,
    rtp: UdpSocket,
    trunk: Trunk,
    calls: Arc<Timeline>,
}

fn start(ring_ms: u64, duration_ms: u64) -> Gateway {
    start_with(ring_ms, duration_ms, false)
}

fn start_with(ring_ms: u64, duration_ms: u64, click_to_call: bool) -> Gateway {
    let calls = Arc::new(Timeline::new(4));
    let ip = "127.0.0.1".parse().expect("ip");
    let engine = Engine::start(ip).expect("engine");
    let settings = Settings {
        ring: Duration::from_millis(ring_ms),
        duration: Duration::from_millis(duration_ms),
        click_to_call,
    };
    let trunk = Trunk::start(
        "127.0.0.1:0".parse().expect("addr"),
        settings,
        engine,
        calls.clone(),
    )
    .expect("trunk");
    let sip = UdpSocket::bind("127.0.0.1:0").expect("sip");
    sip.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("rtp");
    rtp.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    Gateway {
        sip,
        rtp,
        trunk,
        calls,
    }
}

impl Gateway {
    fn local(&self) -> SocketAddr {
        self.sip.local_addr().expect("local")
    }

    fn request(&self, method: &str, n: usize, cseq: u32, to_tag: Option<&str>) -> String {
        self.request_as(method, "+4812", &self.rtp, n, cseq, to_tag)
    }

    /// A request in the dialog of the leg dialled at `prefix` + `n` (its Call-ID names the
    /// prefix), offering `rtp`.
    fn request_as(
        &self,
        method: &str,
        prefix: &str,
        rtp: &UdpSocket,
        n: usize,
        cseq: u32,
        to_tag: Option<&str>,
    ) -> String {
        let local = self.local();
        let far = self.trunk.local;
        let cid = if prefix == "+4812" {
            String::new()
        } else {
            prefix.trim_start_matches('+').to_string()
        };
        let body = if method == "INVITE" {
            crate::caller::sdp_offer(rtp.local_addr().expect("rtp"))
        } else {
            String::new()
        };
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:{prefix}{n:09}@{far} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKgw{cid}{n}{method};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:+4800000000001@{local}>;tag=gw{n}\r\n\
             To: <sip:{prefix}{n:09}@{far}>{to_tag}\r\nCall-ID: call{cid}-{n}@gw\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:gw@{local}>\r\n\
             {ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn send(&self, text: &str) {
        self.sip
            .send_to(text.as_bytes(), self.trunk.local)
            .expect("send");
    }

    fn recv(&self) -> Message {
        let mut buf = [0u8; 4096];
        let (len, _) = self.sip.recv_from(&mut buf).expect("a SIP message");
        Message::parse(&buf[..len], &Limits::default()).expect("parses")
    }

    /// INVITE → 100, 180, 200 (with SDP); returns the 200.
    fn invite_answered(&self, n: usize) -> Message {
        self.send(&self.request("INVITE", n, 1, None));
        assert_eq!(self.recv().status(), Some(100));
        let ringing = self.recv();
        assert_eq!(ringing.status(), Some(180));
        assert!(ringing.to_tag().is_some());
        let ok = self.recv();
        assert_eq!(ok.status(), Some(200));
        assert!(crate::caller::answer_media(&ok).is_some(), "200 OK has SDP");
        ok
    }

    fn outcome(&self, n: usize) -> End {
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Some(o) = self.calls.outcome(n) {
                return o.end.clone();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("call {n} did not end");
    }
}

#[test]
fn a_call_rings_is_answered_streams_and_is_hung_up_by_the_far_end() {
    let gw = start(50, 300);
    let ok = gw.invite_answered(1);
    let tag = ok.to_tag().map(str::to_string);
    gw.send(&gw.request("ACK", 1, 1, tag.as_deref()));
    // The far end streams to the SDP's address; echo one packet back.
    let mut buf = [0u8; 512];
    let (len, from) = gw.rtp.recv_from(&mut buf).expect("rtp from the far end");
    gw.rtp.send_to(&buf[..len], from).expect("echo");
    let bye = gw.recv();
    assert_eq!(bye.method().map(|m| m.as_str()), Some("BYE"));
    assert_eq!(bye.to_tag(), Some("gw1"));
    assert_eq!(bye.from_tag(), tag.as_deref());
    let mut head = String::new();
    msg::head_of(&bye, None, &mut head);
    let mut out = Vec::new();
    msg::response(&mut out, 200, &head, None, "");
    gw.sip.send_to(&out, gw.trunk.local).expect("200 to BYE");
    assert_eq!(gw.outcome(1), End::ByeOk);
    let o = gw.calls.outcome(1).expect("outcome");
    assert!(o.media.sent >= 10, "sent {}", o.media.sent);
    assert!(o.media.received >= 1);
    let ring = gw
        .calls
        .between(1, Event::Invite, Event::Answered)
        .expect("both");
    assert!(ring >= Duration::from_millis(50), "rang {ring:?}");
    assert!(gw.calls.at(1, Event::Acked).is_some());
}

#[test]
fn a_bye_from_the_gateway_is_answered_and_ends_the_call() {
    let gw = start(10, 10_000);
    let ok = gw.invite_answered(2);
    let tag = ok.to_tag().map(str::to_string);
    gw.send(&gw.request("ACK", 2, 1, tag.as_deref()));
    gw.send(&gw.request("BYE", 2, 2, tag.as_deref()));
    let resp = gw.recv();
    assert_eq!(
        (resp.status(), resp.cseq().method.as_str()),
        (Some(200), "BYE")
    );
    assert_eq!(gw.outcome(2), End::GatewayBye);
}

#[test]
fn a_cancel_while_ringing_gets_200_and_487() {
    let gw = start(5_000, 1_000);
    gw.send(&gw.request("INVITE", 3, 1, None));
    assert_eq!(gw.recv().status(), Some(100));
    assert_eq!(gw.recv().status(), Some(180));
    // A retransmitted INVITE gets the 180 again.
    gw.send(&gw.request("INVITE", 3, 1, None));
    assert_eq!(gw.recv().status(), Some(180));
    gw.send(&gw.request("CANCEL", 3, 1, None));
    let mut got =
        [gw.recv(), gw.recv()].map(|m| (m.status(), m.cseq().method.as_str().to_string()));
    got.sort();
    assert_eq!(
        got,
        [
            (Some(200), "CANCEL".to_string()),
            (Some(487), "INVITE".to_string())
        ]
    );
    assert_eq!(gw.outcome(3), End::Cancelled);
    assert_eq!(
        gw.trunk
            .stats
            .retransmitted_in
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// Forwards RTP arriving on `from` (the far end's stream to one leg) out of `to` back to the
/// far end (as the other leg's), until `until`.
fn relay(from: &UdpSocket, to: &UdpSocket, until: Instant) -> std::thread::JoinHandle<()> {
    let (from, to) = (
        from.try_clone().expect("clone"),
        to.try_clone().expect("clone"),
    );
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while Instant::now() < until {
            if let Ok((len, src)) = from.recv_from(&mut buf) {
                let _ = to.send_to(&buf[..len], src);
            }
        }
    })
}

#[test]
fn click_to_call_answers_both_legs_relays_hangs_up_the_client_and_takes_the_managers_bye() {
    let gw = start_with(10, 400, true);
    let rtp_m = UdpSocket::bind("127.0.0.1:0").expect("rtp");
    // The manager first: +4813…, its own Call-ID and RTP.
    let mgr = |method: &str, cseq: u32, tag: Option<&str>| {
        gw.request_as(method, "+4813", &rtp_m, 1, cseq, tag)
    };
    gw.send(&mgr("INVITE", 1, None));
    assert_eq!(gw.recv().status(), Some(100));
    assert_eq!(gw.recv().status(), Some(180));
    let ok = gw.recv();
    assert_eq!((ok.status(), ok.call_id()), (Some(200), "call4813-1@gw"));
    let mgr_tag = ok.to_tag().map(str::to_string);
    gw.send(&mgr("ACK", 1, mgr_tag.as_deref()));
    // Then the client, bridged: each leg's audio goes back to the far end as the other's.
    let ok = gw.invite_answered(1);
    let tag = ok.to_tag().map(str::to_string);
    gw.send(&gw.request("ACK", 1, 1, tag.as_deref()));
    let until = Instant::now() + Duration::from_millis(700);
    let relays = [relay(&rtp_m, &gw.rtp, until), relay(&gw.rtp, &rtp_m, until)];
    // The far end hangs up the client leg only.
    let bye = gw.recv();
    assert_eq!(
        (bye.method().map(|m| m.as_str()), bye.call_id()),
        (Some("BYE"), "call-1@gw")
    );
    let mut head = String::new();
    msg::head_of(&bye, None, &mut head);
    let mut out = Vec::new();
    msg::response(&mut out, 200, &head, None, "");
    gw.sip.send_to(&out, gw.trunk.local).expect("200 to BYE");
    assert_eq!(gw.outcome(1), End::ByeOk);
    // The gateway's BYE on the manager leg is answered 200.
    gw.send(&mgr("BYE", 2, mgr_tag.as_deref()));
    let resp = gw.recv();
    assert_eq!(
        (resp.status(), resp.call_id()),
        (Some(200), "call4813-1@gw")
    );
    let until = Instant::now() + Duration::from_secs(3);
    while gw.calls.outcome_of(1, Leg::Manager).is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    for r in relays {
        r.join().expect("relay");
    }
    let m = gw
        .calls
        .outcome_of(1, Leg::Manager)
        .expect("manager outcome");
    let c = gw.calls.outcome_of(1, Leg::Called).expect("client outcome");
    assert_eq!(m.end, End::GatewayBye);
    assert!(m.media.received >= 1 && c.media.received >= 1);
    // The client's first frames are a burst: the manager heard it, relayed.
    assert!(!m.media.rtts.is_empty(), "manager heard the client");
    for e in [
        Event::MgrInvite,
        Event::MgrAnswered,
        Event::MgrAcked,
        Event::Invite,
        Event::Answered,
        Event::ByeSent,
    ] {
        assert!(gw.calls.at(1, e).is_some(), "{e:?}");
    }
    assert!(gw
        .calls
        .between(1, Event::MgrAnswered, Event::Invite)
        .is_some());
    assert_eq!(
        gw.calls.at(1, Event::MgrByeSent),
        None,
        "the manager never hangs up"
    );
}
