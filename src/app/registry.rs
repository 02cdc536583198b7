//! The call registry: every call's id → its control inbox (while it runs) and its latest
//! [`CallView`]; ended calls stay visible for `[api] call_retention` and, beyond that, are
//! bounded in count (the oldest ended call goes first).
//!
//! Owns: who can be reached by id, retention and eviction. Behind [`CallStore`] so another
//! backend (Redis, for a cluster) can stand in; [`MemoryStore`] is the one in a process.
//! Must not: await or do I/O while holding its lock (a call task updates it on every status
//! change, 500 new calls a second), read the clock inside the store (the [`Registry`] passes
//! `now`, so retention is tested without waiting), or decide anything about a call.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::registry_pack::{self, Loc, Packed};
use super::CallMsg;
use crate::core::call::{CallId, CallView, Command};

/// A running call's inbox: the channel its task already reads SIP events from, so a command
/// costs the call's select loop no extra branch.
pub type Inbox = UnboundedSender<CallMsg>;

/// At most this many ended calls are kept, whatever the retention (about 20 MB of packed
/// views).
pub const MAX_ENDED: usize = 20_000;

/// Which calls a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    /// Still running (queued, ringing, in progress).
    Active,
    /// Ended, whatever their final status, while retained.
    Ended,
    All,
}

/// Why a command did not reach a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no such call")]
    NotFound,
    #[error("the call has ended")]
    Ended,
}

/// Where calls are kept. Every method gets `now` from the [`Registry`].
pub trait CallStore: Send + Sync {
    /// A call admitted with this id: reachable through `inbox` until [`CallStore::ended`].
    fn insert(&self, now: Instant, id: CallId, inbox: Inbox, view: CallView);
    /// The call's view changed (ringing, answered). Ignored once the call has ended.
    fn update(&self, now: Instant, id: &CallId, view: CallView);
    /// The call ended with `view`; its inbox is dropped and its retention starts.
    fn ended(&self, now: Instant, id: &CallId, view: CallView);
    /// The call's latest view, if it is running or retained.
    fn get(&self, now: Instant, id: &CallId) -> Option<CallView>;
    /// Up to `limit` calls, newest (by start) first.
    fn list(&self, now: Instant, filter: ListFilter, limit: usize) -> Vec<CallView>;
    /// Hands `cmd` to the running call.
    fn send(&self, now: Instant, id: &CallId, cmd: Command) -> Result<(), SendError>;
}

/// The registry the call tasks and the control API share.
pub struct Registry {
    store: Box<dyn CallStore>,
}

impl Registry {
    /// In this process's memory: ended calls kept for `retention`, at most `max_ended`.
    pub fn in_memory(retention: Duration, max_ended: usize) -> Registry {
        Registry::with_store(Box::new(MemoryStore::new(retention, max_ended)))
    }

    pub fn with_store(store: Box<dyn CallStore>) -> Registry {
        Registry { store }
    }

    pub fn insert(&self, id: CallId, inbox: Inbox, view: CallView) {
        self.store.insert(Instant::now(), id, inbox, view);
    }

    pub fn update(&self, id: &CallId, view: CallView) {
        self.store.update(Instant::now(), id, view);
    }

    pub fn ended(&self, id: &CallId, view: CallView) {
        self.store.ended(Instant::now(), id, view);
    }

    pub fn get(&self, id: &CallId) -> Option<CallView> {
        self.store.get(Instant::now(), id)
    }

    pub fn list(&self, filter: ListFilter, limit: usize) -> Vec<CallView> {
        self.store.list(Instant::now(), filter, limit)
    }

    pub fn send(&self, id: &CallId, cmd: Command) -> Result<(), SendError> {
        self.store.send(Instant::now(), id, cmd)
    }
}

struct Entry {
    id: CallId,
    view: Held,
    inbox: Option<Inbox>,
}

/// A view as kept: a running call's as it is (updated on every status change), an ended
/// call's as JSON in the [`registry_pack`] chunks (see there for why).
enum Held {
    Live(Box<CallView>),
    Packed(Loc),
}

/// A view taken out under the lock, decoded after it.
enum Taken {
    View(Box<CallView>),
    Json(Vec<u8>),
}

impl Taken {
    fn view(self) -> Option<CallView> {
        match self {
            Taken::View(v) => Some(*v),
            Taken::Json(json) => registry_pack::unpack(&json),
        }
    }
}

/// Calls in memory, keyed by a start sequence number so lists come out in order without
/// sorting: running calls in one map, ended ones in another, and the ended ones' end times
/// in end order for expiry.
pub struct MemoryStore {
    retention: Duration,
    max_ended: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    index: HashMap<CallId, u64>,
    active: BTreeMap<u64, Entry>,
    ended: BTreeMap<u64, Entry>,
    /// (ended at, seq), oldest first; entries whose call is gone are skipped.
    expiry: VecDeque<(Instant, u64)>,
    packed: Packed,
}

impl MemoryStore {
    pub fn new(retention: Duration, max_ended: usize) -> MemoryStore {
        MemoryStore {
            retention,
            max_ended,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The lock, pruned of what has expired by `now`. A poisoned lock is still used: the
    /// maps stay consistent between statements (no method panics half-way on purpose).
    fn lock(&self, now: Instant) -> MutexGuard<'_, Inner> {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        inner.prune(now, self.retention, self.max_ended);
        inner
    }
}

impl Inner {
    fn prune(&mut self, now: Instant, retention: Duration, max_ended: usize) {
        while let Some(&(at, seq)) = self.expiry.front() {
            let expired = now.saturating_duration_since(at) >= retention;
            if !expired && self.ended.len() <= max_ended {
                break;
            }
            self.expiry.pop_front();
            if let Some(e) = self.ended.remove(&seq) {
                self.index.remove(&e.id);
                self.forget(&e.view);
            }
        }
    }

    fn forget(&mut self, held: &Held) {
        if let Held::Packed(loc) = held {
            self.packed.remove(*loc);
        }
    }

    /// `view`'s JSON kept in the chunks, or the view as it is if it could not be packed.
    fn hold(&mut self, view: CallView, json: Option<Vec<u8>>) -> Held {
        match json.and_then(|j| self.packed.put(&j)) {
            Some(loc) => Held::Packed(loc),
            None => Held::Live(Box::new(view)),
        }
    }

    fn take(&self, held: &Held) -> Option<Taken> {
        match held {
            Held::Live(v) => Some(Taken::View(v.clone())),
            Held::Packed(loc) => self.packed.get(*loc).map(|j| Taken::Json(j.to_vec())),
        }
    }

    fn entry_mut(&mut self, id: &CallId) -> Option<(&mut Entry, bool)> {
        let seq = *self.index.get(id)?;
        if let Some(e) = self.active.get_mut(&seq) {
            return Some((e, true));
        }
        self.ended.get_mut(&seq).map(|e| (e, false))
    }
}

impl CallStore for MemoryStore {
    fn insert(&self, now: Instant, id: CallId, inbox: Inbox, view: CallView) {
        let mut inner = self.lock(now);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        // An id minted twice (128 random bits: never, in practice) replaces the older call.
        if let Some(old) = inner.index.insert(id.clone(), seq) {
            inner.active.remove(&old);
            if let Some(e) = inner.ended.remove(&old) {
                inner.forget(&e.view);
            }
        }
        let entry = Entry {
            id,
            view: Held::Live(Box::new(view)),
            inbox: Some(inbox),
        };
        inner.active.insert(seq, entry);
    }

    fn update(&self, now: Instant, id: &CallId, view: CallView) {
        let mut inner = self.lock(now);
        if let Some((e, true)) = inner.entry_mut(id) {
            e.view = Held::Live(Box::new(view));
        }
    }

    fn ended(&self, now: Instant, id: &CallId, view: CallView) {
        // The JSON is built before the lock: the view is the caller's until then.
        let json = registry_pack::pack(&view);
        let mut inner = self.lock(now);
        let Some(&seq) = inner.index.get(id) else {
            return;
        };
        if let Some(mut e) = inner.active.remove(&seq) {
            e.view = inner.hold(view, json);
            e.inbox = None;
            inner.ended.insert(seq, e);
            inner.expiry.push_back((now, seq));
        } else if inner.ended.contains_key(&seq) {
            let held = inner.hold(view, json);
            if let Some(e) = inner.ended.get_mut(&seq) {
                let old = std::mem::replace(&mut e.view, held);
                inner.forget(&old);
            }
        }
        inner.prune(now, self.retention, self.max_ended);
    }

    fn get(&self, now: Instant, id: &CallId) -> Option<CallView> {
        let inner = self.lock(now);
        let seq = inner.index.get(id)?;
        let entry = inner.active.get(seq).or_else(|| inner.ended.get(seq))?;
        let taken = inner.take(&entry.view);
        drop(inner);
        taken.and_then(Taken::view)
    }

    fn list(&self, now: Instant, filter: ListFilter, limit: usize) -> Vec<CallView> {
        let inner = self.lock(now);
        let newest = |m: &BTreeMap<u64, Entry>| -> Vec<(u64, Taken)> {
            m.iter()
                .rev()
                .take(limit)
                .filter_map(|(seq, e)| Some((*seq, inner.take(&e.view)?)))
                .collect()
        };
        let mut out = match filter {
            ListFilter::Active => newest(&inner.active),
            ListFilter::Ended => newest(&inner.ended),
            ListFilter::All => {
                let mut both = newest(&inner.active);
                both.extend(newest(&inner.ended));
                both
            }
        };
        drop(inner);
        out.sort_unstable_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        out.truncate(limit);
        out.into_iter().filter_map(|(_, v)| v.view()).collect()
    }

    fn send(&self, now: Instant, id: &CallId, cmd: Command) -> Result<(), SendError> {
        let mut inner = self.lock(now);
        match inner.entry_mut(id) {
            None => Err(SendError::NotFound),
            Some((e, _)) => match &e.inbox {
                // A closed inbox: the task is finishing and will report `ended` shortly.
                Some(inbox) => inbox
                    .send(CallMsg::Command(cmd))
                    .map_err(|_| SendError::Ended),
                None => Err(SendError::Ended),
            },
        }
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
