//! Scripted-trunk tests of our INVITE's outcomes with a virtual clock: the 2xx and its ACK
//! along the route set, CANCEL (deferred and at once) and the 200-after-CANCEL race, final
//! failures and redirects, requests from the far end inside the dialog, and responses that
//! match nothing or make no sense. Harness and helpers in `tests_uac.rs`.

use std::time::Duration;

use super::tests_uac::*;
use super::*;
use crate::core::sip::message::{HeaderName, Message, Method};
use crate::core::Transport;

const CONTACT: &str = "Contact: <sip:callee@10.0.0.9:5070>\r\n";

/// A request from the far end inside the dialog of our answered `inv`.
fn far_request(inv: &Message, method: &str, tag: &str, cseq: u32, body: &str) -> Vec<u8> {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:trunkgate@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKfar{method}{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: {};tag={tag}\r\nTo: {}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} {method}\r\nContact: <sip:callee@10.0.0.9:5070>\r\n\
         {ct}Content-Length: {}\r\n\r\n{body}",
        hdr(inv, "To"),
        hdr(inv, "From"),
        inv.call_id(),
        body.len()
    )
    .into_bytes()
}

/// Dials and gets answered (tag `t1`); returns the INVITE and the ACK.
fn answered(h: &mut Uac, transport: Transport, extra: &str) -> (Message, Message) {
    let inv = dialed(h, transport, false);
    h.recv(reply(&inv, 180, Some("t1"), "", ""));
    let out = h.recv(reply(
        &inv,
        200,
        Some("t1"),
        &format!("{CONTACT}{extra}"),
        ANSWER,
    ));
    assert_eq!(kinds(&out), vec!["ACK"]);
    let sdp = Some(ANSWER.as_bytes().to_vec());
    assert_eq!(events(&out), vec![CallEvent::Answered { sdp }]);
    (inv, sent(&out).remove(0))
}

#[test]
fn ack_for_2xx_goes_to_contact_along_reversed_record_route() {
    let mut h = Uac::new();
    let rr = "Record-Route: <sip:p1.example;lr>\r\nRecord-Route: <sip:p2.example;lr>\r\n";
    let (inv, ack) = answered(&mut h, Transport::Udp, rr);
    assert_eq!(ack.request_uri(), Some("sip:callee@10.0.0.9:5070"));
    let routes: Vec<&str> = ack
        .header_values(&HeaderName::Route)
        .map(str::trim)
        .collect();
    assert_eq!(routes, vec!["<sip:p2.example;lr>", "<sip:p1.example;lr>"]);
    assert_eq!(hdr(&ack, "CSeq"), "1 ACK");
    assert_eq!(ack.call_id(), inv.call_id());
    assert_eq!(ack.from_tag(), inv.from_tag());
    assert_eq!(ack.to_tag(), Some("t1"));
    assert_ne!(
        branch(&ack),
        branch(&inv),
        "a 2xx ACK is a transaction of its own"
    );
    assert!(ack.body().is_empty());
    // A retransmitted 2xx (our ACK was lost) gets the same ACK again, and nothing else.
    let again = h.recv(reply(
        &inv,
        200,
        Some("t1"),
        &format!("{CONTACT}{rr}"),
        ANSWER,
    ));
    assert_eq!(kinds(&again), vec!["ACK"]);
    assert_eq!(sent(&again)[0].to_bytes(), ack.to_bytes());
    assert!(events(&again).is_empty());
    // Our BYE takes the same way, in the next CSeq; its 200 ends the call.
    let out = h.cmd(CallCommand::Hangup);
    let bye = sent(&out).remove(0);
    assert_eq!(bye.request_uri(), Some("sip:callee@10.0.0.9:5070"));
    let routes: Vec<&str> = bye
        .header_values(&HeaderName::Route)
        .map(str::trim)
        .collect();
    assert_eq!(routes, vec!["<sip:p2.example;lr>", "<sip:p1.example;lr>"]);
    assert_eq!(hdr(&bye, "CSeq"), "2 BYE");
    assert_eq!(bye.to_tag(), Some("t1"));
    let out = h.recv(reply(&bye, 200, Some("t1"), "", ""));
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::LocalBye(200))]
    );
    h.advance(Duration::from_secs(70));
    assert_eq!((h.ep.active_calls(), h.ep.transactions()), (0, 0));
}

#[test]
fn in_dialog_requests_advertise_local_host_on_a_wildcard_socket() {
    let mut h = Uac::new();
    let mut s = spec(Transport::Udp, false);
    s.flow.local = "0.0.0.0:5060".parse().expect("addr");
    s.local_host = "192.0.2.10".into();
    let out = h.dial(s);
    let inv = sent(&out).remove(0);
    assert_eq!(inv.top_via().host, "192.0.2.10");
    assert_eq!(hdr(&inv, "Contact"), "<sip:trunkgate@192.0.2.10:5060>");
    let out = h.recv(reply(&inv, 200, Some("t1"), CONTACT, ANSWER));
    assert_eq!(sent(&out)[0].top_via().host, "192.0.2.10", "ACK");
    let out = h.cmd(CallCommand::Hangup);
    assert_eq!(sent(&out)[0].top_via().host, "192.0.2.10", "BYE");
}

#[test]
fn hangup_before_any_provisional_cancels_after_the_first() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    let out = h.cmd(CallCommand::Hangup);
    assert!(out.is_empty(), "no CANCEL before a provisional (§9.1)");
    let out = h.recv(reply(&inv, 100, None, "", ""));
    assert_eq!(kinds(&out), vec!["CANCEL"]);
    let cancel = sent(&out).remove(0);
    assert_eq!(cancel.request_uri(), inv.request_uri());
    assert_eq!(branch(&cancel), branch(&inv));
    assert_eq!(hdr(&cancel, "CSeq"), "1 CANCEL");
    assert_eq!(hdr(&cancel, "To"), hdr(&inv, "To"));
    assert_eq!(hdr(&cancel, "From"), hdr(&inv, "From"));
    assert_eq!(cancel.call_id(), inv.call_id());
    assert!(h.recv(reply(&cancel, 200, Some("t1"), "", "")).is_empty());
    let out = h.recv(reply(&inv, 487, Some("t1"), "", ""));
    assert_eq!(kinds(&out), vec!["ACK"]);
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::Refused(487))]
    );
    h.advance(Duration::from_secs(40));
    assert_eq!((h.ep.active_calls(), h.ep.transactions()), (0, 0));
}

#[test]
fn hangup_after_180_cancels_at_once_then_487_is_acked() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    h.recv(reply(&inv, 180, Some("t1"), "", ""));
    let out = h.cmd(CallCommand::Hangup);
    assert_eq!(kinds(&out), vec!["CANCEL"]);
    let cancel = sent(&out).remove(0);
    assert_eq!(branch(&cancel), branch(&inv));
    assert_eq!(hdr(&cancel, "CSeq"), "1 CANCEL");
    // A second hangup sends nothing more; the CANCEL is retransmitted (Timer E) until answered.
    assert!(h.cmd(CallCommand::Hangup).is_empty());
    let out = h.advance(Duration::from_millis(600));
    assert_eq!(kinds(&out), vec!["CANCEL"]);
    assert!(h.recv(reply(&cancel, 200, Some("t1"), "", "")).is_empty());
    let out = h.recv(reply(&inv, 487, Some("t1"), "", ""));
    let ack = sent(&out).remove(0);
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(branch(&ack), branch(&inv), "the transaction ACKs a non-2xx");
    assert_eq!(hdr(&ack, "CSeq"), "1 ACK");
    assert_eq!(ack.to_tag(), Some("t1"));
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::Refused(487))]
    );
    let out = h.recv(reply(&inv, 487, Some("t1"), "", ""));
    assert_eq!(kinds(&out), vec!["ACK"]);
    assert!(events(&out).is_empty());
}

#[test]
fn a_200_after_our_cancel_is_acked_then_hung_up() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    h.recv(reply(&inv, 180, Some("t1"), "", ""));
    let cancel = sent(&h.cmd(CallCommand::Hangup)).remove(0);
    let out = h.recv(reply(&inv, 200, Some("t1"), CONTACT, ANSWER));
    assert_eq!(kinds(&out), vec!["ACK", "BYE"]);
    assert!(events(&out).is_empty(), "not reported as answered");
    let bye = sent(&out).remove(1);
    assert_eq!(bye.request_uri(), Some("sip:callee@10.0.0.9:5070"));
    assert_eq!(hdr(&bye, "CSeq"), "2 BYE");
    // The CANCEL comes too late (481 or 200), then the BYE's 200 ends the call, once.
    assert!(events(&h.recv(reply(&cancel, 481, Some("t1"), "", ""))).is_empty());
    let out = h.recv(reply(&bye, 200, Some("t1"), "", ""));
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::LocalBye(200))]
    );
    let out = h.advance(Duration::from_secs(70));
    assert!(events(&out).is_empty());
    assert_eq!((h.ep.active_calls(), h.ep.transactions()), (0, 0));
}

#[test]
fn no_final_after_cancel_gives_up_after_64_t1() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    h.recv(reply(&inv, 183, Some("t1"), "", ANSWER));
    let cancel = sent(&h.cmd(CallCommand::Hangup)).remove(0);
    h.recv(reply(&cancel, 200, Some("t1"), "", ""));
    let out = h.advance(Duration::from_millis(31_900));
    assert!(events(&out).is_empty());
    let out = h.advance(Duration::from_millis(200));
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::Refused(487))]
    );
    assert_eq!(h.ep.active_calls(), 0);
    h.advance(Duration::from_secs(70));
    assert_eq!(
        h.ep.transactions(),
        0,
        "the INVITE transaction is forgotten too"
    );
    // A 487 that finally comes is nobody's business.
    let out = h.recv(reply(&inv, 487, Some("t1"), "", ""));
    assert!(events(&out).is_empty());
}

#[test]
fn busy_is_acked_and_refused() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut h = Uac::new();
        let inv = dialed(&mut h, transport, false);
        let out = h.recv(reply(&inv, 486, Some("t1"), "", ""));
        assert_eq!(kinds(&out), vec!["ACK"]);
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended(EndReason::Refused(486))]
        );
        h.advance(Duration::from_secs(40));
        assert_eq!((h.ep.active_calls(), h.ep.transactions()), (0, 0));
    }
}

#[test]
fn redirect_reports_the_contact_then_ends() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    let out = h.recv(reply(
        &inv,
        302,
        Some("t1"),
        "Contact: <sip:+48333@other.example>\r\n",
        "",
    ));
    assert_eq!(kinds(&out), vec!["ACK"]);
    assert_eq!(
        events(&out),
        vec![
            CallEvent::Redirected {
                contact: "<sip:+48333@other.example>".into()
            },
            CallEvent::Ended(EndReason::Refused(302)),
        ]
    );
}

#[test]
fn bye_from_the_far_end() {
    let mut h = Uac::new();
    let (inv, _) = answered(&mut h, Transport::Udp, "");
    let out = h.recv(far_request(&inv, "BYE", "t1", 1, ""));
    assert_eq!(kinds(&out), vec!["200"]);
    let ok = sent(&out).remove(0);
    assert_eq!(ok.to_tag(), inv.from_tag());
    assert_eq!(events(&out), vec![CallEvent::Ended(EndReason::RemoteBye)]);
    // Its retransmission is answered again, without a second Ended.
    let out = h.recv(far_request(&inv, "BYE", "t1", 1, ""));
    assert_eq!(
        (kinds(&out), events(&out)),
        (vec!["200".to_string()], vec![])
    );
    h.advance(Duration::from_secs(70));
    assert_eq!((h.ep.active_calls(), h.ep.transactions()), (0, 0));
}

#[test]
fn reinvite_and_other_requests_from_the_far_end() {
    let mut h = Uac::new();
    let (inv, _) = answered(&mut h, Transport::Udp, "");
    let out = h.recv(far_request(&inv, "INVITE", "t1", 7, OFFER));
    assert_eq!(kinds(&out), vec!["100"]);
    let sdp = Some(OFFER.as_bytes().to_vec());
    assert_eq!(events(&out), vec![CallEvent::ReInvite { sdp }]);
    let out = h.cmd(CallCommand::ReInviteAnswer {
        sdp: ANSWER.as_bytes().to_vec(),
    });
    let ok = sent(&out).remove(0);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(hdr(&ok, "CSeq"), "7 INVITE");
    assert_eq!(ok.to_tag(), inv.from_tag());
    assert_eq!(ok.body(), ANSWER.as_bytes());
    assert!(ok.header_by_name("Contact").is_some());
    h.recv(far_request(&inv, "ACK", "t1", 7, ""));
    let out = h.advance(Duration::from_secs(5));
    assert!(
        out.is_empty(),
        "the 2xx was acknowledged: {:?}",
        kinds(&out)
    );
    let out = h.recv(far_request(&inv, "OPTIONS", "t1", 8, ""));
    assert_eq!(kinds(&out), vec!["200"]);
    let out = h.recv(far_request(&inv, "UPDATE", "t1", 9, ""));
    assert_eq!(kinds(&out), vec!["200"]);
    // An old CSeq is refused; the call stays up and our next BYE counts on from the INVITE.
    let out = h.recv(far_request(&inv, "OPTIONS", "t1", 3, ""));
    assert_eq!(kinds(&out), vec!["500"]);
    let bye = sent(&h.cmd(CallCommand::Hangup)).remove(0);
    assert_eq!(hdr(&bye, "CSeq"), "2 BYE");
}

#[test]
fn a_response_to_no_transaction_is_only_reported() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    let stray = String::from_utf8(reply(&inv, 200, Some("t9"), CONTACT, ANSWER))
        .expect("utf8")
        .replace(&branch(&inv), "z9hG4bKnotours");
    let out = h.recv(stray.into_bytes());
    assert_eq!(out.len(), 1);
    assert!(
        matches!(out[0], Output::UnmatchedResponse { .. }),
        "{out:?}"
    );
    // The real call is untouched.
    let out = h.recv(reply(&inv, 200, Some("t1"), CONTACT, ANSWER));
    assert_eq!(kinds(&out), vec!["ACK"]);
}

#[test]
fn garbage_responses_never_panic() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, false);
    let good = String::from_utf8(reply(&inv, 180, Some("t1"), "", "")).expect("utf8");
    let b = branch(&inv);
    let variants = [
        good.replace(&format!(";branch={b}"), ""),
        good.replace("CSeq: 1 INVITE", "CSeq: x INVITE"),
        good.replace("CSeq: 1 INVITE", "CSeq: 1"),
        good.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
        good.replace("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE"),
        good.replace("SIP/2.0 180", "SIP/2.0 700"),
        good.replace("SIP/2.0 180", "SIP/2.0 099"),
        good.replace("SIP/2.0 180", "SIP/2.0 18"),
        good.replace("Via: ", "X-Via: "),
        good.replace("Call-ID: ", "X-Call-ID: "),
        good.replace("Content-Length: 0", "Content-Length: 99"),
        "SIP/2.0 200 OK\r\n\r\n".to_string(),
        "SIP/2.0\r\n\r\n".to_string(),
    ];
    for v in variants {
        let out = h.recv(v.clone().into_bytes());
        assert!(events(&out).is_empty(), "{v}: {:?}", events(&out));
        assert!(kinds(&out).is_empty(), "{v}: {:?}", kinds(&out));
    }
    // The call goes on as if nothing had come.
    let out = h.recv(good.into_bytes());
    assert_eq!(
        events(&out),
        vec![CallEvent::Progress {
            status: 180,
            sdp: None
        }]
    );
}
