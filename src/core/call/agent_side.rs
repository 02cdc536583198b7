//! What the answering leg does: a WebSocket agent's messages (audio into the caller's pacer,
//! marks, clear/barge-in, hangup, DTMF out as RFC 4733, transfer requests), the agent going
//! away (hang up, or reconnect once), and caller DTMF towards the answerer.

use std::time::Instant;

use super::leg::{AnswerLeg, WsState, ANSWERER};
use super::{Call, Command, EndReason, Notice, Output, Phase};
use crate::core::agent::{AgentEvent, WsIn};

impl Call {
    pub(super) fn on_agent_message(&mut self, now: Instant, msg: WsIn<'_>) {
        let Some(agent) = self.agent_leg() else {
            return;
        };
        if agent.state != WsState::Up {
            return;
        }
        match agent.codec.decode(msg) {
            Ok(events) => {
                for ev in events {
                    self.on_agent_event(now, ev);
                }
            }
            Err(e) => self.notice(Notice::AgentFrameError(e.to_string())),
        }
    }

    fn on_agent_event(&mut self, now: Instant, ev: AgentEvent) {
        match ev {
            AgentEvent::Audio(pcm) => self.agent_audio(now, &pcm, None),
            AgentEvent::AudioAt { pcm, rate } => self.agent_audio(now, &pcm, Some(rate)),
            AgentEvent::Mark(name) => {
                let refused = self
                    .media
                    .as_mut()
                    .is_some_and(|m| !m.pacer.push_mark(name));
                if refused {
                    self.notice(Notice::AgentFrameError("too many marks waiting".into()));
                }
            }
            AgentEvent::Clear => self.clear_agent_audio(now),
            AgentEvent::Hangup => self.hangup(EndReason::AgentHangup),
            AgentEvent::Transfer { to } => self.start_transfer(
                now,
                super::transfer::Request {
                    to,
                    mode: None,
                    fallback: None,
                },
            ),
            AgentEvent::Dtmf { digits } => self.send_dtmf(&digits),
            AgentEvent::Ignored(name) => self.notice(Notice::AgentEventIgnored(name)),
        }
    }

    /// Agent audio: converted to 8 kHz and queued for the caller; the first frame of an
    /// agent turn leaves at once rather than at the next tick.
    fn agent_audio(&mut self, now: Instant, pcm: &[i16], rate: Option<u32>) {
        if self.bridging() {
            // The caller hears the bridge (ringback, the transfer target), not the agent.
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let converted = match self.agent_leg() {
            Some(a) => a.agent_audio_8k(pcm, rate, &mut scratch),
            None => false,
        };
        if !converted {
            self.scratch = scratch;
            return self.notice(Notice::AgentFrameError(format!(
                "agent audio at an unsupported rate {rate:?}"
            )));
        }
        let mut early = false;
        if let Some(m) = &mut self.media {
            if m.pacer.push_audio(&scratch) > 0 {
                self.out
                    .push_back(Output::Notice(Notice::AgentAudioDropped));
            }
            early = m.pacer.queued_samples() >= m.frame_samples()
                && m.clock
                    .early_start(now.saturating_duration_since(m.started));
        }
        self.scratch = scratch;
        if early {
            self.send_frame(now);
        }
    }

    /// Barge-in: drop queued audio now, answer the marks that will never play.
    fn clear_agent_audio(&mut self, now: Instant) {
        let now_ms = self.wall_ms(now);
        let Some(m) = &mut self.media else {
            return;
        };
        let marks = m.pacer.clear();
        let AnswerLeg::Agent(agent) = &mut self.answerer else {
            return;
        };
        for mark in marks {
            let msg = agent.codec.mark_played(&mark, now_ms);
            self.out.push_back(Output::AgentSend { leg: ANSWERER, msg });
        }
        if let Some(msg) = agent.codec.cleared(now_ms) {
            self.out.push_back(Output::AgentSend { leg: ANSWERER, msg });
        }
    }

    /// Digits to the caller as RFC 4733 (from the agent or the control API).
    pub(super) fn send_dtmf(&mut self, digits: &str) {
        let queued = self.media.as_mut().is_some_and(|m| m.queue_dtmf(digits));
        if !queued {
            self.notice(Notice::DtmfDropped);
        }
    }

    /// A digit from the caller: to the answerer, and reported.
    pub(super) fn on_digit(&mut self, now: Instant, digit: char, duration_ms: u32) {
        let now_ms = self.wall_ms(now);
        if self.bridge_digit(digit) {
            return self.notice(Notice::Dtmf(digit));
        }
        match &mut self.answerer {
            AnswerLeg::Echo(e) => e.on_dtmf(digit),
            AnswerLeg::Agent(a) if a.state == WsState::Up => {
                let msg = a.codec.dtmf(digit, duration_ms, now_ms);
                self.out.push_back(Output::AgentSend { leg: ANSWERER, msg });
            }
            _ => {}
        }
        self.notice(Notice::Dtmf(digit));
    }

    /// The agent's WebSocket closed: reconnect once if configured, else end the call.
    pub(super) fn on_agent_gone(&mut self, _now: Instant) {
        let phase = self.phase;
        let reconnect = self.settings.reconnect_agent;
        let hung_up = self.hung_up.is_some();
        let Some(agent) = self.agent_leg() else {
            return;
        };
        if agent.state == WsState::Closed {
            return;
        }
        agent.state = WsState::Closed;
        match phase {
            Phase::Connecting => self.reject(EndReason::AgentConnectFailed),
            Phase::Answered if hung_up => {}
            Phase::Answered => {
                if reconnect && !agent.reconnected {
                    agent.reconnected = true;
                    agent.state = super::leg::WsState::Connecting;
                    let url = agent.target.url.clone();
                    self.notice(Notice::AgentReconnecting);
                    self.out
                        .push_back(Output::ConnectAgent { leg: ANSWERER, url });
                } else {
                    self.hangup(EndReason::AgentDisconnected);
                }
            }
            _ => {}
        }
    }

    /// A command from outside the call.
    pub fn command(&mut self, now: Instant, cmd: Command) {
        self.handle(now, super::Input::Command(cmd));
    }
}
