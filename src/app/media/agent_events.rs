//! The agent side of a call's media loop: what a WebSocket agent's messages do (audio into the
//! pacer, marks, clear/barge-in, hangup, DTMF out as RFC 4733), and what happens when the agent
//! goes away (hang up, or reconnect once).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Agent, LocalEnd, MediaSession, MAX_QUEUED_DTMF_PACKETS};
use crate::app::agent_ws::{now_ms, WsAgent};
use crate::app::{Ctx, EndpointMsg};
use crate::config::OnDisconnect;
use crate::core::agent::echo::EchoAgent;
use crate::core::agent::AgentEvent;
use crate::core::media::dtmf::DtmfSender;

impl MediaSession {
    pub(super) async fn on_agent_message(
        &mut self,
        msg: Option<
            Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
        >,
        ctl: &mpsc::Sender<EndpointMsg>,
        ctx: &Arc<Ctx>,
    ) {
        let Agent::Ws(ws) = &mut self.agent else {
            return;
        };
        let events = match msg {
            Some(Ok(m)) => ws.decode(m),
            Some(Err(e)) => {
                tracing::info!(error = %e, "agent WebSocket failed");
                None
            }
            None => None,
        };
        let Some(events) = events else {
            self.on_agent_gone(ctl, ctx).await;
            return;
        };
        for ev in events {
            self.on_agent_event(ev, ctl, ctx).await;
        }
    }

    async fn on_agent_event(
        &mut self,
        ev: AgentEvent,
        ctl: &mpsc::Sender<EndpointMsg>,
        ctx: &Arc<Ctx>,
    ) {
        let Agent::Ws(ws) = &mut self.agent else {
            return;
        };
        match ev {
            AgentEvent::Audio(pcm) => {
                self.scratch.clear();
                ws.agent_audio_8k(&pcm, None, &mut self.scratch);
                if self.pacer.push_audio(&self.scratch) > 0 {
                    ctx.stats
                        .agent_dropped_frames
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            AgentEvent::AudioAt { pcm, rate } => {
                self.scratch.clear();
                ws.agent_audio_8k(&pcm, Some(rate), &mut self.scratch);
                if self.pacer.push_audio(&self.scratch) > 0 {
                    ctx.stats
                        .agent_dropped_frames
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            AgentEvent::Mark(name) => self.pacer.push_mark(name),
            AgentEvent::Clear => {
                // Barge-in: drop queued audio now, answer the marks that will never play.
                for mark in self.pacer.clear() {
                    let m = ws.codec.mark_played(&mark, now_ms());
                    ws.send(m);
                }
                if let Some(m) = ws.codec.cleared(now_ms()) {
                    ws.send(m);
                }
            }
            AgentEvent::Hangup => {
                tracing::info!("agent hung up");
                self.hangup(ctl, LocalEnd::AgentHangup).await;
            }
            AgentEvent::Transfer { to } => {
                // Transfers (REFER, bridge, PBX notify) belong to the control issue; until
                // then the request is logged and the call goes on.
                tracing::warn!(%to, "agent asked for a transfer, which is not supported yet");
            }
            AgentEvent::Dtmf { digits } => self.queue_dtmf(&digits),
            AgentEvent::Ignored(name) => {
                ctx.stats
                    .agent_ignored_events
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(event = %name, "agent event ignored");
            }
        }
    }

    /// Queues RFC 4733 packets for `digits`: 100 ms events sent back to back (each with its
    /// own timestamp and three end packets, which is how receivers tell digits apart).
    // INTEGRATION(B): pub(super), so the control API's DTMF takes the same path.
    pub(super) fn queue_dtmf(&mut self, digits: &str) {
        if self.neg.dtmf_pt.is_none() {
            tracing::info!("agent DTMF dropped: the caller did not offer telephone-event");
            return;
        }
        let ptime = self.neg.ptime_ms.clamp(10, 60);
        let frame = 8 * ptime;
        // Event timestamps continue from where the queue ends.
        let mut ts = self.ts.wrapping_add(frame * self.dtmf_out.len() as u32);
        for d in digits.chars().take(32) {
            // Bounded: an agent sending digits faster than they play loses the excess.
            if self.dtmf_out.len() >= MAX_QUEUED_DTMF_PACKETS {
                tracing::info!("agent DTMF queue full; digits dropped");
                break;
            }
            let Ok(packets) = DtmfSender::new(8000).packets(d, 100, ptime, 10) else {
                continue;
            };
            let n = packets.len() as u32;
            for p in packets {
                self.dtmf_out.push_back((ts, p));
            }
            ts = ts.wrapping_add(frame * n);
        }
    }

    async fn on_agent_gone(&mut self, ctl: &mpsc::Sender<EndpointMsg>, ctx: &Arc<Ctx>) {
        if self.hangup_sent.is_some() {
            return;
        }
        let retry = self.setup.on_disconnect == OnDisconnect::Reconnect && !self.reconnected;
        if let (true, Some(target)) = (retry, self.setup.target.clone()) {
            self.reconnected = true;
            tracing::info!("agent dropped; reconnecting once");
            // The caller keeps hearing silence: the pacer runs dry meanwhile. The connect is
            // bounded by the connect timeout.
            match WsAgent::connect(&target, ctx, self.setup.connect_timeout).await {
                Ok(mut ws) => {
                    ws.start();
                    self.pacer.clear();
                    self.agent = Agent::Ws(Box::new(ws));
                    return;
                }
                Err(e) => tracing::info!(error = %e, "agent reconnect failed"),
            }
        }
        tracing::info!("agent WebSocket closed; ending the call");
        self.agent = Agent::Echo(EchoAgent::new(8000));
        self.hangup(ctl, LocalEnd::AgentDisconnected).await;
    }
}

type WsItem =
    Option<Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>;

/// The next agent message, or never for the built-in agent.
pub(super) async fn next_ws(agent: &mut Agent) -> WsItem {
    match agent {
        Agent::Ws(ws) => ws.next().await,
        Agent::Echo(_) => std::future::pending().await,
    }
}
