//! SIP: messages, stream framing, transactions, the UAS endpoint, SDP, and client digest
//! authentication.

pub mod auth;
pub mod endpoint;
pub mod framing;
pub mod message;
pub mod sdp;
pub mod txn;
