//! Per-source flood limit and scanner user-agent check, run on EVERY SIP request before any
//! parsing-heavy work: a GCRA token bucket (governor) keyed by source address, IPv6 grouped by
//! /64 (one host usually owns a whole /64, so per-address keys would be free to rotate).
//!
//! Owns the key choice, the quota from `flood_per_source` and eviction of idle keys. Must not
//! read the clock: governor's `FakeRelativeClock` is moved forward to the `now` passed in (so
//! tests and the daemon behave alike), and must not answer requests: callers drop silently.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use governor::clock::FakeRelativeClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

use super::settings::Flood;

type Limiter =
    RateLimiter<IpAddr, HashMapStateStore<IpAddr>, FakeRelativeClock, NoOpMiddleware<Nanos>>;

/// Token bucket per source: `burst` requests at once, refilled at `per_second`.
#[derive(Debug)]
pub struct FloodGuard {
    flood: Flood,
    /// `None` when `burst == 0` (limit off).
    limiter: Option<Limiter>,
    clock: FakeRelativeClock,
    origin: Instant,
    /// How far `clock` has been advanced, ns since `origin`.
    advanced: AtomicU64,
}

impl FloodGuard {
    pub fn new(flood: Flood, now: Instant) -> Self {
        let clock = FakeRelativeClock::default();
        let limiter = NonZeroU32::new(flood.burst).map(|burst| {
            // Validation forbids per_second = 0 with a burst; refill 1/s rather than never.
            let rate = NonZeroU32::new(flood.per_second).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::per_second(rate).allow_burst(burst);
            RateLimiter::hashmap_with_clock(quota, clock.clone())
        });
        FloodGuard {
            flood,
            limiter,
            clock,
            origin: now,
            advanced: AtomicU64::new(0),
        }
    }

    pub fn flood(&self) -> Flood {
        self.flood
    }

    /// Reload: a changed quota starts afresh (buckets are cheap to refill; none are kept).
    pub fn set_flood(&mut self, flood: Flood, now: Instant) {
        if flood != self.flood {
            *self = FloodGuard::new(flood, now);
        }
    }

    /// True when a request from `ip` may be processed; false → drop it without an answer.
    pub fn check(&self, ip: IpAddr, now: Instant) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        self.advance_to(now);
        limiter.check_key(&flood_key(ip)).is_ok()
    }

    /// Forgets sources whose bucket is full again (indistinguishable from new ones) and
    /// returns the memory.
    pub fn evict_idle(&mut self, now: Instant) {
        if let Some(limiter) = &self.limiter {
            self.advance_to(now);
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Sources currently tracked.
    pub fn len(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves the fake clock forward to `now` (never back). `fetch_max` hands each caller the
    /// exact stretch it advances, so concurrent callers never double-count.
    fn advance_to(&self, now: Instant) {
        let target = now.saturating_duration_since(self.origin).as_nanos();
        let target = u64::try_from(target).unwrap_or(u64::MAX);
        let before = self.advanced.fetch_max(target, Ordering::AcqRel);
        if target > before {
            self.clock
                .advance(std::time::Duration::from_nanos(target - before));
        }
    }
}

/// The bucket key of a source: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64.
pub fn flood_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// Whether a User-Agent contains one of `list` (ASCII case-insensitive); empty entries are
/// ignored. A match is a scanner: drop without answering.
pub fn blocked_user_agent(ua: &str, list: &[String]) -> bool {
    let hay = ua.as_bytes();
    list.iter()
        .map(|s| s.as_bytes())
        .filter(|n| !n.is_empty())
        .any(|needle| {
            hay.windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
        })
}
