//! Virtual-clock tests of the client INVITE transaction (RFC 3261 §17.1.1, RFC 6026).

use std::time::{Duration, Instant};

use super::client_invite::{build_cancel, Cancel, Upcall};
use super::*;
use crate::core::sip::message::{HeaderName, Limits, Message, Method};

const INVITE: &str = "INVITE sip:+15550100@carrier.example.net;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKci1;rport, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx\r\n\
Via: SIP/2.0/UDP 10.0.0.8;branch=z9hG4bKy\r\n\
Max-Forwards: 70\r\n\
Route: <sip:edge1.example.net;lr>\r\n\
Route: <sip:edge2.example.net;lr>, <sip:core.example.net;lr>\r\n\
From: \"Gateway\" <sip:agent@gw.example.com>;tag=gw77\r\n\
To: <sip:+15550100@carrier.example.net>\r\n\
Call-ID: ci-call-1@203.0.113.5\r\n\
CSeq: 4711 INVITE\r\n\
Contact: <sip:agent@203.0.113.5:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

fn parse(s: &str) -> Message {
    Message::parse(s.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{s}"))
}

fn response(status: u16, to_tag: Option<&str>, body: &str) -> Message {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    parse(&format!(
        "SIP/2.0 {status} Whatever\r\n\
         Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKci1;rport=5060\r\n\
         From: \"Gateway\" <sip:agent@gw.example.com>;tag=gw77\r\n\
         To: <sip:+15550100@carrier.example.net>{tag}\r\n\
         Call-ID: ci-call-1@203.0.113.5\r\n\
         CSeq: 4711 INVITE\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn start(now: Instant, reliable: bool) -> (ClientInvite, Vec<TxnOut>) {
    let mut out = Vec::new();
    let txn = ClientInvite::start(now, parse(INVITE), reliable, Timers::default(), &mut out);
    (txn, out)
}

fn sent(out: &[TxnOut]) -> Vec<Vec<u8>> {
    out.iter()
        .filter_map(|o| match o {
            TxnOut::Send(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// Fires every timer up to `until`, returning (time, output) pairs.
fn run(txn: &mut ClientInvite, until: Instant) -> Vec<(Instant, TxnOut)> {
    let mut all = Vec::new();
    for _ in 0..1000 {
        match txn.next_timeout() {
            Some(t) if t <= until => {
                let mut out = Vec::new();
                txn.on_timeout(t, &mut out);
                all.extend(out.into_iter().map(|o| (t, o)));
            }
            _ => break,
        }
    }
    all
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn timer_a_doubles_without_t2_cap_on_udp_then_timer_b() {
    let t0 = Instant::now();
    let (mut txn, first) = start(t0, false);
    assert_eq!(sent(&first), vec![parse(INVITE).to_bytes()]);
    let out = run(&mut txn, t0 + Duration::from_secs(60));
    let resends: Vec<_> = out
        .iter()
        .filter(|(_, o)| matches!(o, TxnOut::Send(_)))
        .map(|(t, _)| *t - t0)
        .collect();
    // A: 0.5, 1, 2, 4, 8, 16 s apart (no cap at T2 = 4 s), B at 32 s.
    let expect: Vec<_> = [500, 1500, 3500, 7500, 15_500, 31_500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(resends, expect);
    let tail: Vec<_> = out.iter().rev().take(2).rev().cloned().collect();
    let b = t0 + Timers::default().t64();
    assert_eq!(tail, [(b, TxnOut::Timeout), (b, TxnOut::Terminated)]);
    assert!(txn.is_terminated());
}

#[test]
fn no_retransmissions_on_reliable_transport_and_timer_b() {
    let t0 = Instant::now();
    let (mut txn, first) = start(t0, true);
    assert_eq!(sent(&first).len(), 1);
    assert_eq!(txn.next_timeout(), Some(t0 + Timers::default().t64()));
    let out = run(&mut txn, t0 + Duration::from_secs(60));
    let b = t0 + Timers::default().t64();
    assert_eq!(out, [(b, TxnOut::Timeout), (b, TxnOut::Terminated)]);
}

#[test]
fn a_100_stops_timer_a_and_timer_b() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, false);
    let mut out = Vec::new();
    txn.on_timeout(t0 + ms(500), &mut out);
    assert_eq!(sent(&out).len(), 1);
    let up = txn.on_response(t0 + ms(600), &response(100, None, ""), &mut out);
    assert_eq!(
        up,
        Upcall::Provisional {
            status: 100,
            early_media: false,
            cancel: None
        }
    );
    assert_eq!(txn.state(), ClientInviteState::Proceeding);
    assert_eq!(txn.next_timeout(), None, "Proceeding waits for the TU");
    assert!(run(&mut txn, t0 + Duration::from_secs(300)).is_empty());
}

#[test]
fn provisionals_in_any_order_are_passed_up() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, false);
    let mut out = Vec::new();
    let up = txn.on_response(t0, &response(183, Some("c1"), "v=0\r\n"), &mut out);
    assert_eq!(
        up,
        Upcall::Provisional {
            status: 183,
            early_media: true,
            cancel: None
        }
    );
    let up = txn.on_response(t0, &response(180, Some("c1"), ""), &mut out);
    assert_eq!(
        up,
        Upcall::Provisional {
            status: 180,
            early_media: false,
            cancel: None
        }
    );
    let up = txn.on_response(t0, &response(100, None, ""), &mut out);
    assert!(matches!(up, Upcall::Provisional { status: 100, .. }));
    assert_eq!(txn.state(), ClientInviteState::Proceeding);
    assert!(out.is_empty(), "provisionals send nothing");
}

#[test]
fn error_final_builds_the_ack_field_by_field() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, false);
    let mut out = Vec::new();
    txn.on_response(t0, &response(180, Some("c1"), ""), &mut out);
    let up = txn.on_response(t0 + ms(10), &response(486, Some("c1"), ""), &mut out);
    assert_eq!(up, Upcall::Rejected { status: 486 });
    assert_eq!(txn.state(), ClientInviteState::Completed);
    let acks = sent(&out);
    assert_eq!(acks.len(), 1);
    let ack = Message::parse(&acks[0], &Limits::default()).expect("ACK parses");
    let invite = parse(INVITE);
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.request_uri(), invite.request_uri());
    let vias: Vec<_> = ack.header_values(&HeaderName::Via).collect();
    assert_eq!(
        vias,
        ["SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKci1;rport"],
        "top Via only, same branch"
    );
    assert_eq!(
        ack.header(&HeaderName::From),
        invite.header(&HeaderName::From)
    );
    assert_eq!(
        ack.header(&HeaderName::To),
        Some("<sip:+15550100@carrier.example.net>;tag=c1"),
        "the response's To, tag included"
    );
    assert_eq!(ack.call_id(), "ci-call-1@203.0.113.5");
    assert_eq!(ack.cseq().seq, 4711);
    assert_eq!(ack.cseq().method, Method::Ack);
    let routes: Vec<_> = ack.header_values(&HeaderName::Route).collect();
    assert_eq!(
        routes,
        [
            "<sip:edge1.example.net;lr>",
            "<sip:edge2.example.net;lr>",
            "<sip:core.example.net;lr>"
        ]
    );
    assert_eq!(ack.max_forwards(), Some(70));
    assert!(ack.body().is_empty());
    assert_eq!(ack.header(&HeaderName::Contact), None);
}

#[test]
fn retransmitted_error_final_gets_the_same_ack_then_timer_d() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, false);
    let mut out = Vec::new();
    txn.on_response(t0, &response(603, Some("c1"), ""), &mut out);
    let ack = sent(&out);
    assert_eq!(ack.len(), 1);
    for i in 1..=3 {
        let mut again = Vec::new();
        let up = txn.on_response(t0 + ms(i * 500), &response(603, Some("c1"), ""), &mut again);
        assert_eq!(up, Upcall::Ignored, "passed up once only");
        assert_eq!(sent(&again), ack, "the same ACK again");
    }
    let d = t0 + Duration::from_secs(32);
    assert_eq!(txn.next_timeout(), Some(d));
    let out = run(&mut txn, d - Duration::from_micros(1));
    assert!(out.is_empty());
    let out = run(&mut txn, d);
    assert_eq!(out, [(d, TxnOut::Terminated)], "no Timeout after a final");
    let mut late = Vec::new();
    let up = txn.on_response(d + ms(1), &response(603, Some("c1"), ""), &mut late);
    assert_eq!(up, Upcall::Ignored);
    assert!(late.is_empty(), "no ACK once terminated");
}

#[test]
fn error_final_on_reliable_transport_acks_and_ends_at_once() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, true);
    let mut out = Vec::new();
    let up = txn.on_response(t0, &response(404, Some("c2"), ""), &mut out);
    assert_eq!(up, Upcall::Rejected { status: 404 });
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(out.last(), Some(&TxnOut::Terminated));
    assert!(txn.is_terminated());
}

#[test]
fn two_xx_is_passed_up_and_retransmissions_too_until_timer_m() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, false);
    let mut out = Vec::new();
    let up = txn.on_response(
        t0 + ms(200),
        &response(200, Some("c1"), "v=0\r\n"),
        &mut out,
    );
    assert_eq!(
        up,
        Upcall::Accepted {
            status: 200,
            first: true
        }
    );
    assert_eq!(txn.state(), ClientInviteState::Accepted);
    let up = txn.on_response(
        t0 + ms(700),
        &response(200, Some("c1"), "v=0\r\n"),
        &mut out,
    );
    assert_eq!(
        up,
        Upcall::Accepted {
            status: 200,
            first: false
        }
    );
    let up = txn.on_response(t0 + ms(800), &response(200, Some("fork2"), ""), &mut out);
    assert!(
        matches!(up, Upcall::Accepted { first: false, .. }),
        "other fork"
    );
    let up = txn.on_response(t0 + ms(900), &response(486, Some("c3"), ""), &mut out);
    assert_eq!(up, Upcall::Ignored);
    let up = txn.on_response(t0 + ms(900), &response(180, Some("c3"), ""), &mut out);
    assert_eq!(up, Upcall::Ignored);
    assert!(out.is_empty(), "no ACK for 2xx, no INVITE retransmission");
    let m = t0 + ms(200) + Timers::default().t64();
    assert_eq!(txn.next_timeout(), Some(m), "Timer A stopped, Timer M set");
    let out = run(&mut txn, m + Duration::from_secs(1));
    assert_eq!(out, [(m, TxnOut::Terminated)]);
    let mut late = Vec::new();
    let up = txn.on_response(m + ms(1), &response(200, Some("c1"), ""), &mut late);
    assert_eq!(up, Upcall::Ignored);
    assert!(late.is_empty());
}

#[test]
fn cancel_is_built_from_the_invite_field_by_field() {
    let invite = parse(INVITE);
    let cancel = Message::parse(&build_cancel(&invite).to_bytes(), &Limits::default())
        .expect("CANCEL parses");
    assert_eq!(cancel.method(), Some(&Method::Cancel));
    assert_eq!(cancel.request_uri(), invite.request_uri());
    let vias: Vec<_> = cancel.header_values(&HeaderName::Via).collect();
    assert_eq!(
        vias,
        ["SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKci1;rport"]
    );
    assert_eq!(
        cancel.header(&HeaderName::From),
        invite.header(&HeaderName::From)
    );
    assert_eq!(
        cancel.header(&HeaderName::To),
        invite.header(&HeaderName::To)
    );
    assert_eq!(cancel.to_tag(), None);
    assert_eq!(cancel.call_id(), invite.call_id());
    assert_eq!(cancel.cseq().seq, 4711);
    assert_eq!(cancel.cseq().method, Method::Cancel);
    assert_eq!(cancel.header_values(&HeaderName::Route).count(), 3);
    assert!(cancel.body().is_empty());
}

#[test]
fn cancel_waits_for_a_provisional_and_not_after_a_final() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, false);
    let mut out = Vec::new();
    assert_eq!(txn.request_cancel(), Cancel::Deferred);
    let up = txn.on_response(t0, &response(100, None, ""), &mut out);
    let Upcall::Provisional {
        cancel: Some(cancel),
        ..
    } = up
    else {
        panic!("deferred CANCEL not released: {up:?}");
    };
    assert_eq!(cancel, build_cancel(txn.invite()));
    let up = txn.on_response(t0, &response(180, Some("c1"), ""), &mut out);
    assert!(
        matches!(up, Upcall::Provisional { cancel: None, .. }),
        "once"
    );
    assert_eq!(
        txn.request_cancel(),
        Cancel::Send(build_cancel(txn.invite()))
    );
    txn.on_response(t0, &response(487, Some("c1"), ""), &mut out);
    assert_eq!(txn.request_cancel(), Cancel::TooLate);

    let (mut txn, _) = start(t0, false);
    assert_eq!(txn.request_cancel(), Cancel::Deferred);
    let up = txn.on_response(t0, &response(200, Some("c1"), ""), &mut out);
    assert!(matches!(up, Upcall::Accepted { first: true, .. }));
    assert_eq!(txn.request_cancel(), Cancel::TooLate);
}

#[test]
fn transport_error_terminates_with_an_error() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, false);
    let mut out = Vec::new();
    txn.on_transport_error(&mut out);
    assert_eq!(out, [TxnOut::TransportError, TxnOut::Terminated]);
    assert_eq!(txn.next_timeout(), None);
    let mut late = Vec::new();
    let up = txn.on_response(t0, &response(180, Some("c1"), ""), &mut late);
    assert_eq!(up, Upcall::Ignored);
    txn.on_transport_error(&mut late);
    assert!(late.is_empty(), "reported once");

    let (mut txn, _) = start(t0, false);
    txn.on_response(t0, &response(200, Some("c1"), ""), &mut out);
    let mut out = Vec::new();
    txn.on_transport_error(&mut out);
    assert!(
        out.is_empty(),
        "Accepted sends nothing, so no transport error"
    );
    assert_eq!(txn.state(), ClientInviteState::Accepted);
}

#[test]
fn responses_after_timer_b_and_odd_input_are_ignored() {
    let t0 = Instant::now();
    let (mut txn, _) = start(t0, false);
    let mut out = Vec::new();
    let up = txn.on_response(t0, &parse(INVITE), &mut out);
    assert_eq!(up, Upcall::Ignored, "a request is not a response");
    assert_eq!(txn.state(), ClientInviteState::Calling);
    run(&mut txn, t0 + Duration::from_secs(40));
    assert!(txn.is_terminated());
    for status in [100, 183, 200, 486] {
        let up = txn.on_response(t0, &response(status, Some("c1"), ""), &mut out);
        assert_eq!(up, Upcall::Ignored);
    }
    assert!(out.is_empty());
    assert_eq!(txn.request_cancel(), Cancel::TooLate);
}
