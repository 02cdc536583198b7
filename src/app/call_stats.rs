//! Counters about how calls end, kept for `/metrics`: ended calls by `end_reason`, refused
//! INVITEs by the rule that refused them, the setup time of answered calls (a histogram:
//! admission to answer), and RTP packets (in, out, lost on the way in) and SRTP refusals
//! summed over ended calls.
//!
//! Owns: the counters and their bounds (at most [`MAX_LABELS`] distinct reasons each; more
//! count as `other`). Must not: name or format metrics (`metrics` does), or take a lock on any
//! per-packet path (it is touched once per call end).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Distinct reasons kept per counter.
pub const MAX_LABELS: usize = 64;

/// Setup-time bucket bounds, in seconds (Prometheus `le`).
pub const SETUP_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug, Default)]
pub struct CallStats {
    ended: Mutex<BTreeMap<String, u64>>,
    refused: Mutex<BTreeMap<String, u64>>,
    /// Cumulative counts per bucket of [`SETUP_BUCKETS`], then +Inf.
    setup: [AtomicU64; SETUP_BUCKETS.len() + 1],
    setup_sum_us: AtomicU64,
    pub rtp_in: AtomicU64,
    pub rtp_out: AtomicU64,
    pub rtp_lost: AtomicU64,
    pub srtp_refused: AtomicU64,
}

/// A histogram's state at one moment.
pub struct SetupSnapshot {
    /// Cumulative counts for each bound of [`SETUP_BUCKETS`], then +Inf (= the count).
    pub cumulative: Vec<u64>,
    pub sum_seconds: f64,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, reason: &str) {
    let mut m = match map.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(n) = m.get_mut(reason) {
        *n += 1;
    } else if m.len() < MAX_LABELS {
        m.insert(reason.to_string(), 1);
    } else {
        *m.entry("other".to_string()).or_insert(0) += 1;
    }
}

fn snapshot(map: &Mutex<BTreeMap<String, u64>>) -> Vec<(String, u64)> {
    let m = match map.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    m.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

impl CallStats {
    /// A call that ran ended with `reason`; `setup` from admission to answer, if answered;
    /// `rtp`: packets in, out and lost on the way in.
    pub fn ended(
        &self,
        reason: &str,
        setup: Option<Duration>,
        rtp: (u64, u64, u64),
        srtp_refused: u64,
    ) {
        bump(&self.ended, reason);
        if let Some(d) = setup {
            let secs = d.as_secs_f64();
            for (i, bound) in SETUP_BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    self.setup[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            self.setup[SETUP_BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
            let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            self.setup_sum_us.fetch_add(us, Ordering::Relaxed);
        }
        self.rtp_in.fetch_add(rtp.0, Ordering::Relaxed);
        self.rtp_out.fetch_add(rtp.1, Ordering::Relaxed);
        self.rtp_lost.fetch_add(rtp.2, Ordering::Relaxed);
        self.srtp_refused.fetch_add(srtp_refused, Ordering::Relaxed);
    }

    /// An INVITE refused before it ran (its record's `end_reason`).
    pub fn refused(&self, reason: &str) {
        bump(&self.refused, reason);
    }

    pub fn ended_by_reason(&self) -> Vec<(String, u64)> {
        snapshot(&self.ended)
    }

    pub fn refused_by_reason(&self) -> Vec<(String, u64)> {
        snapshot(&self.refused)
    }

    pub fn setup(&self) -> SetupSnapshot {
        SetupSnapshot {
            cumulative: self
                .setup
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_seconds: self.setup_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Admission to answer, from a view's RFC 3339 times (`None` if not answered or unreadable).
pub fn setup_time(started_at: &str, answered_at: Option<&str>) -> Option<Duration> {
    let start: jiff::Timestamp = started_at.parse().ok()?;
    let answer: jiff::Timestamp = answered_at?.parse().ok()?;
    let d = answer.duration_since(start);
    Duration::try_from(d).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_and_setup_is_cumulative() {
        let s = CallStats::default();
        for i in 0..(MAX_LABELS + 5) {
            s.refused(&format!("r{i}"));
        }
        let refused = s.refused_by_reason();
        assert_eq!(refused.len(), MAX_LABELS + 1);
        assert_eq!(
            refused.iter().find(|(k, _)| k == "other").map(|(_, v)| *v),
            Some(5)
        );
        s.ended(
            "caller_hangup",
            Some(Duration::from_millis(300)),
            (10, 20, 3),
            1,
        );
        s.ended("caller_hangup", None, (1, 2, 0), 0);
        s.ended("no_answer", Some(Duration::from_secs(120)), (0, 0, 0), 0);
        assert_eq!(
            s.ended_by_reason(),
            vec![
                ("caller_hangup".to_string(), 2),
                ("no_answer".to_string(), 1)
            ]
        );
        let h = s.setup();
        // 0.3 s is in every bucket from 0.5 up; 120 s only in +Inf.
        assert_eq!(h.cumulative, vec![0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2]);
        assert!((h.sum_seconds - 120.3).abs() < 1e-6);
        assert_eq!(s.rtp_in.load(Ordering::Relaxed), 11);
        assert_eq!(s.srtp_refused.load(Ordering::Relaxed), 1);
        assert_eq!(s.rtp_lost.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn setup_time_from_view_times() {
        let d = setup_time("2025-01-15T10:30:00Z", Some("2025-01-15T10:30:01.5Z"));
        assert_eq!(d, Some(Duration::from_millis(1500)));
        assert_eq!(setup_time("2025-01-15T10:30:00Z", None), None);
        assert_eq!(setup_time("garbage", Some("2025-01-15T10:30:01Z")), None);
        // An answer "before" the start (clock step): none rather than a wrap.
        assert_eq!(
            setup_time("2025-01-15T10:30:01Z", Some("2025-01-15T10:30:00Z")),
            None
        );
    }
}
