//! Call status callbacks (PROTOCOLS.md §4): the envelope of `call.completed` (and of
//! `call.ringing` / `call.answered` / `call.transfer`, which carry the same call view), the
//! `call.transcript` event (the same envelope around the call's id and its turns), and
//! billing rounding.
//!
//! Owns: the envelope's field names (`event`, `event_id`, `seq`) and the events' short names
//! (`ringing`, `answered`, `completed`); the call's own fields are [`CallView`]'s, a
//! transcript's turns `core::transcript`'s. Derives `Deserialize` too, so a spooled payload
//! can be read back and re-sent as it was.
//! Must not: read a clock, sign, send, or decide end reasons (the call machine does).

use serde::{Deserialize, Serialize};

pub use crate::core::call::view::{
    round_tenths, CallStatus, CallView, Direction, Speaker, TalkSeconds, Turn,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackEvent {
    #[serde(rename = "call.ringing")]
    Ringing,
    #[serde(rename = "call.answered")]
    Answered,
    #[serde(rename = "call.completed")]
    Completed,
    /// A transfer's progress (the view's `transfer`); sent whenever the call has a callback
    /// URL, whatever `events` says.
    #[serde(rename = "call.transfer")]
    Transfer,
    /// The call's speaker-labelled transcript ([`TranscriptEvent`]); sent whenever the call's
    /// record said `"transcript":"pending"`, whatever `events` says.
    #[serde(rename = "call.transcript")]
    Transcript,
    /// The bridged leg moved on (a `bridge` transfer's target, click-to-call's client: the
    /// view's `bridge` says how — ringing, in-progress, busy, no-answer, failed); sent
    /// whenever the call has a callback URL, whatever `events` says.
    #[serde(rename = "call.leg")]
    Leg,
}

impl CallbackEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackEvent::Ringing => "call.ringing",
            CallbackEvent::Answered => "call.answered",
            CallbackEvent::Completed => "call.completed",
            CallbackEvent::Transfer => "call.transfer",
            CallbackEvent::Transcript => "call.transcript",
            CallbackEvent::Leg => "call.leg",
        }
    }

    /// `ringing`, `answered`, `completed` (config and webhook answers), or the full
    /// `call.*` name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<CallbackEvent> {
        let short = name.trim();
        let short = short.strip_prefix("call.").unwrap_or(short);
        [
            CallbackEvent::Ringing,
            CallbackEvent::Answered,
            CallbackEvent::Completed,
        ]
        .into_iter()
        .find(|e| e.as_str().strip_prefix("call.") == Some(short))
    }

    /// The short names [`CallbackEvent::from_name`] accepts, for error messages.
    pub const NAMES: &'static str = "\"ringing\", \"answered\", \"completed\"";

    fn bit(self) -> u8 {
        match self {
            CallbackEvent::Ringing => 1,
            CallbackEvent::Answered => 2,
            CallbackEvent::Completed => 4,
            CallbackEvent::Transfer => 8,
            CallbackEvent::Transcript => 16,
            CallbackEvent::Leg => 32,
        }
    }
}

/// Which status events a call sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSet(u8);

impl EventSet {
    pub const NONE: EventSet = EventSet(0);
    /// The default (`[callbacks] events = ["completed"]`).
    pub const COMPLETED: EventSet = EventSet(4);
    pub const ALL: EventSet = EventSet(7);

    pub fn with(self, e: CallbackEvent) -> EventSet {
        EventSet(self.0 | e.bit())
    }

    pub fn contains(self, e: CallbackEvent) -> bool {
        self.0 & e.bit() != 0
    }
}

impl Default for EventSet {
    fn default() -> Self {
        EventSet::COMPLETED
    }
}

impl FromIterator<CallbackEvent> for EventSet {
    fn from_iter<I: IntoIterator<Item = CallbackEvent>>(iter: I) -> Self {
        iter.into_iter().fold(EventSet::NONE, EventSet::with)
    }
}

/// One status callback: the event, its id (for the receiver's de-duplication), its place in
/// the call's sequence of events (from 1, for ordering), and the call as it stood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallCompleted {
    pub event: CallbackEvent,
    pub event_id: String,
    /// Per call, from 1; 0 in records spooled before sequence numbers existed.
    #[serde(default)]
    pub seq: u32,
    #[serde(flatten)]
    pub call: CallView,
}

impl CallCompleted {
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data with string keys: serde_json cannot fail on it.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `call.transcript` (PROTOCOLS.md §4): the same envelope (`event`, `event_id`, `seq` after
/// the call's `call.completed`), the call's id, and its turns with their text. When
/// transcription failed, `turns` is empty and `error` says what failed (`timeout`,
/// `http_status`, `unavailable`, `bad_response`, `recording`, `config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEvent {
    pub event: CallbackEvent,
    pub event_id: String,
    pub seq: u32,
    pub call_id: String,
    pub turns: Vec<crate::core::transcript::Turn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TranscriptEvent {
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data with string keys: serde_json cannot fail on it.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed() -> CallCompleted {
        CallCompleted {
            event: CallbackEvent::Completed,
            event_id: "evt-01".into(),
            seq: 3,
            call: CallView {
                call_id: "tg-7f3a".into(),
                direction: Direction::Inbound,
                status: CallStatus::Completed,
                from: Some("+919990152080".into()),
                to: Some("+918035735900".into()),
                did: Some("+919990152080".into()),
                crt: None,
                started_at: "2025-01-15T10:30:00.000Z".into(),
                answered_at: Some("2025-01-15T10:30:04.100Z".into()),
                ended_at: Some("2025-01-15T10:31:17.300Z".into()),
                duration_s: 73.19999,
                billable_s: 74,
                talk_s: TalkSeconds {
                    caller: 31.24,
                    agent: 28.0,
                },
                turns: vec![
                    Turn {
                        speaker: Speaker::Agent,
                        start_ms: 0,
                        end_ms: 2300,
                    },
                    Turn {
                        speaker: Speaker::Caller,
                        start_ms: 2600,
                        end_ms: 5100,
                    },
                ],
                end_reason: Some("caller_hangup".into()),
                sip_status: Some(200),
                redirect_contact: None,
                recording_url: Some("https://tg.example/v1/calls/tg-7f3a/recording".into()),
                billing: None,
                transfer: None,
                bridge: None,
                recording_complete: None,
                transcript: None,
            },
        }
    }

    #[test]
    fn completed_snapshot() {
        let got = String::from_utf8(completed().to_json()).unwrap_or_default();
        let want = concat!(
            r#"{"event":"call.completed","event_id":"evt-01","seq":3,"call_id":"tg-7f3a","direction":"inbound","#,
            r#""status":"completed","from":"+919990152080","to":"+918035735900","did":"+919990152080","#,
            r#""started_at":"2025-01-15T10:30:00.000Z","answered_at":"2025-01-15T10:30:04.100Z","#,
            r#""ended_at":"2025-01-15T10:31:17.300Z","duration_s":73.2,"billable_s":74,"#,
            r#""talk_s":{"caller":31.2,"agent":28.0},"turns":[{"speaker":"agent","start_ms":0,"end_ms":2300},"#,
            r#"{"speaker":"caller","start_ms":2600,"end_ms":5100}],"end_reason":"caller_hangup","#,
            r#""sip_status":200,"recording_url":"https://tg.example/v1/calls/tg-7f3a/recording"}"#
        );
        assert_eq!(got, want);
        // Read back from a spool, it is the same payload (at wire precision).
        let back: Result<CallCompleted, _> = serde_json::from_str(&got);
        let mut rounded = completed();
        rounded.call.duration_s = 73.2;
        rounded.call.talk_s.caller = 31.2;
        assert_eq!(back.ok(), Some(rounded));
    }

    #[test]
    fn unanswered_call_snapshot() {
        let c = CallCompleted {
            event: CallbackEvent::Completed,
            event_id: "e".into(),
            seq: 1,
            call: CallView {
                call_id: "c".into(),
                direction: Direction::Outbound,
                status: CallStatus::NoAnswer,
                from: None,
                to: Some("+1".into()),
                did: None,
                crt: None,
                started_at: "2025-01-15T10:30:00Z".into(),
                answered_at: None,
                ended_at: Some("2025-01-15T10:30:30Z".into()),
                duration_s: f64::NAN,
                billable_s: 0,
                talk_s: TalkSeconds::default(),
                turns: vec![],
                end_reason: Some("no_answer".into()),
                sip_status: Some(480),
                redirect_contact: None,
                recording_url: None,
                billing: None,
                transfer: None,
                bridge: None,
                recording_complete: None,
                transcript: None,
            },
        };
        assert_eq!(
            String::from_utf8(c.to_json()).unwrap_or_default(),
            concat!(
                r#"{"event":"call.completed","event_id":"e","seq":1,"call_id":"c","direction":"outbound","#,
                r#""status":"no-answer","to":"+1","started_at":"2025-01-15T10:30:00Z","#,
                r#""ended_at":"2025-01-15T10:30:30Z","duration_s":0.0,"billable_s":0,"#,
                r#""talk_s":{"caller":0.0,"agent":0.0},"turns":[],"end_reason":"no_answer","sip_status":480}"#
            )
        );
    }

    fn j<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }

    #[test]
    fn other_events_and_statuses_spell_as_documented() {
        assert_eq!(j(&CallbackEvent::Ringing), r#""call.ringing""#);
        assert_eq!(j(&CallbackEvent::Answered), r#""call.answered""#);
        assert_eq!(j(&CallStatus::InProgress), r#""in-progress""#);
        assert_eq!(j(&CallStatus::Canceled), r#""canceled""#);
        assert_eq!(j(&CallStatus::Queued), r#""queued""#);
        assert_eq!(j(&Speaker::Caller), r#""caller""#);
    }

    #[test]
    fn event_names_and_sets() {
        assert_eq!(
            CallbackEvent::from_name("ringing"),
            Some(CallbackEvent::Ringing)
        );
        assert_eq!(
            CallbackEvent::from_name(" call.answered "),
            Some(CallbackEvent::Answered)
        );
        assert_eq!(
            CallbackEvent::from_name("completed"),
            Some(CallbackEvent::Completed)
        );
        for bad in ["", "call.", "Ringing", "transfer", "call.completedx"] {
            assert_eq!(CallbackEvent::from_name(bad), None, "{bad:?}");
        }
        let set: EventSet = [CallbackEvent::Ringing, CallbackEvent::Completed]
            .into_iter()
            .collect();
        assert!(set.contains(CallbackEvent::Ringing));
        assert!(!set.contains(CallbackEvent::Answered));
        assert!(set.contains(CallbackEvent::Completed));
        assert_eq!(EventSet::default(), EventSet::COMPLETED);
        assert!(!EventSet::NONE.contains(CallbackEvent::Completed));
        let all: EventSet = [
            CallbackEvent::Ringing,
            CallbackEvent::Answered,
            CallbackEvent::Completed,
        ]
        .into_iter()
        .collect();
        assert_eq!(all, EventSet::ALL);
    }

    #[test]
    fn transcript_snapshot() {
        let mut t = TranscriptEvent {
            event: CallbackEvent::Transcript,
            event_id: "evt-c-3".into(),
            seq: 3,
            call_id: "c".into(),
            turns: vec![crate::core::transcript::Turn {
                speaker: "caller".into(),
                start_ms: 0,
                end_ms: 2300,
                text: "hi".into(),
            }],
            error: None,
        };
        assert_eq!(
            String::from_utf8(t.to_json()).unwrap_or_default(),
            concat!(
                r#"{"event":"call.transcript","event_id":"evt-c-3","seq":3,"call_id":"c","#,
                r#""turns":[{"speaker":"caller","start_ms":0,"end_ms":2300,"text":"hi"}]}"#
            )
        );
        t.turns.clear();
        t.error = Some("timeout".into());
        assert_eq!(
            String::from_utf8(t.to_json()).unwrap_or_default(),
            concat!(
                r#"{"event":"call.transcript","event_id":"evt-c-3","seq":3,"call_id":"c","#,
                r#""turns":[],"error":"timeout"}"#
            )
        );
        assert_eq!(CallbackEvent::from_name("transcript"), None);
    }

    #[test]
    fn rounding_to_tenths() {
        assert_eq!(round_tenths(73.25), 73.3);
        assert_eq!(round_tenths(0.04), 0.0);
        assert_eq!(round_tenths(-3.0), 0.0);
        assert_eq!(round_tenths(f64::INFINITY), 0.0);
    }
}
