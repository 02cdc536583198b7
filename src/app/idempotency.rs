//! `Idempotency-Key` for placing calls (PROTOCOLS.md §3): the same key within [`TTL`] returns
//! the first call's [`Dialed`] (with `replayed: true`) and never dials twice — also for two
//! concurrent identical requests, because the lock is held across check-and-dial (placing a
//! call is synchronous and quick: the call rings in its own task). The same key with a
//! different request is [`DialError::KeyReused`]; a dial that failed is not remembered, so a
//! retry may succeed.
//!
//! Owns: the remembered keys (at most `max`, expired ones swept on every keyed dial) and the
//! fingerprint that tells "the same request" from "another one".
//! Must not: read a clock (callers pass `now`, tests a virtual one), check the key's syntax
//! (the API does), or place calls itself (it runs the `place` it is given).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::dial::{DialError, DialRequest, Dialed};

/// How long a key is remembered.
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// Most keys remembered at once (about 40 MB at the longest keys).
pub const MAX_KEYS: usize = 100_000;

/// A request's identity for key reuse: SHA-256 of the validated request, key included (it is
/// equal for every request it is compared with).
pub type Fingerprint = [u8; 32];

pub fn fingerprint(req: &DialRequest) -> Fingerprint {
    // Every field of the validated request, in a form that is stable within the process.
    Sha256::digest(format!("{req:?}").as_bytes()).into()
}

/// The remembered keys.
pub struct Keys {
    ttl: Duration,
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, Entry>,
    /// Keys in the order they were stored (= the order they expire in).
    order: VecDeque<(Instant, String)>,
}

struct Entry {
    at: Instant,
    fingerprint: Fingerprint,
    dialed: Dialed,
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new(TTL, MAX_KEYS)
    }
}

impl Keys {
    pub fn new(ttl: Duration, max: usize) -> Keys {
        Keys {
            ttl,
            max,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Runs `place` unless `key` was used within the TTL: then the first call is returned
    /// (`replayed: true`), or [`DialError::KeyReused`] if the request differs. When `max` keys
    /// are remembered and none has expired, a new key is refused ([`DialError::Busy`]) rather
    /// than forgetting one early (which could dial a call twice).
    pub fn dial_once(
        &self,
        key: &str,
        fingerprint: Fingerprint,
        now: Instant,
        place: impl FnOnce() -> Result<Dialed, DialError>,
    ) -> Result<Dialed, DialError> {
        let mut inner = self.lock();
        inner.sweep(now, self.ttl);
        if let Some(first) = inner.by_key.get(key) {
            if first.fingerprint != fingerprint {
                return Err(DialError::KeyReused);
            }
            return Ok(Dialed {
                replayed: true,
                ..first.dialed.clone()
            });
        }
        if inner.by_key.len() >= self.max {
            return Err(DialError::Busy(format!(
                "{} idempotency keys are remembered (the most there may be); retry later or \
                 without Idempotency-Key",
                self.max
            )));
        }
        let dialed = place()?;
        inner.order.push_back((now, key.to_string()));
        let entry = Entry {
            at: now,
            fingerprint,
            dialed: dialed.clone(),
        };
        inner.by_key.insert(key.to_string(), entry);
        Ok(dialed)
    }

    /// Keys remembered now (expired ones may still count until the next keyed dial).
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in `place` poisons the lock; what it guards stays consistent (the entry is
        // inserted after `place` returns), so the data is used as is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Forgets every key stored at least `ttl` before `now`.
    fn sweep(&mut self, now: Instant, ttl: Duration) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < ttl {
                break;
            }
            if let Some((at, key)) = self.order.pop_front() {
                if self.by_key.get(&key).is_some_and(|e| e.at == at) {
                    self.by_key.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "idempotency_tests.rs"]
mod tests;
