//! Outbound calls (we are the UAC): lease, offer, ring, answer and the agent; every way an
//! outbound call fails before the answer (busy, no answer, ring timeout, API hangup, a 2xx
//! we cannot use), the time limit, early media, and Twilio's `Url`: the call's webhook asked
//! on answer.

use super::harness::*;
use crate::core::agent::Dialect;
use crate::core::call::dial::{DialPlan, OnAnswer};
use crate::core::call::{CallStatus, Command, EndReason, Input, Notice};
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::request::IncomingCall as WebhookRequest;
use crate::core::hooks::WebhookFailure;
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};
use crate::core::sip::sdp;

fn plan(ring_s: u64, limit_s: Option<u64>) -> DialPlan {
    DialPlan {
        answerer: raw_agent().into(),
        ring_timeout: ms(ring_s * 1000),
        time_limit: limit_s.map(|s| ms(s * 1000)),
        early_media: false,
    }
}

/// Leases, then dials with an offer of PCMU, PCMA and telephone-event on the leased port.
fn dialled(plan: DialPlan) -> H {
    let mut h = outbound(plan);
    assert_eq!(h.take(), vec![Ev::Lease]);
    assert_eq!(h.call.view(h.now).status, CallStatus::Queued);
    h.lease(Some(PORT));
    let evs = h.take();
    let [Ev::Dial(offer)] = evs.as_slice() else {
        panic!("expected the INVITE, got {evs:?}");
    };
    let sd = sdp::parse(&String::from_utf8_lossy(offer)).expect("our offer parses");
    assert_eq!(sd.media[0].port, PORT);
    assert_eq!(sd.media[0].formats, vec!["0", "8", "101"]);
    h
}

#[test]
fn answered_call_connects_the_agent_with_an_outbound_start_and_moves_audio() {
    let mut h = dialled(plan(30, None));
    h.sip(CallEvent::Progress {
        status: 180,
        sdp: None,
    });
    assert_eq!(h.take(), vec![Ev::Notice(Notice::Ringing)]);
    assert_eq!(h.call.view(h.now).status, CallStatus::Ringing);
    h.advance(ms(3000));
    h.sip(CallEvent::Answered {
        sdp: Some(CALLEE_ANSWER.as_bytes().to_vec()),
    });
    assert_eq!(
        signalling(&h.take()),
        vec![Ev::Notice(Notice::Answered), Ev::Connect(AGENT_URL.into())]
    );
    assert_eq!(h.call.view(h.now).status, CallStatus::InProgress);
    h.agent_up();
    let start = agent_json(&h.take());
    assert_eq!(start[0]["type"], "start", "{start:?}");
    assert_eq!(start[0]["direction"], "outbound", "{start:?}");
    // The callee's PCMA audio reaches the agent.
    h.caller_datagram(&audio_packet(8, 1, 160, &tone(160)));
    h.caller_datagram(&audio_packet(8, 2, 320, &tone(160)));
    assert!(!agent_binaries(&h.take()).is_empty());
    // The agent's audio goes out as PCMA to the answer's address.
    h.agent_pcm(&tone(160));
    h.advance(ms(100));
    let sent = packets(&h.take());
    assert!(!sent.is_empty());
    assert!(sent
        .iter()
        .all(|p| p.header.payload_type == 8 && p.to == caller_addr()));
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    assert_eq!(e.reason, EndReason::CalleeHangup);
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.end_reason.as_deref(), Some("callee_hangup"));
    assert_eq!(e.view.sip_status, Some(200));
}

#[test]
fn busy_no_answer_and_rejections_map_through_the_table() {
    let cases = [
        (486, CallStatus::Busy, "callee_busy"),
        (600, CallStatus::Busy, "callee_busy"),
        (408, CallStatus::NoAnswer, "no_answer"),
        (480, CallStatus::NoAnswer, "no_answer"),
        (487, CallStatus::NoAnswer, "no_answer"),
        (404, CallStatus::Failed, "callee_rejected"),
        (603, CallStatus::Failed, "callee_rejected"),
        (503, CallStatus::Failed, "callee_rejected"),
    ];
    for (status, call_status, reason) in cases {
        let mut h = dialled(plan(30, None));
        let e = h.dialog_ends(SipEnd::Refused(status)).clone();
        assert_eq!(e.view.status, call_status, "{status}");
        assert_eq!(e.view.end_reason.as_deref(), Some(reason), "{status}");
        assert_eq!(e.view.sip_status, Some(status));
        assert_eq!(e.view.answered_at, None);
        assert_eq!(h.take(), vec![Ev::Ended]);
    }
}

#[test]
fn a_redirect_fails_the_call_with_the_contact_in_the_record() {
    let mut h = dialled(plan(30, None));
    h.sip(CallEvent::Redirected {
        contact: "<sip:+4899@elsewhere.example>".into(),
    });
    let e = h.dialog_ends(SipEnd::Refused(302)).clone();
    assert_eq!(e.view.status, CallStatus::Failed);
    assert_eq!(e.view.end_reason.as_deref(), Some("redirected"));
    assert_eq!(
        e.view.redirect_contact.as_deref(),
        Some("<sip:+4899@elsewhere.example>")
    );
}

#[test]
fn ring_timeout_cancels_and_ends_no_answer() {
    let mut h = dialled(plan(20, None));
    h.sip(CallEvent::Progress {
        status: 183,
        sdp: None,
    });
    h.take();
    h.advance_to(ms(19_999));
    assert_eq!(h.take(), vec![]);
    h.advance_to(ms(20_000));
    assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)]);
    let e = h.dialog_ends(SipEnd::Refused(487)).clone();
    assert_eq!(e.reason, EndReason::RingTimeout);
    assert_eq!(e.view.status, CallStatus::NoAnswer);
    assert_eq!(e.view.sip_status, Some(487));
}

#[test]
fn api_hangup_while_ringing_cancels_and_ends_canceled() {
    let mut h = dialled(plan(30, None));
    h.input(Input::Command(Command::Hangup));
    assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)]);
    // The 200 crossed the CANCEL: the endpoint ACKs and BYEs on its own; the machine ignores it.
    h.sip(CallEvent::Answered {
        sdp: Some(CALLEE_ANSWER.as_bytes().to_vec()),
    });
    assert_eq!(h.take(), vec![]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.reason, EndReason::ApiHangup);
    assert_eq!(e.view.status, CallStatus::Canceled);
}

#[test]
fn api_hangup_before_the_invite_went_out_ends_at_once() {
    let mut h = outbound(plan(30, None));
    assert_eq!(h.take(), vec![Ev::Lease]);
    h.input(Input::Command(Command::Hangup));
    assert_eq!(h.take(), vec![Ev::Ended]);
    let e = h.ended.clone().expect("ended");
    assert_eq!(e.view.status, CallStatus::Canceled);
    // The port that comes late is ignored.
    h.lease(Some(PORT));
    assert_eq!(h.take(), vec![]);
}

#[test]
fn no_media_port_fails_without_dialling() {
    let mut h = outbound(plan(30, None));
    h.take();
    h.lease(None);
    assert_eq!(h.take(), vec![Ev::Ended]);
    let e = h.ended.clone().expect("ended");
    assert_eq!(e.reason, EndReason::NoMediaPorts);
    assert_eq!(e.view.status, CallStatus::Failed);
}

#[test]
fn a_2xx_without_sdp_or_without_a_common_codec_is_hung_up_as_failed() {
    let g722 = CALLEE_ANSWER
        .replace("RTP/AVP 8 101", "RTP/AVP 9")
        .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:9 G722/8000");
    for (sdp, reason) in [
        (None, "no_sdp_answer"),
        (Some(g722.into_bytes()), "no_common_codec"),
        (Some(b"garbage".to_vec()), "sdp_unparsable"),
    ] {
        let mut h = dialled(plan(30, None));
        h.sip(CallEvent::Answered { sdp });
        assert_eq!(h.take(), vec![Ev::Sip(CallCommand::Hangup)], "{reason}");
        let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
        assert_eq!(e.view.status, CallStatus::Failed, "{reason}");
        assert_eq!(e.view.end_reason.as_deref(), Some(reason));
        assert_eq!(e.view.answered_at, None);
    }
}

#[test]
fn time_limit_hangs_up_the_answered_call() {
    // (Under the 30 s RTP timeout, which would end the silent call first.)
    let mut h = dialled(plan(30, Some(20)));
    h.advance(ms(1000));
    h.sip(CallEvent::Answered {
        sdp: Some(CALLEE_ANSWER.as_bytes().to_vec()),
    });
    h.agent_up();
    h.take();
    h.advance_to(ms(20_999));
    assert!(!sip_cmds(&h.take()).contains(&CallCommand::Hangup));
    h.advance_to(ms(21_000));
    assert_eq!(sip_cmds(&h.take()), vec![CallCommand::Hangup]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.reason, EndReason::TimeLimit);
    assert_eq!(e.view.status, CallStatus::Completed);
    assert_eq!(e.view.duration_s, 20.0);
}

#[test]
fn agent_connect_failure_after_the_answer_hangs_up() {
    let mut h = dialled(DialPlan {
        answerer: crate::core::call::leg::Answerer::Agent(target(Dialect::Twilio)).into(),
        ring_timeout: ms(30_000),
        time_limit: None,
        early_media: false,
    });
    h.sip(CallEvent::Answered {
        sdp: Some(CALLEE_ANSWER.as_bytes().to_vec()),
    });
    h.take();
    h.agent_fails();
    assert_eq!(sip_cmds(&h.take()), vec![CallCommand::Hangup]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.view.status, CallStatus::Completed);
}

#[test]
fn auth_failure_is_failed_with_the_challenge_status() {
    let mut h = dialled(plan(30, None));
    let e = h.dialog_ends(SipEnd::AuthFailed(407)).clone();
    assert_eq!(e.view.status, CallStatus::Failed);
    assert_eq!(e.view.end_reason.as_deref(), Some("auth_failed"));
    assert_eq!(e.view.sip_status, Some(407));
}

#[test]
fn early_media_connects_the_agent_on_183_and_it_hears_the_callee_before_the_answer() {
    let mut h = dialled(DialPlan {
        early_media: true,
        ..plan(30, None)
    });
    h.sip(CallEvent::Progress {
        status: 183,
        sdp: Some(CALLEE_ANSWER.as_bytes().to_vec()),
    });
    assert_eq!(
        signalling(&h.take()),
        vec![Ev::Notice(Notice::Ringing), Ev::Connect(AGENT_URL.into())]
    );
    h.agent_up();
    assert_eq!(agent_json(&h.take())[0]["type"], "start");
    assert_eq!(h.call.view(h.now).status, CallStatus::Ringing);
    // The callee's announcement reaches the agent before the answer.
    h.caller_datagram(&audio_packet(8, 1, 160, &tone(160)));
    h.caller_datagram(&audio_packet(8, 2, 320, &tone(160)));
    assert!(!agent_binaries(&h.take()).is_empty());
    // The 2xx without SDP keeps the early answer; the agent is not connected again.
    h.sip(CallEvent::Answered { sdp: None });
    assert_eq!(signalling(&h.take()), vec![Ev::Notice(Notice::Answered)]);
    assert_eq!(h.call.view(h.now).status, CallStatus::InProgress);
}

#[test]
fn without_early_media_a_183_with_sdp_only_rings() {
    let mut h = dialled(plan(30, None));
    h.sip(CallEvent::Progress {
        status: 183,
        sdp: Some(CALLEE_ANSWER.as_bytes().to_vec()),
    });
    assert_eq!(h.take(), vec![Ev::Notice(Notice::Ringing)]);
    h.caller_datagram(&audio_packet(8, 1, 160, &tone(160)));
    assert_eq!(h.take(), vec![]);
}

/// Twilio's `Url`: the call's own webhook, asked once the callee has answered.
fn ask_on_answer() -> H {
    let mut h = dialled(DialPlan {
        answerer: OnAnswer::AskWebhook(Box::new(WebhookRequest {
            call_id: CALL_ID.into(),
            outbound_url: Some("http://app.test/twiml".into()),
            ..WebhookRequest::default()
        })),
        ring_timeout: ms(30_000),
        time_limit: None,
        early_media: false,
    });
    h.sip(CallEvent::Progress {
        status: 180,
        sdp: None,
    });
    // Ringing is not answering: nothing is asked yet.
    assert_eq!(h.take(), vec![Ev::Notice(Notice::Ringing)]);
    h.sip(CallEvent::Answered {
        sdp: Some(CALLEE_ANSWER.as_bytes().to_vec()),
    });
    assert_eq!(
        signalling(&h.take()),
        vec![Ev::Notice(Notice::Answered), Ev::Webhook(CALL_ID.into())]
    );
    assert_eq!(h.call.view(h.now).status, CallStatus::InProgress);
    h
}

#[test]
fn the_webhook_asked_on_answer_names_the_agent() {
    let mut h = ask_on_answer();
    h.webhook(Ok(WebhookAnswer::Connect {
        url: AGENT_URL.into(),
        dialect: None,
        sample_rate: None,
        encoding: None,
        parameters: vec![("k".into(), "v".into())],
        record: None,
        extra_headers: None,
        callback_events: None,
        callback_url: None,
    }));
    assert_eq!(signalling(&h.take()), vec![Ev::Connect(AGENT_URL.into())]);
    h.agent_up();
    // TwiML names no dialect: Twilio's, with the call's own CallSid.
    let msgs = agent_json(&h.take());
    let start = msgs
        .iter()
        .find(|m| m["event"] == "start")
        .expect("a twilio start");
    assert_eq!(start["start"]["callSid"], CALL_ID, "{start}");
    assert_eq!(start["start"]["customParameters"]["k"], "v", "{start}");
    // A second answer (there is none in practice) changes nothing.
    h.input(Input::Webhook(Err(WebhookFailure::Timeout)));
    assert_eq!(sip_cmds(&h.take()), vec![]);
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    assert_eq!(e.reason, EndReason::CalleeHangup);
}

#[test]
fn a_webhook_reject_or_failure_on_answer_hangs_up() {
    let cases = [
        (
            Ok(WebhookAnswer::Reject { status: 603 }),
            EndReason::WebhookReject(603),
        ),
        (
            Err(WebhookFailure::Status(500)),
            EndReason::Webhook(WebhookFailure::Status(500)),
        ),
    ];
    for (answer, reason) in cases {
        let mut h = ask_on_answer();
        h.webhook(answer);
        assert_eq!(signalling(&h.take()), vec![Ev::Sip(CallCommand::Hangup)]);
        let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
        assert_eq!(e.reason, reason);
        // The callee did answer: Twilio calls such a call completed.
        assert_eq!(e.view.status, CallStatus::Completed);
    }
    // The callee hangs up first: the late answer connects nothing.
    let mut h = ask_on_answer();
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    assert_eq!(e.reason, EndReason::CalleeHangup);
    h.take();
    h.input(Input::Webhook(Err(WebhookFailure::Timeout)));
    assert_eq!(h.take(), vec![]);
}
