//! Unit tests of the message layer; RFC 4475 replay lives in the crate's `tests/rfc4475.rs`.

mod build;
mod limits;
mod parse;
mod values;

use super::{Limits, Message, ParseError};

/// A typical INVITE from a trunk, ~800 bytes with SDP.
pub(crate) const INVITE: &str = "INVITE sip:+918035735900@gw.example.com:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-524287-1---7f3a2c;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:00919990152080@198.51.100.7:5060;transport=udp>\r\n\
To: <sip:+918035735900@gw.example.com>\r\n\
From: \"00919990152080|d444-69139d35-vce-daf-3883\" <sip:00919990152080@198.51.100.7>;tag=as6d2f1a2b\r\n\
Call-ID: 3c2a5b8e1f4d7a9c@198.51.100.7\r\n\
CSeq: 102 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO\r\n\
User-Agent: Ameyo-PBX 4.2\r\n\
X-Workspace-ID: 2b37ba17-4c1e-4f5a-9d2e-8f1b6c3a7e90\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 221\r\n\
\r\n\
v=0\r\n\
o=root 1821934567 1821934567 IN IP4 198.51.100.7\r\n\
s=Ameyo\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 18234 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n";

pub(crate) fn parse(s: &str) -> Message {
    Message::parse(s.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{s}"))
}

pub(crate) fn fail(s: &str) -> ParseError {
    match Message::parse(s.as_bytes(), &Limits::default()) {
        Ok(_) => panic!("parsed but should not:\n{s}"),
        Err(e) => e,
    }
}

/// A minimal valid request with `extra` header lines (each ending in CRLF) added.
pub(crate) fn req(extra: &str) -> String {
    format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776\r\n\
         From: <sip:alice@example.com>;tag=1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: c1@192.0.2.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn typical_invite_is_about_800_bytes_and_parses() {
    let len = INVITE.len();
    assert!((700..=900).contains(&len), "{len}");
    let m = parse(INVITE);
    assert_eq!(m.body().len(), 221);
}
