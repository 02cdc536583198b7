//! Server non-INVITE transaction (RFC 3261 §17.2.2).
//!
//! Trying/Proceeding until the TU answers; Completed keeps the final response to answer
//! retransmitted requests until Timer J (64*T1 on UDP, zero on reliable transports).

use std::time::Instant;

use super::{Timers, TxnOut};

#[derive(Debug)]
pub struct ServerNonInvite {
    reliable: bool,
    timers: Timers,
    last_response: Option<Vec<u8>>,
    final_sent: bool,
    deadline: Option<Instant>,
    terminated: bool,
}

impl ServerNonInvite {
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerNonInvite {
            reliable,
            timers,
            last_response: None,
            final_sent: false,
            deadline: None,
            terminated: false,
        }
    }

    pub fn on_request_retransmission(&mut self, out: &mut Vec<TxnOut>) {
        if let Some(bytes) = &self.last_response {
            out.push(TxnOut::Send(bytes.clone()));
        }
    }

    pub fn send_provisional(&mut self, bytes: Vec<u8>, out: &mut Vec<TxnOut>) {
        if self.final_sent {
            return;
        }
        out.push(TxnOut::Send(bytes.clone()));
        self.last_response = Some(bytes);
    }

    pub fn send_final(&mut self, now: Instant, bytes: Vec<u8>, out: &mut Vec<TxnOut>) {
        if self.final_sent {
            return;
        }
        self.final_sent = true;
        out.push(TxnOut::Send(bytes.clone()));
        self.last_response = Some(bytes);
        if self.reliable {
            self.terminated = true;
            out.push(TxnOut::Terminated);
        } else {
            self.deadline = Some(now + self.timers.t64());
        }
    }

    pub fn has_final(&self) -> bool {
        self.final_sent
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<TxnOut>) {
        if !self.terminated && self.deadline.is_some_and(|d| now >= d) {
            self.terminated = true;
            self.deadline = None;
            out.push(TxnOut::Terminated);
        }
    }

    pub fn is_terminated(&self) -> bool {
        self.terminated
    }
}
