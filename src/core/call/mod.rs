//! The per-call machine (ARCHITECTURE.md §3): a call is a set of legs — the caller's SIP leg,
//! an agent leg (WebSocket dialect or the built-in echo) — and a route between them.
//!
//! Owns: a call's lifecycle from admission to its record (routing by webhook or static
//! route, SDP, answering, media between the legs, every way a call ends), its [`CallId`],
//! the one end-reason table ([`end`]), the view the API and the callbacks show ([`view`]) and
//! the billing rule ([`billing`]).
//! Must not: touch sockets, tasks, timers or the clock (`now` is always passed in), or know
//! about the endpoint's transactions (a SIP leg speaks in endpoint call commands and events).

pub mod billing;
pub mod end;
pub mod view;

pub use end::EndReason;
pub use view::{CallStatus, CallView, Direction};

/// A call's id: minted once at admission, the same in the API, the records, the webhook and
/// every agent dialect's start message (twilio `callSid`). Twilio's shape (`CA` + 32 hex), so
/// agents and SDKs that check a CallSid accept it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(String);

impl CallId {
    /// The id for 128 random bits (the shell supplies the randomness).
    pub fn from_random(bits: u128) -> Self {
        CallId(format!("CA{bits:032x}"))
    }

    /// An id read back from a record or a URL (any string; unknown ids simply match nothing).
    pub fn from_string(s: String) -> Self {
        CallId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the control API (or anything else outside the call) asks a call to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// End the call: BYE once answered, a final response while ringing. `end_reason`
    /// `api_hangup`.
    Hangup,
    /// RFC 4733 digits to the caller (`0-9 * # A-D`, validated by the sender).
    Dtmf { digits: String },
}
