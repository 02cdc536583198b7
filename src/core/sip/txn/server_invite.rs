//! Server INVITE transaction (RFC 3261 §17.2.1 with the RFC 6026 "Accepted" state).
//!
//! Proceeding: retransmitted INVITEs get the last provisional again. A 3xx-6xx final moves to
//! Completed (Timer G retransmits it on UDP, Timer H waits for the ACK, Timer I absorbs ACK
//! copies). A 2xx moves to Accepted, where — as the UAS core must (§13.3.1.4) — the 2xx is
//! retransmitted with T1 doubling to T2 until the dialog reports the ACK, and Timer L (64*T1)
//! ends it, reporting [`TxnOut::NoAck`] if no ACK came.

use std::time::{Duration, Instant};

use super::{Timers, TxnOut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

#[derive(Debug)]
pub struct ServerInvite {
    state: State,
    reliable: bool,
    timers: Timers,
    last_response: Option<Vec<u8>>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    deadline: Option<Instant>,
    acked: bool,
}

impl ServerInvite {
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerInvite {
            state: State::Proceeding,
            reliable,
            timers,
            last_response: None,
            retransmit_at: None,
            interval: timers.t1,
            deadline: None,
            acked: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// A retransmission of the INVITE arrived: answer with the last response, if any
    /// (§17.2.1). In Accepted the 2xx is resent by the timer alone.
    pub fn on_request_retransmission(&mut self, out: &mut Vec<TxnOut>) {
        if matches!(self.state, State::Proceeding | State::Completed) {
            if let Some(bytes) = &self.last_response {
                out.push(TxnOut::Send(bytes.clone()));
            }
        }
    }

    /// The TU sends a provisional response (only valid in Proceeding).
    pub fn send_provisional(&mut self, bytes: Vec<u8>, out: &mut Vec<TxnOut>) {
        if self.state != State::Proceeding {
            return;
        }
        out.push(TxnOut::Send(bytes.clone()));
        self.last_response = Some(bytes);
    }

    /// The TU sends a final response. Ignored once a final was sent.
    pub fn send_final(&mut self, now: Instant, status: u16, bytes: Vec<u8>, out: &mut Vec<TxnOut>) {
        if self.state != State::Proceeding {
            return;
        }
        out.push(TxnOut::Send(bytes.clone()));
        self.last_response = Some(bytes);
        self.interval = self.timers.t1;
        if (200..300).contains(&status) {
            self.state = State::Accepted;
            self.retransmit_at = Some(now + self.interval);
            self.deadline = Some(now + self.timers.t64());
        } else {
            self.state = State::Completed;
            self.retransmit_at = (!self.reliable).then(|| now + self.interval);
            self.deadline = Some(now + self.timers.t64());
        }
    }

    /// An ACK matched this transaction (non-2xx: same branch) or its dialog (2xx).
    pub fn on_ack(&mut self, now: Instant, out: &mut Vec<TxnOut>) {
        match self.state {
            State::Completed => {
                self.state = State::Confirmed;
                self.retransmit_at = None;
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.deadline = Some(now + wait);
                if wait.is_zero() {
                    self.terminate(out);
                }
            }
            State::Accepted => {
                self.acked = true;
                self.retransmit_at = None;
            }
            _ => {}
        }
    }

    /// Gives up on the request without answering it (a dropped scanner INVITE): the
    /// transaction stays for 64*T1 so retransmissions are absorbed silently, not judged anew.
    pub fn abandon(&mut self, now: Instant) {
        if self.state == State::Proceeding {
            self.state = State::Completed;
            self.last_response = None;
            self.retransmit_at = None;
            self.deadline = Some(now + self.timers.t64());
        }
    }

    /// Stops 2xx retransmission without an ACK (the dialog ended another way, e.g. BYE).
    pub fn on_ack_quiet(&mut self) {
        if self.state == State::Accepted {
            self.acked = true;
            self.retransmit_at = None;
        }
    }

    /// Whether a 2xx sent by this transaction has been acknowledged.
    pub fn is_acked(&self) -> bool {
        self.acked
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        super::earliest(self.retransmit_at, self.deadline)
    }

    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxnOut>) {
        if self.deadline.is_some_and(|d| now >= d) {
            match self.state {
                State::Completed => out.push(TxnOut::NoAck),
                State::Accepted if !self.acked => out.push(TxnOut::NoAck),
                _ => {}
            }
            self.terminate(out);
            return;
        }
        if self.retransmit_at.is_some_and(|r| now >= r) {
            if let Some(bytes) = &self.last_response {
                out.push(TxnOut::Send(bytes.clone()));
            }
            self.interval = (self.interval * 2).min(self.timers.t2);
            self.retransmit_at = Some(now + self.interval);
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    fn terminate(&mut self, out: &mut Vec<TxnOut>) {
        self.state = State::Terminated;
        self.retransmit_at = None;
        self.deadline = None;
        out.push(TxnOut::Terminated);
    }
}
