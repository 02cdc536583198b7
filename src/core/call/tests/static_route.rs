//! A static route: the echo answers at once (no 180), or rings for its `answer_delay` first
//! (answered when the virtual delay has passed, or cancelled during it).

use super::harness::*;
use crate::core::call::{CallStatus, EndReason, Notice};
use crate::core::sip::endpoint::{CallEvent, EndReason as SipEnd};
use crate::core::sip::sdp::{Connection, Direction};

#[test]
fn echo_without_delay_answers_at_once_with_our_sdp() {
    let mut h = H::with_route(echo_route(None));
    // No 180 Ringing: the port is leased straight away.
    assert_eq!(h.take(), vec![Ev::Lease]);
    assert_eq!(h.call.view(h.now).status, CallStatus::Queued);
    h.lease(Some(PORT));
    let evs = h.take();
    assert!(matches!(
        signalling(&evs).as_slice(),
        [
            Ev::Notice(Notice::Answered),
            Ev::Sip(crate::core::sip::endpoint::CallCommand::Answer { .. })
        ]
    ));
    let sdp = answer_sdp(&evs);
    let audio = &sdp.media[0];
    assert_eq!(audio.port, PORT);
    assert_eq!(audio.formats, vec!["0", "101"]);
    assert_eq!(audio.direction, Direction::SendRecv);
    assert_eq!(sdp.connection, Some(Connection::Ip([192, 0, 2, 1].into())));
    let v = h.call.view(h.now);
    assert_eq!(v.status, CallStatus::InProgress);
    assert_eq!(v.answered_at, Some(wall(0)));
    h.sip(CallEvent::Acked { sdp: None });
    assert_eq!(h.take(), vec![Ev::Notice(Notice::Acked)]);

    h.advance_to(ms(10_000));
    let sent = packets(&h.take());
    // One frame per 20 ms from the answer: 0, 20, ... 10 000 ms.
    assert_eq!(sent.len(), 501);
    assert!(sent.iter().all(|p| p.to == caller_addr()));
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    assert_eq!(h.take(), vec![Ev::Ended]);
    assert_eq!(e.reason, EndReason::CallerHangup);
    assert_eq!(e.sip_end, Some(SipEnd::RemoteBye));
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.sip_status, Some(200));
    assert_eq!(e.view.end_reason.as_deref(), Some("caller_hangup"));
    assert_eq!(e.view.duration_s, 10.0);
    assert_eq!(e.view.started_at, wall(0));
    assert_eq!(e.view.answered_at, Some(wall(0)));
    assert_eq!(e.view.ended_at, Some(wall(10)));
    assert_eq!((e.rtp_in, e.rtp_out), (0, 501));
    assert!(h.call.is_ended());
    assert_eq!(h.call.poll_timeout(), None);
}

#[test]
fn echo_with_answer_delay_rings_and_answers_after_the_virtual_delay() {
    let mut h = H::with_route(echo_route(Some(ms(2000))));
    assert_eq!(
        h.take(),
        vec![
            Ev::Notice(Notice::Ringing),
            Ev::Sip(crate::core::sip::endpoint::CallCommand::Ringing)
        ]
    );
    assert_eq!(h.call.view(h.now).status, CallStatus::Ringing);
    assert_eq!(h.call.poll_timeout(), Some(h.base + ms(2000)));
    h.advance_to(ms(1999));
    assert_eq!(h.take(), vec![]);
    h.advance_to(ms(2000));
    assert_eq!(h.take(), vec![Ev::Lease]);
    h.lease(Some(PORT));
    let evs = h.take();
    assert_eq!(answer_sdp(&evs).media[0].port, PORT);
    h.sip(CallEvent::Acked { sdp: None });
    h.advance_to(ms(5000));
    let e = h.dialog_ends(SipEnd::RemoteBye);
    assert_eq!(e.reason, EndReason::CallerHangup);
    assert_eq!(e.view.answered_at, Some(wall(2)));
    assert_eq!(e.view.ended_at, Some(wall(5)));
    assert_eq!(e.view.duration_s, 3.0);
    assert_eq!(e.view.status, CallStatus::Completed);
}

#[test]
fn cancel_during_the_answer_delay_ends_canceled_with_487() {
    let mut h = H::with_route(echo_route(Some(ms(2000))));
    h.advance_to(ms(1000));
    h.take();
    let e = h.dialog_ends(SipEnd::Canceled).clone();
    assert_eq!(h.take(), vec![Ev::Ended]);
    assert_eq!(e.reason, EndReason::Canceled);
    assert_eq!(e.sip_end, Some(SipEnd::Canceled));
    assert_eq!(e.view.status, CallStatus::Canceled);
    assert_eq!(e.view.sip_status, Some(487));
    assert_eq!(e.view.end_reason.as_deref(), Some("canceled"));
    assert_eq!(e.view.answered_at, None);
    assert_eq!(e.view.ended_at, Some(wall(1)));
    assert_eq!(e.view.duration_s, 0.0);
    // The delay's end does nothing any more.
    assert_eq!(h.call.poll_timeout(), None);
    h.advance_to(ms(3000));
    assert_eq!(h.take(), vec![]);
}

#[test]
fn the_echo_sends_the_callers_audio_back() {
    let mut h = answered(echo(None), settings());
    h.advance_to(ms(0));
    h.take();
    for k in 1..=10u64 {
        h.caller_audio(&tone(160));
        h.advance_to(ms(20 * k));
    }
    let sent = packets(&h.take());
    assert_eq!(sent.len(), 10);
    assert!(
        sent.iter().all(|p| !p.is_silence()),
        "the caller hears itself"
    );
}

fn echo_route(delay: Option<std::time::Duration>) -> crate::core::call::Route {
    crate::core::call::Route::Static(echo(delay))
}
