//! trunkgate: a SIP/RTP media gateway that bridges phone calls to AI voice agents.
//!
//! ```text
//!            ┌──────────── app (composition, one task per call) ────────────┐
//!  UDP/TCP → │ io::sip_udp / io::sip_tcp ─► endpoint task ─► call task ─► media loop │ ↔ RTP
//!            └──────────────┬───────────────────────────┬──────────────────┘
//!                           ▼                           ▼
//!         core (sans-IO): sip::{message, framing, txn, endpoint, sdp}, media::{g711, rtp,
//!                         dtmf, tone}, agent::echo                    config (pure, validated)
//! ```
//!
//! A call: bytes arrive on a transport → `core::sip::message` parses them → the endpoint's
//! server INVITE transaction answers 100 Trying → the endpoint reports an incoming call →
//! `app` spawns the call task, which routes it to an agent, negotiates SDP, leases an RTP
//! port and answers 200 OK → the media loop bridges RTP and the agent → BYE from either side
//! (or an RTP timeout) ends it, the port goes back to the pool and the end is reported.

pub mod api;
pub mod app;
pub mod config;
pub mod core;
pub mod io;
