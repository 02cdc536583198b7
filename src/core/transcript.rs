//! Speaker-labelled transcripts (PROTOCOLS.md §4 `call.transcript`): which calls get one
//! ([`plan`], the record's `transcript`), reading one channel's answer from an
//! OpenAI-compatible `/v1/audio/transcriptions` endpoint (`verbose_json`), and merging two
//! channels' segments into the call's turns.
//!
//! Owns: the rule for which ended calls are transcribed and the reasons the others are not
//! ([`TranscriptState`]), which speaker each recording channel is ([`speakers`]), the
//! answer's reading rules (times in seconds → ms, clamped to ≥ 0; text trimmed, empty
//! segments dropped; no `segments` → one segment of the whole `text`) and the merge rule
//! (ordered by start, ties to the left channel; a speaker's consecutive segments less than
//! [`JOIN_GAP_MS`] apart make one turn). Must not: do I/O, know HTTP, or panic for any input
//! (the answer comes from another server).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::call::view::{round_tenths, CallView};

/// A speaker's consecutive segments closer than this are one turn.
pub const JOIN_GAP_MS: u64 = 1000;

/// The record's `transcript` (PROTOCOLS.md §4): whether a `call.transcript` callback follows
/// the call's `call.completed`, and if not, why. Absent from records written without a live
/// call's end (refused at admission, recovered after a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptState {
    /// A `call.transcript` follows (its `turns`, or its `error` when transcription failed).
    Pending,
    /// `[transcription] url` is not set.
    NotConfigured,
    /// The call has no callback URL for its events, or its callbacks are Twilio's form
    /// fields (which have no such event): a transcript would have nowhere to go.
    NoCallback,
    NotAnswered,
    /// Recording was not asked for, or its file could not be started.
    NotRecorded,
    /// Neither side spoke (missed, voicemail, silence): `talk_s` is 0 for both.
    NoTalkTime,
}

impl TranscriptState {
    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptState::Pending => "pending",
            TranscriptState::NotConfigured => "not_configured",
            TranscriptState::NoCallback => "no_callback",
            TranscriptState::NotAnswered => "not_answered",
            TranscriptState::NotRecorded => "not_recorded",
            TranscriptState::NoTalkTime => "no_talk_time",
        }
    }

    /// Every value, for the API's schema.
    pub const ALL: [TranscriptState; 6] = [
        TranscriptState::Pending,
        TranscriptState::NotConfigured,
        TranscriptState::NoCallback,
        TranscriptState::NotAnswered,
        TranscriptState::NotRecorded,
        TranscriptState::NoTalkTime,
    ];
}

/// Whether the call whose final view is `view` is transcribed: only an answered, recorded
/// call with talk time (as its record shows it, to 0.1 s), with transcription configured and
/// somewhere to deliver it. The first reason that applies is the record's, deployment-wide
/// ones first.
pub fn plan(view: &CallView, configured: bool, has_callback: bool) -> TranscriptState {
    let talked = round_tenths(view.talk_s.caller) > 0.0 || round_tenths(view.talk_s.agent) > 0.0;
    if !configured {
        TranscriptState::NotConfigured
    } else if !has_callback {
        TranscriptState::NoCallback
    } else if view.answered_at.is_none() {
        TranscriptState::NotAnswered
    } else if view.recording_url.is_none() {
        TranscriptState::NotRecorded
    } else if !talked {
        TranscriptState::NoTalkTime
    } else {
        TranscriptState::Pending
    }
}

/// The speakers of a recording's (left, right) channels, from what the record says. A
/// bridged leg that no transfer dialled is click-to-call's client (a `bridge` transfer
/// always leaves its `transfer` in the view): left client, right manager. Every other call:
/// left the SIP party the view's `talk_s` and `turns` call `caller` (an outbound call's
/// callee too), right the agent.
pub fn speakers(view: &CallView) -> (&'static str, &'static str) {
    if view.bridge.is_some() && view.transfer.is_none() {
        ("client", "manager")
    } else {
        ("caller", "agent")
    }
}

/// One stretch of speech on one channel, as the transcriber heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    /// Trimmed, never empty when it comes from [`parse_response`].
    pub text: String,
}

/// One entry of `call.transcript`'s `turns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub speaker: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// Why an answer gave no transcript. Never carries the answer's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    #[error("the answer is not JSON ({0})")]
    NotJson(String),
    #[error("the answer is not a JSON object")]
    NotObject,
    #[error("the answer's `segments` is not a list")]
    SegmentsNotList,
    #[error("the answer has neither `segments` nor `text`")]
    NoTranscript,
}

/// Reads a `verbose_json` answer: `{"text", "duration"?, "segments"?: [{"start","end","text"}]}`.
/// Without `segments` (or with an empty list and a non-empty `text`, as some servers answer)
/// the whole `text` is one segment from 0 to `duration` (0 if absent). An empty result is
/// valid: nothing was said.
pub fn parse_response(body: &[u8]) -> Result<Vec<Segment>, TranscriptError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| TranscriptError::NotJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(TranscriptError::NotObject);
    };
    let text = map.get("text").and_then(Value::as_str);
    let segments = match map.get("segments") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(items.iter().filter_map(segment).collect::<Vec<_>>()),
        Some(_) => return Err(TranscriptError::SegmentsNotList),
    };
    match (segments, text) {
        (Some(segments), _) if !segments.is_empty() => Ok(segments),
        (_, Some(text)) => {
            let end_ms = map.get("duration").map_or(0, seconds_to_ms);
            Ok(whole(text, end_ms).into_iter().collect())
        }
        (Some(empty), None) => Ok(empty),
        (None, None) => Err(TranscriptError::NoTranscript),
    }
}

fn segment(item: &Value) -> Option<Segment> {
    let text = item.get("text")?.as_str()?;
    let start_ms = item.get("start").map_or(0, seconds_to_ms);
    let end_ms = item.get("end").map_or(0, seconds_to_ms);
    let text = text.trim();
    (!text.is_empty()).then(|| Segment {
        start_ms,
        end_ms: end_ms.max(start_ms),
        text: text.to_string(),
    })
}

fn whole(text: &str, end_ms: u64) -> Option<Segment> {
    let text = text.trim();
    (!text.is_empty()).then(|| Segment {
        start_ms: 0,
        end_ms,
        text: text.to_string(),
    })
}

/// Seconds (a JSON number) → whole ms; negative, NaN or not a number → 0, huge → `u64::MAX`.
fn seconds_to_ms(v: &Value) -> u64 {
    let secs = v.as_f64().unwrap_or(0.0);
    if secs.is_nan() || secs <= 0.0 {
        return 0;
    }
    // `as` saturates for floats: +inf and anything past u64::MAX become u64::MAX.
    (secs * 1000.0).round() as u64
}

/// Both channels' segments as one conversation: ordered by start time (ties: `left` first),
/// a speaker's consecutive segments less than [`JOIN_GAP_MS`] apart (or overlapping) joined
/// into one turn, their texts separated by a space. Empty texts are dropped.
pub fn merge(left: (&str, Vec<Segment>), right: (&str, Vec<Segment>)) -> Vec<Turn> {
    let (left_name, left) = left;
    let (right_name, right) = right;
    let mut all: Vec<(u8, Segment)> = left
        .into_iter()
        .map(|s| (0, s))
        .chain(right.into_iter().map(|s| (1, s)))
        .collect();
    // Stable: each channel keeps its own order among equal starts.
    all.sort_by_key(|(side, s)| (s.start_ms, *side));
    let mut turns: Vec<(u8, Turn)> = Vec::new();
    for (side, seg) in all {
        let text = seg.text.trim();
        if text.is_empty() {
            continue;
        }
        let end_ms = seg.end_ms.max(seg.start_ms);
        if let Some((last_side, last)) = turns.last_mut() {
            if *last_side == side && seg.start_ms.saturating_sub(last.end_ms) < JOIN_GAP_MS {
                last.text.push(' ');
                last.text.push_str(text);
                last.end_ms = last.end_ms.max(end_ms);
                continue;
            }
        }
        let speaker = if side == 0 { left_name } else { right_name };
        turns.push((
            side,
            Turn {
                speaker: speaker.to_string(),
                start_ms: seg.start_ms,
                end_ms,
                text: text.to_string(),
            },
        ));
    }
    turns.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_ms: u64, end_ms: u64, text: &str) -> Segment {
        Segment {
            start_ms,
            end_ms,
            text: text.to_string(),
        }
    }

    fn turn(speaker: &str, start_ms: u64, end_ms: u64, text: &str) -> Turn {
        Turn {
            speaker: speaker.to_string(),
            start_ms,
            end_ms,
            text: text.to_string(),
        }
    }

    fn parsed(body: &str) -> Vec<Segment> {
        parse_response(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    #[test]
    fn reads_verbose_json_segments() {
        let body = r#"{"task":"transcribe","language":"english","duration":5.5,
            "text":" hi there. how are you?",
            "segments":[{"id":0,"start":0.0,"end":2.3,"text":" hi there."},
                        {"id":1,"start":2.3449,"end":5.5,"text":"  how are you? "}]}"#;
        assert_eq!(
            parsed(body),
            [seg(0, 2300, "hi there."), seg(2345, 5500, "how are you?")]
        );
    }

    #[test]
    fn text_only_is_one_segment() {
        assert_eq!(
            parsed(r#"{"text":" hello ","duration":3.25}"#),
            [seg(0, 3250, "hello")]
        );
        assert_eq!(parsed(r#"{"text":"hello"}"#), [seg(0, 0, "hello")]);
        assert_eq!(
            parsed(r#"{"text":"hello","segments":null}"#),
            [seg(0, 0, "hello")]
        );
        // An empty list beside a text: the text is all there is.
        assert_eq!(
            parsed(r#"{"text":"hello","segments":[],"duration":1}"#),
            [seg(0, 1000, "hello")]
        );
    }

    #[test]
    fn empty_texts_are_nothing_said() {
        assert_eq!(parsed(r#"{"text":"  "}"#), []);
        assert_eq!(parsed(r#"{"text":"","segments":[]}"#), []);
        assert_eq!(parsed(r#"{"segments":[]}"#), []);
        assert_eq!(
            parsed(
                r#"{"text":"a","segments":[{"start":0,"end":1,"text":" "},
                    {"start":1,"end":2,"text":"a"},{"start":2,"end":3},{"start":3,"text":7}]}"#
            ),
            [seg(1000, 2000, "a")]
        );
    }

    #[test]
    fn bad_times_are_clamped() {
        let body = r#"{"segments":[{"start":-1.5,"end":-0.2,"text":"a"},
            {"start":"x","end":null,"text":"b"},{"start":4,"end":3,"text":"c"},
            {"start":1e300,"end":2e300,"text":"d"},{"text":"e"}]}"#;
        assert_eq!(
            parsed(body),
            [
                seg(0, 0, "a"),
                seg(0, 0, "b"),
                seg(4000, 4000, "c"),
                seg(u64::MAX, u64::MAX, "d"),
                seg(0, 0, "e"),
            ]
        );
        assert_eq!(parsed(r#"{"text":"x","duration":-3}"#), [seg(0, 0, "x")]);
    }

    #[test]
    fn rejects_what_is_not_an_answer() {
        let cases: [(&[u8], TranscriptError); 6] = [
            (b"", TranscriptError::NotJson(String::new())),
            (b"<html>502</html>", TranscriptError::NotJson(String::new())),
            (b"\xff\xfe{", TranscriptError::NotJson(String::new())),
            (b"[1,2]", TranscriptError::NotObject),
            (b"\"text\"", TranscriptError::NotObject),
            (
                br#"{"segments":{"start":0}}"#,
                TranscriptError::SegmentsNotList,
            ),
        ];
        for (body, want) in cases {
            let got = parse_response(body);
            match (&got, &want) {
                (Err(TranscriptError::NotJson(_)), TranscriptError::NotJson(_)) => {}
                _ => assert_eq!(got, Err(want), "{body:?}"),
            }
        }
        assert_eq!(
            parse_response(br#"{"error":{"message":"bad model"}}"#),
            Err(TranscriptError::NoTranscript)
        );
        assert_eq!(
            parse_response(br#"{"text":5}"#),
            Err(TranscriptError::NoTranscript)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = br#"{}[]":,.-0123456789eE textsegmentsstartenddurationnull"#;
        for len in 0..400 {
            let body: Vec<u8> = (0..len % 60)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let _ = parse_response(&body);
        }
    }

    #[test]
    fn merge_orders_by_start_and_labels() {
        let caller = vec![seg(0, 2000, "hello"), seg(6000, 7000, "bye")];
        let agent = vec![seg(2500, 5000, "hi, how can I help?")];
        assert_eq!(
            merge(("caller", caller), ("agent", agent)),
            [
                turn("caller", 0, 2000, "hello"),
                turn("agent", 2500, 5000, "hi, how can I help?"),
                turn("caller", 6000, 7000, "bye"),
            ]
        );
    }

    #[test]
    fn merge_joins_a_speakers_close_segments() {
        let caller = vec![
            seg(0, 1000, "one"),
            seg(1999, 2500, "two"),     // gap 999 ms: joined
            seg(3500, 4000, "three"),   // gap exactly 1 s: a new turn
            seg(3800, 4200, "overlap"), // overlapping: joined
        ];
        assert_eq!(
            merge(("caller", caller), ("agent", vec![])),
            [
                turn("caller", 0, 2500, "one two"),
                turn("caller", 3500, 4200, "three overlap"),
            ]
        );
    }

    #[test]
    fn merge_ties_go_left_and_other_speakers_split_turns() {
        let left = vec![seg(1000, 2000, "left"), seg(2100, 2200, "again")];
        let right = vec![seg(1000, 1500, "right"), seg(2050, 2060, "in between")];
        assert_eq!(
            merge(("manager", left), ("client", right)),
            [
                turn("manager", 1000, 2000, "left"),
                turn("client", 1000, 2060, "right in between"),
                turn("manager", 2100, 2200, "again"),
            ]
        );
        // The right channel's segments after the tie join among themselves.
        let right = vec![seg(0, 100, "a"), seg(150, 200, "b")];
        let left = vec![seg(0, 50, "x")];
        assert_eq!(
            merge(("caller", left), ("agent", right)),
            [turn("caller", 0, 50, "x"), turn("agent", 0, 200, "a b"),]
        );
    }

    #[test]
    fn merge_skips_empty_and_fixes_backwards_ends() {
        let left = vec![seg(0, 0, "  "), seg(500, 100, " hi ")];
        assert_eq!(
            merge(("caller", left), ("agent", vec![seg(0, 10, "")])),
            [turn("caller", 500, 500, "hi")]
        );
        assert_eq!(merge(("caller", vec![]), ("agent", vec![])), []);
    }

    use crate::core::call::view::Direction;

    fn answered_recorded(caller: f64, agent: f64) -> CallView {
        let mut v = CallView::new("c1", Direction::Inbound, "2025-01-15T10:30:00Z".into());
        v.answered_at = Some("2025-01-15T10:30:02Z".into());
        v.recording_url = Some("/v1/calls/c1/recording".into());
        v.talk_s.caller = caller;
        v.talk_s.agent = agent;
        v
    }

    #[test]
    fn only_answered_recorded_calls_with_talk_time_are_transcribed() {
        use TranscriptState::*;
        let v = answered_recorded(3.0, 0.0);
        assert_eq!(plan(&v, true, true), Pending);
        assert_eq!(plan(&answered_recorded(0.0, 0.2), true, true), Pending);
        // Deployment-wide reasons come first, whatever the call was.
        assert_eq!(plan(&v, false, true), NotConfigured);
        assert_eq!(plan(&v, false, false), NotConfigured);
        assert_eq!(plan(&v, true, false), NoCallback);
        let mut unanswered = v.clone();
        unanswered.answered_at = None;
        unanswered.recording_url = None;
        assert_eq!(plan(&unanswered, true, true), NotAnswered);
        let mut unrecorded = v.clone();
        unrecorded.recording_url = None;
        unrecorded.recording_complete = Some(false);
        assert_eq!(plan(&unrecorded, true, true), NotRecorded);
        // An incomplete recording is still transcribed.
        let mut partial = v.clone();
        partial.recording_complete = Some(false);
        assert_eq!(plan(&partial, true, true), Pending);
        // Talk the record shows as 0.0 is no talk time; NaN too.
        assert_eq!(plan(&answered_recorded(0.0, 0.0), true, true), NoTalkTime);
        assert_eq!(plan(&answered_recorded(0.04, 0.0), true, true), NoTalkTime);
        assert_eq!(
            plan(&answered_recorded(f64::NAN, -1.0), true, true),
            NoTalkTime
        );
    }

    #[test]
    fn states_and_speakers_spell_as_documented() {
        for s in TranscriptState::ALL {
            assert_eq!(
                serde_json::to_string(&s).unwrap_or_default(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(
            serde_json::to_string(&TranscriptState::NoTalkTime).unwrap_or_default(),
            r#""no_talk_time""#
        );
    }

    #[test]
    fn click_to_call_is_client_and_manager_everything_else_caller_and_agent() {
        use crate::core::call::bridge::LegView;
        use crate::core::call::transfer::{Mode, Outcome, Progress};
        let mut v = answered_recorded(1.0, 1.0);
        assert_eq!(speakers(&v), ("caller", "agent"));
        v.direction = Direction::Outbound;
        assert_eq!(speakers(&v), ("caller", "agent"));
        v.bridge = Some(LegView {
            to: "+48123456789".into(),
            status: "completed".into(),
            sip_status: Some(200),
        });
        assert_eq!(speakers(&v), ("client", "manager"));
        // A bridge transfer's target is not a click-to-call client.
        v.transfer = Some(Progress {
            mode: Mode::Bridge,
            to: "+48123456789".into(),
            outcome: Outcome::Succeeded,
            sip_status: Some(200),
        });
        assert_eq!(speakers(&v), ("caller", "agent"));
    }

    #[test]
    fn turns_serialize_as_the_event_wants() {
        let t = turn("caller", 0, 2300, "hi");
        assert_eq!(
            serde_json::to_string(&t).unwrap_or_default(),
            r#"{"speaker":"caller","start_ms":0,"end_ms":2300,"text":"hi"}"#
        );
    }
}
