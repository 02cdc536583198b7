//! Transfers by REFER (RFC 3515) through the endpoint with a virtual clock, on a dialog we
//! answered (UAS) and one we dialled (UAC): the REFER's shape and route, its final answer or
//! Timer F, one REFER at a time, and the NOTIFYs of its subscription (progress in order,
//! sipfrag statuses, retransmissions, wrong dialogs and wrong event packages). The peer's
//! messages are built from what we sent, as a transferee would. UAC helpers in `tests_uac.rs`.

use std::time::{Duration, Instant};

use super::tests_uac::{self as uac, hdr, kinds, reply, sent};
use super::*;
use crate::core::sip::message::{HeaderName, Message};
use crate::core::{Flow, Transport};

const RR: &str = "Record-Route: <sip:p1.example;lr>\r\nRecord-Route: <sip:p2.example;lr>\r\n";
const TARGET: &str = "sip:+48999@pbx.example";

/// One confirmed call and the peer's view of its dialog.
struct H {
    ep: Endpoint,
    now: Instant,
    flow: Flow,
    call: CallKey,
    /// The peer's From (its tag) and To (ours) on requests it sends inside the dialog.
    peer_from: String,
    peer_to: String,
    call_id: String,
    next_cseq: u32,
}

impl H {
    fn recv(&mut self, bytes: impl Into<Vec<u8>>) -> Vec<Output> {
        let (flow, bytes) = (self.flow, bytes.into());
        self.ep.handle(self.now, Input::Received { flow, bytes });
        self.drain()
    }

    fn cmd(&mut self, cmd: CallCommand) -> Vec<Output> {
        let call = self.call;
        self.ep.handle(self.now, Input::Command { call, cmd });
        self.drain()
    }

    fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.ep.poll_output()).collect()
    }

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

    /// Sends `Refer` to `TARGET`; returns the REFER (and checks it went out alone).
    fn refer(&mut self, referred_by: Option<&str>) -> Message {
        let out = self.cmd(CallCommand::Refer {
            refer_to: TARGET.into(),
            referred_by: referred_by.map(str::to_string),
        });
        assert_eq!(kinds(&out), vec!["REFER"]);
        assert!(events(&out).is_empty(), "{:?}", events(&out));
        sent(&out).remove(0)
    }

    /// A request from the peer inside the dialog, with a fresh CSeq.
    fn peer_request(&mut self, method: &str, branch: &str, extra: &str, body: &str) -> Vec<u8> {
        self.next_cseq += 1;
        format!(
            "{method} sip:trunkgate@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\n\
             Contact: <sip:peer@127.0.0.1>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            self.flow.remote,
            self.peer_from,
            self.peer_to,
            self.call_id,
            self.next_cseq,
            body.len()
        )
        .into_bytes()
    }

    /// A NOTIFY of the refer subscription with a sipfrag body.
    fn notify(&mut self, branch: &str, event: &str, state: &str, frag: &str) -> Vec<u8> {
        let extra = format!(
            "Event: {event}\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag\r\n"
        );
        self.peer_request("NOTIFY", branch, &extra, frag)
    }
}

fn events(out: &[Output]) -> Vec<CallEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn progress(status: u16, terminated: bool) -> Vec<CallEvent> {
    vec![CallEvent::ReferProgress { status, terminated }]
}

fn result(status: u16) -> Vec<CallEvent> {
    vec![CallEvent::ReferResult { status }]
}

fn routes(m: &Message) -> Vec<String> {
    m.header_values(&HeaderName::Route)
        .map(str::to_string)
        .collect()
}

/// A carrier's INVITE (with Record-Route) answered and acknowledged: we are the UAS.
fn uas() -> H {
    let flow = Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().expect("addr"),
        remote: "127.0.0.1:40000".parse().expect("addr"),
        conn: None,
    };
    let mut h = H {
        ep: Endpoint::new(Settings::default(), 5),
        now: Instant::now(),
        flow,
        call: CallKey(0),
        peer_from: "<sip:carrier@127.0.0.1>;tag=caller1".into(),
        peer_to: "<sip:+4930123@127.0.0.1>".into(),
        call_id: "refer-1@test".into(),
        next_cseq: 0,
    };
    let invite = h.peer_request("INVITE", "inv1", RR, "");
    let out = h.recv(invite);
    let incoming = out.iter().find_map(|o| match o {
        Output::Event {
            call,
            event: CallEvent::Incoming(_),
        } => Some(*call),
        _ => None,
    });
    let Some(call) = incoming else {
        panic!("no Incoming: {:?}", kinds(&out));
    };
    h.call = call;
    // Not confirmed yet: nothing to refer in.
    let out = h.cmd(CallCommand::Refer {
        refer_to: TARGET.into(),
        referred_by: None,
    });
    assert!(sent(&out).is_empty());
    assert_eq!(events(&out), result(481));
    h.cmd(CallCommand::Proceed);
    let out = h.cmd(CallCommand::Answer {
        sdp: uac::ANSWER.as_bytes().to_vec(),
    });
    let ok = sent(&out).remove(0);
    assert_eq!(ok.status(), Some(200));
    h.peer_to = hdr(&ok, "To").to_string();
    // The ACK shares the INVITE's CSeq.
    h.next_cseq -= 1;
    let ack = h.peer_request("ACK", "ack1", "", "");
    let out = h.recv(ack);
    assert_eq!(events(&out), vec![CallEvent::Acked { sdp: None }]);
    h
}

/// Our INVITE answered by a trunk (tag `t1`, Record-Route): we are the UAC.
fn uac() -> (H, Message) {
    let mut u = uac::Uac::new();
    let inv = uac::dialed(&mut u, Transport::Udp, false);
    let extra = format!("Contact: <sip:callee@10.0.0.9:5070>\r\n{RR}");
    let out = u.recv(reply(&inv, 200, Some("t1"), &extra, uac::ANSWER));
    assert_eq!(kinds(&out), vec!["ACK"]);
    let h = H {
        ep: u.ep,
        now: u.now,
        flow: u.flow,
        call: uac::CALL,
        peer_from: format!("{};tag=t1", hdr(&inv, "To")),
        peer_to: hdr(&inv, "From").to_string(),
        call_id: inv.call_id().to_string(),
        next_cseq: 0,
    };
    (h, inv)
}

#[test]
fn refer_on_a_uas_dialog_then_progress_in_order() {
    let mut h = uas();
    let refer = h.refer(Some("sip:gw@trunkgate.example"));
    assert_eq!(refer.request_uri(), Some("sip:peer@127.0.0.1"));
    assert_eq!(hdr(&refer, "Refer-To"), "<sip:+48999@pbx.example>");
    assert_eq!(hdr(&refer, "Referred-By"), "<sip:gw@trunkgate.example>");
    assert_eq!(hdr(&refer, "CSeq"), "1 REFER");
    // §12.1.1: the UAS's route set is the INVITE's Record-Route in order.
    assert_eq!(
        routes(&refer),
        vec!["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    );
    assert_eq!(hdr(&refer, "Contact"), "<sip:trunkgate@127.0.0.1:5060>");
    assert_eq!(hdr(&refer, "To"), h.peer_from);
    assert_eq!(hdr(&refer, "From"), h.peer_to);
    assert_eq!(refer.call_id(), "refer-1@test");
    let out = h.recv(reply(&refer, 202, None, "", ""));
    assert!(sent(&out).is_empty());
    assert_eq!(events(&out), result(202));
    let n = h.notify("n1", "refer", "active;expires=60", "SIP/2.0 100 Trying\r\n");
    let out = h.recv(n);
    assert_eq!(kinds(&out), vec!["200"]);
    assert_eq!(events(&out), progress(100, false));
    let n = h.notify(
        "n2",
        "refer",
        "terminated;reason=noresource",
        "SIP/2.0 200 OK\r\n",
    );
    let out = h.recv(n);
    assert_eq!(kinds(&out), vec!["200"]);
    assert_eq!(events(&out), progress(200, true));
    // The subscription is over: another NOTIFY for it is not ours.
    let n = h.notify("n3", "refer", "terminated", "SIP/2.0 200 OK\r\n");
    let out = h.recv(n);
    assert_eq!(kinds(&out), vec!["481"]);
    assert!(events(&out).is_empty());
    // The call is still up; the owner hangs up: BYE counts on from the REFER.
    let bye = sent(&h.cmd(CallCommand::Hangup)).remove(0);
    assert_eq!(hdr(&bye, "CSeq"), "2 BYE");
}

#[test]
fn refer_on_a_uac_dialog_and_a_busy_transfer_target() {
    let (mut h, inv) = uac();
    let refer = h.refer(None);
    assert_eq!(refer.request_uri(), Some("sip:callee@10.0.0.9:5070"));
    assert_eq!(hdr(&refer, "Refer-To"), "<sip:+48999@pbx.example>");
    assert!(refer.header_by_name("Referred-By").is_none());
    assert_eq!(hdr(&refer, "CSeq"), "2 REFER");
    // §12.1.2: the UAC's route set is the 2xx's Record-Route reversed.
    assert_eq!(
        routes(&refer),
        vec!["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    );
    assert_eq!(hdr(&refer, "Contact"), hdr(&inv, "Contact"));
    assert_eq!(refer.from_tag(), inv.from_tag());
    assert_eq!(refer.to_tag(), Some("t1"));
    let out = h.recv(reply(&refer, 200, None, "", ""));
    assert_eq!(events(&out), result(200));
    let n = h.notify("n1", "refer;id=2", "active", "SIP/2.0 180 Ringing\r\n");
    assert_eq!(events(&h.recv(n)), progress(180, false));
    let n = h.notify(
        "n2",
        "refer;id=2",
        "terminated",
        "SIP/2.0 486 Busy Here\r\n",
    );
    let out = h.recv(n);
    assert_eq!(kinds(&out), vec!["200"]);
    assert_eq!(events(&out), progress(486, true));
}

#[test]
fn a_refused_refer_is_reported_and_ends_its_subscription() {
    let mut h = uas();
    let refer = h.refer(None);
    let out = h.recv(reply(&refer, 403, None, "", ""));
    assert_eq!(kinds(&out), Vec::<String>::new());
    assert_eq!(events(&out), result(403));
    let n = h.notify("n1", "refer", "terminated", "SIP/2.0 403 Forbidden\r\n");
    assert_eq!(kinds(&h.recv(n)), vec!["481"]);
    // Another REFER may go now, with the next CSeq.
    let again = h.refer(None);
    assert_eq!(hdr(&again, "CSeq"), "2 REFER");
}

#[test]
fn an_unanswered_refer_is_408_at_timer_f() {
    let mut h = uas();
    let refer = h.refer(None);
    // Timer E on UDP: 0.5, 1.5, 3.5, 7.5, then every T2 (4 s) until Timer F at 64*T1.
    let out = h.advance(Duration::from_millis(31_900));
    assert!(
        kinds(&out).iter().all(|k| k == "REFER"),
        "{:?}",
        kinds(&out)
    );
    assert!(sent(&out).iter().all(|m| m.to_bytes() == refer.to_bytes()));
    assert!(events(&out).is_empty());
    let out = h.advance(Duration::from_millis(200));
    assert_eq!(events(&out), result(408));
    assert_eq!(h.ep.active_calls(), 1);
    // The next REFER is not refused as pending.
    h.refer(None);
}

#[test]
fn one_refer_at_a_time() {
    let mut h = uas();
    let refer = h.refer(None);
    let out = h.cmd(CallCommand::Refer {
        refer_to: "sip:other@pbx.example".into(),
        referred_by: None,
    });
    assert!(sent(&out).is_empty(), "{:?}", kinds(&out));
    assert_eq!(events(&out), result(491));
    // The first one is still the one answered.
    let out = h.recv(reply(&refer, 202, None, "", ""));
    assert_eq!(events(&out), result(202));
}

#[test]
fn a_retransmitted_notify_gets_the_same_200_and_no_second_event() {
    let mut h = uas();
    let refer = h.refer(None);
    h.recv(reply(&refer, 202, None, "", ""));
    let n = h.notify("n1", "refer", "active", "SIP/2.0 183 Session Progress\r\n");
    let out = h.recv(n.clone());
    assert_eq!(kinds(&out), vec!["200"]);
    assert_eq!(events(&out), progress(183, false));
    let first = sent(&out).remove(0).to_bytes();
    let out = h.recv(n);
    assert_eq!(kinds(&out), vec!["200"]);
    assert_eq!(sent(&out).remove(0).to_bytes(), first);
    assert!(events(&out).is_empty());
}

#[test]
fn notify_for_no_dialog_or_another_event_or_an_unreadable_body() {
    let mut h = uas();
    let refer = h.refer(None);
    h.recv(reply(&refer, 202, None, "", ""));
    // Another dialog (our tag wrong): 481 as for any request.
    let ours = h.peer_to.clone();
    h.peer_to = "<sip:+4930123@127.0.0.1>;tag=nosuch".into();
    let n = h.notify("x1", "refer", "active", "SIP/2.0 100 Trying\r\n");
    let out = h.recv(n);
    assert_eq!(kinds(&out), vec!["481"]);
    assert!(events(&out).is_empty());
    h.peer_to = ours;
    // Another event package: 489 naming the one we take.
    let n = h.notify("x2", "presence", "active", "SIP/2.0 100 Trying\r\n");
    let out = h.recv(n);
    assert_eq!(kinds(&out), vec!["489"]);
    assert_eq!(hdr(&sent(&out)[0], "Allow-Events"), "refer");
    assert!(events(&out).is_empty());
    // An id we never used: 481.
    let n = h.notify("x3", "refer;id=77", "active", "SIP/2.0 100 Trying\r\n");
    assert_eq!(kinds(&h.recv(n)), vec!["481"]);
    // No usable sipfrag: status 0, still 200 (the subscription goes on).
    let n = h.notify("x4", "refer", "active", "");
    let out = h.recv(n);
    assert_eq!(kinds(&out), vec!["200"]);
    assert_eq!(events(&out), progress(0, false));
    let n = h.notify("x5", "refer", "terminated", "garbage\r\n");
    assert_eq!(events(&h.recv(n)), progress(0, true));
}

#[test]
fn a_refer_from_the_peer_is_declined() {
    let mut h = uas();
    let extra = "Refer-To: <sip:elsewhere@evil.example>\r\n";
    let req = h.peer_request("REFER", "r1", extra, "");
    let out = h.recv(req);
    assert_eq!(kinds(&out), vec!["603"]);
    assert!(events(&out).is_empty());
    assert_eq!(h.ep.active_calls(), 1);
    let (mut h, _) = uac();
    let req = h.peer_request("REFER", "r1", extra, "");
    assert_eq!(kinds(&h.recv(req)), vec!["603"]);
}
