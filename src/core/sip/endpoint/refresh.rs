//! Session timers in the endpoint (RFC 4028 §7-§10), UAS and UAC alike: each dialog's timer
//! in the endpoint's [`TimerQueue`](super::timers::TimerQueue), our refreshes (an UPDATE
//! without a body when the peer's Allow lists UPDATE, else a re-INVITE offering the SDP we
//! last sent, with its ACK on 2xx), what their answers do (2xx restarts the timer; 408/481 or
//! no answer before the expiry ends the call with BYE and `SessionExpired`; 405/501 to an
//! UPDATE falls back to re-INVITE; 422 raises the interval; anything else retries later), the
//! BYE when the peer stops refreshing, and the headers of our 2xx/422 to the peer's INVITE,
//! re-INVITE and UPDATE.
//!
//! Must not: hold the negotiation rules (`core::sip::session_timer` does) or read the clock.

use std::time::Instant;

use super::dialog::CallState;
use super::timers::TimerRef;
use super::{CallKey, EndReason, Endpoint};
use crate::core::sip::message::{HeaderName, Message, Method};
use crate::core::sip::session_timer::{self as st, Due, Offer, Party, Refresher, SessionTimer};
use crate::core::sip::txn::Upcall;

/// One dialog's session timer and our refresh in flight.
#[derive(Debug, Default)]
pub struct RefreshState {
    pub timer: Option<SessionTimer>,
    /// Bumped whenever the timer is scheduled: older queue entries are stale.
    gen: u64,
    /// Our refresh in flight: its client transaction key and method.
    txn: Option<(String, Method)>,
    /// The branch of our last refresh re-INVITE (its 2xx may be retransmitted later).
    invite_branch: Option<String>,
    /// The ACK for that re-INVITE's 2xx.
    ack: Option<Vec<u8>>,
    /// The peer's Allow lists UPDATE.
    pub peer_update: bool,
    /// The largest Min-SE a 422 to one of our refreshes named.
    min_se_floor: u32,
}

impl RefreshState {
    /// Our refresh re-INVITE is pending (a re-INVITE from the peer now gets 491).
    pub fn invite_in_flight(&self) -> bool {
        matches!(self.txn, Some((_, Method::Invite)))
    }
}

/// Whether a request or response lists UPDATE in Allow.
pub(super) fn allows_update(msg: &Message) -> bool {
    msg.header_values(&HeaderName::Allow)
        .any(|m| m.trim().eq_ignore_ascii_case("UPDATE"))
}

/// The session-timer headers of our 2xx to a request (we always say `Supported: timer`).
fn answer_headers(answer: &st::UasAnswer) -> Vec<(&'static str, String)> {
    let mut h = vec![("Supported", st::TAG.to_string())];
    h.extend(answer.headers());
    h
}

impl Endpoint {
    fn session_config(&self) -> st::Config {
        st::Config {
            session_expires: self.settings.session_expires,
            min_se: self.settings.min_se,
        }
    }

    /// The 422 headers when the peer's INVITE, re-INVITE or UPDATE asks for an interval
    /// below our Min-SE (RFC 4028 §9); None when it may go on.
    pub(super) fn session_too_small(&self, req: &Message) -> Option<Vec<(&'static str, String)>> {
        match st::answer_as_uas(&Offer::of(req), &self.session_config()) {
            a @ st::UasAnswer::TooSmall { .. } => Some(a.headers()),
            _ => None,
        }
    }

    /// A 2xx to the peer's INVITE, re-INVITE or UPDATE is going out: the timer restarts as
    /// negotiated (or stops, when neither side asked). Returns the 2xx's headers.
    pub(super) fn on_peer_refresh(
        &mut self,
        now: Instant,
        call_key: CallKey,
        req: &Message,
    ) -> Vec<(&'static str, String)> {
        let answer = st::answer_as_uas(&Offer::of(req), &self.session_config());
        if let Some(call) = self.calls.get_mut(&call_key) {
            if req.header(&HeaderName::Allow).is_some() {
                call.refresh.peer_update = allows_update(req);
            }
        }
        self.set_session_timer(now, call_key, answer.timer());
        answer_headers(&answer)
    }

    /// (Re)starts the call's session timer at `now`, or stops it.
    pub(super) fn set_session_timer(
        &mut self,
        now: Instant,
        call_key: CallKey,
        timer: Option<(u32, Party)>,
    ) {
        if let Some(call) = self.calls.get_mut(&call_key) {
            call.refresh.timer =
                timer.map(|(interval, who)| SessionTimer::start(now, interval, who));
        }
        self.schedule_session(call_key);
    }

    fn schedule_session(&mut self, call_key: CallKey) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let r = &mut call.refresh;
        r.gen += 1;
        if let Some(t) = &r.timer {
            self.timers
                .push(t.deadline(), TimerRef::Session(call_key, r.gen));
        }
    }

    pub(super) fn session_timeout(&mut self, now: Instant, call_key: CallKey, gen: u64) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let up = matches!(call.state, CallState::Answered | CallState::Confirmed);
        let Some(timer) = call.refresh.timer.as_mut() else {
            return;
        };
        if call.refresh.gen != gen || !up {
            return;
        }
        match timer.due(now) {
            Due::Expired => return self.expire_session(now, call_key),
            // No request inside the dialog before its ACK: a little later.
            Due::Refresh if call.state == CallState::Answered => timer.refresh_failed(now),
            Due::Refresh => self.send_refresh(now, call_key),
            Due::Nothing => {}
        }
        self.schedule_session(call_key);
    }

    /// The session is over: BYE, and the call ends as `SessionExpired`.
    fn expire_session(&mut self, now: Instant, call_key: CallKey) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        call.refresh.timer = None;
        call.end_reason = Some(EndReason::SessionExpired);
        // A refresh still retransmitting is pointless once we hang up.
        match call.refresh.txn.take() {
            Some((key, Method::Invite)) => drop(self.client_invites.remove(&key)),
            Some((key, _)) => drop(self.client_txns.remove(&key)),
            None => {}
        }
        self.send_bye(now, call_key);
    }

    /// Sends our refresh (the timer is marked in flight whatever happens, so a failure to
    /// build it cannot spin the timer).
    fn send_refresh(&mut self, now: Instant, call_key: CallKey) {
        let branch = self.random_token();
        let ua = self.settings.user_agent.clone();
        let Some(call) = self.calls.get(&call_key) else {
            return;
        };
        let host = self.dialog_host(call);
        let contact = self.dialog_contact(call);
        let min_se = self.settings.min_se;
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let Some(timer) = call.refresh.timer.as_mut() else {
            return;
        };
        timer.refresh_sent();
        let interval = timer.interval;
        let min_se = min_se.max(call.refresh.min_se_floor).min(interval);
        let method = if call.refresh.peer_update {
            Method::Update
        } else {
            Method::Invite
        };
        let mut req = call.request_out(method.clone(), &branch, &host, &ua);
        req.add_header("Contact", contact);
        req.add_header("Allow", super::ALLOW);
        for (name, value) in st::uac_headers(interval, min_se, Some(Refresher::Uac)) {
            req.add_header(name, value);
        }
        let key = format!("z9hG4bK{branch}");
        call.refresh.txn = Some((key.clone(), method.clone()));
        let flow = call.flow;
        if method == Method::Update {
            self.start_client(now, key, req.to_bytes(), flow, Some(call_key));
            return;
        }
        req.set_body("application/sdp", call.local_sdp.clone());
        call.refresh.invite_branch = Some(key.clone());
        match Message::parse_owned(req.to_bytes(), &self.settings.limits) {
            Ok(invite) => self.start_invite(now, call_key, key, invite, flow),
            Err(_) => {
                call.refresh.txn = None;
                if let Some(t) = call.refresh.timer.as_mut() {
                    t.refresh_failed(now);
                }
            }
        }
    }

    /// Whether `key` is the client transaction of our refresh in flight.
    pub(super) fn is_refresh_txn(&self, call_key: CallKey, key: &str) -> bool {
        self.calls
            .get(&call_key)
            .and_then(|c| c.refresh.txn.as_ref())
            .is_some_and(|(k, _)| k == key)
    }

    /// Whether `branch` is (or was) one of our refresh re-INVITEs.
    pub(super) fn is_refresh_invite(&self, call_key: CallKey, branch: &str) -> bool {
        self.calls
            .get(&call_key)
            .is_some_and(|c| c.refresh.invite_branch.as_deref() == Some(branch))
    }

    /// A response to our refresh re-INVITE, after its transaction saw it.
    pub(super) fn on_refresh_invite_response(
        &mut self,
        now: Instant,
        call_key: CallKey,
        msg: &Message,
        up: Upcall,
    ) {
        match up {
            Upcall::Ignored | Upcall::Provisional { .. } => {}
            Upcall::Accepted { status, first } => {
                let branch = self.random_token();
                let ua = self.settings.user_agent.clone();
                let Some(call) = self.calls.get(&call_key) else {
                    return;
                };
                let host = self.dialog_host(call);
                let Some(call) = self.calls.get_mut(&call_key) else {
                    return;
                };
                if first || call.refresh.ack.is_none() {
                    let ack = call.ack_for(msg.cseq().seq, &branch, &host, &ua);
                    call.refresh.ack = Some(ack);
                }
                let (flow, ack) = (call.flow, call.refresh.ack.clone());
                if let Some(ack) = ack {
                    self.transmit(flow, ack);
                }
                if first {
                    self.on_refresh_final(now, call_key, status, Some(msg));
                }
            }
            Upcall::Rejected { status } => self.on_refresh_final(now, call_key, status, Some(msg)),
        }
    }

    /// The final answer to our refresh (or 408 for none): see the module header.
    pub(super) fn on_refresh_final(
        &mut self,
        now: Instant,
        call_key: CallKey,
        status: u16,
        msg: Option<&Message>,
    ) {
        let Some(call) = self.calls.get_mut(&call_key) else {
            return;
        };
        let Some((_, method)) = call.refresh.txn.take() else {
            return;
        };
        if call.state == CallState::Terminating {
            return;
        }
        let Some(timer) = call.refresh.timer.as_mut() else {
            return;
        };
        if (200..300).contains(&status) {
            // A 2xx without Session-Expires would turn the timer off (§7.2); refreshing on
            // as before costs a request now and then and keeps carriers that expect it happy.
            let next = msg
                .and_then(|m| st::timer_from_2xx(&Offer::of(m)))
                .unwrap_or((timer.interval, Party::Us));
            return self.set_session_timer(now, call_key, Some(next));
        }
        if st::refresh_fatal(status) {
            return self.expire_session(now, call_key);
        }
        let raised = (status == 422)
            .then(|| msg.and_then(|m| st::retry_after_422(&Offer::of(m), timer.interval)))
            .flatten();
        let retry_now = match (status, method) {
            (422, _) if raised.is_some() => true,
            (405 | 501, Method::Update) => {
                call.refresh.peer_update = false;
                true
            }
            _ => false,
        };
        if let Some(min) = raised {
            timer.interval = min;
            call.refresh.min_se_floor = min;
        }
        if retry_now {
            self.send_refresh(now, call_key);
        } else {
            timer.refresh_failed(now);
        }
        self.schedule_session(call_key);
    }
}
