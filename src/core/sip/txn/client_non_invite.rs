//! Client non-INVITE transaction (RFC 3261 §17.1.2): our BYE, OPTIONS, INFO, REFER.
//!
//! Trying: Timer E retransmits on UDP (T1 doubling to T2; stays at T2 once a provisional
//! arrived), Timer F (64*T1) reports [`TxnOut::Timeout`]. A final response moves to Completed,
//! which absorbs response retransmissions until Timer K (T4 on UDP, zero on reliable ones).

use std::time::{Duration, Instant};

use super::{Timers, TxnOut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientNonInvite {
    state: State,
    reliable: bool,
    timers: Timers,
    request: Vec<u8>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    deadline: Option<Instant>,
}

impl ClientNonInvite {
    /// Starts the transaction; the first send is pushed to `out`.
    pub fn start(
        now: Instant,
        request: Vec<u8>,
        reliable: bool,
        timers: Timers,
        out: &mut Vec<TxnOut>,
    ) -> Self {
        out.push(TxnOut::Send(request.clone()));
        ClientNonInvite {
            state: State::Trying,
            reliable,
            timers,
            request,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            deadline: Some(now + timers.t64()),
        }
    }

    /// A response matched this transaction. Returns true when the TU should see it (the first
    /// final, or a provisional); retransmitted finals are absorbed.
    pub fn on_response(&mut self, now: Instant, status: u16, out: &mut Vec<TxnOut>) -> bool {
        match self.state {
            State::Trying | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                true
            }
            State::Trying | State::Proceeding => {
                self.state = State::Completed;
                self.retransmit_at = None;
                if self.reliable {
                    self.terminate(out);
                } else {
                    self.deadline = Some(now + self.timers.t4);
                }
                true
            }
            State::Completed | State::Terminated => false,
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        super::earliest(self.retransmit_at, self.deadline)
    }

    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxnOut>) {
        if self.deadline.is_some_and(|d| now >= d) {
            if matches!(self.state, State::Trying | State::Proceeding) {
                out.push(TxnOut::Timeout);
            }
            self.terminate(out);
            return;
        }
        if self.retransmit_at.is_some_and(|r| now >= r) {
            out.push(TxnOut::Send(self.request.clone()));
            self.interval = match self.state {
                State::Proceeding => self.timers.t2,
                _ => (self.interval * 2).min(self.timers.t2),
            };
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
