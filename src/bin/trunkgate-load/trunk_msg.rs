//! The far-end trunk's SIP text: responses built from a request's headers (RFC 3261 §8.2.6.2:
//! every Via, From, To with our tag, Call-ID, CSeq copied as received), the in-dialog BYE it
//! sends after `--duration`, and what it reads from the gateway's INVITE (the call index in
//! the dialled number, the Contact to send the BYE to).
//!
//! Owns: message text only, written into caller-owned buffers. Must not: keep state or touch
//! sockets (`trunk` does).

use std::fmt::Write;
use std::net::SocketAddr;

use trunkgate::core::sip::message::{HeaderName, Message};

use crate::timeline::{self, Leg};

/// The header block every response to `req` starts with: Via (all), From, To (with `to_tag`
/// added when To has none), Call-ID, CSeq, each line ending in CRLF.
pub fn head_of(req: &Message, to_tag: Option<&str>, out: &mut String) {
    for (name, raw, value) in req.headers() {
        match name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                let _ = write!(out, "{raw}: {value}\r\n");
            }
            HeaderName::To => {
                let _ = write!(out, "{raw}: {value}");
                if let (Some(tag), None) = (to_tag, req.to_tag()) {
                    let _ = write!(out, ";tag={tag}");
                }
                out.push_str("\r\n");
            }
            _ => {}
        }
    }
}

/// A whole response: status line, `head` (from [`head_of`]), a Contact when given, the body
/// (SDP when not empty).
pub fn response(
    out: &mut Vec<u8>,
    status: u16,
    head: &str,
    contact: Option<SocketAddr>,
    body: &str,
) {
    use std::io::Write as _;
    let reason = trunkgate::core::sip::message::reason_phrase(status);
    let _ = write!(out, "SIP/2.0 {status} {reason}\r\n{head}");
    if let Some(c) = contact {
        let _ = write!(out, "Contact: <sip:far@{c}>\r\n");
    }
    if !body.is_empty() {
        out.extend_from_slice(b"Content-Type: application/sdp\r\n");
    }
    let _ = write!(
        out,
        "User-Agent: trunkgate-load\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// The far end's BYE in the dialog the INVITE `req` opened, answered with `to_tag`: From is
/// the INVITE's To with our tag, To its From, sent to its Contact.
pub fn bye(req: &Message, to_tag: &str, local: SocketAddr, branch: u64) -> Vec<u8> {
    let target = contact_uri(req).unwrap_or_else(|| format!("sip:{local}"));
    let their_to = req.header(&HeaderName::To).unwrap_or("");
    let their_from = req.header(&HeaderName::From).unwrap_or("");
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "BYE {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKfe{branch:x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: {their_to}"
    );
    if req.to_tag().is_none() {
        let _ = write!(s, ";tag={to_tag}");
    }
    let _ = write!(
        s,
        "\r\nTo: {their_from}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\n\
         User-Agent: trunkgate-load\r\nContent-Length: 0\r\n\r\n",
        cid = req.call_id()
    );
    s.into_bytes()
}

/// The far end's SDP answer to the INVITE's offer: PCMU (what the load tool streams and
/// measures) at `rtp`, plus telephone-event at the offer's payload type when offered.
pub fn sdp_answer(invite: &Message, rtp: SocketAddr) -> String {
    let te = std::str::from_utf8(invite.body())
        .ok()
        .and_then(|t| trunkgate::core::sip::sdp::parse(t).ok())
        .and_then(|sd| {
            let m = sd.media.into_iter().find(|m| m.media == "audio")?;
            m.rtpmaps
                .iter()
                .find(|r| {
                    r.encoding.eq_ignore_ascii_case("telephone-event") && r.clock_rate == 8000
                })
                .map(|r| r.pt)
        });
    let mut s = String::with_capacity(256);
    let ip = rtp.ip();
    let _ = write!(
        s,
        "v=0\r\no=far 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP 0",
        rtp.port()
    );
    if let Some(pt) = te {
        let _ = write!(s, " {pt}");
    }
    s.push_str("\r\na=rtpmap:0 PCMU/8000\r\n");
    if let Some(pt) = te {
        let _ = write!(
            s,
            "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
        );
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s
}

/// The URI in the request's Contact (`<sip:…>` or a bare URI up to its parameters).
pub fn contact_uri(req: &Message) -> Option<String> {
    let v = req.header(&HeaderName::Contact)?.trim();
    let uri = match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.split(';').next().unwrap_or(v),
    };
    (!uri.is_empty()).then(|| uri.to_string())
}

/// The user part of a SIP URI (`sip:+4812000000042@host;x` → `+4812000000042`).
pub fn user_of(uri: &str) -> &str {
    let uri = uri.trim().trim_start_matches('<');
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    let end = rest.find(['@', ';', '>']).unwrap_or(rest.len());
    &rest[..end]
}

/// The call index the load tool encoded in the dialled number: the Request-URI's user, else
/// the To header's.
#[cfg(test)]
pub fn call_index(req: &Message) -> Option<usize> {
    call_leg(req).map(|(_, n)| n)
}

/// The leg and call index of an INVITE from the dialled number (the Request-URI's user, else
/// the To header's): see [`leg_of_user`].
pub fn call_leg(req: &Message) -> Option<(Leg, usize)> {
    req.request_uri()
        .and_then(|u| leg_of_user(user_of(u)))
        .or_else(|| {
            let to = req.header(&HeaderName::To)?;
            let uri = to.find('<').map_or(to, |a| &to[a..]);
            leg_of_user(user_of(uri))
        })
}

/// Click-to-call call `n` rings the manager at `+4813` + `n` in 9 digits and the client at
/// `+4812` + `n` (every plain outbound call dials `+4812…`): the prefix names the leg, the
/// last 9 digits the call. A number without the `4813` prefix is the called leg.
pub fn leg_of_user(user: &str) -> Option<(Leg, usize)> {
    let n = timeline::index_of(user)?;
    let digits = user.trim_start_matches('+');
    let leg = if digits.starts_with(MANAGER_PREFIX) {
        Leg::Manager
    } else {
        Leg::Called
    };
    Some((leg, n))
}

/// The manager legs' country-and-prefix digits (see [`leg_of_user`]).
pub const MANAGER_PREFIX: &str = "4813";

#[cfg(test)]
mod tests {
    use super::*;
    use trunkgate::core::sip::message::Limits;

    const INVITE: &str = "INVITE sip:+4812000000042@127.0.0.1:5090 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKabc;rport\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKdef\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:+4800000000001@127.0.0.1>;tag=gw1\r\n\
        To: <sip:+4812000000042@127.0.0.1:5090>\r\n\
        Call-ID: out-1@trunkgate\r\n\
        CSeq: 7 INVITE\r\n\
        Contact: <sip:gw@127.0.0.1:5080;transport=udp>\r\n\
        Content-Length: 0\r\n\r\n";

    fn invite() -> Message {
        Message::parse(INVITE.as_bytes(), &Limits::default()).expect("invite")
    }

    #[test]
    fn a_response_copies_the_request_and_parses() {
        let req = invite();
        let mut head = String::new();
        head_of(&req, Some("fe1"), &mut head);
        let mut out = Vec::new();
        let local: SocketAddr = "127.0.0.1:5090".parse().expect("addr");
        response(&mut out, 200, &head, Some(local), "v=0\r\n");
        let resp = Message::parse(&out, &Limits::default()).expect("response parses");
        assert_eq!(resp.status(), Some(200));
        assert_eq!(resp.call_id(), "out-1@trunkgate");
        assert_eq!(resp.to_tag(), Some("fe1"));
        assert_eq!(resp.from_tag(), Some("gw1"));
        assert_eq!(resp.vias().count(), 2);
        assert_eq!(resp.cseq().seq, 7);
        assert_eq!(resp.body(), b"v=0\r\n");
    }

    #[test]
    fn the_bye_goes_to_the_contact_with_the_tags_swapped() {
        let req = invite();
        let local: SocketAddr = "127.0.0.1:5090".parse().expect("addr");
        let bye = Message::parse(&bye(&req, "fe1", local, 9), &Limits::default()).expect("bye");
        assert_eq!(
            bye.request_uri(),
            Some("sip:gw@127.0.0.1:5080;transport=udp")
        );
        assert_eq!(bye.from_tag(), Some("fe1"));
        assert_eq!(bye.to_tag(), Some("gw1"));
        assert_eq!(bye.call_id(), "out-1@trunkgate");
        assert_eq!(bye.cseq().method.as_str(), "BYE");
    }

    #[test]
    fn the_answer_has_pcmu_and_the_offers_telephone_event() {
        let offer = "v=0\r\no=gw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                     m=audio 20000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
        let text = INVITE.replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
                offer.len()
            ),
        );
        let req = Message::parse(text.as_bytes(), &Limits::default()).expect("invite");
        let rtp: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let answer = sdp_answer(&req, rtp);
        assert!(answer.contains("m=audio 4000 RTP/AVP 0 96\r\n"), "{answer}");
        assert!(answer.contains("a=rtpmap:96 telephone-event/8000\r\n"));
        let plain = sdp_answer(&invite(), rtp);
        assert!(plain.contains("m=audio 4000 RTP/AVP 0\r\n"), "{plain}");
        assert!(!plain.contains("telephone-event"));
    }

    #[test]
    fn the_leg_is_told_by_the_prefix_and_the_call_by_the_last_nine_digits() {
        assert_eq!(leg_of_user("+4813000000042"), Some((Leg::Manager, 42)));
        assert_eq!(leg_of_user("4813000000007"), Some((Leg::Manager, 7)));
        assert_eq!(leg_of_user("+4812000000042"), Some((Leg::Called, 42)));
        assert_eq!(leg_of_user("+4999000000003"), Some((Leg::Called, 3)));
        assert_eq!(leg_of_user("+4813"), None);
        let mgr = INVITE.replace("sip:+4812000000042@", "sip:+4813000000042@");
        let req = Message::parse(mgr.as_bytes(), &Limits::default()).expect("invite");
        assert_eq!(call_leg(&req), Some((Leg::Manager, 42)));
        assert_eq!(call_leg(&invite()), Some((Leg::Called, 42)));
    }

    #[test]
    fn the_call_index_is_read_from_the_dialled_number() {
        assert_eq!(call_index(&invite()), Some(42));
        assert_eq!(
            user_of("sip:+4812000000042@127.0.0.1:5090"),
            "+4812000000042"
        );
        assert_eq!(
            user_of("<tel:+4812000000042;phone-context=x>"),
            "+4812000000042"
        );
        assert_eq!(user_of("sip:127.0.0.1"), "127.0.0.1");
    }
}
