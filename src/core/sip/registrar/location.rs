//! The bindings store (RFC 3261 §10.3 steps 6–8): per user, the registered contacts with the
//! source they registered from, their expiry, and the Call-ID/CSeq that last set them.
//! A request's changes (add, refresh, remove, or `*` remove-all) are checked against the
//! stored Call-ID/CSeq and the per-user cap first and then applied all at once, or not at all.
//! An expired binding is invisible to [`Location::live`] at once and dropped by
//! [`Location::expire`]. Contacts are compared by URI text, ignoring ASCII case.
//! Must not: read clocks, authenticate, or parse Contact headers (`contact.rs` does).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::contact::Want;
use super::Why;
use crate::core::sip::message::Message;

/// One registered contact of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI as registered (without `<>` or header parameters).
    pub uri: String,
    /// Where the REGISTER came from (where a phone behind NAT is reached).
    pub source: SocketAddr,
    /// The binding is gone from this instant on.
    pub expires: Instant,
    pub call_id: String,
    pub cseq: u32,
}

impl Binding {
    pub fn is_live(&self, now: Instant) -> bool {
        self.expires > now
    }

    /// Seconds left, rounded up (0 once expired).
    pub fn remaining_secs(&self, now: Instant) -> u64 {
        let left = self.expires.saturating_duration_since(now);
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }

    /// `<uri>;expires=N`, a Contact value for the 200 response.
    pub fn header_value(&self, now: Instant) -> String {
        format!("<{}>;expires={}", self.uri, self.remaining_secs(now))
    }

    /// Would a request with this Call-ID and CSeq be out of order for this binding?
    fn out_of_order(&self, call_id: &str, cseq: u32) -> bool {
        self.call_id == call_id && cseq <= self.cseq
    }
}

/// The bindings of every user that has any.
#[derive(Debug, Default)]
pub(super) struct Location {
    by_user: HashMap<String, Vec<Binding>>,
}

impl Location {
    /// Bindings stored, expired ones not yet dropped included.
    pub(super) fn len(&self) -> usize {
        self.by_user.values().map(Vec::len).sum()
    }

    /// The unexpired bindings of `user`, in registration order.
    pub(super) fn live(&self, user: &str, now: Instant) -> Vec<Binding> {
        self.by_user
            .get(user)
            .map(|v| v.iter().filter(|b| b.is_live(now)).cloned().collect())
            .unwrap_or_default()
    }

    /// Drops the expired bindings (and users left without any).
    pub(super) fn expire(&mut self, now: Instant) {
        self.by_user.retain(|_, v| {
            v.retain(|b| b.is_live(now));
            !v.is_empty()
        });
    }

    /// The earliest expiry of any stored binding.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.by_user.values().flatten().map(|b| b.expires).min()
    }

    /// Keeps the bindings `keep(user, binding)` accepts.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&str, &Binding) -> bool) {
        self.by_user.retain(|name, v| {
            v.retain(|b| keep(name, b));
            !v.is_empty()
        });
    }

    /// `Contact: *` with `Expires: 0`: removes every binding of `user`, unless one of them was
    /// set by this Call-ID with a CSeq not below the request's ([`Why::OutOfOrder`], nothing
    /// removed).
    pub(super) fn remove_all(
        &mut self,
        user: &str,
        req: &Message,
        now: Instant,
    ) -> Result<(), Why> {
        let (call_id, cseq) = (req.call_id(), req.cseq().seq);
        if let Some(v) = self.by_user.get(user) {
            if v.iter()
                .any(|b| b.is_live(now) && b.out_of_order(call_id, cseq))
            {
                return Err(Why::OutOfOrder);
            }
        }
        self.by_user.remove(user);
        Ok(())
    }

    /// Adds, refreshes (new expiry, source, Call-ID and CSeq) or removes (`expires` 0) each
    /// wanted contact of `user`. All or nothing: [`Why::OutOfOrder`] when an existing binding
    /// was set by this Call-ID with a CSeq not below the request's, [`Why::TooManyContacts`]
    /// when more than `max` bindings would remain. A contact given twice: the later wins.
    pub(super) fn apply(
        &mut self,
        user: &str,
        wanted: &[Want],
        req: &Message,
        source: SocketAddr,
        now: Instant,
        max: usize,
    ) -> Result<(), Why> {
        let (call_id, cseq) = (req.call_id(), req.cseq().seq);
        // (binding, set by this request)
        let mut next: Vec<(Binding, bool)> = self
            .live(user, now)
            .into_iter()
            .map(|b| (b, false))
            .collect();
        for want in wanted {
            let found = next
                .iter()
                .position(|(b, _)| b.uri.eq_ignore_ascii_case(&want.uri));
            if let Some((b, false)) = found.and_then(|i| next.get(i)) {
                if b.out_of_order(call_id, cseq) {
                    return Err(Why::OutOfOrder);
                }
            }
            let binding = Binding {
                uri: want.uri.clone(),
                source,
                expires: deadline(now, want.expires),
                call_id: call_id.to_owned(),
                cseq,
            };
            match (found, want.expires) {
                (Some(i), 0) => {
                    next.remove(i);
                }
                (Some(i), _) => {
                    if let Some(slot) = next.get_mut(i) {
                        *slot = (binding, true);
                    }
                }
                (None, 0) => {}
                (None, _) => next.push((binding, true)),
            }
        }
        if next.len() > max {
            return Err(Why::TooManyContacts);
        }
        if next.is_empty() {
            self.by_user.remove(user);
        } else {
            let bindings = next.into_iter().map(|(b, _)| b).collect();
            self.by_user.insert(user.to_owned(), bindings);
        }
        Ok(())
    }
}

/// `now` plus `secs` seconds. The fallback (an `Instant` past its range, which `u32`
/// seconds cannot reach on supported platforms) is a binding that is already expired.
fn deadline(now: Instant, secs: u32) -> Instant {
    now.checked_add(Duration::from_secs(u64::from(secs)))
        .unwrap_or(now)
}
