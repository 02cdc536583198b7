//! Virtual-clock tests of the transaction machines: RFC timers run in microseconds.

use std::time::{Duration, Instant};

use super::*;

fn sends(out: &[TxnOut]) -> usize {
    out.iter().filter(|o| matches!(o, TxnOut::Send(_))).count()
}

/// Drives a machine's timers until `until`, returning every output.
fn run_until(
    mut now: Instant,
    until: Instant,
    next: impl Fn() -> Option<Instant>,
    mut fire: impl FnMut(Instant, &mut Vec<TxnOut>),
) -> Vec<TxnOut> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match next() {
            Some(t) if t <= until => {
                now = now.max(t);
                fire(now, &mut out);
            }
            _ => break,
        }
    }
    out
}

#[test]
fn server_invite_error_final_retransmits_on_timer_g_until_h() {
    let t = Timers::default();
    let start = Instant::now();
    let mut txn = ServerInvite::new(false, t);
    let mut out = Vec::new();
    txn.send_provisional(b"100".to_vec(), &mut out);
    txn.send_final(start, 486, b"486".to_vec(), &mut out);
    assert_eq!(sends(&out), 2);
    let txn = std::cell::RefCell::new(txn);
    let out = run_until(
        start,
        start + Duration::from_secs(40),
        || txn.borrow().next_timeout(),
        |now, out| txn.borrow_mut().on_timeout(now, out),
    );
    // G: 0.5, 1, 2, 4, 4, 4, ... until H at 32 s: 0.5+1+2+4*7 = 31.5 -> 10 retransmissions.
    assert_eq!(sends(&out), 10);
    assert!(out.contains(&TxnOut::NoAck));
    assert!(txn.borrow().is_terminated());
}

#[test]
fn server_invite_ack_stops_retransmission_then_timer_i() {
    let t = Timers::default();
    let start = Instant::now();
    let mut txn = ServerInvite::new(false, t);
    let mut out = Vec::new();
    txn.send_final(start, 603, b"603".to_vec(), &mut out);
    txn.on_ack(start + Duration::from_millis(100), &mut out);
    assert_eq!(txn.state(), server_invite::State::Confirmed);
    let mut out = Vec::new();
    txn.on_request_retransmission(&mut out);
    assert!(out.is_empty(), "Confirmed absorbs");
    let next = txn.next_timeout().expect("timer I");
    assert_eq!(next, start + Duration::from_millis(100) + t.t4);
    txn.on_timeout(next, &mut out);
    assert!(txn.is_terminated());
    assert!(!out.contains(&TxnOut::NoAck));
}

#[test]
fn server_invite_retransmitted_request_gets_last_provisional() {
    let mut txn = ServerInvite::new(false, Timers::default());
    let mut out = Vec::new();
    txn.on_request_retransmission(&mut out);
    assert!(out.is_empty(), "nothing sent yet");
    txn.send_provisional(b"100".to_vec(), &mut out);
    txn.send_provisional(b"180".to_vec(), &mut out);
    out.clear();
    txn.on_request_retransmission(&mut out);
    assert_eq!(out, vec![TxnOut::Send(b"180".to_vec())]);
}

#[test]
fn server_invite_2xx_retransmitted_until_ack_even_on_tcp() {
    let t = Timers::default();
    let start = Instant::now();
    let mut txn = ServerInvite::new(true, t);
    let mut out = Vec::new();
    txn.send_final(start, 200, b"200".to_vec(), &mut out);
    txn.on_timeout(start + t.t1, &mut out);
    txn.on_timeout(start + t.t1 * 3, &mut out);
    assert_eq!(sends(&out), 3);
    txn.on_ack(start + t.t1 * 4, &mut out);
    assert!(txn.is_acked());
    let mut out = Vec::new();
    // After the ACK only Timer L remains, and it ends quietly.
    let l = txn.next_timeout().expect("timer L");
    assert_eq!(l, start + t.t64());
    txn.on_timeout(l, &mut out);
    assert_eq!(out, vec![TxnOut::Terminated]);
}

#[test]
fn server_invite_2xx_without_ack_reports_no_ack() {
    let t = Timers::default();
    let start = Instant::now();
    let txn = std::cell::RefCell::new(ServerInvite::new(false, t));
    let mut out = Vec::new();
    txn.borrow_mut()
        .send_final(start, 200, b"200".to_vec(), &mut out);
    let out = run_until(
        start,
        start + Duration::from_secs(60),
        || txn.borrow().next_timeout(),
        |now, out| txn.borrow_mut().on_timeout(now, out),
    );
    assert_eq!(sends(&out), 10);
    assert_eq!(out[out.len() - 2..], [TxnOut::NoAck, TxnOut::Terminated]);
}

#[test]
fn server_non_invite_absorbs_retransmissions_until_timer_j() {
    let t = Timers::default();
    let start = Instant::now();
    let mut txn = ServerNonInvite::new(false, t);
    let mut out = Vec::new();
    txn.send_final(start, b"200".to_vec(), &mut out);
    txn.send_final(start, b"500".to_vec(), &mut out);
    assert_eq!(sends(&out), 1, "one final only");
    out.clear();
    txn.on_request_retransmission(&mut out);
    assert_eq!(out, vec![TxnOut::Send(b"200".to_vec())]);
    txn.on_timeout(start + t.t64() - Duration::from_micros(1), &mut out);
    assert!(!txn.is_terminated());
    txn.on_timeout(start + t.t64(), &mut out);
    assert!(txn.is_terminated());
}

#[test]
fn server_non_invite_on_tcp_terminates_at_once() {
    let mut txn = ServerNonInvite::new(true, Timers::default());
    let mut out = Vec::new();
    txn.send_final(Instant::now(), b"200".to_vec(), &mut out);
    assert!(txn.is_terminated());
}

#[test]
fn client_non_invite_timer_e_and_f() {
    let t = Timers::default();
    let start = Instant::now();
    let mut first = Vec::new();
    let txn = std::cell::RefCell::new(ClientNonInvite::start(
        start,
        b"BYE".to_vec(),
        false,
        t,
        &mut first,
    ));
    assert_eq!(sends(&first), 1);
    let out = run_until(
        start,
        start + Duration::from_secs(60),
        || txn.borrow().next_timeout(),
        |now, out| txn.borrow_mut().on_timeout(now, out),
    );
    // E: 0.5, 1.5, 3.5, 7.5, 11.5, ..., 31.5 -> 10 retransmissions before F at 32 s.
    assert_eq!(sends(&out), 10);
    assert!(out.contains(&TxnOut::Timeout));
}

#[test]
fn client_non_invite_final_response_completes() {
    let t = Timers::default();
    let start = Instant::now();
    let mut out = Vec::new();
    let mut txn = ClientNonInvite::start(start, b"BYE".to_vec(), false, t, &mut out);
    assert!(txn.on_response(start, 100, &mut out));
    assert!(txn.on_response(start, 200, &mut out));
    assert!(
        !txn.on_response(start, 200, &mut out),
        "retransmitted final absorbed"
    );
    out.clear();
    let k = txn.next_timeout().expect("timer K");
    assert_eq!(k, start + t.t4);
    txn.on_timeout(k, &mut out);
    assert_eq!(out, vec![TxnOut::Terminated]);
}

#[test]
fn client_non_invite_reliable_has_no_retransmissions() {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut txn = ClientNonInvite::start(start, b"BYE".to_vec(), true, Timers::default(), &mut out);
    let f = txn.next_timeout().expect("timer F");
    assert_eq!(f, start + Timers::default().t64());
    out.clear();
    txn.on_timeout(f, &mut out);
    assert_eq!(out, vec![TxnOut::Timeout, TxnOut::Terminated]);
}
