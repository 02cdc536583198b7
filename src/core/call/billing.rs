//! How an answered call is billed (`[billing]`, seeds/003: "the first minute in full, then
//! per second; silent or disconnected time is never charged").
//!
//! Owns: the billing rule ([`bill`], the only place `billable_s` is computed) and the
//! record's account of it ([`Basis`]). The first `minimum_s` of an answered call are billed
//! in full; after them either the whole duration counts, or (`exclude_silence = true`) only
//! the seconds in which someone speaks — the union of the caller's and the agent's VAD
//! segments, so crosstalk counts once — rounded up to whole `increment_s`.
//! Must not: read a clock or know where durations come from (the caller measures them).

use serde::{Deserialize, Serialize};

use super::view::{CallView, Speaker, TalkSeconds, Turn};
use crate::core::media::vad::{self, Segment};

/// What the billed seconds counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counted {
    /// The whole answered duration.
    Duration,
    /// Only the seconds in which someone spoke (`exclude_silence = true`).
    Speech,
}

/// The record's account of how `billable_s` was computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Basis {
    pub counted: Counted,
    /// The seconds counted before the minimum and the increment were applied: the whole
    /// duration, or (speech) the part of the call inside the minimum plus the speech after
    /// it. `billable_s` is `minimum_s`, plus `counted_s - minimum_s` rounded up to whole
    /// `increment_s` when that is positive.
    pub counted_s: f64,
    pub minimum_s: u32,
    pub increment_s: u32,
}

/// `[billing]` as the rule needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Seconds billed as soon as a call is answered (0 → none).
    pub minimum_s: u32,
    /// Granularity after the minimum; 0 counts as 1.
    pub increment_s: u32,
    /// After the minimum, bill only the seconds in which someone speaks.
    pub exclude_silence: bool,
}

/// The bill of an answered call of `duration_s` (from the answer), whose sides spoke in
/// `caller` and `agent` (milliseconds from the answer; any order, overlaps allowed).
/// A call that was never answered has no bill (the caller reports 0 and no basis).
///
/// The duration is taken to the millisecond first, so float noise (60.000000001) does not
/// bill another increment; NaN, infinities and negatives count as 0; absurd values saturate.
pub fn bill(rule: Rule, duration_s: f64, caller: &[Segment], agent: &[Segment]) -> (u64, Basis) {
    let duration_ms = to_ms(duration_s);
    let min_ms = u64::from(rule.minimum_s).saturating_mul(1000);
    let (counted, counted_ms) = if rule.exclude_silence {
        let speech = speech_ms_within(caller, agent, min_ms, duration_ms);
        (
            Counted::Speech,
            duration_ms.min(min_ms).saturating_add(speech),
        )
    } else {
        // An answered call bills at least the minimum, however short it was.
        (Counted::Duration, duration_ms.max(1))
    };
    let billable = rounded(counted_ms, rule.minimum_s, rule.increment_s);
    let basis = Basis {
        counted,
        counted_s: counted_ms as f64 / 1000.0,
        minimum_s: rule.minimum_s,
        increment_s: rule.increment_s.max(1),
    };
    (billable, basis)
}

/// Seconds as whole milliseconds (0 for NaN, infinities and negatives).
fn to_ms(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        // The float-to-int cast saturates: an absurd duration never panics.
        (s * 1000.0).round() as u64
    } else {
        0
    }
}

/// `minimum_s` for up to the minimum, then whole increments rounded up.
fn rounded(counted_ms: u64, minimum_s: u32, increment_s: u32) -> u64 {
    let min_ms = u64::from(minimum_s).saturating_mul(1000);
    if counted_ms <= min_ms {
        return u64::from(minimum_s);
    }
    let inc = u64::from(increment_s.max(1));
    let over = counted_ms - min_ms;
    let inc_ms = inc * 1000;
    let steps = over / inc_ms + u64::from(over % inc_ms != 0);
    u64::from(minimum_s).saturating_add(steps.saturating_mul(inc))
}

/// Milliseconds inside `[from, to)` covered by at least one segment of either side.
fn speech_ms_within(caller: &[Segment], agent: &[Segment], from: u64, to: u64) -> u64 {
    let mut spans: Vec<(u64, u64)> = caller
        .iter()
        .chain(agent)
        .map(|s| (s.start_ms.max(from), s.end_ms.min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let mut total = 0u64;
    let mut current: Option<(u64, u64)> = None;
    for (a, b) in spans {
        match &mut current {
            Some((_, end)) if a <= *end => *end = (*end).max(b),
            _ => {
                if let Some((s, e)) = current {
                    total = total.saturating_add(e - s);
                }
                current = Some((a, b));
            }
        }
    }
    if let Some((s, e)) = current {
        total = total.saturating_add(e - s);
    }
    total
}

/// Fills in a view's talk time, turns and bill from its sides' VAD segments (milliseconds
/// from the answer) and its `duration_s` — the one place they are computed (the live view,
/// the final record and a record recovered from the journal all come through here). A call
/// that was never answered (`answered_at` absent) bills nothing and has no basis.
pub fn settle(view: &mut CallView, caller: &[Segment], agent: &[Segment], rule: Rule) {
    let talk = |segs: &[Segment]| segs.iter().map(Segment::len_ms).sum::<u64>() as f64 / 1000.0;
    view.talk_s = TalkSeconds {
        caller: talk(caller),
        agent: talk(agent),
    };
    view.turns = vad::turns(caller, agent)
        .into_iter()
        .map(|t| Turn {
            speaker: match t.speaker {
                vad::Speaker::Caller => Speaker::Caller,
                vad::Speaker::Agent => Speaker::Agent,
            },
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        })
        .collect();
    (view.billable_s, view.billing) = match view.answered_at {
        Some(_) => {
            let (billable, basis) = bill(rule, view.duration_s, caller, agent);
            (billable, Some(basis))
        }
        None => (0, None),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(minimum_s: u32, increment_s: u32, exclude_silence: bool) -> Rule {
        Rule {
            minimum_s,
            increment_s,
            exclude_silence,
        }
    }

    fn seg(start_ms: u64, end_ms: u64) -> Segment {
        Segment { start_ms, end_ms }
    }

    #[test]
    fn whole_duration_table() {
        let table: &[(f64, u32, u32, u64)] = &[
            // answered but not a millisecond long: the minimum (or one increment)
            (0.0, 60, 60, 60),
            (0.0, 0, 1, 1),
            (-1.0, 0, 1, 1),
            (f64::NAN, 0, 1, 1),
            (f64::INFINITY, 0, 1, 1),
            (0.0004, 0, 1, 1),
            // per second
            (73.2, 0, 1, 74),
            (73.0, 0, 1, 73),
            (0.1, 0, 1, 1),
            (60.000000001, 0, 1, 60),
            // 60/60 pulses
            (1.0, 60, 60, 60),
            (60.0, 60, 60, 60),
            (60.1, 60, 60, 120),
            (120.0, 60, 60, 120),
            (121.0, 60, 60, 180),
            // 30 s minimum, then per 6 s
            (10.0, 30, 6, 30),
            (30.0, 30, 6, 30),
            (30.5, 30, 6, 36),
            (36.0, 30, 6, 36),
            (36.001, 30, 6, 42),
            // increment 0 counts as 1
            (5.5, 0, 0, 6),
            (5.5, 10, 0, 10),
        ];
        for &(d, min, inc, want) in table {
            let (got, basis) = bill(rule(min, inc, false), d, &[], &[]);
            assert_eq!(got, want, "{d} s at {min}/{inc}");
            assert_eq!(basis.counted, Counted::Duration);
            assert_eq!(basis.minimum_s, min);
            assert_eq!(basis.increment_s, inc.max(1));
        }
        // Absurd durations saturate instead of overflowing.
        assert_eq!(
            bill(rule(0, 7, false), 1e300, &[], &[]).0,
            u64::MAX / 1000 / 7 * 7 + 7
        );
        assert!(bill(rule(u32::MAX, u32::MAX, false), 1e300, &[], &[]).0 >= u64::from(u32::MAX));
    }

    #[test]
    fn speech_only_after_the_minimum_table() {
        // (duration_s, minimum, increment, caller segments, agent segments, billed, counted_s)
        type Row = (f64, u32, u32, Vec<Segment>, Vec<Segment>, u64, f64);
        let table: Vec<Row> = vec![
            // Within the minimum: the minimum, talk or not.
            (30.0, 60, 1, vec![], vec![], 60, 30.0),
            (60.0, 60, 1, vec![seg(0, 60_000)], vec![], 60, 60.0),
            // 5 min call, silent after the first minute: only the minimum.
            (300.0, 60, 1, vec![seg(1_000, 10_000)], vec![], 60, 60.0),
            // Speech after the minimum: caller 10 s, agent 5 s, apart.
            (
                300.0,
                60,
                1,
                vec![seg(70_000, 80_000)],
                vec![seg(90_000, 95_000)],
                75,
                75.0,
            ),
            // Overlapping speech (barge-in) counts once: 70-80 ∪ 75-85 = 15 s.
            (
                300.0,
                60,
                1,
                vec![seg(70_000, 80_000)],
                vec![seg(75_000, 85_000)],
                75,
                75.0,
            ),
            // A segment straddling the minimum counts only after it: 50-65 s → 5 s.
            (300.0, 60, 1, vec![seg(50_000, 65_000)], vec![], 65, 65.0),
            // ... and not past the end of the call: 295-310 s of a 300 s call → 5 s.
            (300.0, 60, 1, vec![seg(295_000, 310_000)], vec![], 65, 65.0),
            // Rounded up to the increment: 0.5 s of speech at 6 s steps.
            (100.0, 30, 6, vec![seg(40_000, 40_500)], vec![], 36, 30.5),
            // No minimum: only speech, and silence is free.
            (120.0, 0, 1, vec![], vec![], 0, 0.0),
            (
                120.0,
                0,
                1,
                vec![seg(0, 1_500), seg(1_000, 2_000)],
                vec![seg(5_000, 5_001)],
                3,
                2.001,
            ),
            // Garbage segments (end before start) count nothing; unsorted input is fine.
            (
                120.0,
                0,
                1,
                vec![seg(9_000, 3_000), seg(20_000, 21_000), seg(10_000, 11_000)],
                vec![],
                2,
                2.0,
            ),
            // A never-measured duration bills the minimum only.
            (f64::NAN, 60, 1, vec![seg(0, 90_000)], vec![], 60, 0.0),
        ];
        for (d, min, inc, caller, agent, want, counted_s) in table {
            let (got, basis) = bill(rule(min, inc, true), d, &caller, &agent);
            assert_eq!(got, want, "{d} s at {min}/{inc}: {caller:?} {agent:?}");
            assert_eq!(basis.counted, Counted::Speech);
            assert!(
                (basis.counted_s - counted_s).abs() < 1e-9,
                "counted {} vs {counted_s}",
                basis.counted_s
            );
        }
    }

    #[test]
    fn basis_recomputes_the_bill() {
        // What the record says is enough to check its bill: minimum, then counted_s - minimum
        // rounded up to increments.
        let caller = [seg(61_000, 64_200)];
        for exclude_silence in [false, true] {
            let r = rule(60, 6, exclude_silence);
            let (billed, b) = bill(r, 200.0, &caller, &[]);
            let over = (b.counted_s - f64::from(b.minimum_s)).max(0.0);
            let steps = (over / f64::from(b.increment_s)).ceil() as u64;
            assert_eq!(
                billed,
                u64::from(b.minimum_s) + steps * u64::from(b.increment_s)
            );
        }
    }

    #[test]
    fn basis_spells_as_documented() {
        let (_, b) = bill(rule(60, 1, true), 61.0, &[], &[]);
        assert_eq!(
            serde_json::to_string(&b).unwrap_or_default(),
            r#"{"counted":"speech","counted_s":60.0,"minimum_s":60,"increment_s":1}"#
        );
    }
}
