//! The agent leg's lifecycle: its drop (hang up, or reconnect once), its `hangup`, the caller's
//! BYE reaching it as `stop`, the API hanging up while ringing and while answered, and agent
//! noise that must not end the call.

use super::harness::*;
use crate::core::call::leg::ANSWERER;
use crate::core::call::{CallStatus, Command, EndReason, Input, Notice, Route};
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};

fn agent_closes(h: &mut H) {
    h.input(Input::AgentClosed { leg: ANSWERER });
}

fn reconnecting() -> H {
    let mut s = settings();
    s.reconnect_agent = true;
    answered(raw_agent(), s)
}

#[test]
fn agent_drop_without_reconnect_sends_bye_agent_disconnected() {
    let mut h = answered_raw();
    h.advance_to(ms(3000));
    h.take();
    agent_closes(&mut h);
    assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)]);
    h.advance_to(ms(3100));
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    // The WebSocket is gone: no stop, no close, just the end.
    assert_eq!(signalling(&h.take()), vec![Ev::Ended]);
    assert_eq!(e.reason, EndReason::AgentDisconnected);
    assert_eq!(e.view.end_reason.as_deref(), Some("agent_disconnected"));
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.sip_status, Some(200));
    assert_eq!(e.view.duration_s, 3.1);
}

#[test]
fn agent_drop_with_reconnect_dials_again_and_restarts_the_stream() {
    let mut h = reconnecting();
    h.advance_to(ms(1000));
    h.take();
    agent_closes(&mut h);
    assert_eq!(
        h.take(),
        vec![
            Ev::Notice(Notice::AgentReconnecting),
            Ev::Connect(AGENT_URL.into())
        ]
    );
    // Meanwhile the caller is heard by nobody, and hears silence: RTP keeps flowing.
    h.caller_audio(&tone(160));
    h.advance_to(ms(1500));
    let evs = h.take();
    assert!(agent_binaries(&evs).is_empty());
    assert_eq!(packets(&evs).len(), 25);
    assert!(sip_cmds(&evs).is_empty());
    h.agent_up();
    assert_eq!(agent_kinds(&h.take()), vec!["start"]);
    h.caller_audio(&tone(160));
    assert_eq!(agent_binaries(&h.take()).len(), 1);
    h.advance_to(ms(4000));
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    let evs = h.take();
    assert_eq!(agent_kinds(&evs), vec!["stop"]);
    assert_eq!(signalling(&evs)[1..], [Ev::Close, Ev::Ended]);
    assert_eq!(e.reason, EndReason::CallerHangup);
    assert_eq!(e.view.duration_s, 4.0);
}

#[test]
fn reconnect_failing_ends_agent_disconnected() {
    let mut h = reconnecting();
    h.advance_to(ms(1000));
    agent_closes(&mut h);
    h.take();
    h.advance_to(ms(2000));
    h.agent_fails();
    assert_eq!(signalling(&h.take()), vec![Ev::Sip(CallCommand::Hangup)]);
    let e = h.dialog_ends(SipEnd::LocalBye(200));
    assert_eq!(e.reason, EndReason::AgentDisconnected);
    assert_eq!(e.view.status, CallStatus::Completed);
}

#[test]
fn the_agent_is_reconnected_only_once() {
    let mut h = reconnecting();
    agent_closes(&mut h);
    h.agent_up();
    h.take();
    agent_closes(&mut h);
    assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)]);
    let e = h.dialog_ends(SipEnd::LocalBye(200));
    assert_eq!(e.reason, EndReason::AgentDisconnected);
}

#[test]
fn caller_bye_stops_the_agent_and_closes_it() {
    let mut h = answered_raw();
    h.advance_to(ms(7000));
    h.take();
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    let evs = h.take();
    let stop = &agent_json(&evs)[0];
    assert_eq!(stop["type"], "stop");
    assert_eq!(stop["reason"], "caller_hangup");
    assert!(matches!(
        evs.as_slice(),
        [Ev::Send(_), Ev::Close, Ev::Ended]
    ));
    assert_eq!(e.reason, EndReason::CallerHangup);
    assert_eq!(e.sip_end, Some(SipEnd::RemoteBye));
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.sip_status, Some(200));
    assert_eq!(e.view.end_reason.as_deref(), Some("caller_hangup"));
    assert_eq!(e.view.duration_s, 7.0);
    assert_eq!(e.view.ended_at, Some(wall(7)));
}

#[test]
fn agent_hangup_sends_bye_then_ends_agent_hangup() {
    let mut h = answered_raw();
    h.advance_to(ms(2000));
    h.take();
    h.agent_text(r#"{"type":"hangup"}"#);
    assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    let evs = h.take();
    assert_eq!(agent_json(&evs)[0]["reason"], "agent_hangup");
    assert_eq!(signalling(&evs)[1..], [Ev::Close, Ev::Ended]);
    assert_eq!(e.reason, EndReason::AgentHangup);
    assert_eq!(e.view.end_reason.as_deref(), Some("agent_hangup"));
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.duration_s, 2.0);
}

#[test]
fn api_hangup_while_answered_is_bye_api_hangup() {
    let mut h = answered_raw();
    h.advance_to(ms(1500));
    h.take();
    h.input(Input::Command(Command::Hangup));
    assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)]);
    // Asked twice (API retry): one BYE.
    h.call.command(h.now, Command::Hangup);
    assert_eq!(h.take(), vec![]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(agent_json(&h.take())[0]["reason"], "api_hangup");
    assert_eq!(e.reason, EndReason::ApiHangup);
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.sip_status, Some(200));
    assert_eq!(e.view.duration_s, 1.5);
}

#[test]
fn api_hangup_while_ringing_is_480_api_hangup_canceled() {
    let mut h = H::with_route(Route::Static(raw_agent()));
    h.advance_to(ms(800));
    h.take();
    h.input(Input::Command(Command::Hangup));
    // The INVITE gets 480 and the agent being dialled is dropped.
    assert_eq!(h.take(), vec![Ev::Close, reject(480)]);
    let e = h.dialog_ends(SipEnd::Rejected(480)).clone();
    assert_eq!(h.take(), vec![Ev::Ended]);
    assert_eq!(e.reason, EndReason::ApiHangup);
    assert_eq!(e.view.end_reason.as_deref(), Some("api_hangup"));
    assert_eq!(e.view.status, CallStatus::Canceled);
    assert_eq!(e.view.sip_status, Some(480));
    assert_eq!(e.view.answered_at, None);
}

/// The agent's connect can complete after the API hung up the ringing call (the endpoint's
/// end of the dialog is still on its way): the call must not be answered then.
#[test]
fn an_agent_connecting_after_a_hangup_while_ringing_does_not_answer() {
    let mut h = H::with_route(Route::Static(raw_agent()));
    h.take();
    h.input(Input::Command(Command::Hangup));
    h.take();
    h.agent_up();
    assert_eq!(h.take(), vec![], "no port lease, no 200 OK");
    let e = h.dialog_ends(SipEnd::Rejected(480)).clone();
    // The leg stays closed: it was closed once, with the rejection.
    assert_eq!(h.take(), vec![Ev::Ended]);
    assert_eq!(e.reason, EndReason::ApiHangup);
    assert_eq!(e.view.status, CallStatus::Canceled);
    assert_eq!(e.view.sip_status, Some(480));
}

#[test]
fn agent_noise_never_ends_the_call() {
    let mut h = answered_raw();
    h.agent_text("{not json");
    h.agent_text(r#"{"type":"dance"}"#);
    h.agent_text(r#"{"type":"transfer","to":"+15550003333"}"#);
    h.agent_binary(&[]);
    let evs = h.take();
    assert!(matches!(
        evs.as_slice(),
        [
            Ev::Notice(Notice::AgentFrameError(_)),
            Ev::Notice(Notice::AgentEventIgnored(dance)),
            Ev::Sip(CallCommand::Refer { .. }),
            Ev::Send(_),
            Ev::Notice(Notice::Transfer(t)),
            Ev::Notice(Notice::AgentFrameError(_)),
        ] if dance == "dance" && t.to == "+15550003333"
    ));
    h.advance_to(ms(100));
    assert!(!h.call.is_ended());
    assert!(sip_cmds(&h.take()).is_empty());
    h.sip(CallEvent::Info {
        content_type: "application/dtmf-relay".into(),
        body: b"Signal=7\r\nDuration=160\r\n".to_vec(),
    });
    let evs = h.take();
    assert_eq!(agent_json(&evs)[0]["digit"], "7");
    assert_eq!(signalling(&evs)[1], Ev::Notice(Notice::Dtmf('7')));
}
