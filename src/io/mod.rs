//! Async shells around sockets. They move bytes and nothing else: parsing and decisions
//! belong to `core`, composition to `app`.
//!
//! Must not import the app layer.

pub mod agent_ws;
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
    },
    ConnClosed {
        id: ConnId,
    },
}
