//! Failed API authentication, counted per source address: after [`MAX_FAILURES`] failures
//! within [`WINDOW`] a source is refused (429 with `Retry-After`) until that window ends,
//! whatever credentials it sends, so a token cannot be guessed at network speed.
//!
//! Owns: the per-source counters (bounded: at most [`MAX_SOURCES`] are tracked; beyond that
//! the ones whose window ended are forgotten first, then the oldest), sans-IO with the clock
//! passed in. Must not: see or keep any credential — it only learns that one failed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Failures a source may have within one [`WINDOW`] before it is refused.
pub const MAX_FAILURES: u32 = 10;
/// The window failures are counted in (fixed, starting at a source's first failure).
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sources tracked at once.
pub const MAX_SOURCES: usize = 4096;

/// The client behind a request from `peer`: `peer` itself unless it is one of the `trusted`
/// proxies; then the right-most `X-Forwarded-For` address that is not a trusted proxy (the
/// left part of the header is whatever the client claims). Unparseable headers: `peer`.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    for hop in hops.rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            Err(_) => return peer,
        }
    }
    peer
}

/// What one more failure means for its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The first in its window: worth a log line.
    First,
    /// Counted, nothing new to say.
    Counted,
    /// This failure used up the allowance: the source is refused from now on.
    LockedOut,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    since: Instant,
    failures: u32,
}

/// The per-source failure counters.
#[derive(Debug, Default)]
pub struct FailedAuth {
    sources: HashMap<IpAddr, Entry>,
}

impl FailedAuth {
    /// `Some(seconds to wait)` while `source` is refused.
    pub fn refused(&self, source: IpAddr, now: Instant) -> Option<u64> {
        let entry = self.sources.get(&source)?;
        let ends = entry.since + WINDOW;
        (entry.failures >= MAX_FAILURES && now < ends)
            .then(|| ends.duration_since(now).as_secs().max(1))
    }

    /// Counts one failed authentication from `source`.
    pub fn failed(&mut self, source: IpAddr, now: Instant) -> Failure {
        if !self.sources.contains_key(&source) && self.sources.len() >= MAX_SOURCES {
            self.make_room(now);
        }
        let entry = self.sources.entry(source).or_insert(Entry {
            since: now,
            failures: 0,
        });
        if now >= entry.since + WINDOW {
            *entry = Entry {
                since: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
        match entry.failures {
            1 => Failure::First,
            n if n == MAX_FAILURES => Failure::LockedOut,
            _ => Failure::Counted,
        }
    }

    /// Sources tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    fn make_room(&mut self, now: Instant) {
        self.sources.retain(|_, e| now < e.since + WINDOW);
        if self.sources.len() >= MAX_SOURCES {
            let oldest = self
                .sources
                .iter()
                .min_by_key(|(_, e)| e.since)
                .map(|(ip, _)| *ip);
            if let Some(ip) = oldest {
                self.sources.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn a_source_is_refused_after_the_allowance_until_its_window_ends() {
        let t0 = Instant::now();
        let mut f = FailedAuth::default();
        assert_eq!(f.failed(ip(1), t0), Failure::First);
        for _ in 2..MAX_FAILURES {
            assert_eq!(f.failed(ip(1), t0), Failure::Counted);
            assert_eq!(f.refused(ip(1), t0), None);
        }
        assert_eq!(f.failed(ip(1), t0), Failure::LockedOut);
        assert_eq!(f.refused(ip(1), t0), Some(60));
        assert_eq!(f.refused(ip(1), t0 + Duration::from_secs(59)), Some(1));
        assert_eq!(f.refused(ip(2), t0), None, "other sources unaffected");
        let later = t0 + WINDOW;
        assert_eq!(f.refused(ip(1), later), None, "window over");
        assert_eq!(f.failed(ip(1), later), Failure::First, "a new window");
    }

    #[test]
    fn the_client_behind_a_trusted_proxy() {
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().expect("net")];
        let with = |xff: &[&str]| {
            let mut h = HeaderMap::new();
            for v in xff {
                h.append("x-forwarded-for", v.parse().expect("header"));
            }
            h
        };
        let claimed = with(&["198.51.100.1, 203.0.113.5", "127.0.0.2"]);
        assert_eq!(
            client_address(proxy, &claimed, &trusted),
            "203.0.113.5".parse::<IpAddr>().expect("ip"),
            "right-most untrusted hop, not what the client claims"
        );
        assert_eq!(
            client_address(proxy, &claimed, &[]),
            proxy,
            "no proxies trusted"
        );
        let outsider: IpAddr = "192.0.2.9".parse().expect("ip");
        assert_eq!(client_address(outsider, &claimed, &trusted), outsider);
        assert_eq!(client_address(proxy, &with(&["junk"]), &trusted), proxy);
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn failures_spread_over_windows_never_lock_out() {
        let t0 = Instant::now();
        let mut f = FailedAuth::default();
        // At most MAX_FAILURES - 1 fall in any window started by a failure.
        let every = WINDOW / (MAX_FAILURES - 1) + Duration::from_millis(1);
        for i in 0..(MAX_FAILURES * 5) {
            let now = t0 + every * i;
            f.failed(ip(1), now);
            assert_eq!(f.refused(ip(1), now), None, "failure {i}");
        }
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_refusing_the_guesser() {
        let t0 = Instant::now();
        let mut f = FailedAuth::default();
        for _ in 0..MAX_FAILURES {
            f.failed(ip(0), t0);
        }
        // Many sources, each failing once, a moment later: the table never grows past its
        // bound; the locked-out source is evicted only as the oldest, never before.
        for n in 1..(MAX_SOURCES as u32) {
            f.failed(ip(n), t0 + Duration::from_millis(1));
        }
        assert_eq!(f.tracked(), MAX_SOURCES);
        assert!(f.refused(ip(0), t0).is_some());
        for n in 0..1000 {
            f.failed(ip(100_000 + n), t0 + Duration::from_millis(2));
            assert!(f.tracked() <= MAX_SOURCES);
        }
        // Once windows have ended, old entries make room first.
        let later = t0 + WINDOW + Duration::from_secs(1);
        f.failed(ip(999_999), later);
        assert_eq!(f.tracked(), 1);
    }
}
