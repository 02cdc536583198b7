//! SIP transaction state machines (RFC 3261 §17, RFC 6026), sans-IO.
//!
//! Each machine owns the bytes it may have to retransmit and its own deadlines; the endpoint
//! feeds it events (`now` included) and collects [`TxnOut`] values. Transaction matching
//! (branch, sent-by, method) is the endpoint's job; these types never parse messages (the
//! client INVITE transaction reads fields of already-parsed ones to build its ACK and CANCEL).
//!
//! Must not: read the clock, touch sockets, or know about dialogs and calls.

pub mod client_invite;
mod client_non_invite;
mod server_invite;
mod server_non_invite;

pub use client_invite::{Cancel, ClientInvite, State as ClientInviteState, Upcall};
pub use client_non_invite::ClientNonInvite;
pub use server_invite::{ServerInvite, State as ServerInviteState};
pub use server_non_invite::ServerNonInvite;

use std::time::Duration;

/// RFC 3261 timer base values (§17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64*T1: Timers B, F, H, J and L.
    pub fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a transaction asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOut {
    /// Hand these bytes to the transport (a first send or a retransmission).
    Send(Vec<u8>),
    /// Client transaction: no final response in time (Timer F), or no response at all to an
    /// INVITE (Timer B). The TU treats it as 408.
    Timeout,
    /// Client INVITE transaction: the transport failed to deliver the request or its ACK
    /// (RFC 3261 §17.1.4). The TU treats it as 503; [`TxnOut::Terminated`] follows.
    TransportError,
    /// Server INVITE transaction: the 2xx was never acknowledged (Timer L, RFC 6026) or the
    /// non-2xx final was never acknowledged (Timer H).
    NoAck,
    /// The transaction is finished and can be forgotten.
    Terminated,
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_client_invite;

/// The earlier of two optional deadlines (a transaction's retransmit and its end).
fn earliest(
    a: Option<std::time::Instant>,
    b: Option<std::time::Instant>,
) -> Option<std::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
