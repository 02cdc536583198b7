//! Ends decided by the machine or by admission: the RTP timeout (and a held call that is not
//! timed out), the duration and minutes caps, shutdown, and a 200 OK never acknowledged.

use super::harness::*;
use crate::core::call::{CallStatus, EndReason, Input, Notice, Route};
use crate::core::policy::CutReason;
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};
use crate::core::sip::sdp::Direction;

/// Where our BYE was asked for, in virtual time.
fn hangup_at(evs: &[Ev]) -> Option<std::time::Duration> {
    let mut last_tick = None;
    for e in evs {
        match e {
            Ev::Rtp(p) => last_tick = Some(p.at),
            Ev::Sip(CallCommand::Hangup) => return last_tick,
            _ => {}
        }
    }
    None
}

#[test]
fn no_rtp_for_rtp_timeout_hangs_up_rtp_timeout() {
    let mut h = answered_raw();
    h.advance_to(RTP_TIMEOUT - ms(20));
    assert!(sip_cmds(&h.take()).is_empty());
    h.advance_to(RTP_TIMEOUT);
    let evs = h.take();
    assert_eq!(sip_cmds(&evs), vec![CallCommand::Hangup]);
    assert_eq!(hangup_at(&evs), Some(RTP_TIMEOUT));
    // Ticks go on until the BYE completes; no second BYE.
    h.advance(ms(200));
    assert!(sip_cmds(&h.take()).is_empty());
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(agent_json(&h.take())[0]["reason"], "rtp_timeout");
    assert_eq!(e.reason, EndReason::RtpTimeout);
    assert_eq!(e.view.end_reason.as_deref(), Some("rtp_timeout"));
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.duration_s, 30.2);
}

#[test]
fn caller_rtp_restarts_the_timeout() {
    let mut h = answered_raw();
    h.advance_to(ms(10_000));
    h.caller_audio(&tone(160));
    h.advance_to(ms(10_000) + RTP_TIMEOUT - ms(20));
    assert!(sip_cmds(&h.take()).is_empty());
    h.advance_to(ms(10_000) + RTP_TIMEOUT);
    assert_eq!(hangup_at(&h.take()), Some(ms(10_000) + RTP_TIMEOUT));
}

#[test]
fn a_held_call_is_not_timed_out_and_hears_nothing() {
    let mut h = answered_raw();
    h.advance_to(ms(1000));
    h.take();
    h.sip(CallEvent::ReInvite {
        sdp: Some(offer_with("sendonly").into_bytes()),
    });
    let evs = h.take();
    let answer = match sip_cmds(&evs).as_slice() {
        [CallCommand::ReInviteAnswer { sdp }] => sdp.clone(),
        other => panic!("expected a re-INVITE answer, got {other:?}"),
    };
    let answer = crate::core::sip::sdp::parse(&String::from_utf8_lossy(&answer)).unwrap();
    assert_eq!(answer.media[0].direction, Direction::RecvOnly);
    assert_eq!(answer.media[0].port, PORT);
    // Three timeouts' worth of hold: no BYE, and no RTP to a caller who said it only sends.
    h.advance(RTP_TIMEOUT * 3);
    let evs = h.take();
    assert!(sip_cmds(&evs).is_empty());
    assert_eq!(packets(&evs).len(), 0);
    // Taken off hold: media flows again and the timeout counts from here.
    let unhold_at = h.at();
    h.sip(CallEvent::ReInvite {
        sdp: Some(OFFER.as_bytes().to_vec()),
    });
    h.advance(RTP_TIMEOUT);
    let evs = h.take();
    assert_eq!(packets(&evs).len(), 1500);
    assert_eq!(hangup_at(&evs), Some(unhold_at + RTP_TIMEOUT));
}

#[test]
fn a_caller_that_only_receives_still_gets_our_audio() {
    let mut s = setup(Route::Static(raw_agent()));
    s.offer = Some(offer_with("recvonly").into_bytes());
    let mut h = H::new(s, settings());
    h.agent_up();
    h.lease(Some(PORT));
    assert_eq!(
        answer_sdp(&h.take()).media[0].direction,
        Direction::SendOnly
    );
    h.advance_to(ms(1000));
    assert_eq!(packets(&h.take()).len(), 51);
}

#[test]
fn unreadable_reinvite_is_488_and_the_call_goes_on() {
    let mut h = answered_raw();
    h.sip(CallEvent::ReInvite {
        sdp: Some(b"garbage".to_vec()),
    });
    assert_eq!(
        h.take(),
        vec![Ev::Sip(CallCommand::ReInviteReject { status: 488 })]
    );
    h.advance_to(ms(100));
    assert_eq!(packets(&h.take()).len(), 6);
}

#[test]
fn duration_cap_hangs_up_duration_cap() {
    let mut h = answered_raw();
    h.advance_to(ms(20_000));
    h.take();
    h.input(Input::Cut(CutReason::CallDuration));
    assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(agent_json(&h.take())[0]["reason"], "duration_cap");
    assert_eq!(e.reason, EndReason::DurationCap);
    assert_eq!(e.view.end_reason.as_deref(), Some("duration_cap"));
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.duration_s, 20.0);
}

#[test]
fn minutes_cap_hangs_up_minutes_cap_answered_or_ringing() {
    let mut h = answered_raw();
    h.input(Input::Cut(CutReason::DailyMinutes));
    assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)]);
    let e = h.dialog_ends(SipEnd::LocalBye(200));
    assert_eq!(e.reason, EndReason::MinutesCap);
    assert_eq!(e.view.end_reason.as_deref(), Some("minutes_cap"));
    assert_eq!(e.view.sip_status, Some(200));

    let mut h = H::with_route(webhook_route(None));
    h.take();
    h.input(Input::Cut(CutReason::DailyMinutes));
    assert_eq!(h.take(), vec![reject(480)]);
    // The webhook's answer, still on its way, dials no agent for the refused call.
    h.webhook(Ok(crate::core::hooks::answer::WebhookAnswer::Connect {
        url: AGENT_URL.into(),
        dialect: None,
        sample_rate: None,
        encoding: None,
        parameters: Vec::new(),
        record: None,
        extra_headers: None,
        callback_events: None,
        callback_url: None,
    }));
    assert_eq!(h.take(), vec![]);
    let e = h.dialog_ends(SipEnd::Rejected(480));
    assert_eq!(e.reason, EndReason::MinutesCap);
    assert_eq!(e.view.status, CallStatus::Failed);
    assert_eq!(e.view.sip_status, Some(480));
}

#[test]
fn shutdown_ends_an_answered_call_shutdown() {
    let mut h = answered_raw();
    h.advance_to(ms(1000));
    h.input(Input::Shutdown);
    assert_eq!(sip_cmds(&h.take()), vec![CallCommand::Hangup]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(agent_json(&h.take())[0]["reason"], "shutdown");
    assert_eq!(e.reason, EndReason::Shutdown);
    assert_eq!(e.view.end_reason.as_deref(), Some("shutdown"));
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.sip_status, Some(200));
}

/// A ringing call is refused with the status its record shows (503), not the endpoint's
/// generic 480 for a hangup before the answer.
#[test]
fn shutdown_while_ringing_is_503_shutdown() {
    let mut h = H::with_route(Route::Static(echo(Some(ms(3000)))));
    h.advance_to(ms(1000));
    h.take();
    h.input(Input::Shutdown);
    assert_eq!(h.take(), vec![reject(503)]);
    // The echo's delay runs out meanwhile: nothing is answered.
    h.advance_to(ms(4000));
    assert_eq!(h.take(), vec![]);
    let e = h.dialog_ends(SipEnd::Rejected(503));
    assert_eq!(e.reason, EndReason::Shutdown);
    assert_eq!(e.view.sip_status, Some(503));
    assert_eq!(e.view.status, CallStatus::Failed);
}

#[test]
fn a_200_never_acknowledged_ends_no_ack() {
    let mut h = H::with_route(Route::Static(raw_agent()));
    h.agent_up();
    h.lease(Some(PORT));
    h.advance_to(ms(20_000));
    let evs = h.take();
    assert!(!evs.contains(&Ev::Notice(Notice::Acked)));
    let e = h.dialog_ends(SipEnd::NoAck).clone();
    assert_eq!(agent_kinds(&h.take()), vec!["stop"]);
    assert_eq!(e.reason, EndReason::NoAck);
    assert_eq!(e.sip_end, Some(SipEnd::NoAck));
    assert_eq!(e.view.end_reason.as_deref(), Some("no_ack"));
    assert_eq!(e.view.sip_status, Some(200));
}

#[test]
fn checkpoints_come_every_period_while_answered() {
    let mut s = settings();
    s.checkpoint_every = Some(ms(10_000));
    let mut h = answered(raw_agent(), s);
    h.advance_to(ms(25_000));
    let checkpoints = h
        .take()
        .iter()
        .filter(|e| **e == Ev::Notice(Notice::Checkpoint))
        .count();
    assert_eq!(checkpoints, 2);
}
