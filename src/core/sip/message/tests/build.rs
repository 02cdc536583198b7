//! Outgoing messages: construction, round trip through the parser, Via stamping.

use std::net::SocketAddr;

use super::{parse, req, INVITE};
use crate::core::sip::message::{reason_phrase, HeaderName, Limits, Message, Method, OutMessage};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn reparse(out: &OutMessage) -> Message {
    Message::parse(&out.to_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn response_to_copies_dialog_headers_and_parses_back() {
    let m = parse(&req(
        "Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp, SIP/2.0/UDP [::1];branch=z9hG4bKq\r\n",
    ));
    let mut out = OutMessage::response_to(&m, 200, None, Some("srv1"));
    out.add_header("Server", "trunkgate");
    out.set_body("application/sdp", b"v=0\r\n".to_vec());
    let r = reparse(&out);
    assert_eq!((r.status(), r.reason()), (Some(200), Some("OK")));
    let vias: Vec<_> = r.vias().map(|v| v.host).collect();
    assert_eq!(vias, ["192.0.2.1", "proxy.example.com", "[::1]"]);
    assert_eq!(r.from_tag(), Some("1"));
    assert_eq!(r.to_tag(), Some("srv1"));
    assert_eq!(r.call_id(), m.call_id());
    assert_eq!(r.cseq(), m.cseq());
    assert_eq!(r.content_type(), Some("application/sdp"));
    assert_eq!(r.body(), b"v=0\r\n");
    assert_eq!(r.header(&HeaderName::Server), Some("trunkgate"));
}

#[test]
fn existing_to_tag_is_kept_and_trying_has_none() {
    let m = parse(&req("").replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=old",
    ));
    assert_eq!(
        reparse(&OutMessage::response_to(&m, 486, None, Some("new"))).to_tag(),
        Some("old")
    );
    let m = parse(INVITE);
    let r = reparse(&OutMessage::response_to(&m, 100, None, None));
    assert_eq!(
        (r.status(), r.reason(), r.to_tag()),
        (Some(100), Some("Trying"), None)
    );
    let r = reparse(&OutMessage::response_to(
        &m,
        603,
        Some("Go Away"),
        Some("t"),
    ));
    assert_eq!(r.reason(), Some("Go Away"));
}

#[test]
fn request_round_trip_and_header_editing() {
    let mut out = OutMessage::request(Method::Bye, "sip:alice@192.0.2.9:5060");
    out.add_header("Via", "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKbye1");
    out.add_header("Max-Forwards", "70");
    out.add_header("From", "<sip:gw@203.0.113.5>;tag=a");
    out.add_header("To", "<sip:alice@example.com>;tag=b");
    out.add_header("Call-ID", "bye@203.0.113.5");
    out.add_header("CSeq", "2 BYE");
    out.add_header("X-Reason", "first");
    out.add_header("Content-Length", "999");
    out.set_header("x-reason", "second");
    assert_eq!(out.header("X-REASON"), Some("second"));
    out.add_header("Subject", "evil\r\nInjected: yes");
    let m = reparse(&out);
    assert_eq!(m.method(), Some(&Method::Bye));
    assert_eq!(m.request_uri(), Some("sip:alice@192.0.2.9:5060"));
    assert_eq!(m.header_by_name("x-reason"), Some("second"));
    assert_eq!(m.header_values(&HeaderName::Other).count(), 1);
    assert_eq!(m.header_by_name("Injected"), None);
    assert_eq!(m.body(), b"");
    let bytes = out.to_bytes();
    assert!(bytes.ends_with(b"\r\nContent-Length: 0\r\n\r\n"));
    assert_eq!(m.to_bytes(), bytes);
    out.remove_header("X-Reason");
    assert_eq!(out.header("x-reason"), None);
}

#[test]
fn compact_names_are_replaced_by_set_header() {
    let mut out = OutMessage::request(Method::Options, "sip:x");
    out.add_header("c", "text/plain");
    out.set_body("application/sdp", Vec::new());
    assert_eq!(out.header("Content-Type"), Some("application/sdp"));
    assert_eq!(out.header("c"), Some("application/sdp"));
}

fn stamped(via: &str, src: &str) -> String {
    let mut out = OutMessage::response(200, None);
    out.add_header("Via", via);
    out.stamp_top_via(addr(src));
    out.header("Via").unwrap_or_default().to_owned()
}

#[test]
fn stamp_top_via_rfc3581() {
    // Same address, no rport: untouched.
    assert_eq!(
        stamped(
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa",
            "192.0.2.1:5060"
        ),
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa"
    );
    // Host name or other address: received added.
    assert_eq!(
        stamped(
            "SIP/2.0/UDP pbx.example.com;branch=z9hG4bKa",
            "192.0.2.1:5060"
        ),
        "SIP/2.0/UDP pbx.example.com;branch=z9hG4bKa;received=192.0.2.1"
    );
    // Empty rport filled, received added even when the address matches.
    assert_eq!(
        stamped("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa, SIP/2.0/UDP p.example.com", "10.0.0.1:40000"),
        "SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bKa;received=10.0.0.1, SIP/2.0/UDP p.example.com"
    );
    // An old received is replaced, a filled rport is kept.
    assert_eq!(
        stamped(
            "SIP/2.0/UDP 10.0.0.1;received=1.1.1.1;rport=9",
            "10.0.0.2:7"
        ),
        "SIP/2.0/UDP 10.0.0.1;rport=9;received=10.0.0.2"
    );
    // IPv6.
    assert_eq!(
        stamped(
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa",
            "[2001:db8::1]:5060"
        ),
        "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa"
    );
    assert_eq!(
        stamped("SIP/2.0/UDP [2001:db8::1]:5060;rport", "[2001:db8::2]:5062"),
        "SIP/2.0/UDP [2001:db8::1]:5060;rport=5062;received=2001:db8::2"
    );
    let v = stamped("SIP/2.0/UDP [2001:db8::1]:5060;rport", "[2001:db8::2]:5062");
    let m = parse(&req(&format!("Via: {v}\r\n")));
    assert_eq!(m.vias().nth(1).and_then(|v| v.rport()), Some(Some(5062)));
    // No Via at all: nothing to do, no panic.
    let mut out = OutMessage::response(200, None);
    out.stamp_top_via(addr("192.0.2.1:1"));
    assert_eq!(out.header("Via"), None);
}

#[test]
fn reason_phrases() {
    assert_eq!(reason_phrase(180), "Ringing");
    assert_eq!(reason_phrase(487), "Request Terminated");
    assert_eq!(reason_phrase(499), "Client Error");
    assert_eq!(reason_phrase(42), "Unknown");
    let out = OutMessage::response(299, None);
    assert!(out.to_bytes().starts_with(b"SIP/2.0 299 Success\r\n"));
}
