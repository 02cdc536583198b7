//! Session timers (RFC 4028) through the endpoint with a virtual clock: the UAS answering a
//! carrier's INVITE and the UAC dialling one; who refreshes, when, with what, and the BYE when
//! the session runs out.

use std::time::{Duration, Instant};

use super::*;
use crate::core::{Flow, Transport};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";

struct H {
    ep: Endpoint,
    now: Instant,
    flow: Flow,
    t0: Instant,
}

impl H {
    fn new() -> H {
        let now = Instant::now();
        H {
            ep: Endpoint::new(Settings::default(), 11),
            now,
            t0: now,
            flow: Flow {
                transport: Transport::Udp,
                local: "127.0.0.1:5060".parse().unwrap(),
                remote: "127.0.0.1:40000".parse().unwrap(),
                conn: None,
            },
        }
    }

    fn recv(&mut self, text: &str) -> Vec<Output> {
        let input = Input::Received {
            flow: self.flow,
            bytes: text.as_bytes().to_vec(),
        };
        self.ep.handle(self.now, input);
        self.drain()
    }

    fn cmd(&mut self, call: CallKey, cmd: CallCommand) -> Vec<Output> {
        self.ep.handle(self.now, Input::Command { call, cmd });
        self.drain()
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.ep.poll_output()).collect()
    }

    /// Advances the virtual clock to `t0 + secs`, firing every timer on the way.
    fn until(&mut self, secs: f64) -> Vec<Output> {
        let until = self.t0 + Duration::from_secs_f64(secs);
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = self.now.max(until);
        out
    }
}

fn sent(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transmit { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn requests(out: &[Output], method: &str) -> Vec<String> {
    let start = format!("{method} ");
    sent(out)
        .into_iter()
        .filter(|m| m.starts_with(&start))
        .collect()
}

fn ended(out: &[Output]) -> Option<EndReason> {
    out.iter().find_map(|o| match o {
        Output::Event {
            event: CallEvent::Ended(r),
            ..
        } => Some(*r),
        _ => None,
    })
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    msg.split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim())
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A response to `req` (one of ours), with the peer's tag on To when it has none.
fn respond(req: &str, status: u16, extra: &str, body: &str) -> String {
    let mut to = header(req, "To").unwrap_or("").to_string();
    if !to.contains(";tag=") {
        to.push_str(";tag=peer1");
    }
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status} X\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <sip:peer@127.0.0.1:40000>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        header(req, "Via").unwrap_or(""),
        header(req, "From").unwrap_or(""),
        header(req, "Call-ID").unwrap_or(""),
        header(req, "CSeq").unwrap_or(""),
        body.len()
    )
}

/// A request from the peer (the caller) in the UAS scenarios.
fn peer_request(method: &str, branch: &str, cseq: u32, to_tag: &str, extra: &str) -> String {
    let to_tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    let (ct, body) = if method == "INVITE" {
        ("Content-Type: application/sdp\r\n", OFFER)
    } else {
        ("", "")
    };
    format!(
        "{method} sip:+4930123@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:carrier@127.0.0.1>;tag=caller1\r\n\
         To: <sip:+4930123@127.0.0.1>{to_tag}\r\nCall-ID: st-1@test\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:carrier@127.0.0.1:40000>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The carrier's INVITE with `extra` headers, answered and acknowledged: the call, our
/// tag and our 200 OK.
fn uas_call(h: &mut H, extra: &str) -> (CallKey, String, String) {
    let out = h.recv(&peer_request("INVITE", "inv1", 1, "", extra));
    let call = match out.iter().find_map(|o| match o {
        Output::Event {
            call,
            event: CallEvent::Incoming(_),
        } => Some(*call),
        _ => None,
    }) {
        Some(c) => c,
        None => panic!("no Incoming: {:?}", sent(&out)),
    };
    h.cmd(call, CallCommand::Proceed);
    let out = h.cmd(
        call,
        CallCommand::Answer {
            sdp: ANSWER.as_bytes().to_vec(),
        },
    );
    let ok = sent(&out).remove(0);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let tag = header(&ok, "To")
        .and_then(|t| t.split(";tag=").nth(1))
        .unwrap_or("")
        .to_string();
    h.recv(&peer_request("ACK", "ack1", 1, &tag, ""));
    (call, tag, ok)
}

#[test]
fn uas_honours_refresher_uac_and_byes_when_no_refresh_comes() {
    let mut h = H::new();
    let (call, _, ok) = uas_call(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    assert_eq!(header(&ok, "Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(header(&ok, "Require"), Some("timer"));
    // The peer refreshes: we send nothing, and BYE at 90 - min(32, 90/3) = 60 s.
    assert!(sent(&h.until(59.9)).is_empty());
    let out = h.until(60.0);
    let bye = requests(&out, "BYE");
    assert_eq!(bye.len(), 1, "{:?}", sent(&out));
    let out = h.recv(&respond(&bye[0], 200, "", ""));
    assert_eq!(ended(&out), Some(EndReason::SessionExpired));
    let _ = call;
}

#[test]
fn uas_refresh_by_update_restarts_the_timer() {
    let mut h = H::new();
    let (_, tag, _) = uas_call(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    h.until(50.0);
    let update = peer_request(
        "UPDATE",
        "up1",
        2,
        &tag,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    let out = h.recv(&update);
    let ok = &sent(&out)[0];
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert_eq!(header(ok, "Session-Expires"), Some("90;refresher=uac"));
    assert!(header(ok, "Contact").is_some());
    // Restarted at 50 s: nothing at 60 s, BYE at 110 s.
    assert!(requests(&h.until(109.9), "BYE").is_empty());
    assert_eq!(requests(&h.until(110.0), "BYE").len(), 1);
}

#[test]
fn uas_refresher_sends_update_at_half_the_interval() {
    let mut h = H::new();
    let extra = "Allow: INVITE, ACK, BYE, UPDATE\r\nSupported: timer\r\nSession-Expires: 90;refresher=uas\r\n";
    let (call, _, ok) = uas_call(&mut h, extra);
    assert_eq!(header(&ok, "Session-Expires"), Some("90;refresher=uas"));
    assert!(sent(&h.until(44.9)).is_empty());
    let out = h.until(45.0);
    let update = requests(&out, "UPDATE");
    assert_eq!(update.len(), 1, "{:?}", sent(&out));
    assert_eq!(
        header(&update[0], "Session-Expires"),
        Some("90;refresher=uac")
    );
    assert_eq!(header(&update[0], "Supported"), Some("timer"));
    assert_eq!(header(&update[0], "CSeq"), Some("1 UPDATE"));
    assert!(body(&update[0]).is_empty());
    let out = h.recv(&respond(
        &update[0],
        200,
        "Session-Expires: 90;refresher=uac\r\n",
        "",
    ));
    assert!(ended(&out).is_none());
    // The 2xx restarted the timer: the next refresh 45 s later, no BYE.
    let out = h.until(89.9);
    assert!(requests(&out, "UPDATE").is_empty() && requests(&out, "BYE").is_empty());
    let out = h.until(90.0);
    assert_eq!(requests(&out, "UPDATE").len(), 1);
    assert_eq!(h.ep.active_calls(), 1);
    let _ = call;
}

#[test]
fn uas_refresher_without_update_reinvites_with_the_same_sdp() {
    let mut h = H::new();
    let (_, _, _) = uas_call(
        &mut h,
        "Supported: timer\r\nSession-Expires: 120;refresher=uas\r\n",
    );
    let out = h.until(60.0);
    let reinvite = requests(&out, "INVITE");
    assert_eq!(reinvite.len(), 1, "{:?}", sent(&out));
    assert_eq!(body(&reinvite[0]), ANSWER);
    assert_eq!(
        header(&reinvite[0], "Session-Expires"),
        Some("120;refresher=uac")
    );
    assert!(header(&reinvite[0], "Contact").is_some());
    let out = h.recv(&respond(
        &reinvite[0],
        200,
        "Session-Expires: 120;refresher=uac\r\n",
        OFFER,
    ));
    let ack = requests(&out, "ACK");
    assert_eq!(ack.len(), 1, "the 2xx is acknowledged");
    assert_eq!(header(&ack[0], "CSeq"), Some("1 ACK"));
    assert!(ack[0].starts_with("ACK sip:carrier@127.0.0.1:40000 "));
    // A retransmitted 2xx gets the same ACK again.
    let out = h.recv(&respond(
        &reinvite[0],
        200,
        "Session-Expires: 120;refresher=uac\r\n",
        OFFER,
    ));
    assert_eq!(requests(&out, "ACK"), ack);
    assert!(requests(&h.until(119.9), "INVITE").is_empty());
    assert_eq!(requests(&h.until(120.0), "INVITE").len(), 1);
}

#[test]
fn uas_answers_422_below_min_se() {
    let mut h = H::new();
    let out = h.recv(&peer_request(
        "INVITE",
        "inv1",
        1,
        "",
        "Supported: timer\r\nSession-Expires: 60\r\n",
    ));
    let msgs = sent(&out);
    assert!(msgs[0].starts_with("SIP/2.0 422"), "{msgs:?}");
    assert_eq!(header(&msgs[0], "Min-SE"), Some("90"));
    assert!(out.iter().all(|o| !matches!(o, Output::Event { .. })));
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn uas_accepts_require_timer_and_no_timer_when_none_asked() {
    let mut h = H::new();
    let (_, _, ok) = uas_call(&mut h, "Require: timer\r\nSession-Expires: 1800\r\n");
    assert_eq!(header(&ok, "Session-Expires"), Some("1800;refresher=uac"));
    let mut h = H::new();
    let (_, _, ok) = uas_call(&mut h, "");
    assert_eq!(header(&ok, "Session-Expires"), None);
    assert!(sent(&h.until(4000.0)).is_empty(), "no timer, no BYE");
}

fn dial(h: &mut H) -> (CallKey, String) {
    let call = CallKey(OUTBOUND_KEYS + 1);
    let spec = DialSpec {
        flow: h.flow,
        local_host: "127.0.0.1".into(),
        request_uri: "sip:+4930123@127.0.0.1:40000".into(),
        from: "<sip:+4840@127.0.0.1>".into(),
        to: "<sip:+4930123@127.0.0.1>".into(),
        route: None,
        headers: Vec::new(),
        sdp: OFFER.as_bytes().to_vec(),
        credentials: None,
        tls_name: None,
    };
    h.ep.dial(h.now, call, spec);
    let invite = requests(&h.drain(), "INVITE").remove(0);
    (call, invite)
}

#[test]
fn uac_offers_a_timer_and_refreshes_when_told() {
    let mut h = H::new();
    let (call, invite) = dial(&mut h);
    assert_eq!(header(&invite, "Supported"), Some("timer"));
    assert_eq!(header(&invite, "Session-Expires"), Some("1800"));
    assert_eq!(header(&invite, "Min-SE"), Some("90"));
    let ok = respond(
        &invite,
        200,
        "Require: timer\r\nSession-Expires: 90;refresher=uac\r\n",
        ANSWER,
    );
    let out = h.recv(&ok);
    assert_eq!(requests(&out, "ACK").len(), 1);
    assert!(requests(&h.until(44.9), "INVITE").is_empty());
    let out = h.until(45.0);
    let reinvite = requests(&out, "INVITE");
    assert_eq!(reinvite.len(), 1, "no Allow: UPDATE in the 2xx → re-INVITE");
    assert_eq!(body(&reinvite[0]), OFFER, "the same SDP as the INVITE");
    assert_eq!(header(&reinvite[0], "CSeq"), Some("2 INVITE"));
    assert!(header(&reinvite[0], "To").is_some_and(|t| t.contains("tag=peer1")));
    assert!(reinvite[0].starts_with("INVITE sip:peer@127.0.0.1:40000 "));
    let out = h.recv(&respond(
        &reinvite[0],
        200,
        "Session-Expires: 90;refresher=uac\r\n",
        ANSWER,
    ));
    assert_eq!(header(&requests(&out, "ACK")[0], "CSeq"), Some("2 ACK"));
    assert_eq!(
        requests(&h.until(90.0), "INVITE").len(),
        1,
        "again 45 s later"
    );
    let _ = call;
}

#[test]
fn uac_watches_a_uas_refresher() {
    let mut h = H::new();
    let (_, invite) = dial(&mut h);
    h.recv(&respond(
        &invite,
        200,
        "Session-Expires: 90;refresher=uas\r\n",
        ANSWER,
    ));
    assert!(sent(&h.until(59.9)).is_empty());
    assert_eq!(requests(&h.until(60.0), "BYE").len(), 1);
}

#[test]
fn uac_retries_a_422_with_its_min_se() {
    let mut h = H::new();
    let (call, invite) = dial(&mut h);
    let out = h.recv(&respond(&invite, 422, "Min-SE: 1900\r\n", ""));
    let retry = requests(&out, "INVITE");
    assert_eq!(retry.len(), 1, "{:?}", sent(&out));
    assert_eq!(header(&retry[0], "CSeq"), Some("2 INVITE"));
    assert_eq!(header(&retry[0], "Call-ID"), header(&invite, "Call-ID"));
    assert_eq!(header(&retry[0], "From"), header(&invite, "From"));
    assert_eq!(header(&retry[0], "Session-Expires"), Some("1900"));
    assert_eq!(header(&retry[0], "Min-SE"), Some("1900"));
    // A second 422 ends the call.
    let out = h.recv(&respond(&retry[0], 422, "Min-SE: 2000\r\n", ""));
    assert!(requests(&out, "INVITE").is_empty());
    assert_eq!(ended(&out), Some(EndReason::Refused(422)));
    let _ = call;
}

#[test]
fn uac_refresh_answered_481_ends_the_call() {
    let mut h = H::new();
    let (_, invite) = dial(&mut h);
    h.recv(&respond(
        &invite,
        200,
        "Allow: INVITE, ACK, BYE, UPDATE\r\nSession-Expires: 90;refresher=uac\r\n",
        ANSWER,
    ));
    let update = requests(&h.until(45.0), "UPDATE").remove(0);
    let out = h.recv(&respond(&update, 481, "", ""));
    let bye = requests(&out, "BYE");
    assert_eq!(bye.len(), 1, "{:?}", sent(&out));
    let out = h.recv(&respond(&bye[0], 481, "", ""));
    assert_eq!(ended(&out), Some(EndReason::SessionExpired));
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn uac_unanswered_refresh_byes_when_it_times_out() {
    let mut h = H::new();
    let (_, invite) = dial(&mut h);
    h.recv(&respond(
        &invite,
        200,
        "Session-Expires: 90;refresher=uac\r\n",
        ANSWER,
    ));
    // Sent at 45 s; Timer B (64*T1 = 32 s) ends it at 77 s, before the 90 s expiry.
    let out = h.until(76.9);
    assert_eq!(
        requests(&out, "INVITE").len(),
        7,
        "the refresh and its retransmissions"
    );
    assert!(requests(&out, "BYE").is_empty());
    let out = h.until(77.0);
    let bye = requests(&out, "BYE");
    assert_eq!(bye.len(), 1);
    let out = h.recv(&respond(&bye[0], 200, "", ""));
    assert_eq!(ended(&out), Some(EndReason::SessionExpired));
}

#[test]
fn unanswered_refresh_byes_at_the_expiry_when_that_comes_first() {
    let mut h = H::new();
    let (_, invite) = dial(&mut h);
    h.recv(&respond(
        &invite,
        200,
        "Session-Expires: 40;refresher=uac\r\n",
        ANSWER,
    ));
    // Sent at 20 s; its Timer B would fire at 52 s, the session expires at 40 s.
    let out = h.until(39.9);
    assert_eq!(requests(&out, "INVITE").len(), 6);
    assert!(requests(&out, "BYE").is_empty());
    let bye = requests(&h.until(40.0), "BYE");
    assert_eq!(bye.len(), 1);
    let out = h.recv(&respond(&bye[0], 200, "", ""));
    assert_eq!(ended(&out), Some(EndReason::SessionExpired));
    // The abandoned re-INVITE timing out later changes nothing.
    assert!(sent(&h.until(60.0)).is_empty());
}

#[test]
fn update_405_falls_back_to_reinvite() {
    let mut h = H::new();
    let (_, invite) = dial(&mut h);
    h.recv(&respond(
        &invite,
        200,
        "Allow: UPDATE\r\nSession-Expires: 90;refresher=uac\r\n",
        ANSWER,
    ));
    let update = requests(&h.until(45.0), "UPDATE").remove(0);
    let out = h.recv(&respond(&update, 405, "", ""));
    let reinvite = requests(&out, "INVITE");
    assert_eq!(reinvite.len(), 1, "{:?}", sent(&out));
    assert_eq!(header(&reinvite[0], "CSeq"), Some("3 INVITE"));
}

#[test]
fn peer_reinvite_during_our_refresh_gets_491() {
    let mut h = H::new();
    let (_, invite) = dial(&mut h);
    h.recv(&respond(
        &invite,
        200,
        "Session-Expires: 90;refresher=uac\r\n",
        ANSWER,
    ));
    assert_eq!(requests(&h.until(45.0), "INVITE").len(), 1);
    let from = header(&invite, "From").unwrap_or("").to_string();
    let to = header(&invite, "To").unwrap_or("").to_string();
    let theirs = format!(
        "INVITE sip:trunkgate@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKglare;rport\r\n\
         From: {to};tag=peer1\r\nTo: {from}\r\nCall-ID: {}\r\nCSeq: 7 INVITE\r\n\
         Contact: <sip:peer@127.0.0.1:40000>\r\nContent-Length: 0\r\n\r\n",
        header(&invite, "Call-ID").unwrap_or("")
    );
    let out = h.recv(&theirs);
    assert!(sent(&out)[0].starts_with("SIP/2.0 491"), "{:?}", sent(&out));
}
