//! SIP: messages, stream framing, transactions, the UAS endpoint, and SDP.

pub mod endpoint;
pub mod framing;
pub mod message;
pub mod sdp;
pub mod txn;
