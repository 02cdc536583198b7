//! The far-end trunk against a scripted gateway UAC over loopback: ring and answer, media,
//! the far end's BYE, the gateway's BYE, CANCEL while ringing, a retransmitted INVITE.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trunkgate::core::sip::message::{Limits, Message};

use super::{Settings, Trunk};
use crate::media::Engine;
use crate::timeline::{End, Event, Timeline};
use crate::trunk_msg as msg;

struct Gateway {
    sip: UdpSocket,
    rtp: UdpSocket,
    trunk: Trunk,
    calls: Arc<Timeline>,
}

fn start(ring_ms: u64, duration_ms: u64) -> Gateway {
    let calls = Arc::new(Timeline::new(4));
    let ip = "127.0.0.1".parse().expect("ip");
    let engine = Engine::start(ip).expect("engine");
    let settings = Settings {
        ring: Duration::from_millis(ring_ms),
        duration: Duration::from_millis(duration_ms),
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
        let local = self.local();
        let far = self.trunk.local;
        let body = if method == "INVITE" {
            crate::caller::sdp_offer(self.rtp.local_addr().expect("rtp"))
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
            "{method} sip:+4812{n:09}@{far} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKgw{n}{method};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:+4800000000001@{local}>;tag=gw{n}\r\n\
             To: <sip:+4812{n:09}@{far}>{to_tag}\r\nCall-ID: call-{n}@gw\r\n\
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
