//! Admission control ("phone security"): whether an inbound call attempt may go on, decided
//! before any webhook or media work, plus the per-source flood guard run on every SIP request.
//! The calls we place have their own, smaller gate: [`OutboundGate`] (`outbound.rs`).
//!
//! Owns: the source allowlist, trunk `require_headers`, caller E.164 prefixes, hours of
//! operation (IANA zone rules via jiff, DST included), the daily voice-minutes cap, strict
//! sliding-window call rates, concurrency, per-call duration caps and fraud alerts. Must not do
//! IO, read a clock (`Now` is passed in), import `config`, or parse SIP (the caller hands in the
//! source, the numbers and the extension headers it extracted).
//!
//! # Layers and scopes
//!
//! A call is judged by up to three layers: global → trunk (the first `[[trunk]]` whose
//! `match_cidrs` contains the source) → number (the `[[number]]` whose DID equals the dialled
//! DID, else the `"*"` number). A key set at a lower layer overrides the one above
//! ([`PolicyConfig::merged`]); the layer that set the value used is the key's *scope in force*.
//!
//! Every layer is also a counting scope: `global`, `trunk:<name>`, `number:<did>` (the `"*"`
//! number is ONE scope shared by all the DIDs it catches). The rule:
//!
//! * a call is COUNTED in every scope it passes through (global, its trunk, its number): its
//!   concurrency, its voice minutes, its admission timestamps (kept only in scopes whose own
//!   layer sets that rate limit, at most N of them), its attempts (only in scopes whose own
//!   layer sets a fraud alert);
//! * each limit is CHECKED against the counter of the scope in force for that key only.
//!
//! So global `max_concurrent = 100` with trunk `max_concurrent = 30`: calls of that trunk are
//! limited to 30 concurrent calls of that trunk and never checked against 100; other calls are
//! checked against 100 *including* the trunk's calls. A number layer's `max_calls_per_hour`
//! counts that number's calls from any trunk. Each layer with a fraud alert watches every
//! attempt that reaches it (an override does not hide a number's attempts from the global
//! alert).
//!
//! # Decisions
//!
//! Rules run in this order; the first that fails decides: source CIDR (403, or silent `Drop`
//! with `reject_action = "drop"`) → trunk `require_headers` (403) → caller prefixes (403;
//! blocked wins over allowed) → hours (480, Retry-After = until the window opens) → daily
//! minutes used (480, Retry-After = until the scope's next local midnight) → calls per hour /
//! per day (503, Retry-After = until the oldest counted admission leaves the window) →
//! concurrency (486). The user-agent blocklist and flood limit are not here: see [`FloodGuard`]
//! and [`blocked_user_agent`], run on every request before parsing-heavy work.
//!
//! Voice minutes run from `admit` to `call_ended` (ringing included: the agent and media are
//! held from admission). The "day" of a scope is the calendar day in the zone of that layer's
//! own `hours`, else of the global `hours`, else UTC.

mod admission;
mod compiled;
mod counters;
mod flood;
mod hours;
mod outbound;
mod rules;
pub mod settings;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use admission::Admission;
pub use compiled::{NumberLayer, Policy, TrunkLayer};
pub use flood::{blocked_user_agent, flood_key, FloodGuard};
pub use outbound::{
    OutboundGate, OutboundPolicy, OutboundReason, OutboundRefusal, OutboundTicket,
    OutboundTrunkLayer,
};
pub use settings::{
    E164Prefix, Flood, FraudAlert, Hours, OutboundPolicyConfig, PolicyConfig, RejectAction,
    DEFAULT_USER_AGENT_BLOCKLIST,
};

/// One inbound call attempt, as extracted from the INVITE by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub source: IpAddr,
    /// Caller number (From user, or the DID from a display name); normalised here
    /// by [`crate::core::number`]'s one rule. Not a number → treated as absent.
    pub caller: Option<&'a str>,
    /// The DID dialled; picks the `[[number]]` layer (normalised like `caller`).
    pub dialled: Option<&'a str>,
    /// Extension headers as received; names compare case-insensitively.
    pub headers: &'a [(String, String)],
    pub user_agent: Option<&'a str>,
}

/// The time of an event: sliding windows and durations use `mono`, hours and days use `wall`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: jiff::Timestamp,
}

impl Now {
    /// Both clocks moved on by `d` (tests and simulations).
    pub fn after(&self, d: Duration) -> Now {
        let wall = jiff::SignedDuration::try_from(d)
            .ok()
            .and_then(|sd| self.wall.checked_add(sd).ok())
            .unwrap_or(self.wall);
        Now {
            mono: self.mono.checked_add(d).unwrap_or(self.mono),
            wall,
        }
    }
}

/// A counting scope: one per layer of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    /// By trunk name.
    Trunk(Arc<str>),
    /// By DID, or `"*"` for the catch-all number.
    Number(Arc<str>),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Trunk(name) => write!(f, "trunk:{name}"),
            Scope::Number(did) => write!(f, "number:{did}"),
        }
    }
}

/// Why admission ends a running call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// `max_call_duration` reached (counted from admission: ringing included).
    CallDuration,
    /// The scope's `daily_minutes_cap` is used up.
    DailyMinutes,
}

/// Identifies one admitted call until `call_ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketId(pub(crate) u64);

impl TicketId {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "adm-{}", self.0)
    }
}

/// An admitted call: hand it back to [`Admission::call_ended`] exactly when the call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub(crate) id: TicketId,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) max_duration: Option<Duration>,
}

impl Ticket {
    pub fn id(&self) -> TicketId {
        self.id
    }

    /// The scopes the call counts in: global first, then its trunk and number, if any.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// The per-call cap or what was left of the daily minutes cap at admission, whichever is
    /// smaller; `None` → uncapped. Other calls may use the daily minutes up sooner: follow
    /// [`Admission::calls_to_cut`], not this, to end calls.
    pub fn max_duration(&self) -> Option<Duration> {
        self.max_duration
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Admit(Ticket),
    /// Answer the INVITE with `status` (and `Retry-After: retry_after` when set).
    Reject {
        status: u16,
        reason: RejectReason,
        retry_after: Option<u32>,
    },
    /// Send nothing (scanners learn less and get no reflection).
    Drop {
        reason: RejectReason,
    },
}

impl Decision {
    pub fn reason(&self) -> Option<&RejectReason> {
        match self {
            Decision::Admit(_) => None,
            Decision::Reject { reason, .. } | Decision::Drop { reason } => Some(reason),
        }
    }
}

/// Why an attempt was refused; [`RejectReason::as_str`] is stable for logs, metrics and CDRs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RejectReason {
    SourceNotAllowed,
    /// A trunk's required header is absent or has another value.
    MissingHeader {
        name: String,
    },
    /// `allowed_prefixes` is set but the attempt carries no E.164 caller number.
    NoCallerNumber,
    CallerNotAllowed,
    CallerBlocked,
    OutsideHours,
    DailyMinutesUsed,
    HourlyLimit,
    DailyLimit,
    /// Concurrency limit.
    Busy,
    /// Not returned by `admit`: named here so the flood guard's drops share the vocabulary.
    Flood,
    /// Not returned by `admit`: see [`blocked_user_agent`].
    BlockedUserAgent,
}

impl RejectReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::SourceNotAllowed => "source_not_allowed",
            RejectReason::MissingHeader { .. } => "missing_header",
            RejectReason::NoCallerNumber => "no_caller_number",
            RejectReason::CallerNotAllowed => "caller_not_allowed",
            RejectReason::CallerBlocked => "caller_blocked",
            RejectReason::OutsideHours => "outside_hours",
            RejectReason::DailyMinutesUsed => "daily_minutes_used",
            RejectReason::HourlyLimit => "hourly_limit",
            RejectReason::DailyLimit => "daily_limit",
            RejectReason::Busy => "busy",
            RejectReason::Flood => "flood",
            RejectReason::BlockedUserAgent => "blocked_user_agent",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::MissingHeader { name } => write!(f, "missing_header({name})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A fraud alert to POST and/or mail: more than `threshold` attempts reached `scope` within
/// `within_s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudAlertEvent {
    pub scope: Scope,
    /// Where the alert is POSTed; `None` → mail only.
    pub url: Option<String>,
    /// Who the alert is mailed to; empty → POST only (never both absent).
    pub email: Vec<String>,
    /// Attempts seen in the window when the alert fired (`threshold + 1`).
    pub calls: u32,
    pub within_s: u64,
    pub threshold: u32,
}
