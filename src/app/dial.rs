//! What placing a call takes (`POST /v1/calls`, the Twilio-compatible create): the validated
//! request the API hands to [`super::control::Control::dial`], and how it can fail.
//!
//! Owns: the shape of a dial request after validation (every field already checked and
//! defaulted by the API). Must not: parse HTTP bodies (the API does) or know SIP.

use std::time::Duration;

use crate::config::Dialect;
use crate::core::call::CallStatus;
use crate::core::hooks::callback::EventSet;

/// Ring timeout when the request names none (`timeout_s`).
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(30);

/// Who is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A normalised E.164 number (`+` and digits): dialled through a trunk.
    E164(String),
    /// A `sip:`/`sips:` URI, dialled as given (its host may still go via the trunk's proxy).
    Uri(String),
    /// `user:NAME` (click-to-call's `bridge_from` only): the `[[user]]`'s phone registered
    /// here, rung where its REGISTER came from.
    User(String),
}

/// Who talks to the callee once it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource {
    /// `websocket_url`, `dialect`, `sample_rate` (8000 or 16000; `builtin:echo` allowed).
    Stream {
        url: String,
        dialect: Dialect,
        sample_rate: u32,
    },
    /// Twilio-compatible `Url`: fetched like the inbound webhook when the callee answers; its
    /// TwiML `<Connect><Stream>` names the agent.
    Webhook { url: String },
    /// Twilio-compatible `Twiml`: the same answer, given inline.
    Twiml(String),
    /// Click-to-call (`bridge_from`): `from` (the manager) is rung first, through `trunk`
    /// (default: the call's); once they answer the request's `to` is dialled and bridged.
    Bridge {
        from: Destination,
        trunk: Option<String>,
    },
}

/// A request to place a call, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DialRequest {
    pub to: Destination,
    /// Caller id (E.164 or a SIP user part); `None` → `anonymous`.
    pub from: Option<String>,
    pub agent: AgentSource,
    /// Where status callbacks go; `None` → `[callbacks] url`.
    pub callback_url: Option<String>,
    /// Status events to send; `None` → `[callbacks] events`.
    pub status_events: Option<EventSet>,
    /// A `[[trunk]]` name; `None` → the first trunk with `outbound`.
    pub trunk: Option<String>,
    /// Ringing longer than this is cancelled (`no-answer`).
    pub ring_timeout: Duration,
    /// An answered call is hung up after this long.
    pub time_limit: Option<Duration>,
    pub record: bool,
    /// The agent's `start.customParameters`.
    pub parameters: Vec<(String, String)>,
    /// Connect the agent on a 183 with SDP, so it hears the callee's early media.
    pub early_media: bool,
    /// `Idempotency-Key`: the same key within 24 h returns the first call, never dials twice.
    pub idempotency_key: Option<String>,
    /// Created through the Twilio-compatible API: callbacks use Twilio's form fields.
    pub twilio_form: bool,
    /// SRTP toward the callee; `None` → the trunk's `outbound.srtp`.
    pub srtp: Option<crate::config::SrtpMode>,
}

impl DialRequest {
    /// A request with every optional field at its default.
    pub fn new(to: Destination, agent: AgentSource) -> DialRequest {
        DialRequest {
            to,
            from: None,
            agent,
            callback_url: None,
            status_events: None,
            trunk: None,
            ring_timeout: DEFAULT_RING_TIMEOUT,
            time_limit: None,
            record: false,
            parameters: Vec::new(),
            early_media: false,
            idempotency_key: None,
            twilio_form: false,
            srtp: None,
        }
    }
}

/// A call that was placed (or found again by its idempotency key).
#[derive(Debug, Clone, PartialEq)]
pub struct Dialed {
    pub call_id: String,
    pub status: CallStatus,
    /// True when the idempotency key matched an earlier call: nothing was dialled now.
    pub replayed: bool,
}

/// Why a call was not placed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DialError {
    /// `trunk` names no trunk with `outbound`, or none is configured at all (400).
    #[error("{0}")]
    NoTrunk(String),
    /// Outbound admission refused it (the record is written). `retry_after` is set for rate
    /// limits (429 + Retry-After); otherwise 403.
    #[error("refused by outbound policy: {reason}")]
    Refused {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Too many calls in progress (429 without a useful Retry-After).
    #[error("too many calls in progress: {0}")]
    Busy(String),
    /// The gateway is draining (503).
    #[error("the gateway is draining")]
    Draining,
    /// A field that passed the API's checks but cannot be used (e.g. TwiML naming no
    /// `<Connect><Stream>`) (400).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The same idempotency key was used with a different request (409).
    #[error("idempotency key reused with a different request")]
    KeyReused,
    /// `bridge_from = "user:NAME"`: no such `[[user]]` (400), or no phone of theirs is
    /// registered now (409).
    #[error("bridge_from: {0}")]
    NotRegistered(String, bool),
}
