//! The call driver's side of the machine's notices: the status callbacks, the registry's view,
//! gateway events, counters and logs each notice stands for.
//!
//! Must not: decide anything about the call (the machine did) or wait on I/O (callbacks are
//! queued to the record writer).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Driver, GatewayEvent, Notice};

impl Driver {
    pub(super) fn on_notice(&mut self, n: Notice) {
        let stats = &self.ctx.stats;
        match n {
            Notice::Ringing => {
                let view = self.call.view(Instant::now());
                self.status.ringing(&self.ctx, &view);
                self.ctx.registry.update(self.call.id(), view);
            }
            Notice::Answered => {
                let view = self.call.view(Instant::now());
                self.status.answered(&self.ctx, &view);
                self.ctx.registry.update(self.call.id(), view);
            }
            Notice::Checkpoint => {
                let view = self.call.view(Instant::now());
                let (caller, agent) = self.call.talk();
                self.status.checkpoint(&self.ctx, &view, caller, agent);
            }
            Notice::Acked => self.ctx.emit(GatewayEvent::CallAnswered {
                call_id: self.call.id().to_string(),
            }),
            Notice::Dtmf(digit) => {
                tracing::info!(%digit, "DTMF received");
                self.ctx.emit(GatewayEvent::Dtmf {
                    call_id: self.call.id().to_string(),
                    digit,
                });
            }
            Notice::Transfer(p) => {
                tracing::info!(mode = ?p.mode, to = %p.to, outcome = p.outcome.as_str(), sip_status = ?p.sip_status, "transfer");
                let view = self.call.view(Instant::now());
                self.status.transfer(&self.ctx, &view);
                self.ctx.registry.update(self.call.id(), view);
            }
            Notice::AgentAudioDropped => {
                stats.agent_dropped_frames.fetch_add(1, Ordering::Relaxed);
            }
            Notice::AgentFrameError(e) => {
                stats.agent_frame_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "malformed agent message ignored");
            }
            Notice::AgentEventIgnored(name) => {
                stats.agent_ignored_events.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(event = %name, "agent event ignored");
            }
            Notice::DtmfDropped => {
                tracing::info!("DTMF to the caller dropped: no telephone-event, or queue full");
            }
            Notice::AgentReconnecting => tracing::info!("agent dropped; reconnecting once"),
            Notice::Bridged => {
                let view = self.call.view(Instant::now());
                if let Some(b) = &view.bridge {
                    tracing::info!(to = %b.to, status = %b.status, sip_status = ?b.sip_status, "bridged leg");
                }
                self.status.leg(&self.ctx, &view);
                self.ctx.registry.update(self.call.id(), view);
            }
        }
    }
}
