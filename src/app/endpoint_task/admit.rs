//! Inbound admission inside the endpoint task: who calls whom is decided once (call id,
//! caller, dialled DID, trunk), the policy admits, refuses or drops, and an admitted call is
//! registered and its task spawned. A refusal is sent only once its record is on disk.
//! Must not wait on the disk or the network: the endpoint task runs every SIP datagram.

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::{now, Admitted, EndpointMsg, EndpointTask, Running};
use crate::app::record_writer::Written;
use crate::app::{record, routing};
use crate::core::call::{CallId, CallView, Direction, EndReason};
use crate::core::policy::{Attempt, Decision, Scope};
use crate::core::sip::endpoint::{CallCommand, CallKey, IncomingCall, Input};

impl EndpointTask {
    /// A refused INVITE's record goes to the record writer; the refusal is sent once the
    /// record is on disk (the writer hands the command back through the control channel), so
    /// a caller never sees a rejection that left no record, and this task never waits on
    /// the disk. INVITE retransmissions meanwhile are absorbed by the transaction.
    fn reject_after_record(
        &mut self,
        call: CallKey,
        info: &IncomingCall,
        admitted: &Admitted,
        cmd: CallCommand,
        why: &str,
    ) {
        let status = match &cmd {
            CallCommand::Reject { status, .. } => *status,
            _ => 500,
        };
        self.ctx.stats.calls.refused(why);
        let ctl = self.ctl.clone();
        let later = cmd.clone();
        let written = record::rejected(&self.ctx, info, admitted, status, why, move || {
            // On the writer thread (never inside the runtime): waiting for room is fine.
            let _ = ctl.blocking_send(EndpointMsg::Command { call, cmd: later });
        });
        if let Written::Inline = written {
            // Written here already (the writer is behind): answer now.
            self.ep.handle(now().mono, Input::Command { call, cmd });
        }
    }

    /// Admission: decided here, at once; for a refusal nothing is sent before its record is
    /// on disk.
    pub(super) fn on_incoming(&mut self, call: CallKey, info: IncomingCall) {
        let at = now();
        // Who calls whom, decided once: admission, routing, the webhook, the agent and the
        // record all use these.
        let mut admitted = Admitted {
            call_id: CallId::from_random(fastrand::u128(..)),
            trunk: None,
            caller: routing::caller_number(&info),
            dialled: routing::dialled_did(&self.ctx.config(), &info),
        };
        if self.draining() {
            let cmd = CallCommand::Reject {
                status: 503,
                reason: Some("Shutting Down".into()),
                headers: vec![("Retry-After".into(), "30".into())],
            };
            self.reject_after_record(call, &info, &admitted, cmd, "shutdown");
            return;
        }
        let attempt = Attempt {
            source: info.source.ip(),
            caller: admitted.caller.as_deref(),
            dialled: admitted.dialled.as_deref(),
            headers: &info.headers,
            user_agent: info.user_agent.as_deref(),
        };
        match self.admission.admit(&attempt, &at) {
            Decision::Admit(ticket) => {
                let trunk = ticket.scopes().iter().find_map(|s| match s {
                    Scope::Trunk(name) => Some(name.to_string()),
                    _ => None,
                });
                let peer = info.conn.and_then(|c| self.peers.get(&c));
                if let Err(why) = self.certs.check(trunk.as_deref(), peer) {
                    self.admission.call_ended(&ticket, &at);
                    self.ctx
                        .stats
                        .policy_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(source = %info.source, trunk = trunk.as_deref().unwrap_or(""), reason = why, "call rejected: client certificate");
                    admitted.trunk = trunk;
                    let cmd = CallCommand::Reject {
                        status: 403,
                        reason: Some("Client Certificate Required".into()),
                        headers: Vec::new(),
                    };
                    self.reject_after_record(call, &info, &admitted, cmd, "client_certificate");
                    return;
                }
                self.ep.handle(
                    at.mono,
                    Input::Command {
                        call,
                        cmd: CallCommand::Proceed,
                    },
                );
                admitted.trunk = trunk;
                let (tx, rx) = mpsc::unbounded_channel();
                // Reachable by id from now on (the API's commands share the SIP events' inbox).
                self.ctx.registry.insert(
                    admitted.call_id.clone(),
                    tx.clone(),
                    admitted_view(&admitted, &info),
                );
                self.calls.insert(
                    call,
                    Running {
                        tx,
                        ticket: Some(ticket),
                    },
                );
                let call_id = admitted.call_id.clone();
                let spawned = self.ctx.calls.spawn(crate::app::call::run_guarded(
                    call,
                    info,
                    admitted,
                    rx,
                    self.ctl.clone(),
                    self.ctx.clone(),
                ));
                if spawned.is_err() {
                    // The gateway was dropped without a shutdown: nobody can run the call.
                    self.calls.remove(&call);
                    if let Some(mut view) = self.ctx.registry.get(&call_id) {
                        view.status = crate::core::call::CallStatus::Failed;
                        self.ctx.registry.ended(&call_id, view);
                    }
                    tracing::error!("call workers stopped; refusing the call");
                    let cmd = CallCommand::Reject {
                        status: 503,
                        reason: None,
                        headers: Vec::new(),
                    };
                    self.ep.handle(at.mono, Input::Command { call, cmd });
                }
            }
            Decision::Reject {
                status,
                reason,
                retry_after,
            } => {
                self.ctx
                    .stats
                    .policy_rejected
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    source = %info.source,
                    caller = admitted.caller.as_deref().unwrap_or(""),
                    status,
                    reason = reason.as_str(),
                    "call rejected by policy"
                );
                let headers = retry_after
                    .map(|s| vec![("Retry-After".to_string(), s.to_string())])
                    .unwrap_or_default();
                let cmd = CallCommand::Reject {
                    status,
                    reason: None,
                    headers,
                };
                let why = EndReason::Policy { reason, status }.as_str();
                self.reject_after_record(call, &info, &admitted, cmd, &why);
            }
            Decision::Drop { reason } => {
                self.ctx
                    .stats
                    .policy_dropped
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(source = %info.source, reason = reason.as_str(), "call dropped by policy");
                self.ep.handle(
                    at.mono,
                    Input::Command {
                        call,
                        cmd: CallCommand::Drop,
                    },
                );
            }
        }
    }
}

/// A call as the API shows it the moment it is admitted.
fn admitted_view(admitted: &Admitted, info: &IncomingCall) -> CallView {
    let now = jiff::Timestamp::now().to_string();
    let mut view = CallView::new(admitted.call_id.as_str(), Direction::Inbound, now);
    view.from = admitted.caller.clone();
    view.to = admitted.dialled.clone();
    view.did = info.did.clone();
    view.crt = info.crt.clone();
    view
}
