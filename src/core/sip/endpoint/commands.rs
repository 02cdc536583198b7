//! Commands from a call's owner (`Refer` is handed to `refer`), and what the endpoint sends
//! on its own initiative (BYE).

use std::time::Instant;

use super::dialog::{CallState, Role};
use super::responses::Extra;
use super::{CallCommand, CallEvent, CallKey, EndReason, Endpoint, ServerTxn, ServerTxnKind};
use crate::core::sip::message::Method;

impl Endpoint {
    pub(super) fn on_command(&mut self, now: Instant, call_key: CallKey, cmd: CallCommand) {
        if let CallCommand::Refer {
            refer_to,
            referred_by,
        } = &cmd
        {
            return self.send_refer(now, call_key, refer_to, referred_by.as_deref());
        }
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        let state = call.state;
        if call.role == Role::Uac {
            return self.on_uac_command(now, call_key, state, cmd);
        }
        match cmd {
            CallCommand::Proceed if state == CallState::Early => self.provisional(call_key, 100),
            CallCommand::Drop if state == CallState::Early => {
                let key = call.invite_txn.clone();
                self.remove_call(call_key);
                if let Some(ServerTxn {
                    kind: ServerTxnKind::Invite(inv),
                    ..
                }) = self.server_txns.get_mut(&key)
                {
                    inv.abandon(now);
                }
                self.schedule_server(&key);
            }
            CallCommand::Ringing if state == CallState::Early => {
                self.provisional(call_key, 180);
            }
            CallCommand::Answer { sdp } if state == CallState::Early => {
                let invite = call.invite.clone();
                let headers = self.on_peer_refresh(now, call_key, &invite);
                self.final_to_invite(now, call_key, 200, Some(sdp.clone()), headers);
                if let Some(call) = self.calls.get_mut(&call_key) {
                    call.state = CallState::Answered;
                    call.local_sdp = sdp;
                }
            }
            CallCommand::Reject {
                status,
                reason,
                headers,
            } if state == CallState::Early => {
                let headers = headers.into_iter().collect();
                self.final_to_invite_reason(now, call_key, status, reason.as_deref(), headers);
                self.remove_call(call_key);
                self.emit(call_key, CallEvent::Ended(EndReason::Rejected(status)));
            }
            CallCommand::ReInviteAnswer { sdp } => {
                self.answer_reinvite(now, call_key, 200, Some(sdp))
            }
            CallCommand::ReInviteReject { status } => {
                self.answer_reinvite(now, call_key, status, None)
            }
            CallCommand::Hangup => match state {
                CallState::Early => {
                    self.final_to_invite(now, call_key, 480, None, Vec::new());
                    self.remove_call(call_key);
                    self.emit(call_key, CallEvent::Ended(EndReason::Rejected(480)));
                }
                CallState::Answered => {
                    if let Some(call) = self.calls.get_mut(&call_key) {
                        call.hangup_pending = true;
                    }
                }
                CallState::Confirmed => self.send_bye(now, call_key),
                CallState::Terminating => {}
            },
            _ => {}
        }
    }

    /// A UAC call takes only hangups and re-INVITE answers.
    fn on_uac_command(&mut self, now: Instant, key: CallKey, state: CallState, cmd: CallCommand) {
        match cmd {
            CallCommand::Hangup => match state {
                CallState::Early => self.cancel_invite(now, key),
                CallState::Confirmed => self.send_bye(now, key),
                CallState::Answered | CallState::Terminating => {}
            },
            CallCommand::ReInviteAnswer { sdp } => self.answer_reinvite(now, key, 200, Some(sdp)),
            CallCommand::ReInviteReject { status } => self.answer_reinvite(now, key, status, None),
            _ => {}
        }
    }

    fn provisional(&mut self, call_key: CallKey, status: u16) {
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        // 100 Trying is hop-by-hop: no tag, no Contact (RFC 3261 §8.2.6.1).
        let trying = status == 100;
        let bytes = self.response_bytes(
            &call.invite,
            &call.flow,
            status,
            Extra {
                to_tag: (!trying).then_some(call.local_tag.as_str()),
                contact: !trying,
                ..Extra::default()
            },
        );
        let key = call.invite_txn.clone();
        if let Some(txn) = self.server_txns.get_mut(&key) {
            let flow = txn.flow;
            if let ServerTxnKind::Invite(inv) = &mut txn.kind {
                let mut outs = std::mem::take(&mut self.scratch);
                inv.send_provisional(bytes, &mut outs);
                self.scratch = outs;
                self.drain_txn_out(flow);
            }
        }
    }

    pub(super) fn final_to_invite(
        &mut self,
        now: Instant,
        call_key: CallKey,
        status: u16,
        sdp: Option<Vec<u8>>,
        headers: Vec<(&str, String)>,
    ) {
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        let bytes = self.response_bytes(
            &call.invite,
            &call.flow,
            status,
            Extra {
                to_tag: Some(&call.local_tag),
                contact: (200..300).contains(&status),
                headers,
                sdp,
                ..Extra::default()
            },
        );
        let key = call.invite_txn.clone();
        self.send_final_on(now, &key, status, bytes);
    }

    fn final_to_invite_reason(
        &mut self,
        now: Instant,
        call_key: CallKey,
        status: u16,
        reason: Option<&str>,
        headers: Vec<(String, String)>,
    ) {
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let bytes = self.response_bytes(
            &call.invite,
            &call.flow,
            status,
            Extra {
                reason,
                to_tag: Some(&call.local_tag),
                headers,
                ..Extra::default()
            },
        );
        let key = call.invite_txn.clone();
        self.send_final_on(now, &key, status, bytes);
    }

    fn send_final_on(&mut self, now: Instant, key: &str, status: u16, bytes: Vec<u8>) {
        if let Some(txn) = self.server_txns.get_mut(key) {
            let flow = txn.flow;
            if let ServerTxnKind::Invite(inv) = &mut txn.kind {
                let mut outs = std::mem::take(&mut self.scratch);
                inv.send_final(now, status, bytes, &mut outs);
                self.scratch = outs;
                let (terminated, _) = self.drain_txn_out(flow);
                if terminated {
                    self.server_txns.remove(key);
                } else {
                    self.schedule_server(key);
                }
            }
        }
    }

    fn answer_reinvite(
        &mut self,
        now: Instant,
        call_key: CallKey,
        status: u16,
        sdp: Option<Vec<u8>>,
    ) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let (Some(key), Some(req)) = (call.reinvite_txn.take(), call.reinvite.take()) else {
            return;
        };
        let ok = (200..300).contains(&status);
        if ok {
            call.reinvite_ack = Some((req.cseq().seq, key.clone()));
            if let Some(sdp) = &sdp {
                call.local_sdp = sdp.clone();
            }
        }
        // A re-INVITE answered 2xx is a session refresh (RFC 4028 §9).
        let headers = if ok {
            self.on_peer_refresh(now, call_key, &req)
        } else {
            Vec::new()
        };
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        let bytes = self.response_bytes(
            &req,
            &call.flow,
            status,
            Extra {
                to_tag: Some(&call.local_tag),
                contact: ok,
                headers,
                sdp,
                ..Extra::default()
            },
        );
        self.send_final_on(now, &key, status, bytes);
    }

    /// Sends BYE for an answered call; the call ends when the BYE transaction completes.
    pub(super) fn send_bye(&mut self, now: Instant, call_key: CallKey) {
        let branch = self.random_token();
        let ua = self.settings.user_agent.clone();
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        let host = self.dialog_host(call);
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        call.state = CallState::Terminating;
        let bytes = call.request(Method::Bye, &branch, &host, &ua);
        let flow = call.flow;
        let key = format!("z9hG4bK{branch}");
        self.start_client(now, key, bytes, flow, Some(call_key));
    }

    /// Our 2xx was never acknowledged (Timer L): end the call with BYE (§13.3.1.4).
    pub(super) fn on_no_ack(&mut self, now: Instant, call_key: CallKey) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        if call.state == CallState::Answered {
            call.end_reason = Some(EndReason::NoAck);
            self.send_bye(now, call_key);
        }
    }

    /// A final response (or a timeout as 408) to a request we sent inside a call.
    pub(super) fn on_client_final(&mut self, call_key: CallKey, status: u16) {
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        if call.state == CallState::Terminating {
            let reason = call.end_reason.unwrap_or(EndReason::LocalBye(status));
            self.remove_call(call_key);
            self.emit(call_key, CallEvent::Ended(reason));
        }
    }

    pub(super) fn remove_call(&mut self, call_key: CallKey) {
        if let Some(call) = self.calls.remove(&call_key) {
            // A 2xx still being retransmitted is pointless once the call is over.
            if let Some(txn) = self.server_txns.get_mut(&call.invite_txn) {
                if let ServerTxnKind::Invite(inv) = &mut txn.kind {
                    if inv.state() == crate::core::sip::txn::ServerInviteState::Accepted {
                        inv.on_ack_quiet();
                    }
                }
            }
            self.dialogs
                .remove(&(call.invite.call_id().to_string(), call.local_tag.clone()));
            self.invite_txn_calls.remove(&call.invite_txn);
        }
    }
}
