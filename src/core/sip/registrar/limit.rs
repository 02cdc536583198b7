//! Wrong-password token buckets, one per key (source IP or user), kept as the instant the
//! bucket will be full again (GCRA): a failure adds one `refill` of debt, and a key is blocked
//! while its debt exceeds `burst - 1` refills. A full bucket is the same as none, so only
//! keys with debt are stored; the map is capped (full buckets dropped first, then the one
//! nearest to full).
//! Must not: read clocks.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// `burst` wrong passwords at once, then one more per `refill`. `burst` below 1 counts as 1;
/// a zero `refill` disables the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub refill: Duration,
}

impl RateLimit {
    /// The debt beyond which a key is blocked.
    fn allowance(&self) -> Duration {
        self.refill
            .checked_mul(self.burst.max(1) - 1)
            .unwrap_or(Duration::MAX)
    }
}

pub(super) struct Buckets<K> {
    full_at: HashMap<K, Instant>,
    cap: usize,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub(super) fn new(cap: usize) -> Buckets<K> {
        Buckets {
            full_at: HashMap::new(),
            cap: cap.max(1),
        }
    }

    pub(super) fn blocked(&self, key: &K, limit: &RateLimit, now: Instant) -> bool {
        self.full_at
            .get(key)
            .is_some_and(|full| full.saturating_duration_since(now) > limit.allowance())
    }

    /// One failure for `key`.
    pub(super) fn charge(&mut self, key: K, limit: &RateLimit, now: Instant) {
        if limit.refill.is_zero() {
            return;
        }
        if !self.full_at.contains_key(&key) && self.full_at.len() >= self.cap {
            self.prune(now);
            if self.full_at.len() >= self.cap {
                let nearest = self
                    .full_at
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| k.clone());
                if let Some(k) = nearest {
                    self.full_at.remove(&k);
                }
            }
        }
        let start = self.full_at.get(&key).map_or(now, |t| (*t).max(now));
        let full = start.checked_add(limit.refill).unwrap_or(start);
        self.full_at.insert(key, full);
    }

    /// Drops the buckets that are full again.
    pub(super) fn prune(&mut self, now: Instant) {
        self.full_at.retain(|_, t| *t > now);
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.full_at.retain(|k, _| keep(k));
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.full_at.len()
    }
}

/// The bucket key of a source: the IPv4 address, or the IPv6 /64.
pub(super) fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}
