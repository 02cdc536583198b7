//! Stateless nonces and the `nc` replay table. A nonce is the hex of: issue time (u64
//! nanoseconds since the registrar's epoch `Instant`, big-endian), the caller's 16 random
//! bytes, and the first 16 bytes of HMAC-SHA256 over both with the registrar's key — so any
//! nonce we issued can be checked without having stored it. Only nonces answered with the
//! right password enter the table (issue time, random → last `nc`); it is capped, entries go
//! when their nonce expires, and when a live one must be evicted the highest evicted issue
//! time is remembered: an older nonce missing from the table is then treated as stale (the
//! client retries with a fresh nonce, a replay is never accepted).
//! Must not: read clocks or draw random numbers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ring::hmac;

use super::digest::{ct_eq, hex};

const MAC_CONTEXT: &[u8] = b"trunkgate registrar nonce v1";
const MAC_LEN: usize = 16;
/// Time, random bytes, MAC.
const RAW_LEN: usize = 8 + 16 + MAC_LEN;

/// A verified nonce: when we issued it and its random part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Issued {
    at: u64,
    random: [u8; 16],
}

pub(super) struct Nonces {
    key: hmac::Key,
    epoch: Instant,
    lifetime: u64,
    cap: usize,
    used: BTreeMap<Issued, u32>,
    evicted_upto: Option<u64>,
}

impl Nonces {
    pub(super) fn new(key: &[u8; 32], epoch: Instant, lifetime: Duration, cap: usize) -> Nonces {
        Nonces {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            epoch,
            lifetime: nanos(lifetime),
            cap: cap.max(1),
            used: BTreeMap::new(),
            evicted_upto: None,
        }
    }

    fn since_epoch(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }

    fn mac(&self, at: u64, random: &[u8; 16]) -> [u8; MAC_LEN] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(MAC_CONTEXT);
        ctx.update(&at.to_be_bytes());
        ctx.update(random);
        let tag = ctx.sign();
        let mut out = [0u8; MAC_LEN];
        for (o, t) in out.iter_mut().zip(tag.as_ref()) {
            *o = *t;
        }
        out
    }

    pub(super) fn mint(&self, now: Instant, random: [u8; 16]) -> String {
        let at = self.since_epoch(now);
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.extend_from_slice(&at.to_be_bytes());
        raw.extend_from_slice(&random);
        raw.extend_from_slice(&self.mac(at, &random));
        hex(&raw)
    }

    /// `Some` for a nonce we issued (at or before `now`), expired or not.
    pub(super) fn verify(&self, text: &str, now: Instant) -> Option<Issued> {
        let raw = unhex::<RAW_LEN>(text)?;
        let (at, rest) = raw.split_at(8);
        let (random, mac) = rest.split_at(16);
        let at = u64::from_be_bytes(at.try_into().ok()?);
        let random: [u8; 16] = random.try_into().ok()?;
        if !ct_eq(&self.mac(at, &random), mac) || at > self.since_epoch(now) {
            return None;
        }
        Some(Issued { at, random })
    }

    /// Too old, or possibly used before and evicted from the table.
    pub(super) fn is_stale(&self, n: &Issued, now: Instant) -> bool {
        let age = self.since_epoch(now).saturating_sub(n.at);
        age > self.lifetime
            || (self.evicted_upto.is_some_and(|e| n.at <= e) && !self.used.contains_key(n))
    }

    /// Records `nc` for the nonce; `false` (a replay) when it is not above the last one.
    pub(super) fn advance(&mut self, n: Issued, nc: u32, now: Instant) -> bool {
        self.prune(now);
        match self.used.get_mut(&n) {
            Some(last) if nc <= *last => return false,
            Some(last) => *last = nc,
            None => {
                while self.used.len() >= self.cap {
                    let Some((old, _)) = self.used.pop_first() else {
                        break;
                    };
                    self.evicted_upto = Some(self.evicted_upto.unwrap_or(0).max(old.at));
                }
                self.used.insert(n, nc);
            }
        }
        true
    }

    /// Forgets the expired nonces (they are refused as stale by their age anyway).
    pub(super) fn prune(&mut self, now: Instant) {
        let now = self.since_epoch(now);
        while let Some((first, _)) = self.used.first_key_value() {
            if now.saturating_sub(first.at) <= self.lifetime {
                break;
            }
            self.used.pop_first();
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.used.len()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Exactly `N` bytes of hex (either case), else `None`.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let hi = digit(*pair.first()?)?;
        let lo = digit(*pair.get(1)?)?;
        *o = (hi << 4) | lo;
    }
    Some(out)
}
