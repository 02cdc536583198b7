//! Async shells around sockets. They move bytes and nothing else: parsing and decisions
//! belong to `core`, composition to `app`.
//!
//! Must not import the app layer.

pub mod agent_ws;
pub mod client_cert;
pub mod conn_limit;
pub mod heap;
pub mod http;
pub mod rtp;
pub mod rtp_recv;
pub mod sip_tcp;
pub mod sip_tls;
pub mod sip_udp;
pub mod spool;
pub mod tls;

use crate::core::{ConnId, Flow};

/// What the SIP transports deliver to the endpoint task.
#[derive(Debug)]
pub enum TransportEvent {
    /// One datagram or one framed stream message.
    Received {
        flow: Flow,
        bytes: Vec<u8>,
    },
    /// A stream connection opened: write to it through `tx`.
    ConnOpened {
        id: ConnId,
        tx: tokio::sync::mpsc::Sender<Vec<u8>>,
        /// Over TLS: the client's certificate chain (leaf first), when it sent one and the
        /// listener asked for one (some `[[trunk]] tls_client_ca` is set). Checked against
        /// the trunk at admission, not here.
        peer: Option<client_cert::PeerCerts>,
    },
    ConnClosed {
        id: ConnId,
    },
}
