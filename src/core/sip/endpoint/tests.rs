//! Scripted-peer tests of the endpoint with a virtual clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::core::{Flow, Transport};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn flow(transport: Transport) -> Flow {
    Flow {
        transport,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "127.0.0.1:40000".parse().unwrap(),
        conn: None,
    }
}

fn request(method: &str, branch: &str, cseq: u32, to_tag: Option<&str>, body: &str) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_string()
    };
    format!(
        "{method} sip:+48123456789@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"00919990152080|crt-1\" <sip:alice@127.0.0.1>;tag=caller1\r\n\
         To: <sip:+48123456789@127.0.0.1>{to_tag}\r\n\
         Call-ID: call-1@test\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@127.0.0.1:40000>\r\n\
         X-Workspace-ID: ws-42\r\n\
         {ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Harness {
    ep: Endpoint,
    now: Instant,
    flow: Flow,
}

impl Harness {
    fn new(transport: Transport) -> Self {
        Harness {
            ep: Endpoint::new(Settings::default(), 7),
            now: Instant::now(),
            flow: flow(transport),
        }
    }

    /// Delivers bytes; a new call is admitted at once (`Proceed`), as the daemon does.
    fn recv(&mut self, bytes: Vec<u8>) -> Vec<Output> {
        self.ep.handle(
            self.now,
            Input::Received {
                flow: self.flow,
                bytes,
            },
        );
        let mut out = self.drain();
        let new_calls: Vec<CallKey> = events(&out)
            .into_iter()
            .filter(|(_, e)| matches!(e, CallEvent::Incoming(_)))
            .map(|(k, _)| k)
            .collect();
        for call in new_calls {
            out.extend(self.cmd(call, CallCommand::Proceed));
        }
        out
    }

    fn cmd(&mut self, call: CallKey, cmd: CallCommand) -> Vec<Output> {
        self.ep.handle(self.now, Input::Command { call, cmd });
        self.drain()
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.ep.poll_output()).collect()
    }

    /// Advances virtual time to `until`, firing every timer on the way.
    fn advance(&mut self, by: Duration) -> Vec<Output> {
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

fn sent(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Transmit { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .collect()
}

fn status_lines(out: &[Output]) -> Vec<String> {
    sent(out)
        .iter()
        .map(|m| m.lines().next().unwrap_or("").to_string())
        .collect()
}

fn events(out: &[Output]) -> Vec<(CallKey, CallEvent)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event { call, event } => Some((*call, event.clone())),
            _ => None,
        })
        .collect()
}

fn to_tag_of(msg: &str) -> String {
    let to = msg.lines().find(|l| l.starts_with("To:")).unwrap_or("");
    to.split(";tag=").nth(1).unwrap_or("").trim().to_string()
}

/// INVITE → 100 + Incoming; answer → 200; ACK → Acked. Returns the call and our tag.
fn establish(h: &mut Harness) -> (CallKey, String) {
    let out = h.recv(request("INVITE", "inv1", 1, None, OFFER));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 100 Trying"]);
    let ev = events(&out);
    let (call, CallEvent::Incoming(info)) = &ev[0] else {
        panic!("no Incoming: {ev:?}")
    };
    assert_eq!(info.did.as_deref(), Some("+919990152080"));
    assert_eq!(info.crt.as_deref(), Some("crt-1"));
    assert!(info
        .headers
        .iter()
        .any(|(n, v)| n == "X-Workspace-ID" && v == "ws-42"));
    assert_eq!(info.offer.as_deref(), Some(OFFER.as_bytes()));
    let out = h.cmd(
        *call,
        CallCommand::Answer {
            sdp: b"v=0\r\n".to_vec(),
        },
    );
    let msgs = sent(&out);
    assert!(msgs[0].starts_with("SIP/2.0 200 OK"), "{msgs:?}");
    assert!(msgs[0].contains("Contact: <sip:trunkgate@127.0.0.1:5060>"));
    assert!(msgs[0].contains("received=127.0.0.1") || msgs[0].contains("rport=40000"));
    let tag = to_tag_of(&msgs[0]);
    assert!(!tag.is_empty());
    let out = h.recv(request("ACK", "ack1", 1, Some(&tag), ""));
    assert_eq!(events(&out), vec![(*call, CallEvent::Acked { sdp: None })]);
    (*call, tag)
}

#[test]
fn invite_answer_ack_bye() {
    let mut h = Harness::new(Transport::Udp);
    let (call, tag) = establish(&mut h);
    // No 2xx retransmissions once acknowledged.
    let out = h.advance(Duration::from_secs(2));
    assert!(sent(&out).is_empty());
    let out = h.recv(request("BYE", "bye1", 2, Some(&tag), ""));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 200 OK"]);
    assert_eq!(
        events(&out),
        vec![(call, CallEvent::Ended(EndReason::RemoteBye))]
    );
    // A retransmitted BYE gets the same answer and no second Ended.
    let out = h.recv(request("BYE", "bye1", 2, Some(&tag), ""));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 200 OK"]);
    assert!(events(&out).is_empty());
    h.advance(Duration::from_secs(64));
    assert_eq!(h.ep.transactions(), 0);
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn retransmitted_invite_gets_trying_again_and_no_second_call() {
    let mut h = Harness::new(Transport::Udp);
    h.recv(request("INVITE", "inv1", 1, None, OFFER));
    let out = h.recv(request("INVITE", "inv1", 1, None, OFFER));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 100 Trying"]);
    assert!(events(&out).is_empty());
    assert_eq!(h.ep.active_calls(), 1);
}

#[test]
fn unacknowledged_2xx_is_retransmitted_then_bye() {
    let mut h = Harness::new(Transport::Udp);
    let out = h.recv(request("INVITE", "inv1", 1, None, OFFER));
    let (call, _) = events(&out)[0].clone();
    h.cmd(
        call,
        CallCommand::Answer {
            sdp: b"v=0\r\n".to_vec(),
        },
    );
    let out = h.advance(Duration::from_secs(33));
    let lines = status_lines(&out);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("SIP/2.0 200"))
            .count(),
        10
    );
    let bye = sent(&out)
        .into_iter()
        .find(|m| m.starts_with("BYE "))
        .expect("BYE after no ACK");
    assert!(
        bye.starts_with("BYE sip:alice@127.0.0.1:40000 SIP/2.0"),
        "{bye}"
    );
    assert!(bye.contains("CSeq: 1 BYE"));
    assert!(bye.contains("To: \"00919990152080|crt-1\" <sip:alice@127.0.0.1>;tag=caller1"));
    // The caller answers the BYE.
    let branch = bye
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let resp = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport\r\n\
         From: <sip:x@y>;tag=a\r\nTo: <sip:x@y>;tag=b\r\nCall-ID: call-1@test\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = h.recv(resp.into_bytes());
    assert_eq!(
        events(&out),
        vec![(call, CallEvent::Ended(EndReason::NoAck))]
    );
}

#[test]
fn cancel_while_ringing() {
    let mut h = Harness::new(Transport::Udp);
    let out = h.recv(request("INVITE", "inv1", 1, None, OFFER));
    let (call, _) = events(&out)[0].clone();
    let out = h.cmd(call, CallCommand::Ringing);
    assert_eq!(status_lines(&out), vec!["SIP/2.0 180 Ringing"]);
    let out = h.recv(request("CANCEL", "inv1", 1, None, ""));
    assert_eq!(
        status_lines(&out),
        vec!["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    );
    assert_eq!(
        events(&out),
        vec![(call, CallEvent::Ended(EndReason::Canceled))]
    );
    // ACK for the 487 (same branch) stops Timer G.
    let tag = to_tag_of(&sent(&out)[1]);
    h.recv(request("ACK", "inv1", 1, Some(&tag), ""));
    let out = h.advance(Duration::from_secs(40));
    assert!(sent(&out).is_empty(), "no retransmission after ACK");
    assert_eq!(h.ep.transactions(), 0);
}

#[test]
fn cancel_for_unknown_invite_is_481() {
    let mut h = Harness::new(Transport::Udp);
    let out = h.recv(request("CANCEL", "nope", 1, None, ""));
    assert_eq!(
        status_lines(&out),
        vec!["SIP/2.0 481 Call/Transaction Does Not Exist"]
    );
}

#[test]
fn local_hangup_sends_bye_and_retransmits_on_udp() {
    let mut h = Harness::new(Transport::Udp);
    let (call, _) = establish(&mut h);
    let out = h.cmd(call, CallCommand::Hangup);
    assert!(sent(&out)[0].starts_with("BYE "));
    let out = h.advance(Duration::from_millis(600));
    assert_eq!(sent(&out).len(), 1, "Timer E retransmission");
    let out = h.advance(Duration::from_secs(40));
    assert_eq!(
        events(&out),
        vec![(call, CallEvent::Ended(EndReason::LocalBye(408)))]
    );
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn reinvite_hold_keeps_call_up() {
    let mut h = Harness::new(Transport::Udp);
    let (call, tag) = establish(&mut h);
    let hold = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let out = h.recv(request("INVITE", "reinv", 2, Some(&tag), &hold));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 100 Trying"]);
    assert_eq!(
        events(&out),
        vec![(
            call,
            CallEvent::ReInvite {
                sdp: Some(hold.clone().into_bytes())
            }
        )]
    );
    let out = h.cmd(
        call,
        CallCommand::ReInviteAnswer {
            sdp: b"v=0\r\n".to_vec(),
        },
    );
    assert_eq!(status_lines(&out), vec!["SIP/2.0 200 OK"]);
    h.recv(request("ACK", "ack2", 2, Some(&tag), ""));
    let out = h.advance(Duration::from_secs(5));
    assert!(sent(&out).is_empty(), "re-INVITE 2xx acknowledged");
    assert_eq!(h.ep.active_calls(), 1);
}

#[test]
fn options_and_unknown_methods() {
    let mut h = Harness::new(Transport::Udp);
    let out = h.recv(request("OPTIONS", "o1", 1, None, ""));
    let m = &sent(&out)[0];
    assert!(m.starts_with("SIP/2.0 200 OK"));
    assert!(m.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"));
    let out = h.recv(request("FOO", "f1", 1, None, ""));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 501 Not Implemented"]);
    let out = h.recv(request("REGISTER", "r1", 1, None, ""));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 405 Method Not Allowed"]);
    let out = h.recv(request("BYE", "b1", 1, Some("unknown"), ""));
    assert_eq!(
        status_lines(&out),
        vec!["SIP/2.0 481 Call/Transaction Does Not Exist"]
    );
}

/// Draining: a dispatcher's OPTIONS probe gets 503 with Retry-After; before, 200.
#[test]
fn options_while_draining_get_503() {
    let mut h = Harness::new(Transport::Udp);
    let out = h.recv(request("OPTIONS", "o1", 1, None, ""));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 200 OK"]);
    h.ep.set_draining(true);
    let out = h.recv(request("OPTIONS", "o2", 1, None, ""));
    assert_eq!(status_lines(&out), vec!["SIP/2.0 503 Service Unavailable"]);
    assert!(sent(&out)[0].contains("Retry-After: 30"));
}

/// With the registrar on, an out-of-dialog REGISTER goes to the shell; its answer is sent in
/// a transaction that answers the retransmission without asking again.
#[test]
fn registers_go_to_the_shell_and_their_answer_is_kept() {
    let mut h = Harness::new(Transport::Udp);
    h.ep = Endpoint::new(
        Settings {
            registrar: true,
            ..Settings::default()
        },
        7,
    );
    let out = h.recv(request("REGISTER", "r1", 1, None, ""));
    let msg = match &out[..] {
        [Output::Register { msg, .. }] => msg.clone(),
        other => panic!("{other:?}"),
    };
    let www = "Digest realm=\"x\", nonce=\"n\"".to_string();
    h.ep.answer_register(
        h.now,
        h.flow,
        &msg,
        401,
        vec![("WWW-Authenticate", www.clone())],
    );
    let answer = sent(&h.drain());
    assert_eq!(answer.len(), 1);
    assert!(answer[0].starts_with("SIP/2.0 401"), "{answer:?}");
    assert!(answer[0].contains(&format!("WWW-Authenticate: {www}")));
    // Answering twice sends nothing; the retransmission gets the same 401 from the transaction.
    h.ep.answer_register(h.now, h.flow, &msg, 200, Vec::new());
    assert!(sent(&h.drain()).is_empty());
    let again = h.recv(request("REGISTER", "r1", 1, None, ""));
    assert_eq!(status_lines(&again), vec!["SIP/2.0 401 Unauthorized"]);
    assert!(!again.iter().any(|o| matches!(o, Output::Register { .. })));
}

#[test]
fn reject_and_tcp_has_no_retransmissions() {
    let mut h = Harness::new(Transport::Tcp);
    let out = h.recv(request("INVITE", "inv1", 1, None, OFFER));
    let (call, _) = events(&out)[0].clone();
    let out = h.cmd(
        call,
        CallCommand::Reject {
            status: 488,
            reason: None,
            headers: Vec::new(),
        },
    );
    assert_eq!(status_lines(&out), vec!["SIP/2.0 488 Not Acceptable Here"]);
    assert_eq!(
        events(&out),
        vec![(call, CallEvent::Ended(EndReason::Rejected(488)))]
    );
    let out = h.advance(Duration::from_secs(40));
    assert!(sent(&out).is_empty());
}

#[test]
fn dropped_invite_gets_no_answer_at_all() {
    let mut h = Harness::new(Transport::Udp);
    h.ep.handle(
        h.now,
        Input::Received {
            flow: h.flow,
            bytes: request("INVITE", "d1", 1, None, OFFER),
        },
    );
    let out = h.drain();
    assert!(sent(&out).is_empty(), "nothing sent before the verdict");
    let (call, _) = events(&out)[0].clone();
    let out = h.cmd(call, CallCommand::Drop);
    assert!(out.is_empty());
    assert_eq!(h.ep.active_calls(), 0);
    // Retransmissions are absorbed silently (not a new attempt) until the transaction expires.
    h.ep.handle(
        h.now,
        Input::Received {
            flow: h.flow,
            bytes: request("INVITE", "d1", 1, None, OFFER),
        },
    );
    assert!(
        h.drain().is_empty(),
        "a retransmission is neither answered nor reported"
    );
    let out = h.advance(Duration::from_secs(40));
    assert!(sent(&out).is_empty() && events(&out).is_empty());
    assert_eq!(h.ep.transactions(), 0);
}

#[test]
fn blocked_user_agent_is_dropped_unanswered() {
    let mut h = Harness::new(Transport::Udp);
    h.ep.set_settings(Settings {
        blocked_user_agents: vec!["friendly-scanner".into()],
        ..Settings::default()
    });
    let opts = String::from_utf8(request("OPTIONS", "o1", 1, None, ""))
        .unwrap()
        .replace(
            "X-Workspace-ID: ws-42\r\n",
            "User-Agent: Friendly-Scanner 1.0\r\n",
        );
    let out = h.recv(opts.into_bytes());
    assert!(sent(&out).is_empty());
    assert!(matches!(out[0], Output::Blocked { .. }));
}

#[test]
fn garbage_is_dropped_and_bad_request_answered() {
    let mut h = Harness::new(Transport::Udp);
    let out = h.recv(b"\x00\x01garbage".to_vec());
    assert!(sent(&out).is_empty());
    let bad = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx;rport\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let out = h.recv(bad.to_vec());
    assert_eq!(status_lines(&out).len(), 1);
    assert!(status_lines(&out)[0].starts_with("SIP/2.0 400"));
    let _ = SocketAddr::from(([127, 0, 0, 1], 1));
}
