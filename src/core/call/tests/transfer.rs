//! Transfers on a virtual clock: REFER accepted and completed, refused, failing in its
//! NOTIFY, never completed (timeout); PBX hand-back (`notify`) ended by the PBX's BYE, by
//! our BYE after `await_bye`, or failing so the agent keeps the call; asked by the API or by
//! the agent; one at a time.

use std::time::Duration;

use super::harness::*;
use crate::core::call::transfer::{Fallback, Mode, Outcome, Policy, Request};
use crate::core::call::{Command, EndReason, Input, Notice, Route};
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};

const AWAIT_BYE: Duration = Duration::from_secs(5);
const REFER_TIMEOUT: Duration = Duration::from_secs(4);

fn policy(mode: Mode) -> Policy {
    Policy {
        mode,
        await_bye: AWAIT_BYE,
        refer_timeout: REFER_TIMEOUT,
        ring_timeout: REFER_TIMEOUT,
        notify_configured: true,
        refer_host: "pbx.example".into(),
        referred_by: Some("sip:trunkgate@192.0.2.1".into()),
    }
}

/// A raw-agent call with these transfer settings, answered, acknowledged, the log empty.
fn answered_with(p: Policy) -> H {
    let mut s = setup(Route::Static(raw_agent()));
    s.transfer = p;
    let mut h = H::new(s, settings());
    h.agent_up();
    h.lease(Some(PORT));
    h.sip(CallEvent::Acked { sdp: None });
    h.take();
    h
}

fn api_transfer(h: &mut H, to: &str, mode: Option<Mode>) {
    h.input(Input::Command(Command::Transfer(Request {
        to: to.into(),
        mode,
        fallback: Some(Fallback::Resume),
    })));
}

fn transfers(evs: &[Ev]) -> Vec<(Outcome, Option<u16>)> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Notice(Notice::Transfer(p)) => Some((p.outcome, p.sip_status)),
            _ => None,
        })
        .collect()
}

fn agent_outcomes(evs: &[Ev]) -> Vec<String> {
    agent_json(evs)
        .iter()
        .filter(|j| j["type"] == "transfer")
        .map(|j| j["outcome"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn refer_accepted_then_notify_200_is_bye_and_transferred() {
    let mut h = answered_with(policy(Mode::Refer));
    api_transfer(&mut h, "+15550003333", None);
    let evs = h.take();
    assert_eq!(
        sip_cmds(&evs),
        vec![CallCommand::Refer {
            refer_to: "sip:+15550003333@pbx.example".into(),
            referred_by: Some("sip:trunkgate@192.0.2.1".into()),
        }]
    );
    assert_eq!(transfers(&evs), vec![(Outcome::Trying, None)]);
    assert_eq!(agent_outcomes(&evs), vec!["trying"]);
    h.sip(CallEvent::ReferResult { status: 202 });
    h.sip(CallEvent::ReferProgress {
        status: 100,
        terminated: false,
    });
    assert!(sip_cmds(&h.take()).is_empty());
    h.sip(CallEvent::ReferProgress {
        status: 200,
        terminated: true,
    });
    let evs = h.take();
    assert_eq!(transfers(&evs), vec![(Outcome::Succeeded, Some(200))]);
    assert_eq!(agent_outcomes(&evs), vec!["succeeded"]);
    assert_eq!(sip_cmds(&evs), vec![CallCommand::Hangup]);
    assert!(evs.contains(&Ev::Close));
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.reason, EndReason::Transferred);
    assert_eq!(e.view.end_reason.as_deref(), Some("transferred"));
    let t = e.view.transfer.expect("the view keeps the transfer");
    assert_eq!((t.mode, t.outcome), (Mode::Refer, Outcome::Succeeded));
}

#[test]
fn refused_refer_resumes_the_agent() {
    let mut h = answered_with(policy(Mode::Refer));
    api_transfer(&mut h, "sip:desk@pbx.example", None);
    let evs = h.take();
    assert!(matches!(
        sip_cmds(&evs).as_slice(),
        [CallCommand::Refer { refer_to, .. }] if refer_to == "sip:desk@pbx.example"
    ));
    h.sip(CallEvent::ReferResult { status: 403 });
    let evs = h.take();
    assert_eq!(transfers(&evs), vec![(Outcome::Failed, Some(403))]);
    assert_eq!(agent_outcomes(&evs), vec!["failed"]);
    assert!(sip_cmds(&evs).is_empty());
    // The agent keeps the call: its audio still reaches the caller.
    h.agent_pcm(&tone(160));
    h.advance(ms(40));
    assert!(packets(&h.take()).iter().any(|p| !p.is_silence()));
    assert!(!h.call.is_ended());
}

#[test]
fn a_failing_sipfrag_resumes_and_a_late_one_changes_nothing() {
    let mut h = answered_with(policy(Mode::Refer));
    api_transfer(&mut h, "+15550003333", None);
    h.sip(CallEvent::ReferResult { status: 202 });
    h.take();
    h.sip(CallEvent::ReferProgress {
        status: 486,
        terminated: true,
    });
    let evs = h.take();
    assert_eq!(transfers(&evs), vec![(Outcome::Failed, Some(486))]);
    assert!(sip_cmds(&evs).is_empty());
    h.sip(CallEvent::ReferProgress {
        status: 200,
        terminated: true,
    });
    assert!(h.take().is_empty() || sip_cmds(&h.take()).is_empty());
    assert!(!h.call.is_ended());
}

#[test]
fn no_final_notify_in_time_resumes_with_408() {
    let mut h = answered_with(policy(Mode::Refer));
    api_transfer(&mut h, "+15550003333", None);
    h.sip(CallEvent::ReferResult { status: 202 });
    h.take();
    h.caller_audio(&tone(160));
    h.advance(REFER_TIMEOUT - ms(20));
    assert!(transfers(&h.take()).is_empty());
    h.advance(ms(40));
    let evs = h.take();
    assert_eq!(transfers(&evs), vec![(Outcome::Failed, Some(408))]);
    assert!(sip_cmds(&evs).is_empty());
    assert!(!h.call.is_ended());
}

#[test]
fn the_agent_asks_and_a_second_transfer_meanwhile_is_refused() {
    let mut h = answered_with(policy(Mode::Refer));
    h.agent_text(r#"{"type":"transfer","to":"+15550003333"}"#);
    let evs = h.take();
    assert_eq!(sip_cmds(&evs).len(), 1);
    assert_eq!(transfers(&evs), vec![(Outcome::Trying, None)]);
    api_transfer(&mut h, "+15550004444", None);
    let evs = h.take();
    assert!(sip_cmds(&evs).is_empty());
    assert_eq!(transfers(&evs), vec![(Outcome::Failed, Some(491))]);
}

#[test]
fn notify_hand_back_ends_with_the_pbx_bye_as_transferred() {
    let mut h = answered_with(policy(Mode::Notify));
    api_transfer(&mut h, "+15550003333", None);
    let evs = h.take();
    assert!(evs.contains(&Ev::NotifyPbx("+15550003333".into())));
    assert!(sip_cmds(&evs).is_empty());
    assert_eq!(transfers(&evs), vec![(Outcome::Trying, None)]);
    h.input(Input::NotifyResult(Ok(200)));
    let evs = h.take();
    assert_eq!(transfers(&evs), vec![(Outcome::Succeeded, None)]);
    // The agent is told, then its stream stops; we do not BYE — the PBX does.
    assert_eq!(agent_kinds(&evs), vec!["transfer", "stop"]);
    assert!(evs.contains(&Ev::Close));
    assert!(sip_cmds(&evs).is_empty());
    h.input(Input::AgentClosed {
        leg: crate::core::call::leg::ANSWERER,
    });
    h.caller_audio(&tone(160));
    h.advance(ms(500));
    assert!(sip_cmds(&h.take()).is_empty());
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    assert_eq!(e.reason, EndReason::Transferred);
}

#[test]
fn notify_without_the_pbx_bye_is_our_bye_after_await_bye() {
    let mut h = answered_with(policy(Mode::Notify));
    api_transfer(&mut h, "+15550003333", None);
    h.input(Input::NotifyResult(Ok(204)));
    h.take();
    h.caller_audio(&tone(160));
    h.advance(AWAIT_BYE - ms(20));
    assert!(sip_cmds(&h.take()).is_empty());
    h.advance(ms(40));
    assert_eq!(sip_cmds(&h.take()), vec![CallCommand::Hangup]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.reason, EndReason::Transferred);
}

#[test]
fn a_failed_notification_leaves_the_call_with_the_agent() {
    for result in [Ok(500), Err("connection refused".to_string())] {
        let mut h = answered_with(policy(Mode::Notify));
        api_transfer(&mut h, "+15550003333", None);
        h.take();
        let status = result.as_ref().ok().copied();
        h.input(Input::NotifyResult(result));
        let evs = h.take();
        assert_eq!(transfers(&evs), vec![(Outcome::Failed, status)]);
        assert_eq!(agent_outcomes(&evs), vec!["failed"]);
        assert!(!evs.contains(&Ev::Close));
        assert!(!h.call.is_ended());
    }
}

#[test]
fn modes_that_cannot_run_fail_at_once() {
    // No PBX URL for notify; an empty target.
    let mut p = policy(Mode::Notify);
    p.notify_configured = false;
    let mut h = answered_with(p);
    api_transfer(&mut h, "+15550003333", None);
    api_transfer(&mut h, "", Some(Mode::Bridge));
    // An agent's target that would break out of the Refer-To header.
    api_transfer(&mut h, "sip:a@b>\r\nX-Evil: 1", Some(Mode::Refer));
    let evs = h.take();
    assert_eq!(
        transfers(&evs),
        vec![
            (Outcome::Failed, None),
            (Outcome::Failed, None),
            (Outcome::Failed, None)
        ]
    );
    assert!(sip_cmds(&evs).is_empty());
    assert!(!h.call.is_ended());
}

#[test]
fn a_transfer_before_the_answer_fails() {
    let mut h = H::with_route(webhook_route(None));
    h.take();
    api_transfer(&mut h, "+15550003333", Some(Mode::Refer));
    let evs = h.take();
    assert_eq!(transfers(&evs), vec![(Outcome::Failed, None)]);
    assert!(sip_cmds(&evs).is_empty());
}

#[test]
fn a_refer_asked_before_the_ack_waits_for_it() {
    let mut s = setup(Route::Static(raw_agent()));
    s.transfer = policy(Mode::Refer);
    let mut h = H::new(s, settings());
    h.agent_up();
    h.lease(Some(PORT));
    h.take();
    h.agent_text(r#"{"type":"transfer","to":"+15550003333"}"#);
    let evs = h.take();
    assert!(sip_cmds(&evs).is_empty());
    assert_eq!(transfers(&evs), vec![(Outcome::Trying, None)]);
    h.sip(CallEvent::Acked { sdp: None });
    assert!(matches!(
        sip_cmds(&h.take()).as_slice(),
        [CallCommand::Refer { .. }]
    ));
}
