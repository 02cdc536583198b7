//! trunkgate: a SIP/RTP media gateway that bridges phone calls to AI voice agents.
//!
//! ```text
//!            ┌──────────── app (composition, one task per call) ─────────────────┐
//! UDP/TCP/TLS│ io::sip_{udp,tcp,tls}     ─► endpoint task ─► call driver (sockets) │ ↔ RTP, agent WS
//!            └──────────────┬─────────────────────────────┬──────────────────────┘
//!                           ▼                             ▼
//!         core (sans-IO): sip::{message, framing, txn, endpoint, sdp}, policy, hooks,
//!                         call (the per-call machine: legs, route, end reasons, view),
//!                         media::{g711, rtp, dtmf, pacer, vad}, agent dialects        config (pure)
//! ```
//!
//! A call: bytes arrive on a transport → `core::sip::message` parses them → the endpoint's
//! server INVITE transaction answers 100 Trying → the endpoint reports an incoming call →
//! admission (`core::policy`) decides, the call id is minted and the caller and dialled
//! numbers are fixed → `app` spawns the call driver with a `core::call::Call` machine, which
//! routes it (webhook while ringing, or a static agent), checks SDP, has the driver lease an
//! RTP port and connect the agent, and answers 200 OK → the machine bridges RTP and the agent
//! (the driver only moves packets and frames) → BYE from either side, an RTP timeout, a cap,
//! the API or the drain ends it; the machine's `EndReason` and view become the record.

pub mod api;
pub mod app;
pub mod config;
pub mod core;
pub mod io;
