//! The call driver's side of a bridged leg (a `bridge` transfer's target, click-to-call's
//! client): its own RTP port and socket, its own SIP dialog (an outbound key and an inbox of
//! its own, so its events reach the machine as [`BRIDGED`]'s), its INVITE built from the
//! trunk's configuration like any outbound call's, and outbound admission for it (a transfer
//! target is a call we place: the trunk's and the number's outbound rules apply; a refusal is
//! a 403 for the leg, so the agent keeps the call). Click-to-call's client was admitted when
//! the call was placed.
//!
//! Must not: decide anything about the leg (the machine does) or touch its audio.

use tokio::sync::mpsc;

use super::{CallMsg, Driver, EndpointMsg, Rtp};
use crate::app::dial::{Destination, DialRequest};
use crate::core::call::bridge::BRIDGED;
use crate::core::call::Input;
use crate::core::sip::endpoint::{CallEvent, EndReason};
use std::time::Instant;

impl Driver {
    /// The machine dials its bridged leg: the INVITE goes to the endpoint through the call's
    /// trunk (or the first trunk that places calls), with the call's own number as caller id.
    pub(super) async fn dial_bridge(&mut self, offer: Vec<u8>, to: String) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.bridge_events = Some(rx);
        let key = super::super::outbound::next_key();
        self.bridge_key = Some(key);
        let config = self.config.clone();
        let Some(trunk) = super::routing::bridge_trunk(&config, self.trunk.as_deref()) else {
            tracing::warn!("no [[trunk]] places calls: the bridged leg cannot be dialled");
            let _ = tx.send(CallMsg::Sip(CallEvent::Ended(EndReason::Unreachable)));
            return;
        };
        let agent = super::super::dial::AgentSource::Webhook { url: String::new() };
        let mut req = DialRequest::new(destination(&to), agent);
        if !self.bridge_preadmitted {
            let e164 = match &req.to {
                Destination::E164(n) => Some(n.as_str()),
                Destination::Uri(_) | Destination::User(_) => None,
            };
            let now = crate::core::policy::Now {
                mono: Instant::now(),
                wall: jiff::Timestamp::now(),
            };
            let verdict = match self.ctx.outbound.lock() {
                Ok(mut gate) => gate.admit(&now, &trunk.name, e164),
                Err(poisoned) => poisoned.into_inner().admit(&now, &trunk.name, e164),
            };
            match verdict {
                Ok(ticket) => self.bridge_ticket = Some(ticket),
                Err(refusal) => {
                    let reason = refusal.reason.as_str();
                    tracing::info!(to = %to, trunk = %trunk.name, reason, "bridged leg refused by outbound policy");
                    let _ = tx.send(CallMsg::Sip(CallEvent::Ended(EndReason::Refused(403))));
                    return;
                }
            }
        }
        req.from = self.call.view(Instant::now()).from.clone();
        let mut spec = super::super::dial_spec::dial_spec(&config, trunk, &req).await;
        spec.sdp = offer;
        tracing::info!(to = %to, trunk = %trunk.name, remote = %spec.flow.remote, "dialling the bridged leg");
        if spec.flow.remote.port() == 0 {
            let _ = tx.send(CallMsg::Sip(CallEvent::Ended(EndReason::Unreachable)));
            return;
        }
        let msg = EndpointMsg::Dial {
            call: key,
            spec: Box::new(spec),
            tx: tx.clone(),
        };
        if self.ctl.send(msg).await.is_err() {
            let _ = tx.send(CallMsg::Sip(CallEvent::Ended(EndReason::Unreachable)));
        }
    }

    /// A message from the bridged leg's dialog.
    pub(super) fn on_bridge_msg(&mut self, msg: Option<CallMsg>) {
        let input = match msg {
            Some(CallMsg::Sip(event)) => Input::Sip {
                leg: BRIDGED,
                event,
            },
            Some(CallMsg::Shutdown) => Input::Shutdown,
            Some(_) => return,
            None => {
                // The endpoint is done with the dialog: nothing more will come.
                self.bridge_events = None;
                Input::Sip {
                    leg: BRIDGED,
                    event: CallEvent::Ended(EndReason::LocalBye(0)),
                }
            }
        };
        self.call.handle(Instant::now(), input);
    }

    /// Where the bridged leg's socket goes.
    pub(super) fn set_rtp(&mut self, leg: crate::core::call::leg::LegId, rtp: Rtp) {
        if leg == BRIDGED {
            self.bridge_rtp = Some(rtp);
        } else {
            self.rtp = Some(rtp);
        }
    }
}

/// The trunk that dials a bridged leg: the named one if it places calls, else the first that
/// does.
/// A transfer target (already checked by `transfer::valid_target`) as a destination: a SIP URI
/// as given, a number normalised to E.164 where it is one.
fn destination(to: &str) -> Destination {
    let lower = to.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        return Destination::Uri(to.to_string());
    }
    let number = lower.strip_prefix("tel:").unwrap_or(to);
    match crate::core::number::normalise_e164(number) {
        Some(n) => Destination::E164(n),
        None => Destination::E164(number.to_string()),
    }
}

pub(super) async fn recv_bridge(
    events: &mut Option<mpsc::UnboundedReceiver<CallMsg>>,
) -> Option<CallMsg> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
