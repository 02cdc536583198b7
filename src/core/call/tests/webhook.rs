//! Routing by webhook while the caller hears ringing: an agent to connect, a rejection, a
//! failure (with a static fallback, or without), and the caller cancelling meanwhile.

use super::harness::*;
use crate::core::agent::Dialect;
use crate::core::call::{CallStatus, EndReason, Notice};
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::WebhookFailure;
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};

fn connect(url: &str, dialect: Option<Dialect>) -> WebhookAnswer {
    WebhookAnswer::Connect {
        url: url.into(),
        dialect,
        sample_rate: None,
        encoding: None,
        parameters: vec![("tenant".into(), "t1".into())],
        record: None,
        extra_headers: None,
        callback_events: None,
        callback_url: None,
    }
}

fn asking(fallback: Option<crate::core::call::leg::Answerer>) -> H {
    let mut h = H::with_route(webhook_route(fallback));
    assert_eq!(
        h.take(),
        vec![
            Ev::Notice(Notice::Ringing),
            Ev::Sip(CallCommand::Ringing),
            Ev::Webhook(CALL_ID.into())
        ]
    );
    assert_eq!(h.call.view(h.now).status, CallStatus::Ringing);
    h
}

#[test]
fn webhook_answer_connects_its_agent_then_answers() {
    let mut h = asking(None);
    h.advance_to(ms(300));
    h.webhook(Ok(connect("wss://agents.test/a", Some(Dialect::Raw))));
    // Already ringing: no second 180.
    assert_eq!(h.take(), vec![Ev::Connect("wss://agents.test/a".into())]);
    h.advance_to(ms(500));
    h.agent_up();
    assert_eq!(h.take(), vec![Ev::Lease]);
    h.lease(Some(PORT));
    let evs = h.take();
    assert_eq!(answer_sdp(&evs).media[0].port, PORT);
    let start = &agent_json(&evs)[0];
    assert_eq!(start["type"], "start");
    assert_eq!(start["call_id"], CALL_ID);
    assert_eq!(start["stream_id"], "MZ0001");
    assert_eq!(start["account_id"], "ACtest");
    assert_eq!(start["direction"], "inbound");
    assert_eq!(start["from"], "+15550001111");
    assert_eq!(start["to"], "+15550002222");
    assert_eq!(start["custom_parameters"]["tenant"], "t1");
    assert_eq!(start["audio"]["sample_rate"], 8000);
    assert_eq!(h.call.view(h.now).answered_at, Some(wall_ms(500)));
    h.sip(CallEvent::Acked { sdp: None });
    h.advance_to(ms(2500));
    let e = h.dialog_ends(SipEnd::RemoteBye);
    assert_eq!(e.reason, EndReason::CallerHangup);
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.duration_s, 2.0);
}

#[test]
fn webhook_dialect_defaults_to_the_fallbacks_else_twilio() {
    // With a raw static agent as fallback, a dialect-less answer speaks raw.
    let mut h = asking(Some(raw_agent()));
    h.webhook(Ok(connect("wss://agents.test/a", None)));
    h.agent_up();
    h.lease(Some(PORT));
    assert_eq!(agent_kinds(&h.take()), vec!["start"]);
    // Without one, twilio: `connected` then `start` with the call's CallSid.
    let mut h = asking(None);
    h.webhook(Ok(connect("wss://agents.test/a", None)));
    h.agent_up();
    h.lease(Some(PORT));
    let evs = h.take();
    assert_eq!(agent_kinds(&evs), vec!["connected", "start"]);
    let start = &agent_json(&evs)[1];
    assert_eq!(start["start"]["callSid"], CALL_ID);
    assert_eq!(start["start"]["customParameters"]["tenant"], "t1");
}

#[test]
fn webhook_reject_486_ends_busy() {
    let mut h = asking(Some(raw_agent()));
    h.webhook(Ok(WebhookAnswer::Reject { status: 486 }));
    assert_eq!(h.take(), vec![reject(486)]);
    let e = h.dialog_ends(SipEnd::Rejected(486));
    assert_eq!(e.reason, EndReason::WebhookReject(486));
    assert_eq!(e.view.status, CallStatus::Busy);
    assert_eq!(e.view.sip_status, Some(486));
    assert_eq!(e.view.end_reason.as_deref(), Some("webhook_reject"));
}

#[test]
fn webhook_failure_with_a_static_fallback_proceeds_with_it() {
    let mut h = asking(Some(echo(None)));
    h.advance_to(ms(4000));
    h.webhook(Err(WebhookFailure::Timeout));
    assert_eq!(h.take(), vec![Ev::Lease]);
    h.lease(Some(PORT));
    assert_eq!(answer_sdp(&h.take()).media[0].port, PORT);
    h.sip(CallEvent::Acked { sdp: None });
    h.advance_to(ms(6000));
    let e = h.dialog_ends(SipEnd::RemoteBye);
    assert_eq!(e.reason, EndReason::CallerHangup);
    assert_eq!(e.view.answered_at, Some(wall(4)));
    assert_eq!(e.view.duration_s, 2.0);
}

#[test]
fn webhook_failure_without_fallback_rejects_by_the_failure() {
    let cases = [
        (WebhookFailure::Timeout, 480, "webhook_timeout"),
        (WebhookFailure::Status(500), 503, "webhook_http_error"),
        (
            WebhookFailure::Transport("refused".into()),
            503,
            "webhook_unreachable",
        ),
    ];
    for (failure, status, name) in cases {
        let mut h = asking(None);
        h.webhook(Err(failure.clone()));
        assert_eq!(h.take(), vec![reject(status)], "{name}");
        let e = h.dialog_ends(SipEnd::Rejected(status));
        assert_eq!(e.reason, EndReason::Webhook(failure));
        assert_eq!(e.view.end_reason.as_deref(), Some(name));
        assert_eq!(e.view.sip_status, Some(status));
        assert_eq!(e.view.status, CallStatus::Failed);
    }
}

#[test]
fn cancel_while_waiting_for_the_webhook_is_canceled() {
    let mut h = asking(Some(raw_agent()));
    h.advance_to(ms(1000));
    let e = h.dialog_ends(SipEnd::Canceled).clone();
    assert_eq!(h.take(), vec![Ev::Ended]);
    assert_eq!(e.reason, EndReason::Canceled);
    assert_eq!(e.view.status, CallStatus::Canceled);
    assert_eq!(e.view.sip_status, Some(487));
    assert_eq!(e.view.ended_at, Some(wall(1)));
    // The webhook's late answer is ignored.
    h.webhook(Ok(connect("wss://agents.test/a", None)));
    assert_eq!(h.take(), vec![]);
}
