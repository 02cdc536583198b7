//! A call's life outside the media path: routing (static, or the webhook while the caller
//! hears ringing, with the static agent as fallback), the SDP check, the agent connect, the
//! port lease, the answer, and every way it ends — a rejection, our hangup, the caller's.

use std::time::Instant;

use super::leg::{AgentLeg, AgentTarget, AnswerLeg, Answerer, WsState, ANSWERER};
use super::media::SipMedia;
use super::{Call, EndReason, Ended, Notice, Output, Phase, Route};
use crate::core::agent::echo::EchoAgent;
use crate::core::agent::Dialect;
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::WebhookFailure;
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};
use crate::core::sip::sdp::{self, AnswerParams, SessionDescription};

impl Call {
    /// The first step: ask the webhook, or go straight to the static answerer.
    pub(super) fn route(&mut self, now: Instant) {
        // Routing happens once: the route (and its webhook request) moves out of the setup.
        match std::mem::replace(&mut self.setup.route, Route::None) {
            Route::Webhook { request, fallback } => {
                self.fallback = fallback;
                self.ring();
                self.out.push_back(Output::AskWebhook(request));
            }
            Route::Static(answerer) => self.proceed(now, answerer),
            Route::None => self.reject(EndReason::NoRoute),
            Route::Dial(plan) => self.start_dial(*plan),
        }
    }

    fn ring(&mut self) {
        if !self.ringing {
            self.ringing = true;
            // The notice goes first so the registry and the journal know before the peer does.
            self.notice(Notice::Ringing);
            self.sip(CallCommand::Ringing);
        }
    }

    pub(super) fn on_webhook(
        &mut self,
        now: Instant,
        answer: Result<WebhookAnswer, WebhookFailure>,
    ) {
        if self.is_outbound() {
            return self.on_dial_webhook(answer);
        }
        if self.phase != Phase::Routing {
            return;
        }
        match answer {
            Ok(WebhookAnswer::Connect {
                url,
                dialect,
                sample_rate,
                encoding,
                parameters,
                extra_headers,
                record,
                ..
            }) => {
                if record == Some(true) && self.tap.is_none() {
                    self.tap = Some(super::record_tap::RecordTap::new());
                }
                let fallback = match &self.fallback {
                    Some(Answerer::Agent(t)) => Some(t),
                    _ => None,
                };
                let target = AgentTarget {
                    url,
                    dialect: dialect
                        .or(fallback.map(|t| t.dialect))
                        .unwrap_or(Dialect::Twilio),
                    sample_rate: sample_rate
                        .or(fallback.map(|t| t.sample_rate))
                        .unwrap_or(8000),
                    encoding: encoding.unwrap_or_default(),
                    parameters,
                    extra_headers,
                };
                self.proceed(now, Answerer::Agent(target));
            }
            Ok(WebhookAnswer::Reject { status }) => self.reject(EndReason::WebhookReject(status)),
            Err(failure) => match self.fallback.take() {
                Some(answerer) => self.proceed(now, answerer),
                None => self.reject(EndReason::Webhook(failure)),
            },
        }
    }

    /// The caller's offer, parsed; `Err` rejects the call.
    fn offer(&self) -> Result<Option<SessionDescription>, EndReason> {
        let Some(body) = self.setup.offer.as_deref() else {
            return Ok(None);
        };
        sdp::parse(&String::from_utf8_lossy(body))
            .map(Some)
            .map_err(|_| EndReason::SdpUnparsable)
    }

    /// The answerer is known: check the media, then connect it (or ring for the echo's delay).
    fn proceed(&mut self, now: Instant, answerer: Answerer) {
        if self.hung_up.is_some() {
            // We are ending the call already: set nothing more up.
            return;
        }
        match self.offer() {
            Ok(Some(o)) if sdp::answer(&o, &self.settings.answer).is_err() => {
                return self.reject(EndReason::NoCommonCodec);
            }
            // Parsed once: the answer is made from it when the port is leased.
            Ok(o) => self.parsed_offer = o,
            Err(r) => return self.reject(r),
        }
        match answerer {
            Answerer::Echo { answer_delay } => {
                self.answerer = AnswerLeg::Echo(EchoAgent::new(8000));
                match answer_delay {
                    Some(delay) => {
                        // The echo can take its time, as a webhook or a remote agent would:
                        // the caller hears ringing and may cancel.
                        self.ring();
                        self.phase = Phase::Delaying(now + delay);
                    }
                    None => self.lease_port(),
                }
            }
            Answerer::Agent(target) => {
                self.ring();
                let meta = self.stream_meta(&target);
                let url = target.url.clone();
                self.answerer = AnswerLeg::Agent(Box::new(AgentLeg::new(target, meta)));
                self.phase = Phase::Connecting;
                self.out
                    .push_back(Output::ConnectAgent { leg: ANSWERER, url });
            }
        }
    }

    pub(super) fn on_agent_connected(&mut self, now: Instant) {
        let phase = self.phase;
        let Some(agent) = self.agent_leg() else {
            return;
        };
        // FIXED(D): a connect completing after we closed the leg (call refused meanwhile)
        // must not bring it back up (it would get a second CloseAgent at the end).
        if agent.state == WsState::Closed {
            return;
        }
        agent.state = WsState::Up;
        match phase {
            Phase::Connecting => self.lease_port(),
            // An outbound call's agent, connected on the answer or for early media.
            Phase::Answered | Phase::Dialing if !self.agent_started => self.start_agent(now),
            // A reconnect during the call: a fresh stream, the caller heard silence meanwhile.
            Phase::Answered => {
                if let Some(a) = self.agent_leg() {
                    a.restart();
                    a.state = WsState::Up;
                }
                if let Some(m) = &mut self.media {
                    m.pacer.clear();
                }
                self.start_agent(now);
            }
            _ => {}
        }
    }

    pub(super) fn on_agent_connect_failed(&mut self, _now: Instant, _error: &str) {
        if let Some(a) = self.agent_leg() {
            a.state = WsState::Closed;
        }
        match self.phase {
            Phase::Connecting => self.reject(EndReason::AgentConnectFailed),
            Phase::Answered => self.hangup(EndReason::AgentDisconnected),
            _ => {}
        }
    }

    pub(super) fn lease_port(&mut self) {
        if self.hung_up.is_some() {
            return;
        }
        self.phase = Phase::Leasing;
        self.out.push_back(Output::LeasePort {
            leg: super::leg::CALLER,
        });
    }

    pub(super) fn on_port(&mut self, now: Instant, port: Option<u16>) {
        if self.phase != Phase::Leasing || self.hung_up.is_some() {
            return;
        }
        let Some(port) = port else {
            return self.reject(EndReason::NoMediaPorts);
        };
        if self.is_outbound() {
            return self.dial_on_port(now, port);
        }
        let params = AnswerParams {
            port,
            ..self.settings.answer.clone()
        };
        let offer = self.parsed_offer.take();
        let media = match SipMedia::new(params, offer.as_ref(), self.setup.seed, now) {
            Ok(m) => m,
            Err(_) => return self.reject(EndReason::NoCommonCodec),
        };
        let sdp = media.local_sdp.clone();
        self.media = Some(media);
        self.phase = Phase::Answered;
        self.answered_at = Some(now);
        self.next_checkpoint = self.settings.checkpoint_every.map(|every| now + every);
        // Registry, journal and callbacks learn of the answer before the caller does: an API
        // GET right after the caller's 200 OK already says in-progress.
        self.notice(Notice::Answered);
        self.sip(CallCommand::Answer { sdp });
        self.start_agent(now);
    }

    /// The agent's opening messages (twilio `connected` + `start`, ...).
    fn start_agent(&mut self, now: Instant) {
        self.agent_started = true;
        let now_ms = self.wall_ms(now);
        let Some(agent) = self.agent_leg() else {
            return;
        };
        let msgs = agent.codec.start(now_ms);
        for msg in msgs {
            self.out.push_back(Output::AgentSend { leg: ANSWERER, msg });
        }
    }

    /// Refuses the call before the answer (the dialog's end completes it).
    pub(super) fn reject(&mut self, reason: EndReason) {
        if matches!(self.phase, Phase::Rejecting | Phase::Ended) {
            return;
        }
        let status = reason.reject_status().unwrap_or(500);
        let dialed = self.phase == Phase::Dialing;
        self.rejected = Some(reason);
        self.phase = Phase::Rejecting;
        self.close_agent("rejected");
        if self.is_outbound() {
            // Ours is the INVITE: cancel it; before it went out there is nothing to end.
            if dialed {
                self.sip(CallCommand::Hangup);
            } else {
                self.finish_pending = true;
            }
            return;
        }
        self.sip(CallCommand::Reject {
            status,
            reason: None,
            headers: Vec::new(),
        });
    }

    /// Ends the call from our side, once: BYE when answered, a final response while ringing.
    pub(super) fn hangup(&mut self, reason: EndReason) {
        if self.hung_up.is_some() || matches!(self.phase, Phase::Rejecting | Phase::Ended) {
            return;
        }
        if self.phase != Phase::Answered {
            // FIXED(D): before the answer a hangup is a rejection with the table's status.
            // `CallCommand::Hangup` left the phase as it was, so an agent connect (or the
            // echo's delay) completing before the dialog's end answered a call already
            // refused with 480; and the caller got 480 where the record says 503 (shutdown).
            return self.reject(reason);
        }
        self.hung_up = Some(reason);
        self.sip(CallCommand::Hangup);
        self.hang_up_bridge();
    }

    pub(super) fn on_sip(&mut self, now: Instant, event: CallEvent) {
        match event {
            CallEvent::Ended(r) => self.on_dialog_end(now, r),
            CallEvent::Acked { sdp } => {
                if let (Some(answer), Some(m)) = (sdp, &mut self.media) {
                    m.on_late_answer(&answer);
                }
                self.notice(Notice::Acked);
                self.on_confirmed();
            }
            CallEvent::ReInvite { sdp } => {
                let cmd = match self.media.as_mut().map(|m| m.on_reinvite(sdp.as_deref())) {
                    Some(Ok(sdp)) => CallCommand::ReInviteAnswer { sdp },
                    Some(Err(status)) => CallCommand::ReInviteReject { status },
                    None => CallCommand::ReInviteReject { status: 491 },
                };
                self.sip(cmd);
            }
            CallEvent::Info { content_type, body } => {
                if content_type.eq_ignore_ascii_case("application/dtmf-relay") {
                    if let Some(d) = super::media::dtmf_relay_digit(&body) {
                        self.on_digit(now, d, 100);
                    }
                }
            }
            CallEvent::Progress { sdp, .. } => self.on_progress(now, sdp),
            CallEvent::Answered { sdp } => self.on_dial_answered(now, sdp),
            CallEvent::Redirected { contact } => self.redirect = Some(contact),
            CallEvent::ReferResult { status } => self.on_refer_result(status),
            CallEvent::ReferProgress { status, terminated } => {
                self.on_refer_progress(status, terminated)
            }
            CallEvent::Incoming(_) => {} // Transfers are not driven from here yet.
        }
    }

    /// The dialog is gone: settle why, and finish.
    fn on_dialog_end(&mut self, now: Instant, r: SipEnd) {
        let reason = match (self.phase, r) {
            (_, SipEnd::Canceled) => EndReason::Canceled,
            (_, SipEnd::SessionExpired) => EndReason::SessionExpired,
            (Phase::Rejecting, _) => self
                .rejected
                .clone()
                .unwrap_or(EndReason::EndedBeforeAnswer),
            (Phase::Answered, SipEnd::RemoteBye) if self.handed_back() => EndReason::Transferred,
            (Phase::Answered, SipEnd::RemoteBye) if self.is_outbound() => EndReason::CalleeHangup,
            (Phase::Answered, SipEnd::RemoteBye) => EndReason::CallerHangup,
            (_, SipEnd::AuthFailed(s)) => EndReason::AuthFailed(s),
            (_, SipEnd::Unreachable) => EndReason::TrunkUnreachable,
            (Phase::Dialing, SipEnd::Refused(s)) => EndReason::Callee(s),
            (Phase::Answered, SipEnd::NoAck) => EndReason::NoAck,
            (_, _) if self.hung_up.is_some() => {
                self.hung_up.clone().unwrap_or(EndReason::LocalHangup)
            }
            (Phase::Answered, _) => EndReason::LocalHangup,
            (_, SipEnd::RemoteBye) => EndReason::CallerHangup,
            (_, SipEnd::Rejected(s)) => EndReason::Rejected(s),
            (_, _) => EndReason::EndedBeforeAnswer,
        };
        self.final_reason = Some(reason);
        self.sip_end = Some(r);
        self.finish(now);
    }

    pub(super) fn close_agent(&mut self, why: &str) {
        let now_ms = self.wall_ms(self.ended_at.unwrap_or(self.started));
        let answered = self.is_answered();
        let Some(agent) = self.agent_leg() else {
            return;
        };
        let was = agent.state;
        agent.state = WsState::Closed;
        if was == WsState::Closed {
            return;
        }
        let stop = if answered && was == WsState::Up {
            agent.codec.stop(why, now_ms)
        } else {
            None
        };
        if let Some(msg) = stop {
            self.out.push_back(Output::AgentSend { leg: ANSWERER, msg });
        }
        self.out.push_back(Output::CloseAgent { leg: ANSWERER });
    }

    pub(super) fn finish(&mut self, now: Instant) {
        self.ended_at = Some(now);
        let reason = self.end_reason();
        if let Some(m) = &mut self.media {
            let end_ms = m.elapsed_ms(now);
            m.caller_vad.finish(end_ms);
            m.agent_vad.finish(end_ms);
        }
        // What the agent's `stop` says: why we hung up, else the caller's hangup.
        let why = self
            .hung_up
            .as_ref()
            .map_or_else(|| "caller_hangup".to_string(), EndReason::as_str);
        self.close_agent(&why);
        self.hang_up_bridge();
        self.phase = super::Phase::Ended;
        let view = self.view(now);
        let (caller_talk, agent_talk) = match &self.media {
            Some(m) => (
                m.caller_vad.segments().to_vec(),
                m.agent_vad.segments().to_vec(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let (rtp_in, rtp_out, rtp_lost) = self
            .media
            .as_ref()
            .map_or((0, 0, 0), |m| (m.rtp_in, m.rtp_out, m.rx_loss.lost()));
        let srtp_refused = self.media.as_ref().map_or(0, |m| m.srtp_refused)
            + self
                .bridge
                .as_ref()
                .and_then(|b| b.media.as_ref())
                .map_or(0, |m| m.srtp_refused);
        self.out.push_back(Output::Ended(Box::new(Ended {
            reason,
            sip_end: self.sip_end,
            view,
            caller_talk,
            agent_talk,
            rtp_in,
            rtp_out,
            rtp_lost,
            srtp_refused,
        })));
    }
}
