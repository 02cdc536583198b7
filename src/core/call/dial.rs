//! An outbound call's lifecycle: the SIP leg is ours (UAC). Lease a port, offer, ring for at
//! most `ring_timeout`, and on the 2xx read the answer and connect the agent (the same start
//! message as inbound, `direction` outbound) — or, for Twilio's `Url`, ask the call's own
//! webhook first ([`OnAnswer::AskWebhook`]). Failures map through the one [`EndReason`]
//! table: busy (486/600), no-answer (408/480/487, ring timeout), failed (others).
//!
//! Must not: know trunks, credentials or addresses (the driver adds them to the offer), or
//! touch sockets.

use std::time::{Duration, Instant};

use super::leg::{AgentLeg, AgentTarget, AnswerLeg, Answerer, CALLER};
use super::media::SipMedia;
use super::{Call, EndReason, Notice, Output, Phase, WebhookRequest};
use crate::core::agent::echo::EchoAgent;
use crate::core::agent::Dialect;
use crate::core::hooks::answer::WebhookAnswer;
use crate::core::hooks::WebhookFailure;
use crate::core::sip::endpoint::CallCommand;
use crate::core::sip::sdp::AnswerParams;

/// How an outbound call goes, from the request that placed it.
#[derive(Debug, Clone, PartialEq)]
pub struct DialPlan {
    /// Who talks to the callee once it answers.
    pub answerer: OnAnswer,
    /// Ringing longer than this is cancelled (`no-answer`).
    pub ring_timeout: Duration,
    /// An answered call is hung up after this long.
    pub time_limit: Option<Duration>,
    /// Connect the agent on a 183 with SDP, so it hears the callee's early media (ringback,
    /// announcements, IVR prompts) before the answer.
    pub early_media: bool,
}

/// What happens when the callee answers.
#[derive(Debug, Clone, PartialEq)]
pub enum OnAnswer {
    /// This answerer takes over (known when the call was placed).
    Answerer(Answerer),
    /// Twilio's `Url`: ask this webhook right after the 2xx ([`Output::AskWebhook`]); its
    /// `Connect` names the agent, a rejection or a failure hangs up.
    AskWebhook(Box<WebhookRequest>),
    /// Click-to-call: the callee is the manager; once they answer, `to` (the client) is
    /// dialled as the bridged leg ([`super::bridge`]) while they hear ringback.
    Bridge { to: String },
}

impl From<Answerer> for OnAnswer {
    fn from(a: Answerer) -> OnAnswer {
        OnAnswer::Answerer(a)
    }
}

/// An outbound call's own deadlines.
#[derive(Debug)]
pub(super) struct Dialing {
    pub plan: DialPlan,
    pub ring_deadline: Option<Instant>,
    pub limit_at: Option<Instant>,
    /// Early media flows (a 183 with SDP, and the plan asked for it).
    pub early: bool,
    /// The webhook was asked on answer and has not answered yet.
    pub asking: bool,
}

impl Call {
    pub(super) fn is_outbound(&self) -> bool {
        self.dialing.is_some()
    }

    /// The call starts: a port first, for the offer.
    pub(super) fn start_dial(&mut self, plan: DialPlan) {
        self.dialing = Some(Dialing {
            plan,
            ring_deadline: None,
            limit_at: None,
            early: false,
            asking: false,
        });
        self.phase = Phase::Leasing;
        self.out.push_back(Output::LeasePort { leg: CALLER });
    }

    /// The port is leased: send the INVITE with our offer.
    pub(super) fn dial_on_port(&mut self, now: Instant, port: u16) {
        let params = AnswerParams {
            port,
            ..self.settings.answer.clone()
        };
        // With no offer to answer, the media offers (PCMU, PCMA, telephone-event); the answer
        // arrives with the 2xx.
        let media = match SipMedia::new(params, None, self.setup.seed, now) {
            Ok(m) => m,
            Err(_) => return self.reject(EndReason::NoCommonCodec),
        };
        let offer = media.local_sdp.clone();
        self.media = Some(media);
        self.phase = Phase::Dialing;
        if let Some(d) = &mut self.dialing {
            d.ring_deadline = Some(now + d.plan.ring_timeout);
        }
        self.out.push_back(Output::Dial {
            leg: CALLER,
            offer,
            to: None,
        });
    }

    /// A 1xx from the callee; with SDP and `early_media`, the agent is connected now and
    /// hears the callee's early media.
    pub(super) fn on_progress(&mut self, now: Instant, sdp: Option<Vec<u8>>) {
        if self.phase != Phase::Dialing {
            return;
        }
        if !self.ringing {
            self.ringing = true;
            self.notice(Notice::Ringing);
        }
        let wanted = self.dialing.as_ref().is_some_and(|d| {
            // A webhook asked on answer cannot name the agent before it.
            d.plan.early_media && !d.early && matches!(d.plan.answerer, OnAnswer::Answerer(_))
        });
        let Some(answer) = sdp.filter(|_| wanted) else {
            return;
        };
        if self.media.as_mut().map(|m| m.accept_answer(&answer)) != Some(Ok(())) {
            // Unusable early SDP: wait for the answer's.
            return;
        }
        if let Some(d) = &mut self.dialing {
            d.early = true;
        }
        if let Some(m) = &mut self.media {
            m.started = now;
            m.last_rx = now;
        }
        self.open_answerer();
    }

    /// Whether the callee's RTP is taken now: once answered, or as early media.
    pub(super) fn takes_media(&self) -> bool {
        self.phase == Phase::Answered
            || (self.phase == Phase::Dialing && self.dialing.as_ref().is_some_and(|d| d.early))
    }

    /// The callee answered (the endpoint has acknowledged the 2xx).
    pub(super) fn on_dial_answered(&mut self, now: Instant, sdp: Option<Vec<u8>>) {
        if self.phase != Phase::Dialing {
            // We are hanging up already: the endpoint's BYE follows our CANCEL's race.
            return;
        }
        let early = self.dialing.as_ref().is_some_and(|d| d.early);
        match (sdp, early) {
            // The early SDP stands when the 2xx repeats none (RFC 3261 §13.2.1: the answer
            // came in the reliable 183 ... or here).
            (None, true) => {}
            (None, false) => return self.drop_answered(EndReason::NoSdpAnswer),
            (Some(answer), _) => match self.media.as_mut().map(|m| m.accept_answer(&answer)) {
                Some(Ok(())) => {}
                Some(Err(reason)) => return self.drop_answered(reason),
                None => return self.drop_answered(EndReason::InternalError),
            },
        }
        self.phase = Phase::Answered;
        self.answered_at = Some(now);
        // The endpoint ACKs the 2xx itself.
        self.confirmed = true;
        self.next_checkpoint = self.settings.checkpoint_every.map(|every| now + every);
        if let Some(d) = &mut self.dialing {
            d.ring_deadline = None;
            d.limit_at = d.plan.time_limit.map(|limit| now + limit);
        }
        self.notice(Notice::Answered);
        if !early {
            self.open_answerer();
        }
    }

    /// The answering leg comes up: the agent's WebSocket is opened (its start message goes
    /// once it is connected), or the echo takes over.
    fn open_answerer(&mut self) {
        let answerer = self.dialing.as_ref().map(|d| d.plan.answerer.clone());
        match answerer {
            Some(OnAnswer::Answerer(Answerer::Agent(target))) => self.connect_dial_agent(target),
            Some(OnAnswer::AskWebhook(request)) => {
                if let Some(d) = &mut self.dialing {
                    d.asking = true;
                }
                self.out.push_back(Output::AskWebhook(request));
            }
            Some(OnAnswer::Bridge { to }) => {
                let ring = self.dialing.as_ref().map(|d| d.plan.ring_timeout);
                let ring = ring.unwrap_or(Duration::from_secs(30));
                self.start_bridge(&to, super::bridge::Purpose::ClickToCall, ring);
            }
            Some(OnAnswer::Answerer(Answerer::Echo { .. })) | None => {
                self.answerer = AnswerLeg::Echo(EchoAgent::new(8000));
            }
        }
    }

    fn connect_dial_agent(&mut self, target: AgentTarget) {
        let meta = self.stream_meta(&target);
        let url = target.url.clone();
        self.answerer = AnswerLeg::Agent(Box::new(AgentLeg::new(target, meta)));
        self.out.push_back(Output::ConnectAgent {
            leg: super::leg::ANSWERER,
            url,
        });
    }

    /// The webhook asked on answer has answered: connect its agent, or hang up (a late
    /// answer, after we hung up for another reason, changes nothing).
    pub(super) fn on_dial_webhook(&mut self, answer: Result<WebhookAnswer, WebhookFailure>) {
        let asking = self
            .dialing
            .as_mut()
            .is_some_and(|d| std::mem::take(&mut d.asking));
        if !asking || self.phase != Phase::Answered || self.hung_up.is_some() {
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
                ..
            }) => self.connect_dial_agent(AgentTarget {
                url,
                dialect: dialect.unwrap_or(Dialect::Twilio),
                sample_rate: sample_rate.unwrap_or(8000),
                encoding: encoding.unwrap_or_default(),
                parameters,
                extra_headers,
            }),
            Ok(WebhookAnswer::Reject { status }) => self.hangup(EndReason::WebhookReject(status)),
            Err(failure) => self.hangup(EndReason::Webhook(failure)),
        }
    }

    /// A 2xx we cannot use: BYE at once; the call failed (it was never really answered).
    fn drop_answered(&mut self, reason: EndReason) {
        self.rejected = Some(reason);
        self.phase = Phase::Rejecting;
        self.close_agent("failed");
        self.sip(CallCommand::Hangup);
    }

    /// Ring timeout and time limit.
    pub(super) fn dial_timeout(&mut self, now: Instant) {
        let phase = self.phase;
        let Some(d) = &mut self.dialing else { return };
        if phase == Phase::Dialing && d.ring_deadline.is_some_and(|t| now >= t) {
            d.ring_deadline = None;
            self.hangup(EndReason::RingTimeout);
        } else if phase == Phase::Answered && d.limit_at.is_some_and(|t| now >= t) {
            d.limit_at = None;
            self.hangup(EndReason::TimeLimit);
        }
    }

    /// The outbound call's next deadline.
    pub(super) fn dial_deadline(&self) -> Option<Instant> {
        let d = self.dialing.as_ref()?;
        match self.phase {
            Phase::Dialing => d.ring_deadline,
            Phase::Answered => d.limit_at,
            _ => None,
        }
    }
}
