//! Wall-clock questions for admission, with real IANA zone rules (jiff): is a time inside a
//! daily `HH:MM-HH:MM` window, when does the window next open, which calendar day is it and
//! when does the next one start.
//!
//! Owns DST handling: local clock times are read through the zone, a window start that falls
//! in a spring-forward gap opens at the transition, one that falls in an autumn fold opens at
//! its first occurrence still ahead. Must not read the clock or the zone files (zones are
//! resolved when the policy is compiled).

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

/// Retry-After never exceeds one day.
pub(crate) const MAX_RETRY_S: u32 = 86_400;

/// A daily window in a resolved zone.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// Minutes since local midnight, 0..1440.
    pub(crate) start_min: u16,
    /// 1..=1440; below `start_min` → the window crosses midnight; equal → open all day.
    pub(crate) end_min: u16,
    pub(crate) tz: TimeZone,
}

impl Window {
    pub(crate) fn contains(&self, now: Timestamp) -> bool {
        let dt = self.tz.to_datetime(now);
        let m = u16::from(dt.hour().unsigned_abs()) * 60 + u16::from(dt.minute().unsigned_abs());
        let (s, e) = (self.start_min, self.end_min);
        match s.cmp(&e) {
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => s <= m && m < e,
            std::cmp::Ordering::Greater => m >= s || m < e,
        }
    }

    /// The first instant after `now` at which the local clock reaches the window start.
    pub(crate) fn next_opening(&self, now: Timestamp) -> Option<Timestamp> {
        let hour = i8::try_from(self.start_min / 60).ok()?;
        let minute = i8::try_from(self.start_min % 60).ok()?;
        let mut day = self.tz.to_datetime(now).date();
        // Three days cover any 24 h window plus a transition of up to a day.
        for _ in 0..3 {
            let dt = DateTime::new(day.year(), day.month(), day.day(), hour, minute, 0, 0).ok()?;
            if let Some(t) = instants_at(&self.tz, dt)
                .into_iter()
                .flatten()
                .find(|t| *t > now)
            {
                return Some(t);
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

/// When the local clock shows `dt`: once, twice (fold), or — in a gap — the transition that
/// jumps over it, which is when a clock reading "at least `dt`" begins.
fn instants_at(tz: &TimeZone, dt: DateTime) -> [Option<Timestamp>; 2] {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => [offset.to_timestamp(dt).ok(), None],
        AmbiguousOffset::Gap { after, .. } => {
            let inside_gap = after.to_timestamp(dt).ok();
            let transition =
                inside_gap.and_then(|t| tz.following(t).next().map(|tr| tr.timestamp()));
            [transition, None]
        }
        AmbiguousOffset::Fold { before, after } => {
            [before.to_timestamp(dt).ok(), after.to_timestamp(dt).ok()]
        }
    }
}

/// The calendar day `now` falls on in `tz`.
pub(crate) fn day_of(tz: &TimeZone, now: Timestamp) -> Date {
    tz.to_datetime(now).date()
}

/// The first instant of `day` in `tz` (not always 00:00 where DST starts at midnight).
pub(crate) fn start_of(tz: &TimeZone, day: Date) -> Option<Timestamp> {
    day.to_zoned(tz.clone()).ok().map(|z| z.timestamp())
}

/// The start of the day after the one `now` falls on.
pub(crate) fn next_day_start(tz: &TimeZone, now: Timestamp) -> Option<Timestamp> {
    start_of(tz, day_of(tz, now).tomorrow().ok()?)
}

/// Whole seconds from `now` until `then`, rounded up, at least 1, at most a day.
pub(crate) fn retry_secs(now: Timestamp, then: Timestamp) -> u32 {
    let nanos = now.duration_until(then).as_nanos();
    let secs = (nanos + 999_999_999).div_euclid(1_000_000_000);
    u32::try_from(secs.clamp(1, i128::from(MAX_RETRY_S))).unwrap_or(MAX_RETRY_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn zone(name: &str) -> TimeZone {
        jiff::tz::TimeZoneDatabase::bundled()
            .get(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn gap_start_opens_at_transition_and_fold_start_twice() {
        let w = Window {
            start_min: 150,
            end_min: 300,
            tz: zone("Europe/Warsaw"),
        };
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
        assert_eq!(
            w.next_opening(ts("2026-03-29T00:10:00Z")),
            Some(ts("2026-03-29T01:00:00Z"))
        );
        let fold = Window {
            start_min: 150,
            end_min: 165,
            tz: zone("Europe/Warsaw"),
        };
        // 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
        assert_eq!(
            fold.next_opening(ts("2026-10-25T00:00:00Z")),
            Some(ts("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            fold.next_opening(ts("2026-10-25T00:50:00Z")),
            Some(ts("2026-10-25T01:30:00Z"))
        );
    }

    #[test]
    fn retry_rounds_up_and_caps() {
        let t = ts("2026-01-01T00:00:00Z");
        assert_eq!(retry_secs(t, ts("2026-01-01T00:00:00.001Z")), 1);
        assert_eq!(retry_secs(t, ts("2026-01-01T00:00:01Z")), 1);
        assert_eq!(retry_secs(t, ts("2026-01-01T00:00:01.5Z")), 2);
        assert_eq!(retry_secs(t, ts("2026-01-03T00:00:00Z")), MAX_RETRY_S);
        assert_eq!(retry_secs(t, ts("2025-12-31T00:00:00Z")), 1);
    }

    #[test]
    fn day_starts_follow_the_zone() {
        let ny = zone("America/New_York");
        let t = ts("2026-03-08T03:00:00Z"); // 22:00 EST on the 7th
        assert_eq!(day_of(&ny, t).to_string(), "2026-03-07");
        assert_eq!(next_day_start(&ny, t), Some(ts("2026-03-08T05:00:00Z")));
        // After spring-forward the next midnight is EDT.
        let t2 = ts("2026-03-08T12:00:00Z");
        assert_eq!(next_day_start(&ny, t2), Some(ts("2026-03-09T04:00:00Z")));
    }
}
