//! A deadline queue for transaction timers.
//!
//! Entries are hints: a transaction may have moved its deadline since an entry was pushed, so
//! the endpoint re-checks the transaction's own `next_timeout` when an entry pops. Stale
//! entries cost one lookup; they never fire a timer early.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerRef {
    Server(String),
    Client(String),
    /// A client INVITE transaction, by branch.
    Invite(String),
    /// A cancelled INVITE still waiting for its final response.
    CancelGuard(super::CallKey),
    /// A dialog's session timer (RFC 4028), with the generation it was set for: a timer
    /// restarted since then left this entry stale.
    Session(super::CallKey, u64),
}

#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerRef)>>,
}

impl TimerQueue {
    pub fn push(&mut self, at: Instant, timer: TimerRef) {
        self.heap.push(Reverse((at, timer)));
    }

    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<TimerRef> {
        if self.next()? <= now {
            self.heap.pop().map(|Reverse((_, t))| t)
        } else {
            None
        }
    }
}
