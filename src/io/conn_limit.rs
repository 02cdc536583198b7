//! Per-source limits on SIP stream connections (TCP and TLS), so that a slow, half-open or
//! flooding client cannot exhaust the daemon: how many connections one source may hold open
//! at once, and how fast it may start TLS handshakes (the `flood_per_source` quota, counted
//! apart from its SIP requests). Sources are keyed like the flood guard (IPv6 by /64).
//!
//! Owns the counts and the handshake buckets. Must not read sockets or the clock (`now` is
//! passed in).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::core::policy::{flood_key, Flood, FloodGuard};

/// Shared by every stream listener and outgoing connection of a gateway; reloadable.
#[derive(Debug)]
pub struct ConnLimits {
    /// 0 → unlimited.
    max_per_source: AtomicUsize,
    open: Mutex<HashMap<IpAddr, usize>>,
    handshakes: RwLock<FloodGuard>,
}

/// One admitted connection: its source's count goes down when this is dropped.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<ConnLimits>,
    key: IpAddr,
}

impl ConnLimits {
    pub fn new(max_per_source: usize, handshakes: Flood, now: Instant) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            max_per_source: AtomicUsize::new(max_per_source),
            open: Mutex::new(HashMap::new()),
            handshakes: RwLock::new(FloodGuard::new(handshakes, now)),
        })
    }

    /// Reload: connections already open stay open, even over a lowered limit.
    pub fn configure(&self, max_per_source: usize, handshakes: Flood, now: Instant) {
        self.max_per_source.store(max_per_source, Ordering::Relaxed);
        if let Ok(mut guard) = self.handshakes.write() {
            guard.set_flood(handshakes, now);
        }
    }

    /// A slot for a new connection from `ip`, or `None` when the source holds its maximum.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let key = flood_key(ip);
        let max = self.max_per_source.load(Ordering::Relaxed);
        let mut open = self.open.lock().ok()?;
        let n = open.entry(key).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            limits: Arc::clone(self),
            key,
        })
    }

    /// Whether `ip` may start a TLS handshake now (false → close the connection unanswered).
    pub fn handshake_allowed(&self, ip: IpAddr, now: Instant) -> bool {
        self.handshakes
            .read()
            .map(|g| g.check(ip, now))
            .unwrap_or(true)
    }

    /// Forgets handshake buckets that are full again.
    pub fn evict_idle(&self, now: Instant) {
        if let Ok(mut guard) = self.handshakes.write() {
            guard.evict_idle(now);
        }
    }

    /// Connections open from `ip`'s source.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let key = flood_key(ip);
        self.open
            .lock()
            .map(|o| o.get(&key).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock() {
            if let Some(n) = open.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF: Flood = Flood {
        burst: 0,
        per_second: 0,
    };

    #[test]
    fn a_source_holds_at_most_its_maximum_and_slots_give_back() {
        let limits = ConnLimits::new(2, OFF, Instant::now());
        let a: IpAddr = "127.0.0.5".parse().unwrap();
        let b: IpAddr = "127.0.0.6".parse().unwrap();
        let s1 = limits.admit(a).expect("first");
        let _s2 = limits.admit(a).expect("second");
        assert!(limits.admit(a).is_none(), "third from the same source");
        assert!(limits.admit(b).is_some(), "another source is not affected");
        drop(s1);
        assert_eq!(limits.open_from(a), 1);
        assert!(
            limits.admit(a).is_some(),
            "a closed connection frees its slot"
        );
    }

    #[test]
    fn ipv6_sources_share_their_64() {
        let limits = ConnLimits::new(1, OFF, Instant::now());
        let _s = limits.admit("2001:db8::1".parse().unwrap()).expect("first");
        assert!(limits.admit("2001:db8::2".parse().unwrap()).is_none());
        assert!(limits.admit("2001:db8:0:1::1".parse().unwrap()).is_some());
    }

    #[test]
    fn zero_means_unlimited_and_reload_applies() {
        let now = Instant::now();
        let limits = ConnLimits::new(0, OFF, now);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<Slot> = (0..100).filter_map(|_| limits.admit(ip)).collect();
        assert_eq!(slots.len(), 100);
        limits.configure(100, OFF, now);
        assert!(limits.admit(ip).is_none(), "lowered to what is open");
    }

    #[test]
    fn handshakes_follow_the_flood_quota() {
        let now = Instant::now();
        let quota = Flood {
            burst: 3,
            per_second: 1,
        };
        let limits = ConnLimits::new(0, quota, now);
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let allowed = (0..5).filter(|_| limits.handshake_allowed(ip, now)).count();
        assert_eq!(allowed, 3);
        let later = now + std::time::Duration::from_secs(1);
        assert!(
            limits.handshake_allowed(ip, later),
            "refilled after a second"
        );
        assert!(limits.handshake_allowed("10.0.0.3".parse().unwrap(), now));
    }
}
