//! The one view of a call: what `GET /v1/calls/{id}` answers and what every status callback
//! (`call.ringing`, `call.answered`, `call.completed`, `call.transfer`) carries inside its
//! envelope (`call.transcript` carries only the call's id and its turns).
//!
//! Owns: the field names and types on the wire (PROTOCOLS.md §3–4). Durations are seconds
//! with 0.1 s precision; timestamps are ISO-8601 UTC strings; absent parts are absent keys.
//! Must not: read a clock or decide anything (the call machine fills it in).

use serde::{Deserialize, Serialize, Serializer};

use super::billing::Basis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// The call statuses of PROTOCOLS.md §3 (Twilio's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
}

impl CallStatus {
    /// Still going (queued, ringing or answered).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Caller,
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TalkSeconds {
    #[serde(serialize_with = "tenths")]
    pub caller: f64,
    #[serde(serialize_with = "tenths")]
    pub agent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub speaker: Speaker,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A call as the API and the callbacks show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    pub call_id: String,
    pub direction: Direction,
    pub status: CallStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crt: Option<String>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(serialize_with = "tenths")]
    pub duration_s: f64,
    pub billable_s: u64,
    pub talk_s: TalkSeconds,
    #[serde(default)]
    pub turns: Vec<Turn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    /// False when part of the recording was lost (the disk was too slow, a write failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_complete: Option<bool>,
    /// The Contact a 3xx named (outbound calls, which treat redirects as failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_contact: Option<String>,
    /// How `billable_s` was computed (absent on calls that were never answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Basis>,
    /// The call's latest transfer (its `call.transfer` callback carries it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<super::transfer::Progress>,
    /// The bridged leg (a `bridge` transfer's target, click-to-call's client): whom it
    /// dialled and how that went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<super::bridge::LegView>,
    /// At the end: whether a `call.transcript` follows, or why not (`pending`, `no_talk_time`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<crate::core::transcript::TranscriptState>,
}

impl CallView {
    /// A call that has just been admitted: only who, what and when.
    pub fn new(call_id: &str, direction: Direction, started_at: String) -> Self {
        CallView {
            call_id: call_id.to_string(),
            direction,
            status: CallStatus::Queued,
            from: None,
            to: None,
            did: None,
            crt: None,
            started_at,
            answered_at: None,
            ended_at: None,
            duration_s: 0.0,
            billable_s: 0,
            talk_s: TalkSeconds::default(),
            turns: Vec::new(),
            end_reason: None,
            sip_status: None,
            recording_url: None,
            recording_complete: None,
            redirect_contact: None,
            billing: None,
            transfer: None,
            bridge: None,
            transcript: None,
        }
    }
}

/// `x` rounded to 0.1; NaN and negatives become 0 so the payload is always valid JSON.
pub fn round_tenths(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        (x * 10.0).round() / 10.0
    } else {
        0.0
    }
}

fn tenths<S: Serializer>(x: &f64, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_f64(round_tenths(*x))
}
