//! The counters of one scope: running calls, today's voice minutes, strict sliding windows of
//! admissions and the fraud-alert attempt window with its episode flag.
//!
//! Owns the window arithmetic (an entry counts while `now - t < width`, so a call admitted at
//! `t` stops counting at exactly `t + width`) and the calendar-day ledger. Must not pick scopes
//! or limits: `Admission` says which scope and which limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::hours::{day_of, start_of};
use super::{Now, Scope};

pub(crate) const HOUR: Duration = Duration::from_secs(3_600);
pub(crate) const DAY: Duration = Duration::from_secs(86_400);

/// The counting day of a scope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Day {
    pub(crate) date: Date,
    /// The day's first instant on the monotonic clock.
    pub(crate) start: Instant,
    /// Wall-clock span known to be `date` in the zone: saves a zone lookup per call.
    from: Timestamp,
    until: Timestamp,
}

#[derive(Debug)]
pub(crate) struct ScopeState {
    pub(crate) scope: Scope,
    pub(crate) running: u32,
    /// Σ over running calls of when their minutes started counting today, in ns from the
    /// admission epoch; with `running` it gives today's running minutes in O(1).
    pub(crate) start_sum: i128,
    pub(crate) day: Option<Day>,
    /// Minutes of calls that ended today.
    pub(crate) closed: Duration,
    pub(crate) per_hour: Window,
    pub(crate) per_day: Window,
    pub(crate) attempts: Window,
    pub(crate) alerting: bool,
}

impl ScopeState {
    pub(crate) fn new(scope: Scope) -> Self {
        ScopeState {
            scope,
            running: 0,
            start_sum: 0,
            day: None,
            closed: Duration::ZERO,
            per_hour: Window::default(),
            per_day: Window::default(),
            attempts: Window::default(),
            alerting: false,
        }
    }

    /// Moves the ledger to the day `now` falls on in `zone`. True when the day changed: the
    /// caller must then recompute `start_sum` from the running calls.
    pub(crate) fn roll(&mut self, now: &Now, zone: &TimeZone) -> bool {
        if self
            .day
            .is_some_and(|d| d.from <= now.wall && now.wall < d.until)
        {
            return false;
        }
        let today = day_of(zone, now.wall);
        let from = start_of(zone, today).unwrap_or(now.wall);
        let until = today
            .tomorrow()
            .ok()
            .and_then(|d| start_of(zone, d))
            .unwrap_or(now.wall);
        if let Some(d) = self.day.as_mut().filter(|d| d.date == today) {
            (d.from, d.until) = (from, until);
            return false;
        }
        let since_start = Duration::try_from(from.duration_until(now.wall)).unwrap_or_default();
        let start = now.mono.checked_sub(since_start).unwrap_or(now.mono);
        self.day = Some(Day {
            date: today,
            start,
            from,
            until,
        });
        self.closed = Duration::ZERO;
        true
    }

    /// Forgets the cached day span (the zone may have changed): the next roll looks it up.
    pub(crate) fn recheck_day(&mut self) {
        if let Some(d) = self.day.as_mut() {
            d.until = d.from;
        }
    }

    /// When a call admitted at `admitted` started counting minutes today.
    pub(crate) fn minutes_start(&self, admitted: Instant) -> Instant {
        match self.day {
            Some(d) if d.start > admitted => d.start,
            _ => admitted,
        }
    }

    /// Voice time used today at `now`, in ns (ended calls plus the running ones so far).
    pub(crate) fn used_ns(&self, now: Instant, epoch: Instant) -> i128 {
        let running = i128::from(self.running) * rel_ns(epoch, now) - self.start_sum;
        self.closed.as_nanos() as i128 + running.max(0)
    }

    /// The instant the running calls bring today's use to `cap_ns`; `None` when none runs.
    pub(crate) fn exhausted_at(&self, cap_ns: i128, epoch: Instant) -> Option<Instant> {
        let k = i128::from(self.running);
        if k == 0 {
            return None;
        }
        let total = cap_ns - self.closed.as_nanos() as i128 + self.start_sum;
        let t = total.div_euclid(k) + i128::from(total.rem_euclid(k) != 0);
        from_rel_ns(epoch, t)
    }

    /// Records one attempt; true when it starts an alert episode (more than `calls` attempts
    /// within `within`). The episode ends at the first attempt that finds the count back at or
    /// under `calls`.
    pub(crate) fn attempt(&mut self, now: Instant, within: Duration, calls: u32) -> bool {
        self.attempts.record(now, within, calls.saturating_add(1));
        if self.attempts.len() > calls as usize {
            let starts = !self.alerting;
            self.alerting = true;
            starts
        } else {
            self.alerting = false;
            false
        }
    }
}

/// Timestamps in a sliding window, oldest first, at most `limit` kept.
#[derive(Debug, Default)]
pub(crate) struct Window {
    stamps: VecDeque<Instant>,
}

impl Window {
    fn prune(&mut self, now: Instant, width: Duration) {
        while self
            .stamps
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= width)
        {
            self.stamps.pop_front();
        }
    }

    /// `Ok` when one more fits under `limit` within `width`; else the whole seconds (rounded
    /// up) until enough old entries have left the window.
    pub(crate) fn check(&mut self, now: Instant, width: Duration, limit: u32) -> Result<(), u32> {
        match self.wait(now, width, limit) {
            None => Ok(()),
            Some(left) => {
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                Err(u32::try_from(secs.max(1)).unwrap_or(u32::MAX))
            }
        }
    }

    /// `None` when one more fits under `limit` within `width`; else exactly how long until
    /// enough old entries have left the window (never zero: an entry at `now - width` has
    /// already left).
    pub(crate) fn wait(&mut self, now: Instant, width: Duration, limit: u32) -> Option<Duration> {
        self.prune(now, width);
        let len = self.stamps.len();
        let limit = limit as usize;
        if len < limit {
            return None;
        }
        // Entries older than this one must all leave for the count to drop under `limit`.
        let t = self.stamps.get(len - limit)?;
        Some(width.saturating_sub(now.saturating_duration_since(*t)))
    }

    pub(crate) fn record(&mut self, now: Instant, width: Duration, limit: u32) {
        self.prune(now, width);
        self.stamps.push_back(now);
        while self.stamps.len() > limit as usize {
            self.stamps.pop_front();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.stamps.len()
    }
}

/// Signed ns from `epoch` to `t`.
pub(crate) fn rel_ns(epoch: Instant, t: Instant) -> i128 {
    match t.checked_duration_since(epoch) {
        Some(d) => d.as_nanos() as i128,
        None => -(epoch.saturating_duration_since(t).as_nanos() as i128),
    }
}

fn from_rel_ns(epoch: Instant, ns: i128) -> Option<Instant> {
    let abs = Duration::from_nanos(u64::try_from(ns.unsigned_abs()).ok()?);
    if ns >= 0 {
        epoch.checked_add(abs)
    } else {
        epoch.checked_sub(abs)
    }
}

#[cfg(test)]
mod tests;
