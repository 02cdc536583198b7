//! SIP: messages, stream framing, transactions, the UAS endpoint, SDP, and client digest
//! authentication, REGISTER toward trunks.

pub mod auth;
pub mod endpoint;
pub mod framing;
pub mod message;
pub mod register;
pub mod registrar;
pub mod sdp;
pub mod session_timer;
pub mod txn;
