//! When the daemon gives freed memory back ([`crate::io::heap`]): after calls ended (or
//! malformed requests arrived) since the last time, once the calls in progress have fallen
//! to at most half of the most seen since then — the moment a burst has drained. Checked
//! every [`EVERY`] off the runtime's worker threads; steady traffic trims rarely.
//!
//! Must not: trim while calls are still ramping up (nothing would come back), or block a
//! worker thread with the trim itself.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use super::Ctx;

pub const EVERY: Duration = Duration::from_secs(10);

/// What the rule remembers between checks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Calls ended plus malformed requests at the last trim.
    churn_at_trim: u64,
    /// Most calls in progress seen since the last trim.
    peak: u64,
}

impl Rule {
    /// One check: `churn` = calls ended + malformed requests so far, `active` = calls in
    /// progress. True: trim now.
    pub fn check(&mut self, churn: u64, active: u64) -> bool {
        self.peak = self.peak.max(active);
        if churn == self.churn_at_trim || active * 2 > self.peak {
            return false;
        }
        self.churn_at_trim = churn;
        self.peak = active;
        true
    }
}

/// Runs until the gateway is gone.
pub async fn trim_after_bursts(ctx: Weak<Ctx>) {
    let mut rule = Rule::default();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(ctx) = ctx.upgrade() else { return };
        let s = &ctx.stats;
        let churn = s.calls_ended.load(Ordering::Relaxed) + s.malformed.load(Ordering::Relaxed);
        if rule.check(churn, s.active_calls()) {
            let _ = tokio::task::spawn_blocking(crate::io::heap::release_free_memory).await;
            ctx.stats.heap_trims.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rule;

    #[test]
    fn trims_once_a_burst_has_drained_and_not_while_it_grows() {
        let mut r = Rule::default();
        assert!(!r.check(0, 0), "nothing happened yet");
        assert!(!r.check(0, 100), "calls ramping up, none ended");
        assert!(
            !r.check(40, 90),
            "ended some, but 90 of a peak of 100 still up"
        );
        assert!(r.check(80, 50), "half of the peak: trim");
        assert!(!r.check(80, 50), "nothing new since");
        assert!(!r.check(90, 40), "40 of the new peak 50 still up");
        assert!(r.check(120, 0), "drained");
        assert!(
            r.check(121, 0),
            "a malformed request (or a call) came and went"
        );
        assert!(!r.check(121, 0));
    }
}
