//! Incoming requests and responses: transaction matching, CANCEL, ACK, and in-dialog methods.

use std::time::Instant;

use super::checks;
use super::dialog::{CallState, Role, SipCall};
use super::responses::{reply_flow, Extra};
use super::{CallEvent, CallKey, EndReason, Endpoint, IncomingCall, ServerTxn, ServerTxnKind};
use crate::core::number::did_crt;
use crate::core::sip::message::{parse_uri, HeaderName, Message, Method};
use crate::core::sip::txn::{ServerInvite, ServerNonInvite};
use crate::core::Flow;

/// The server transaction key (RFC 3261 §17.2.3): branch + sent-by + method, with ACK
/// matching its INVITE. Requests without the RFC 3261 magic cookie fall back to the RFC 2543
/// identifiers (Call-ID, CSeq number, From tag, top Via).
///
/// The source address is part of the key too: a request from elsewhere that reuses a branch
/// (a broken or hostile peer) starts its own transaction instead of being answered as a
/// retransmission of someone else's, and never learns that transaction's response.
pub fn txn_key(msg: &Message, method: &Method, source: std::net::SocketAddr) -> String {
    let method = match method {
        Method::Ack => "INVITE",
        m => m.as_str(),
    };
    let via = msg.top_via();
    let port = via.port.unwrap_or(5060);
    match via.branch() {
        Some(b) if b.len() > 7 && b.starts_with("z9hG4bK") => {
            format!("{b}|{}:{port}|{method}|{source}", via.host)
        }
        _ => format!(
            "2543|{}|{}|{}|{}:{port}|{method}|{source}",
            msg.call_id(),
            msg.cseq().seq,
            msg.from_tag().unwrap_or(""),
            via.host
        ),
    }
}

impl Endpoint {
    pub(super) fn on_request(&mut self, now: Instant, flow: Flow, msg: Message) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        if let Some(ua) = msg.header(&HeaderName::UserAgent) {
            if crate::core::policy::blocked_user_agent(ua, &self.settings.blocked_user_agents) {
                self.out.push_back(super::Output::Blocked { flow });
                return;
            }
        }
        let key = txn_key(&msg, &method, flow.remote);
        if method == Method::Ack {
            self.on_ack(now, msg, key);
            return;
        }
        if let Some(txn) = self.server_txns.get_mut(&key) {
            let txn_flow = txn.flow;
            let mut outs = std::mem::take(&mut self.scratch);
            match &mut txn.kind {
                ServerTxnKind::Invite(i) => i.on_request_retransmission(&mut outs),
                ServerTxnKind::NonInvite(n) => n.on_request_retransmission(&mut outs),
            }
            self.scratch = outs;
            self.drain_txn_out(txn_flow);
            return;
        }
        if method == Method::Cancel {
            self.on_cancel(now, flow, msg, key);
            return;
        }
        if msg.to_tag().is_some() {
            self.on_in_dialog(now, flow, msg, method, key);
            return;
        }
        let registering = method == Method::Register && self.settings.registrar;
        let checked = match registering {
            true => checks::inspect(&msg, &method),
            false => checks::method_allowed_out_of_dialog(&method)
                .and_then(|()| checks::inspect(&msg, &method)),
        };
        if let Err(rej) = checked {
            self.respond_new(now, flow, &msg, key, rej.status, rej.headers);
            return;
        }
        if method == Method::Invite {
            if let Some(headers) = self.session_too_small(&msg) {
                return self.respond_new(now, flow, &msg, key, 422, headers);
            }
        }
        match method {
            Method::Invite => self.on_new_invite(now, flow, msg, key),
            Method::Register if registering => {
                let msg = Box::new(msg);
                self.out.push_back(super::Output::Register { flow, msg });
            }
            Method::Options if self.draining => {
                let headers = vec![("Retry-After", "30".to_string())];
                self.respond_new(now, flow, &msg, key, 503, headers);
            }
            Method::Options => {
                let headers = options_headers();
                self.respond_new(now, flow, &msg, key, 200, headers);
            }
            _ => self.respond_new(now, flow, &msg, key, 481, Vec::new()),
        }
    }

    /// The shell's answer to an [`super::Output::Register`]: `status` with `headers` (Contact,
    /// Expires, WWW-Authenticate, Date…), in a server transaction that answers the request's
    /// retransmissions. A request already answered (the shell answered twice) is ignored.
    pub fn answer_register(
        &mut self,
        now: Instant,
        flow: Flow,
        msg: &Message,
        status: u16,
        headers: Vec<(&str, String)>,
    ) {
        let key = txn_key(msg, &Method::Register, flow.remote);
        if self.server_txns.contains_key(&key) {
            return;
        }
        self.respond_new(now, flow, msg, key, status, headers);
    }

    /// Answers a request with a final response inside a new server transaction, so that
    /// retransmissions of the request get the same answer.
    pub(super) fn respond_new(
        &mut self,
        now: Instant,
        flow: Flow,
        msg: &Message,
        key: String,
        status: u16,
        headers: Vec<(&str, String)>,
    ) {
        let reply = reply_flow(&flow, msg);
        let tag = msg.to_tag().is_none().then(|| self.random_token());
        let bytes = self.response_bytes(
            msg,
            &reply,
            status,
            Extra {
                to_tag: tag.as_deref(),
                headers,
                ..Extra::default()
            },
        );
        let reliable = flow.transport.is_reliable();
        let timers = self.settings.timers;
        let mut outs = std::mem::take(&mut self.scratch);
        let kind = if msg.method() == Some(&Method::Invite) {
            let mut t = ServerInvite::new(reliable, timers);
            t.send_final(now, status, bytes, &mut outs);
            ServerTxnKind::Invite(t)
        } else {
            let mut t = ServerNonInvite::new(reliable, timers);
            t.send_final(now, bytes, &mut outs);
            ServerTxnKind::NonInvite(t)
        };
        self.scratch = outs;
        let (terminated, _) = self.drain_txn_out(reply);
        if !terminated {
            self.server_txns
                .insert(key.clone(), ServerTxn { kind, flow: reply });
            self.schedule_server(&key);
        }
    }

    /// A new INVITE: the transaction and call exist from now on, but nothing is sent until
    /// the owner's verdict (`Proceed` sends 100 Trying; see [`CallEvent::Incoming`]).
    fn on_new_invite(&mut self, _now: Instant, flow: Flow, msg: Message, key: String) {
        let reply = reply_flow(&flow, &msg);
        let call = self.alloc_call_key();
        let local_tag = self.random_token();
        let txn = ServerInvite::new(flow.transport.is_reliable(), self.settings.timers);
        self.server_txns.insert(
            key.clone(),
            ServerTxn {
                kind: ServerTxnKind::Invite(txn),
                flow: reply,
            },
        );
        let incoming = self.incoming_info(&msg, &flow);
        self.dialogs
            .insert((msg.call_id().to_string(), local_tag.clone()), call);
        self.invite_txn_calls.insert(key.clone(), call);
        self.calls
            .insert(call, SipCall::new(msg, reply, key, local_tag));
        self.emit(call, CallEvent::Incoming(Box::new(incoming)));
    }

    fn incoming_info(&self, msg: &Message, flow: &Flow) -> IncomingCall {
        let from = msg.from_hdr();
        let to = msg.to_hdr();
        let display = from.display.as_deref().map(str::to_string);
        let ids = display.as_deref().map(did_crt).unwrap_or_default();
        let headers = msg
            .headers()
            .filter(|(name, _, _)| matches!(name, HeaderName::Other))
            .map(|(_, n, v)| (n.to_string(), v.to_string()))
            .collect();
        let request_user = msg
            .request_uri()
            .and_then(|u| parse_uri(u).ok())
            .and_then(|u| u.user.map(str::to_string));
        IncomingCall {
            sip_call_id: msg.call_id().to_string(),
            from_uri: from.uri.raw.to_string(),
            from_user: from.uri.user.map(str::to_string),
            from_display: display,
            to_uri: to.uri.raw.to_string(),
            to_user: to.uri.user.map(str::to_string),
            request_user,
            did: ids.did,
            crt: ids.crt,
            headers,
            user_agent: msg.header(&HeaderName::UserAgent).map(str::to_string),
            source: flow.remote,
            transport: flow.transport,
            conn: flow.conn,
            local_host: self.advertised_host(flow, Some(msg)),
            offer: (!msg.body().is_empty()).then(|| msg.body().to_vec()),
        }
    }

    fn on_ack(&mut self, now: Instant, msg: Message, key: String) {
        // An ACK for a non-2xx final shares the INVITE's branch (§17.2.1).
        if let Some(ServerTxn {
            kind: ServerTxnKind::Invite(inv),
            flow,
        }) = self.server_txns.get_mut(&key)
        {
            if !matches!(
                inv.state(),
                crate::core::sip::txn::ServerInviteState::Accepted
            ) {
                let flow = *flow;
                let mut outs = std::mem::take(&mut self.scratch);
                inv.on_ack(now, &mut outs);
                self.scratch = outs;
                let (terminated, _) = self.drain_txn_out(flow);
                if terminated {
                    self.server_txns.remove(&key);
                } else {
                    self.schedule_server(&key);
                }
                return;
            }
        }
        // An ACK for a 2xx is its own transaction, matched to the dialog (§13.3.1.4).
        let Some(tag) = msg.to_tag() else { return };
        let Some(&call_key) = self
            .dialogs
            .get(&(msg.call_id().to_string(), tag.to_string()))
        else {
            return;
        };
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let seq = msg.cseq().seq;
        if seq == call.invite.cseq().seq && call.state == CallState::Answered {
            call.state = CallState::Confirmed;
            let sdp = (call.late_offer && !msg.body().is_empty()).then(|| msg.body().to_vec());
            let txn_key = call.invite_txn.clone();
            let hangup = call.hangup_pending;
            self.ack_txn(now, &txn_key);
            self.emit(call_key, CallEvent::Acked { sdp });
            if hangup {
                self.send_bye(now, call_key);
            }
        } else if let Some((reseq, txn_key)) = call.reinvite_ack.clone() {
            if reseq == seq {
                call.reinvite_ack = None;
                self.ack_txn(now, &txn_key);
            }
        }
    }

    fn ack_txn(&mut self, now: Instant, key: &str) {
        if let Some(ServerTxn {
            kind: ServerTxnKind::Invite(inv),
            ..
        }) = self.server_txns.get_mut(key)
        {
            let mut outs = std::mem::take(&mut self.scratch);
            inv.on_ack(now, &mut outs);
            self.scratch = outs;
            self.scratch.clear();
        }
    }

    fn on_cancel(&mut self, now: Instant, flow: Flow, msg: Message, key: String) {
        let invite_key = txn_key(&msg, &Method::Invite, flow.remote);
        let call_key = self.invite_txn_calls.get(&invite_key).copied();
        let early = call_key
            .and_then(|k| self.calls.get(&k))
            .is_some_and(|c| c.state == CallState::Early);
        if !early && !self.server_txns.contains_key(&invite_key) {
            self.respond_new(now, flow, &msg, key, 481, Vec::new());
            return;
        }
        self.respond_new(now, flow, &msg, key, 200, Vec::new());
        if let (true, Some(call_key)) = (early, call_key) {
            self.final_to_invite(now, call_key, 487, None, Vec::new());
            self.remove_call(call_key);
            self.emit(call_key, CallEvent::Ended(EndReason::Canceled));
        }
    }

    fn on_in_dialog(
        &mut self,
        now: Instant,
        flow: Flow,
        msg: Message,
        method: Method,
        key: String,
    ) {
        let tag = msg.to_tag().unwrap_or("").to_string();
        let Some(&call_key) = self.dialogs.get(&(msg.call_id().to_string(), tag)) else {
            self.respond_new(now, flow, &msg, key, 481, Vec::new());
            return;
        };
        let Some(call) = self.calls.get_mut(&call_key) else {
            self.respond_new(now, flow, &msg, key, 481, Vec::new());
            return;
        };
        let seq = msg.cseq().seq;
        if seq <= call.remote_cseq {
            self.respond_new(now, flow, &msg, key, 500, vec![("Retry-After", "1".into())]);
            return;
        }
        call.remote_cseq = seq;
        match method {
            Method::Bye => {
                let early = call.state == CallState::Early && call.role == Role::Uas;
                self.respond_new(now, flow, &msg, key, 200, Vec::new());
                if early {
                    self.final_to_invite(now, call_key, 487, None, Vec::new());
                }
                self.remove_call(call_key);
                self.emit(call_key, CallEvent::Ended(EndReason::RemoteBye));
            }
            Method::Invite => self.on_reinvite(now, flow, msg, key, call_key),
            Method::Info => {
                let content_type = msg.content_type().unwrap_or("").to_string();
                let body = msg.body().to_vec();
                self.respond_new(now, flow, &msg, key, 200, Vec::new());
                self.emit(call_key, CallEvent::Info { content_type, body });
            }
            Method::Options => {
                self.respond_new(now, flow, &msg, key, 200, options_headers());
            }
            // A session refresh (RFC 3311 without a body, RFC 4028 §9). An UPDATE that
            // changes the media is refused for now; re-INVITE does that.
            Method::Update if msg.body().is_empty() => {
                if let Some(headers) = self.session_too_small(&msg) {
                    return self.respond_new(now, flow, &msg, key, 422, headers);
                }
                let mut headers = self.on_peer_refresh(now, call_key, &msg);
                headers.push(("Contact", self.contact_value(&flow, Some(&msg))));
                self.respond_new(now, flow, &msg, key, 200, headers);
            }
            Method::Update => self.respond_new(now, flow, &msg, key, 488, Vec::new()),
            Method::Notify => self.on_notify(now, flow, msg, key, call_key),
            // RFC 3515 §2.4.2: we take no transfers from peers (yet).
            Method::Refer => self.respond_new(now, flow, &msg, key, 603, Vec::new()),
            Method::Other(_) => {
                self.respond_new(
                    now,
                    flow,
                    &msg,
                    key,
                    501,
                    vec![("Allow", super::ALLOW.into())],
                );
            }
            _ => self.respond_new(
                now,
                flow,
                &msg,
                key,
                405,
                vec![("Allow", super::ALLOW.into())],
            ),
        }
    }

    fn on_reinvite(
        &mut self,
        now: Instant,
        flow: Flow,
        msg: Message,
        key: String,
        call_key: CallKey,
    ) {
        let busy = self
            .calls
            .get(&call_key)
            .is_none_or(|c| c.reinvite_txn.is_some() || c.state == CallState::Early);
        if busy {
            // §14.2: a second INVITE while one is pending gets 500 with Retry-After.
            let wait = self.rng.u32(0..=10).to_string();
            self.respond_new(now, flow, &msg, key, 500, vec![("Retry-After", wait)]);
            return;
        }
        let glare = self
            .calls
            .get(&call_key)
            .is_some_and(|c| c.refresh.invite_in_flight());
        if glare {
            // §14.2: our own re-INVITE (a session refresh) is pending.
            return self.respond_new(now, flow, &msg, key, 491, Vec::new());
        }
        if let Err(rej) = checks::inspect(&msg, &Method::Invite) {
            self.respond_new(now, flow, &msg, key, rej.status, rej.headers);
            return;
        }
        if let Some(headers) = self.session_too_small(&msg) {
            return self.respond_new(now, flow, &msg, key, 422, headers);
        }
        let reply = reply_flow(&flow, &msg);
        let mut txn = ServerInvite::new(flow.transport.is_reliable(), self.settings.timers);
        let trying = self.response_bytes(&msg, &reply, 100, Extra::default());
        let mut outs = std::mem::take(&mut self.scratch);
        txn.send_provisional(trying, &mut outs);
        self.scratch = outs;
        self.drain_txn_out(reply);
        self.server_txns.insert(
            key.clone(),
            ServerTxn {
                kind: ServerTxnKind::Invite(txn),
                flow: reply,
            },
        );
        let sdp = (!msg.body().is_empty()).then(|| msg.body().to_vec());
        if let Some(call) = self.calls.get_mut(&call_key) {
            call.reinvite_txn = Some(key);
            call.reinvite = Some(msg);
        }
        self.emit(call_key, CallEvent::ReInvite { sdp });
    }

    pub(super) fn on_response(&mut self, now: Instant, flow: Flow, msg: Message) {
        let Some(status) = msg.status() else { return };
        let Some(via_branch) = msg.top_via().branch().map(str::to_string) else {
            return;
        };
        let method = msg.cseq().method;
        if method == Method::Invite && self.client_invites.contains_key(&via_branch) {
            return self.on_invite_response(now, msg);
        }
        if method == Method::Invite && (200..300).contains(&status) {
            return self.on_dialog_2xx(now, flow, msg);
        }
        let branch = if method == Method::Cancel {
            super::uac::cancel_key(&via_branch)
        } else {
            via_branch
        };
        let Some(entry) = self.client_txns.get_mut(&branch) else {
            // Not ours: perhaps a transaction run outside the endpoint (REGISTER).
            self.out
                .push_back(super::Output::UnmatchedResponse { flow, msg });
            return;
        };
        let mut outs = std::mem::take(&mut self.scratch);
        let deliver = entry.txn.on_response(now, status, &mut outs);
        let (call, flow) = (entry.call, entry.flow);
        self.scratch = outs;
        let (terminated, _) = self.drain_txn_out(flow);
        if terminated {
            self.client_txns.remove(&branch);
        } else {
            self.schedule_client(&branch);
        }
        if let (true, true, Some(call)) = (deliver, status >= 200, call) {
            self.on_call_txn_final(now, call, &branch, status, Some(&msg));
        }
    }
}

fn options_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Allow", super::ALLOW.to_string()),
        ("Accept", "application/sdp".to_string()),
        (
            "Supported",
            crate::core::sip::session_timer::TAG.to_string(),
        ),
    ]
}
