//! The sans-IO core: everything that decides, nothing that waits.
//!
//! Code under `core` never touches sockets, tasks, timers or the clock: each machine takes
//! `now: Instant` and bytes or typed inputs, and returns outputs. The async shells in `io` and
//! `app` feed it and carry its outputs out. This keeps every RFC timer testable with a virtual
//! clock (tests run minutes of SIP time in microseconds).
//!
//! The driving contract every stateful core machine follows:
//!
//! ```text
//! machine.handle(now, input);              // feed one input (bytes, a command, a timer)
//! while let Some(out) = machine.poll_output() { /* carry it out */ }
//! let next = machine.poll_timeout();       // when to call handle_timeout(now) again
//! ```
//!
//! Must not import: the async runtime, or the io, app, api and config layers.

pub mod agent;
pub mod call;
pub mod hooks;
pub mod media;
pub mod number;
pub mod policy;
pub mod sip;
pub mod transcript;

use std::net::SocketAddr;

/// The transport a SIP message travelled over (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Reliable transports need no retransmission timers (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The token used in Via headers.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// Identifies one stream connection (TCP/TLS) owned by the shell.
pub type ConnId = u64;

/// Where a message came from or goes to: the transport, our local socket, the peer, and for
/// stream transports the connection to reuse (RFC 3261 §18.2.2: responses go back over the
/// connection the request arrived on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub conn: Option<ConnId>,
}
