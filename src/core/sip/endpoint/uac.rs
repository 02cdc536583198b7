//! The UAC side of calls (RFC 3261 §13.2, §9.1, §22.2): our INVITE and its responses, digest
//! retries (RFC 7616/8760 through [`crate::core::sip::auth`]), CANCEL, and the ACK for a 2xx.
//!
//! A retried INVITE keeps its Call-ID and From tag and raises CSeq; each challenge is answered
//! once (a second one for the same realm ends the call with `AuthFailed`), and a 422 (RFC 4028
//! §7.3) once, asking for its Min-SE. The 2xx starts the session timer it names (`refresh`). A 2xx that comes
//! after we asked to cancel is acknowledged and hung up at once.
//!
//! Must not: choose where a call goes (the owner's [`DialSpec`] says), read the clock, or
//! decide what a failure means for the call (the owner maps the status).

use std::time::Instant;

use super::dialog::{CallState, Role, SipCall};
use super::refresh;
use super::responses::contact_for;
use super::timers::TimerRef;
use super::{CallEvent, CallKey, DialSpec, EndReason, Endpoint};
use crate::core::sip::auth::{ChallengeKind, DigestClient, RequestAuth};
use crate::core::sip::message::{HeaderName, Message, Method, OutMessage};
use crate::core::sip::session_timer::{self, Offer};
use crate::core::sip::txn::{Cancel, ClientInvite, TxnOut, Upcall};
use crate::core::Flow;

/// A client INVITE transaction and the call it belongs to.
#[derive(Debug)]
pub(super) struct InviteTxn {
    pub txn: ClientInvite,
    pub call: CallKey,
    pub flow: Flow,
}

/// What a UAC call keeps to build its INVITE again (after a challenge).
#[derive(Debug)]
pub(super) struct Dialing {
    pub spec: DialSpec,
    pub call_id: String,
    /// RFC 4028: the Session-Expires and Min-SE our INVITE asks for (raised once by a 422).
    pub session_expires: u32,
    pub min_se: u32,
    pub retried_422: bool,
}

impl Endpoint {
    /// Sends an INVITE; the call's events follow under `call` (`Progress`, `Answered` or
    /// `Redirected`, and always one `Ended`, last). The owner picks the key (see
    /// [`OUTBOUND_KEYS`]) so it can name the call before the endpoint has seen it.
    pub fn dial(&mut self, now: Instant, call: CallKey, spec: DialSpec) {
        let local_tag = self.random_token();
        let call_id = format!("{}{}", self.random_token(), self.random_token());
        let auth = spec
            .credentials
            .clone()
            .map(|c| (DigestClient::new(c), RequestAuth::default()));
        let dialing = Dialing {
            spec,
            call_id,
            session_expires: self.settings.session_expires,
            min_se: self.settings.min_se.min(self.settings.session_expires),
            retried_422: false,
        };
        let branch = self.random_token();
        let Some(invite) = self.build_invite(&dialing, &local_tag, 1, &branch, &[]) else {
            self.emit(call, CallEvent::Ended(EndReason::Refused(500)));
            return;
        };
        let flow = dialing.spec.flow;
        let key = format!("z9hG4bK{branch}");
        let mut sip_call = SipCall::uac(invite.clone(), flow, key.clone(), local_tag.clone());
        sip_call.auth = auth;
        sip_call.local_host = dialing.spec.local_host.clone();
        sip_call.local_sdp = dialing.spec.sdp.clone();
        if self.calls.contains_key(&call) {
            // A key in use: refuse rather than take over another call.
            self.emit(call, CallEvent::Ended(EndReason::Refused(500)));
            return;
        }
        self.dialogs
            .insert((dialing.call_id.clone(), local_tag), call);
        self.calls.insert(call, sip_call);
        self.dialing.insert(call, dialing);
        self.start_invite(now, call, key, invite, flow);
    }

    pub(super) fn start_invite(
        &mut self,
        now: Instant,
        call: CallKey,
        key: String,
        invite: Message,
        flow: Flow,
    ) {
        let mut outs = std::mem::take(&mut self.scratch);
        let txn = ClientInvite::start(
            now,
            invite,
            flow.transport.is_reliable(),
            self.settings.timers,
            &mut outs,
        );
        self.scratch = outs;
        self.drain_txn_out(flow);
        self.client_invites
            .insert(key.clone(), InviteTxn { txn, call, flow });
        self.schedule_invite(&key);
    }

    /// Our INVITE, parsed back (the transaction and the dialog work on the parsed form).
    fn build_invite(
        &self,
        d: &Dialing,
        local_tag: &str,
        cseq: u32,
        branch: &str,
        auth: &[(String, String)],
    ) -> Option<Message> {
        let spec = &d.spec;
        let port = spec.flow.local.port();
        let mut req = OutMessage::request(Method::Invite, &spec.request_uri);
        req.add_header(
            "Via",
            format!(
                "SIP/2.0/{} {}:{port};branch=z9hG4bK{branch};rport",
                spec.flow.transport.via_token(),
                spec.local_host
            ),
        );
        req.add_header("Max-Forwards", "70");
        if let Some(route) = &spec.route {
            req.add_header("Route", route.clone());
        }
        req.add_header("From", format!("{};tag={local_tag}", spec.from));
        req.add_header("To", spec.to.clone());
        req.add_header("Call-ID", d.call_id.clone());
        req.add_header("CSeq", format!("{cseq} INVITE"));
        req.add_header(
            "Contact",
            contact_for(&spec.local_host, &spec.flow, &spec.request_uri),
        );
        req.add_header("Allow", super::ALLOW);
        req.add_header("User-Agent", self.settings.user_agent.clone());
        for (name, value) in session_timer::uac_headers(d.session_expires, d.min_se, None) {
            req.add_header(name, value);
        }
        for (name, value) in &spec.headers {
            req.add_header(name, value.clone());
        }
        for (name, value) in auth {
            req.add_header(name, value.clone());
        }
        req.set_body("application/sdp", spec.sdp.clone());
        Message::parse_owned(req.to_bytes(), &self.settings.limits).ok()
    }

    pub(super) fn schedule_invite(&mut self, key: &str) {
        if let Some(at) = self
            .client_invites
            .get(key)
            .and_then(|t| t.txn.next_timeout())
        {
            self.timers.push(at, TimerRef::Invite(key.to_string()));
        }
    }

    pub(super) fn invite_timeout(&mut self, now: Instant, key: String) {
        let Some(entry) = self.client_invites.get_mut(&key) else {
            return;
        };
        let mut outs = std::mem::take(&mut self.scratch);
        if entry.txn.next_timeout().is_some_and(|t| t <= now) {
            entry.txn.on_timeout(now, &mut outs);
        }
        let (call, flow) = (entry.call, entry.flow);
        let failed = outs.iter().find_map(|o| match o {
            TxnOut::Timeout => Some(EndReason::Refused(408)),
            TxnOut::TransportError => Some(EndReason::Unreachable),
            _ => None,
        });
        self.scratch = outs;
        let (terminated, _) = self.drain_txn_out(flow);
        if terminated {
            self.client_invites.remove(&key);
        } else {
            self.schedule_invite(&key);
        }
        if let Some(reason) = failed {
            if self.is_refresh_invite(call, &key) {
                let status = match reason {
                    EndReason::Refused(s) => s,
                    _ => 503,
                };
                self.on_refresh_final(now, call, status, None);
            } else {
                self.uac_failed(call, reason);
            }
        }
    }

    /// The connection our INVITEs went on is gone: each one still without a final fails now.
    pub(super) fn on_connection_lost(&mut self, now: Instant, conn: crate::core::ConnId) {
        let lost: Vec<String> = self
            .client_invites
            .iter()
            .filter(|(_, t)| t.flow.conn == Some(conn))
            .map(|(k, _)| k.clone())
            .collect();
        for key in lost {
            let Some(entry) = self.client_invites.get_mut(&key) else {
                continue;
            };
            let mut outs = std::mem::take(&mut self.scratch);
            entry.txn.on_transport_error(&mut outs);
            let (call, flow) = (entry.call, entry.flow);
            let failed = outs.iter().any(|o| matches!(o, TxnOut::TransportError));
            self.scratch = outs;
            self.drain_txn_out(flow);
            let refresh = self.is_refresh_invite(call, &key);
            self.client_invites.remove(&key);
            if failed && refresh {
                self.on_refresh_final(now, call, 503, None);
            } else if failed {
                self.uac_failed(call, EndReason::Unreachable);
            }
        }
    }

    /// A response whose CSeq method is INVITE.
    pub(super) fn on_invite_response(&mut self, now: Instant, msg: Message) {
        let branch = msg.top_via().branch().unwrap_or("").to_string();
        let Some(entry) = self.client_invites.get_mut(&branch) else {
            return;
        };
        let mut outs = std::mem::take(&mut self.scratch);
        let up = entry.txn.on_response(now, &msg, &mut outs);
        let (call, flow) = (entry.call, entry.flow);
        self.scratch = outs;
        let (terminated, _) = self.drain_txn_out(flow);
        if terminated {
            self.client_invites.remove(&branch);
        } else {
            self.schedule_invite(&branch);
        }
        if self.is_refresh_invite(call, &branch) {
            return self.on_refresh_invite_response(now, call, &msg, up);
        }
        match up {
            Upcall::Ignored => {}
            Upcall::Provisional {
                status,
                early_media,
                cancel,
            } => {
                if let Some(cancel) = cancel {
                    self.send_cancel(now, flow, &branch, cancel);
                }
                if status > 100 && self.calls.contains_key(&call) {
                    let sdp = early_media.then(|| msg.body().to_vec());
                    self.emit(call, CallEvent::Progress { status, sdp });
                }
            }
            Upcall::Accepted { first: true, .. } => {
                // The dialog answers the 2xx's retransmissions from now on
                // ([`Endpoint::on_dialog_2xx`]): the transaction, its INVITE and bytes go now
                // instead of living on for Timer M.
                self.client_invites.remove(&branch);
                self.on_2xx(now, call, &msg);
            }
            Upcall::Accepted { first: false, .. } => self.resend_ack(call, &msg),
            Upcall::Rejected { status } => self.on_final_failure(now, call, &msg, status),
        }
    }

    fn on_2xx(&mut self, now: Instant, call_key: CallKey, msg: &Message) {
        let ua = self.settings.user_agent.clone();
        let branch = self.random_token();
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        if call.role != Role::Uac || call.state != CallState::Early {
            return;
        }
        call.remote_tag = msg.to_tag().map(str::to_string);
        if let Some(c) = msg.contact() {
            call.remote_target = c.uri.raw.to_string();
        }
        // §12.1.2: the route set is the 2xx's Record-Route in reverse order.
        let mut routes: Vec<String> = msg
            .header_values(&HeaderName::RecordRoute)
            .map(|v| v.trim().to_string())
            .collect();
        routes.reverse();
        call.route_set = routes;
        call.state = CallState::Confirmed;
        let host = call.local_host.clone();
        let ack = call.ack_for_2xx(&branch, &host, &ua);
        call.ack = Some(ack.clone());
        let (flow, cancelled) = (call.flow, call.cancel);
        self.dialing.remove(&call_key);
        self.transmit(flow, ack);
        if cancelled {
            // §15: the 2xx crossed our CANCEL — the call is up, so end it properly.
            if let Some(call) = self.calls.get_mut(&call_key) {
                call.end_reason = Some(EndReason::LocalBye(200));
            }
            self.send_bye(now, call_key);
            return;
        }
        let sdp = (!msg.body().is_empty()).then(|| msg.body().to_vec());
        self.emit(call_key, CallEvent::Answered { sdp });
        // RFC 4028 §7.2: the 2xx says whether there is a session timer and who refreshes.
        if let Some(call) = self.calls.get_mut(&call_key) {
            call.refresh.peer_update = refresh::allows_update(msg);
        }
        let timer = session_timer::timer_from_2xx(&Offer::of(msg));
        self.set_session_timer(now, call_key, timer);
    }

    /// A 2xx to an INVITE whose transaction is gone: a retransmission for an established
    /// dialog gets its ACK again; anything else is not ours.
    pub(super) fn on_dialog_2xx(&mut self, now: Instant, flow: Flow, msg: Message) {
        let key = (
            msg.call_id().to_string(),
            msg.from_tag().unwrap_or("").to_string(),
        );
        match self.dialogs.get(&key).copied() {
            // Confirmed: its INVITE transaction ended with the first 2xx. While early, that
            // transaction is alive, so a 2xx it did not match is not ours.
            Some(call)
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.role == Role::Uac && c.state == CallState::Confirmed) =>
            {
                let ours =
                    self.calls.get(&call).and_then(|c| c.remote_tag.as_deref()) == msg.to_tag();
                if ours {
                    self.resend_ack(call, &msg)
                } else {
                    self.end_fork(now, call, &msg)
                }
            }
            _ => self
                .out
                .push_back(super::Output::UnmatchedResponse { flow, msg }),
        }
    }

    /// A 2xx from another fork of our INVITE (another To tag): a dialog we do not want, so
    /// it is acknowledged and ended at once (RFC 3261 §13.2.2.4).
    fn end_fork(&mut self, now: Instant, call_key: CallKey, msg: &Message) {
        let ua = self.settings.user_agent.clone();
        let (ack_branch, bye_branch) = (self.random_token(), self.random_token());
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        let host = call.local_host.clone();
        let mut fork = SipCall::uac(
            call.invite.clone(),
            call.flow,
            call.invite_txn.clone(),
            call.local_tag.clone(),
        );
        fork.local_host = host.clone();
        fork.local_cseq = call.local_cseq;
        fork.remote_tag = msg.to_tag().map(str::to_string);
        if let Some(c) = msg.contact() {
            fork.remote_target = c.uri.raw.to_string();
        }
        let mut routes: Vec<String> = msg
            .header_values(&HeaderName::RecordRoute)
            .map(|v| v.trim().to_string())
            .collect();
        routes.reverse();
        fork.route_set = routes;
        let ack = fork.ack_for_2xx(&ack_branch, &host, &ua);
        let bye = fork.request(Method::Bye, &bye_branch, &host, &ua);
        let flow = fork.flow;
        self.transmit(flow, ack);
        self.start_client(now, format!("z9hG4bK{bye_branch}"), bye, flow, None);
    }

    /// A retransmitted 2xx (our ACK was lost): the same ACK again.
    fn resend_ack(&mut self, call_key: CallKey, msg: &Message) {
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        if call.remote_tag.as_deref() == msg.to_tag() {
            if let Some(ack) = call.ack.clone() {
                let flow = call.flow;
                self.transmit(flow, ack);
            }
        }
    }

    fn on_final_failure(&mut self, now: Instant, call_key: CallKey, msg: &Message, status: u16) {
        if let Some(kind) = ChallengeKind::from_status(status) {
            if self.retry_with_auth(now, call_key, msg, kind) {
                return;
            }
            return self.uac_failed(call_key, EndReason::AuthFailed(status));
        }
        if status == 422 && self.retry_after_422(now, call_key, msg) {
            return;
        }
        if (300..400).contains(&status) {
            if let Some(c) = msg.header_values(&HeaderName::Contact).next() {
                let contact = c.trim().to_string();
                if self.calls.contains_key(&call_key) {
                    self.emit(call_key, CallEvent::Redirected { contact });
                }
            }
        }
        self.uac_failed(call_key, EndReason::Refused(status));
    }

    /// Answers a 401/407 with a new INVITE (same Call-ID and tag, CSeq + 1). False when there
    /// is nothing to answer with, the challenge is unusable, or it was answered already.
    fn retry_with_auth(
        &mut self,
        now: Instant,
        call_key: CallKey,
        msg: &Message,
        kind: ChallengeKind,
    ) -> bool {
        let cnonce = self.random_token();
        let branch = self.random_token();
        let Some(call) = self.calls.get_mut(&call_key) else {
            return false;
        };
        if call.cancel || call.state != CallState::Early {
            return false;
        }
        let Some((client, request)) = call.auth.as_mut() else {
            return false;
        };
        let name = match kind {
            ChallengeKind::Www => HeaderName::WwwAuthenticate,
            ChallengeKind::Proxy => HeaderName::ProxyAuthenticate,
        };
        let values: Vec<&str> = msg.header_values(&name).collect();
        if client.on_challenge(request, kind, &values).is_err() {
            return false;
        }
        let Some(d) = self.dialing.get(&call_key) else {
            return false;
        };
        let Ok(headers) = client.authorize("INVITE", &d.spec.request_uri, &cnonce) else {
            return false;
        };
        let auth: Vec<(String, String)> = headers
            .into_iter()
            .map(|h| (h.name.to_string(), h.value))
            .collect();
        self.resend_invite(now, call_key, &branch, &auth)
    }

    /// RFC 4028 §7.3: a 422 names the Min-SE the next hop accepts; the INVITE goes again
    /// once (same Call-ID and tag, CSeq + 1, credentials answered again) asking for it.
    fn retry_after_422(&mut self, now: Instant, call_key: CallKey, msg: &Message) -> bool {
        let cnonce = self.random_token();
        let branch = self.random_token();
        let (Some(call), Some(d)) = (
            self.calls.get_mut(&call_key),
            self.dialing.get_mut(&call_key),
        ) else {
            return false;
        };
        if call.cancel || call.state != CallState::Early || d.retried_422 {
            return false;
        }
        let Some(min) = session_timer::retry_after_422(&Offer::of(msg), d.session_expires) else {
            return false;
        };
        d.retried_422 = true;
        d.session_expires = min;
        d.min_se = min;
        let auth: Vec<(String, String)> = match call.auth.as_mut() {
            Some((client, _)) => match client.authorize("INVITE", &d.spec.request_uri, &cnonce) {
                Ok(h) => h
                    .into_iter()
                    .map(|h| (h.name.to_string(), h.value))
                    .collect(),
                Err(_) => return false,
            },
            None => Vec::new(),
        };
        self.resend_invite(now, call_key, &branch, &auth)
    }

    /// Our INVITE again (after a challenge or a 422): the same Call-ID and tag, CSeq + 1, a
    /// new branch and transaction. False when it cannot be built.
    fn resend_invite(
        &mut self,
        now: Instant,
        call_key: CallKey,
        branch: &str,
        auth: &[(String, String)],
    ) -> bool {
        let (Some(call), Some(d)) = (self.calls.get(&call_key), self.dialing.get(&call_key)) else {
            return false;
        };
        let cseq = call.local_cseq + 1;
        let Some(invite) = self.build_invite(d, &call.local_tag, cseq, branch, auth) else {
            return false;
        };
        let key = format!("z9hG4bK{branch}");
        let Some(call) = self.calls.get_mut(&call_key) else {
            return false;
        };
        call.local_cseq = cseq;
        call.invite = invite.clone();
        call.invite_txn = key.clone();
        let flow = call.flow;
        self.start_invite(now, call_key, key, invite, flow);
        true
    }

    /// The INVITE failed: the call is over.
    fn uac_failed(&mut self, call_key: CallKey, reason: EndReason) {
        let early = self
            .calls
            .get(&call_key)
            .is_some_and(|c| c.role == Role::Uac && c.state == CallState::Early);
        if early {
            self.remove_call(call_key);
            self.dialing.remove(&call_key);
            self.emit(call_key, CallEvent::Ended(reason));
        }
    }

    /// Hangup before the answer: CANCEL now, or once a provisional arrives (§9.1). If no
    /// final response follows within 64*T1, the call is given up.
    pub(super) fn cancel_invite(&mut self, now: Instant, call_key: CallKey) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        if call.cancel {
            return;
        }
        call.cancel = true;
        let key = call.invite_txn.clone();
        let Some(entry) = self.client_invites.get_mut(&key) else {
            return self.uac_failed(call_key, EndReason::Refused(487));
        };
        let flow = entry.flow;
        match entry.txn.request_cancel() {
            Cancel::Send(cancel) => self.send_cancel(now, flow, &key, cancel),
            Cancel::Deferred => {}
            Cancel::TooLate => return,
        }
        let at = now + self.settings.timers.t64();
        self.timers.push(at, TimerRef::CancelGuard(call_key));
    }

    fn send_cancel(&mut self, now: Instant, flow: Flow, branch: &str, cancel: OutMessage) {
        self.start_client(now, cancel_key(branch), cancel.to_bytes(), flow, None);
    }

    /// The CANCEL got no final response to the INVITE in time: give the call up, and its
    /// INVITE transaction too (in Proceeding it has no timer left to end it, §9.1).
    pub(super) fn cancel_guard(&mut self, call_key: CallKey) {
        let txn = self
            .calls
            .get(&call_key)
            .filter(|c| c.role == Role::Uac && c.state == CallState::Early)
            .map(|c| c.invite_txn.clone());
        self.uac_failed(call_key, EndReason::Refused(487));
        if let Some(txn) = txn {
            self.client_invites.remove(&txn);
        }
    }
}

/// The client transaction key of the CANCEL for the INVITE with this branch (both share it).
pub(super) fn cancel_key(branch: &str) -> String {
    format!("{branch}|CANCEL")
}
