//! Client INVITE transaction (RFC 3261 §17.1.1 with the RFC 6026 §7.2 "Accepted" state): our
//! outgoing INVITE.
//!
//! Calling: Timer A retransmits on UDP only (T1, doubling each time with no T2 cap — §17.1.1.2),
//! Timer B (64*T1) reports [`TxnOut::Timeout`] (the TU treats it as 408). Any provisional moves
//! to Proceeding, stops A and B, and is passed up (1xx in any order, 100 included). A 3xx-6xx
//! final moves to Completed: the ACK is built here (§17.1.1.3, [`build_ack`]) and sent, the
//! response is passed up once, and each retransmission of it gets the same ACK again until
//! Timer D (32 s on UDP, zero on reliable transports). A 2xx moves to Accepted (RFC 6026): it
//! and every later 2xx (retransmissions, other forks) are passed up until Timer M (64*T1).
//! A transport error in Calling, Proceeding or Completed reports [`TxnOut::TransportError`]
//! and terminates. CANCEL (§9.1) is built by [`build_cancel`] and run by the owner in a
//! [`super::ClientNonInvite`]; [`ClientInvite::request_cancel`] holds it back until a
//! provisional has arrived.
//!
//! Must not: ACK a 2xx (the dialog does, §13.2.2.4), create dialogs, choose tags, branches or
//! routes, match responses to transactions (the endpoint does), read the clock or do I/O.

use std::time::{Duration, Instant};

use super::{Timers, TxnOut};
use crate::core::sip::message::{HeaderName, Message, Method, OutMessage};

/// Timer D on unreliable transports (RFC 3261 Table 4: at least 32 s).
const TIMER_D_UDP: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Calling,
    Proceeding,
    Completed,
    /// RFC 6026: a 2xx was received; later 2xx are passed up until Timer M.
    Accepted,
    Terminated,
}

/// What the owner does with a response it fed to [`ClientInvite::on_response`]. The owner
/// already holds the message, so only the verdict is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upcall {
    /// Not for the TU: a retransmitted non-2xx final (its ACK was re-sent), a provisional or
    /// error final after a final, or anything after termination.
    Ignored,
    /// A 1xx, passed up in whatever order it came (a 100 after a 180 included).
    Provisional {
        status: u16,
        /// A 101-199 carrying a body (typically a 183 with SDP): early media for the TU.
        early_media: bool,
        /// A CANCEL the TU asked for before any provisional (§9.1): start it now in a
        /// [`super::ClientNonInvite`].
        cancel: Option<OutMessage>,
    },
    /// A 2xx: to the dialog/TU, which sends the ACK. `first` is false for retransmissions
    /// and for 2xx from other forks received in Accepted.
    Accepted { status: u16, first: bool },
    /// The first 3xx-6xx final; the transaction already sent the ACK.
    Rejected { status: u16 },
}

/// The answer to [`ClientInvite::request_cancel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// Send it now, in a client non-INVITE transaction of its own.
    Send(OutMessage),
    /// No provisional yet (§9.1): it comes back in the first [`Upcall::Provisional`].
    Deferred,
    /// A final response was received or the transaction ended: nothing to cancel.
    TooLate,
}

#[derive(Debug)]
pub struct ClientInvite {
    state: State,
    reliable: bool,
    timers: Timers,
    invite: Message,
    request: Vec<u8>,
    ack: Option<Vec<u8>>,
    cancel_wanted: bool,
    retransmit_at: Option<Instant>,
    interval: Duration,
    deadline: Option<Instant>,
}

impl ClientInvite {
    /// Starts the transaction with the INVITE as the UAC built it (parsed once by the owner,
    /// which also validates it); the first send is pushed to `out`.
    pub fn start(
        now: Instant,
        invite: Message,
        reliable: bool,
        timers: Timers,
        out: &mut Vec<TxnOut>,
    ) -> Self {
        let request = invite.to_bytes();
        out.push(TxnOut::Send(request.clone()));
        ClientInvite {
            state: State::Calling,
            reliable,
            timers,
            invite,
            request,
            ack: None,
            cancel_wanted: false,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            deadline: Some(now + timers.t64()),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The INVITE this transaction carries.
    pub fn invite(&self) -> &Message {
        &self.invite
    }

    /// A response matched this transaction (the endpoint checked branch and CSeq method).
    pub fn on_response(
        &mut self,
        now: Instant,
        response: &Message,
        out: &mut Vec<TxnOut>,
    ) -> Upcall {
        let Some(status) = response.status() else {
            return Upcall::Ignored;
        };
        match (self.state, status) {
            (_, 0..=99 | 700..) => Upcall::Ignored,
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.retransmit_at = None;
                self.deadline = None;
                let cancel =
                    std::mem::take(&mut self.cancel_wanted).then(|| build_cancel(&self.invite));
                Upcall::Provisional {
                    status,
                    early_media: status > 100 && !response.body().is_empty(),
                    cancel,
                }
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                self.cancel_wanted = false;
                self.retransmit_at = None;
                self.deadline = Some(now + self.timers.t64());
                Upcall::Accepted {
                    status,
                    first: true,
                }
            }
            (State::Calling | State::Proceeding, _) => {
                self.state = State::Completed;
                self.cancel_wanted = false;
                self.retransmit_at = None;
                let ack = build_ack(&self.invite, response).to_bytes();
                out.push(TxnOut::Send(ack.clone()));
                self.ack = Some(ack);
                if self.reliable {
                    self.terminate(out);
                } else {
                    self.deadline = Some(now + TIMER_D_UDP);
                }
                Upcall::Rejected { status }
            }
            (State::Completed, 300..) => {
                if let Some(ack) = &self.ack {
                    out.push(TxnOut::Send(ack.clone()));
                }
                Upcall::Ignored
            }
            (State::Accepted, 200..=299) => Upcall::Accepted {
                status,
                first: false,
            },
            _ => Upcall::Ignored,
        }
    }

    /// The TU wants to cancel the INVITE (§9.1). The CANCEL is never sent before a
    /// provisional response, nor after a final one.
    pub fn request_cancel(&mut self) -> Cancel {
        match self.state {
            State::Proceeding => Cancel::Send(build_cancel(&self.invite)),
            State::Calling => {
                self.cancel_wanted = true;
                Cancel::Deferred
            }
            State::Completed | State::Accepted | State::Terminated => Cancel::TooLate,
        }
    }

    /// The transport could not send the INVITE or the ACK (ICMP unreachable, TCP/TLS
    /// connection lost): the TU is told and the transaction ends (§17.1.4). In Accepted the
    /// transaction sends nothing, so the error is not its concern.
    pub fn on_transport_error(&mut self, out: &mut Vec<TxnOut>) {
        if matches!(
            self.state,
            State::Calling | State::Proceeding | State::Completed
        ) {
            out.push(TxnOut::TransportError);
            self.terminate(out);
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        super::earliest(self.retransmit_at, self.deadline)
    }

    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxnOut>) {
        if self.deadline.is_some_and(|d| now >= d) {
            if self.state == State::Calling {
                out.push(TxnOut::Timeout);
            }
            self.terminate(out);
            return;
        }
        if self.retransmit_at.is_some_and(|r| now >= r) {
            out.push(TxnOut::Send(self.request.clone()));
            self.interval = self.interval.saturating_mul(2);
            self.retransmit_at = now.checked_add(self.interval);
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    fn terminate(&mut self, out: &mut Vec<TxnOut>) {
        self.state = State::Terminated;
        self.retransmit_at = None;
        self.deadline = None;
        self.cancel_wanted = false;
        out.push(TxnOut::Terminated);
    }
}

/// The ACK for a 3xx-6xx final (RFC 3261 §17.1.1.3): the INVITE's Request-URI, top Via (same
/// branch), From, Call-ID and Route headers, the response's To (with its tag), and the
/// INVITE's CSeq number with method ACK.
pub fn build_ack(invite: &Message, response: &Message) -> OutMessage {
    let to = response.header(&HeaderName::To).unwrap_or("");
    in_invite_transaction(invite, Method::Ack, to)
}

/// The CANCEL for an INVITE (RFC 3261 §9.1): the INVITE's Request-URI, top Via (same branch),
/// From, To, Call-ID and Route headers, and its CSeq number with method CANCEL. It runs in a
/// [`super::ClientNonInvite`] of its own; send it only once a provisional arrived
/// ([`ClientInvite::request_cancel`] takes care of that).
pub fn build_cancel(invite: &Message) -> OutMessage {
    let to = invite.header(&HeaderName::To).unwrap_or("");
    in_invite_transaction(invite, Method::Cancel, to)
}

fn in_invite_transaction(invite: &Message, method: Method, to: &str) -> OutMessage {
    let uri = invite.request_uri().unwrap_or("");
    let cseq = format!("{} {}", invite.cseq().seq, method.as_str());
    let mut out = OutMessage::request(method, uri);
    if let Some(via) = invite.header_values(&HeaderName::Via).next() {
        out.add_header("Via", via);
    }
    out.add_header("Max-Forwards", "70");
    out.add_header("From", invite.header(&HeaderName::From).unwrap_or(""));
    out.add_header("To", to);
    out.add_header("Call-ID", invite.call_id());
    out.add_header("CSeq", cseq);
    for route in invite.header_values_raw(HeaderName::Route) {
        out.add_header("Route", route);
    }
    out
}
