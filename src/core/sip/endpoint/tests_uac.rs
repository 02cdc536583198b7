//! Scripted-trunk tests of the UAC side (our INVITE) with a virtual clock: the harness, the
//! INVITE's shape, Timers A and B, and provisional responses. The far end's answers are built
//! from the bytes we sent, as a trunk would. Digest retries are in `tests_uac_auth.rs`; the
//! rest of the call (2xx, CANCEL, failures, in-dialog requests) in `tests_uac_flows.rs`.

use std::time::{Duration, Instant};

use super::*;
use crate::core::sip::auth::Credentials;
use crate::core::sip::message::{HeaderName, Message};
use crate::core::{Flow, Transport};

pub(super) const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
pub(super) const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
pub(super) const CALL: CallKey = CallKey(OUTBOUND_KEYS + 1);
pub(super) const RURI: &str = "sip:+48222@carrier.example";

pub(super) fn spec(transport: Transport, credentials: bool) -> DialSpec {
    DialSpec {
        flow: Flow {
            transport,
            local: "127.0.0.1:5060".parse().expect("addr"),
            remote: "127.0.0.1:5080".parse().expect("addr"),
            conn: None,
        },
        local_host: "127.0.0.1".into(),
        request_uri: RURI.into(),
        from: "\"+48111\" <sip:+48111@carrier.example>".into(),
        to: "<sip:+48222@carrier.example>".into(),
        route: None,
        headers: vec![("P-Asserted-Identity".into(), "<sip:+48111@gw>".into())],
        sdp: OFFER.as_bytes().to_vec(),
        credentials: credentials.then(|| Credentials::new("alice", "secret")),
        tls_name: None,
    }
}

pub(super) struct Uac {
    pub ep: Endpoint,
    pub now: Instant,
    pub flow: Flow,
}

impl Uac {
    pub fn new() -> Self {
        Uac {
            ep: Endpoint::new(Settings::default(), 11),
            now: Instant::now(),
            flow: spec(Transport::Udp, true).flow,
        }
    }

    /// Dials `spec`; returns the outputs (the INVITE first).
    pub fn dial(&mut self, spec: DialSpec) -> Vec<Output> {
        self.flow = spec.flow;
        self.ep.dial(self.now, CALL, spec);
        self.drain()
    }

    pub fn recv(&mut self, bytes: impl Into<Vec<u8>>) -> Vec<Output> {
        let (flow, bytes) = (self.flow, bytes.into());
        self.ep.handle(self.now, Input::Received { flow, bytes });
        self.drain()
    }

    pub fn cmd(&mut self, cmd: CallCommand) -> Vec<Output> {
        self.ep.handle(self.now, Input::Command { call: CALL, cmd });
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.ep.poll_output()).collect()
    }

    /// Advances virtual time by `by`, firing every timer on the way.
    pub fn advance(&mut self, by: Duration) -> Vec<Output> {
        let until = self.now + by;
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = until;
        out
    }
}

/// Every message sent, parsed back.
pub(super) fn sent(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transmit { bytes, .. } => {
                Some(Message::parse(bytes, &Default::default()).expect("we send valid SIP"))
            }
            _ => None,
        })
        .collect()
}

/// The methods of the requests sent (responses as their status).
pub(super) fn kinds(out: &[Output]) -> Vec<String> {
    sent(out)
        .iter()
        .map(|m| match m.method() {
            Some(method) => method.as_str().to_string(),
            None => m.status().unwrap_or(0).to_string(),
        })
        .collect()
}

pub(super) fn events(out: &[Output]) -> Vec<CallEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event { call, event } => {
                assert_eq!(*call, CALL);
                Some(event.clone())
            }
            _ => None,
        })
        .collect()
}

pub(super) fn hdr<'a>(m: &'a Message, name: &str) -> &'a str {
    m.header_by_name(name).unwrap_or("").trim()
}

pub(super) fn branch(m: &Message) -> String {
    m.top_via().branch().unwrap_or("").to_string()
}

/// The trunk's response to `req`: its Via, From, Call-ID and CSeq, its To with `tag`.
pub(super) fn reply(
    req: &Message,
    status: u16,
    tag: Option<&str>,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let to = hdr(req, "To");
    let to = match tag {
        Some(t) => format!("{to};tag={t}"),
        None => to.to_string(),
    };
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let vias: String = req
        .header_values(&HeaderName::Via)
        .map(|v| format!("Via: {}\r\n", v.trim()))
        .collect();
    format!(
        "SIP/2.0 {status} Whatever\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\n\
         CSeq: {}\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        hdr(req, "From"),
        req.call_id(),
        hdr(req, "CSeq"),
        body.len()
    )
    .into_bytes()
}

/// Dials over `transport` and returns the INVITE sent.
pub(super) fn dialed(h: &mut Uac, transport: Transport, credentials: bool) -> Message {
    let out = h.dial(spec(transport, credentials));
    assert_eq!(kinds(&out), vec!["INVITE"]);
    assert!(events(&out).is_empty());
    sent(&out).remove(0)
}

#[test]
fn invite_shape() {
    let mut h = Uac::new();
    let mut s = spec(Transport::Udp, false);
    s.route = Some("<sip:proxy.example;lr>".into());
    let out = h.dial(s);
    let inv = &sent(&out)[0];
    assert_eq!(inv.request_uri(), Some(RURI));
    let via = inv.top_via();
    assert_eq!((via.host, via.port), ("127.0.0.1", Some(5060)));
    assert!(
        hdr(inv, "Via").starts_with("SIP/2.0/UDP "),
        "{}",
        hdr(inv, "Via")
    );
    assert!(via
        .branch()
        .is_some_and(|b| b.starts_with("z9hG4bK") && b.len() > 10));
    assert_eq!(via.rport(), Some(None));
    assert!(inv.from_tag().is_some_and(|t| !t.is_empty()));
    assert!(hdr(inv, "From").starts_with("\"+48111\" <sip:+48111@carrier.example>;tag="));
    assert_eq!(hdr(inv, "To"), "<sip:+48222@carrier.example>");
    assert!(inv.to_tag().is_none());
    assert!(!inv.call_id().is_empty());
    assert_eq!(hdr(inv, "CSeq"), "1 INVITE");
    assert_eq!(hdr(inv, "Contact"), "<sip:trunkgate@127.0.0.1:5060>");
    assert_eq!(hdr(inv, "Allow"), ALLOW);
    assert_eq!(hdr(inv, "Route"), "<sip:proxy.example;lr>");
    assert_eq!(hdr(inv, "Max-Forwards"), "70");
    assert_eq!(hdr(inv, "P-Asserted-Identity"), "<sip:+48111@gw>");
    assert_eq!(inv.content_type(), Some("application/sdp"));
    assert_eq!(inv.body(), OFFER.as_bytes());
    assert!(inv.header_by_name("Authorization").is_none());
    // Over TCP the Via and the Contact say so; no Route unless given.
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Tcp, false);
    assert!(hdr(&inv, "Via").starts_with("SIP/2.0/TCP "));
    assert_eq!(
        hdr(&inv, "Contact"),
        "<sip:trunkgate@127.0.0.1:5060;transport=tcp>"
    );
    assert!(inv.header_by_name("Route").is_none());
}

#[test]
fn timer_a_on_udp_then_timer_b_is_408() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    // T1 = 500 ms, doubling: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s — then Timer B at 32 s.
    let out = h.advance(Duration::from_millis(31_900));
    let resent = sent(&out);
    assert_eq!(resent.len(), 6, "{:?}", kinds(&out));
    assert!(resent.iter().all(|m| m.to_bytes() == inv.to_bytes()));
    assert!(events(&out).is_empty());
    let out = h.advance(Duration::from_millis(200));
    assert!(sent(&out).is_empty());
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::Refused(408))]
    );
    assert_eq!(h.ep.active_calls(), 0);
    assert_eq!(h.ep.transactions(), 0);
}

#[test]
fn no_retransmissions_on_tcp_and_timer_b_still_ends_it() {
    let mut h = Uac::new();
    dialed(&mut h, Transport::Tcp, false);
    let out = h.advance(Duration::from_millis(31_900));
    assert!(out.is_empty(), "{:?}", kinds(&out));
    let out = h.advance(Duration::from_millis(200));
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::Refused(408))]
    );
}

#[test]
fn provisionals_in_any_order() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    let out = h.recv(reply(&inv, 100, None, "", ""));
    assert!(out.is_empty(), "100 is not reported");
    let out = h.recv(reply(&inv, 180, Some("t1"), "", ""));
    assert_eq!(
        events(&out),
        vec![CallEvent::Progress {
            status: 180,
            sdp: None
        }]
    );
    assert!(sent(&out).is_empty());
    let out = h.recv(reply(&inv, 183, Some("t1"), "", ANSWER));
    let sdp = Some(ANSWER.as_bytes().to_vec());
    assert_eq!(events(&out), vec![CallEvent::Progress { status: 183, sdp }]);
    // A late 100 changes nothing; a provisional stops Timer A and Timer B.
    assert!(h.recv(reply(&inv, 100, None, "", "")).is_empty());
    let out = h.advance(Duration::from_secs(60));
    assert!(out.is_empty(), "{:?}", kinds(&out));
    let out = h.recv(reply(
        &inv,
        200,
        Some("t1"),
        "Contact: <sip:b@127.0.0.1:5080>\r\n",
        ANSWER,
    ));
    assert_eq!(kinds(&out), vec!["ACK"]);
    let sdp = Some(ANSWER.as_bytes().to_vec());
    assert_eq!(events(&out), vec![CallEvent::Answered { sdp }]);
}
