//! Outbound admission ("phone security" for the calls we place): whether `POST /v1/calls` may
//! dial a destination through a trunk now, decided before anything is sent.
//!
//! Owns: destination E.164 prefixes (blocked, then allowed), hours of operation, concurrency
//! and the strict calls-per-second window, per scope (`global`, `trunk:<name>`), and keeping
//! the counts across a policy swap. Reuses the inbound pieces: [`Now`], [`Scope`], the hours
//! window and zone lookup, the sliding [`Window`] and the one E.164 rule. Must not read the
//! clock, do IO, import `config`, or hold anything for a refused attempt.
//!
//! # Layers and scopes (the inbound rule, two layers)
//!
//! A trunk's `outbound_policy` key overrides the global one; the layer that set the value in
//! force is the key's scope. A placed call is COUNTED in the global scope and in its trunk's
//! (running calls, and admissions in the last second); each limit is CHECKED against the
//! counter of its scope in force only. So global `max_concurrent = 100` with a trunk's `30`:
//! that trunk's calls are held to 30 of its own, the other trunks' calls to 100 counting all.
//!
//! # Order
//!
//! blocked prefix (403) → not in allowed prefixes (403; a SIP-URI destination is "not in" a
//! non-empty list: it cannot be checked) → outside hours (403, `retry_after` until opening) →
//! `max_concurrent` (429) → `calls_per_second` (429, `retry_after` until the window admits).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZoneDatabase;

use super::compiled::{compile_window, system_tz_dbs};
use super::counters::Window;
use super::hours::Window as Hours;
use super::settings::{E164Prefix, OutboundPolicyConfig};
use super::{Now, Scope};
use crate::core::number::E164;

const SECOND: Duration = Duration::from_secs(1);
/// Admissions remembered per scope whose own layer sets no rate: enough that a reload which
/// sets one (up to this) is strict from its first second.
const UNLIMITED_MEMORY: u32 = 10_000;

/// A trunk's outbound layer, as the gate sees it; the lead maps `[[trunk]]` into this.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundTrunkLayer {
    pub name: String,
    /// Overrides only (`None` → inherit the global value).
    pub policy: OutboundPolicyConfig,
}

#[derive(Debug)]
struct Layer {
    scope: Scope,
    cfg: OutboundPolicyConfig,
    /// As `cfg.hours`, zone resolved.
    hours: Option<Option<Hours>>,
}

/// The outbound policy, compiled (zones resolved). Immutable; a reload builds a new one.
#[derive(Debug)]
pub struct OutboundPolicy {
    global: Layer,
    trunks: HashMap<Arc<str>, Layer>,
    unknown_zones: Vec<String>,
}

impl OutboundPolicy {
    /// Zones are looked up in the system tzdb, then in jiff's bundled copy.
    pub fn new(global: OutboundPolicyConfig, trunks: Vec<OutboundTrunkLayer>) -> Self {
        Self::build(global, trunks, &system_tz_dbs())
    }

    /// As [`OutboundPolicy::new`] with zones from `db` only (tests).
    pub fn with_tz_db(
        global: OutboundPolicyConfig,
        trunks: Vec<OutboundTrunkLayer>,
        db: &TimeZoneDatabase,
    ) -> Self {
        Self::build(global, trunks, std::slice::from_ref(db))
    }

    fn build(
        global: OutboundPolicyConfig,
        trunks: Vec<OutboundTrunkLayer>,
        dbs: &[TimeZoneDatabase],
    ) -> Self {
        let mut unknown = Vec::new();
        let mut layer = |scope: Scope, cfg: OutboundPolicyConfig| Layer {
            hours: cfg
                .hours
                .as_ref()
                .map(|h| h.as_ref().map(|h| compile_window(h, dbs, &mut unknown))),
            scope,
            cfg,
        };
        // Guarantee every global key is set, whatever the caller passed.
        let global = layer(
            Scope::Global,
            OutboundPolicyConfig::defaults().merged(&global),
        );
        let mut by_name = HashMap::new();
        for t in trunks {
            let name: Arc<str> = Arc::from(t.name.as_str());
            // Names are unique once validated; the first one wins otherwise.
            if let std::collections::hash_map::Entry::Vacant(slot) = by_name.entry(name) {
                let scope = Scope::Trunk(slot.key().clone());
                slot.insert(layer(scope, t.policy));
            }
        }
        unknown.sort();
        unknown.dedup();
        OutboundPolicy {
            global,
            trunks: by_name,
            unknown_zones: unknown,
        }
    }

    /// The global layer's settings (every key set).
    pub fn global(&self) -> &OutboundPolicyConfig {
        &self.global.cfg
    }

    /// Zone names no database knew; their hours are read in UTC. Log these after a (re)load.
    pub fn unknown_zones(&self) -> &[String] {
        &self.unknown_zones
    }

    /// The value in force for a key and the scope whose layer set it.
    fn pick<'p, T: ?Sized>(
        &'p self,
        trunk: Option<&'p Layer>,
        key: impl Fn(&'p Layer) -> Option<&'p T>,
    ) -> Option<(&'p T, &'p Scope)> {
        trunk
            .into_iter()
            .chain(std::iter::once(&self.global))
            .find_map(|l| key(l).map(|v| (v, &l.scope)))
    }
}

/// Why a call was not placed; [`OutboundReason::as_str`] is stable for records and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboundReason {
    BlockedPrefix,
    PrefixNotAllowed,
    OutsideHours,
    MaxConcurrent,
    RateLimited,
}

impl OutboundReason {
    pub const ALL: [OutboundReason; 5] = [
        OutboundReason::BlockedPrefix,
        OutboundReason::PrefixNotAllowed,
        OutboundReason::OutsideHours,
        OutboundReason::MaxConcurrent,
        OutboundReason::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboundReason::BlockedPrefix => "blocked_prefix",
            OutboundReason::PrefixNotAllowed => "prefix_not_allowed",
            OutboundReason::OutsideHours => "outside_hours",
            OutboundReason::MaxConcurrent => "max_concurrent",
            OutboundReason::RateLimited => "rate_limited",
        }
    }

    /// The API's answer: 403 for what retrying soon cannot change, 429 for load.
    pub fn http_status(self) -> u16 {
        match self {
            OutboundReason::BlockedPrefix
            | OutboundReason::PrefixNotAllowed
            | OutboundReason::OutsideHours => 403,
            OutboundReason::MaxConcurrent | OutboundReason::RateLimited => 429,
        }
    }
}

impl std::fmt::Display for OutboundReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused attempt: nothing was counted for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRefusal {
    pub reason: OutboundReason,
    /// `rate_limited`: exactly when the window admits again (Retry-After, rounded up);
    /// `outside_hours`: until the window opens; otherwise `None`.
    pub retry_after: Option<Duration>,
    /// The layer whose value refused it: [`Scope::Global`] or [`Scope::Trunk`].
    pub scope: Scope,
}

/// A placed call: hand it back to [`OutboundGate::ended`] when the call ends (any outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundTicket {
    id: u64,
    /// `None` when the trunk has no layer in the policy (counted globally only).
    trunk: Option<Arc<str>>,
}

impl OutboundTicket {
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The counters of the scope that set a key: the trunk's only if its own layer did.
fn counts_of<'c>(
    scope: &Scope,
    global: &'c mut Counts,
    trunk: &'c mut Option<(Arc<str>, &mut Counts)>,
) -> &'c mut Counts {
    match (scope, trunk) {
        (Scope::Trunk(_), Some((_, c))) => c,
        _ => global,
    }
}

#[derive(Debug, Default)]
struct Counts {
    running: u32,
    /// Admissions in the last second.
    recent: Window,
}

/// Outbound admission state: the policy plus counts that survive [`OutboundGate::set_policy`].
#[derive(Debug)]
pub struct OutboundGate {
    policy: OutboundPolicy,
    global: Counts,
    /// By trunk name; kept when a reload drops the trunk (its calls still run).
    trunks: HashMap<Arc<str>, Counts>,
    /// Running tickets: `ended` twice (or with a foreign ticket) changes nothing.
    running: HashMap<u64, Option<Arc<str>>>,
    next_id: u64,
}

impl OutboundGate {
    pub fn new(policy: OutboundPolicy) -> Self {
        OutboundGate {
            policy,
            global: Counts::default(),
            trunks: HashMap::new(),
            running: HashMap::new(),
            next_id: 1,
        }
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Live reload: running calls and the last second's admissions are kept, per scope name.
    pub fn set_policy(&mut self, policy: OutboundPolicy) {
        self.policy = policy;
    }

    /// Whether a call to `destination` (normalised E.164; `None` for a SIP URI) may be placed
    /// through `trunk` at `now`; an admitted call counts until [`OutboundGate::ended`].
    pub fn admit(
        &mut self,
        now: &Now,
        trunk: &str,
        destination: Option<&str>,
    ) -> Result<OutboundTicket, OutboundRefusal> {
        let OutboundGate {
            policy,
            global,
            trunks,
            running,
            next_id,
        } = self;
        let (name, layer) = match policy.trunks.get_key_value(trunk) {
            Some((name, layer)) => (Some(name.clone()), Some(layer)),
            None => (None, None),
        };
        let refuse = |reason, retry_after, scope: &Scope| OutboundRefusal {
            reason,
            retry_after,
            scope: scope.clone(),
        };
        let dest = destination.and_then(E164::parse);
        let dest = dest.as_ref().map(E164::as_str);
        let matches = |list: &[E164Prefix]| dest.is_some_and(|d| list.iter().any(|p| p.matches(d)));

        if let Some((list, scope)) = policy.pick(layer, |l| l.cfg.blocked_prefixes.as_deref()) {
            if matches(list) {
                return Err(refuse(OutboundReason::BlockedPrefix, None, scope));
            }
        }
        if let Some((list, scope)) = policy.pick(layer, |l| l.cfg.allowed_prefixes.as_deref()) {
            if !list.is_empty() && !matches(list) {
                return Err(refuse(OutboundReason::PrefixNotAllowed, None, scope));
            }
        }
        if let Some((Some(w), scope)) = policy.pick(layer, |l| l.hours.as_ref()) {
            if !w.contains(now.wall) {
                let retry = w
                    .next_opening(now.wall)
                    .and_then(|t| Duration::try_from(now.wall.duration_until(t)).ok());
                return Err(refuse(OutboundReason::OutsideHours, retry, scope));
            }
        }
        let mut trunk_counts = name.map(|n| (n.clone(), trunks.entry(n).or_default()));
        if let Some((&n, scope)) = policy.pick(layer, |l| l.cfg.max_concurrent.as_ref()) {
            if n > 0 && counts_of(scope, global, &mut trunk_counts).running >= n {
                return Err(refuse(OutboundReason::MaxConcurrent, None, scope));
            }
        }
        if let Some((&n, scope)) = policy.pick(layer, |l| l.cfg.calls_per_second.as_ref()) {
            let counts = counts_of(scope, global, &mut trunk_counts);
            if let Some(wait) = (n > 0)
                .then(|| counts.recent.wait(now.mono, SECOND, n))
                .flatten()
            {
                return Err(refuse(OutboundReason::RateLimited, Some(wait), scope));
            }
        }

        // Admitted: counted in every scope it passes through.
        let memory = |cfg: &OutboundPolicyConfig| match cfg.calls_per_second {
            Some(n) if n > 0 => n,
            _ => UNLIMITED_MEMORY,
        };
        global.running = global.running.saturating_add(1);
        global
            .recent
            .record(now.mono, SECOND, memory(&policy.global.cfg));
        if let (Some((_, c)), Some(l)) = (trunk_counts.as_mut(), layer) {
            c.running = c.running.saturating_add(1);
            c.recent.record(now.mono, SECOND, memory(&l.cfg));
        }
        let id = *next_id;
        *next_id += 1;
        let trunk = trunk_counts.map(|(n, _)| n);
        running.insert(id, trunk.clone());
        Ok(OutboundTicket { id, trunk })
    }

    /// The call of `ticket` ended (answered or not); its concurrency slots are freed.
    pub fn ended(&mut self, ticket: &OutboundTicket) {
        let Some(trunk) = self.running.remove(&ticket.id) else {
            return;
        };
        self.global.running = self.global.running.saturating_sub(1);
        if let Some(c) = trunk.and_then(|n| self.trunks.get_mut(&n)) {
            c.running = c.running.saturating_sub(1);
        }
    }

    /// Calls placed and not yet ended.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Running calls counted in `scope` (0 for a scope never seen).
    pub fn running_in(&self, scope: &Scope) -> u32 {
        match scope {
            Scope::Global => self.global.running,
            Scope::Trunk(name) => self.trunks.get(name).map_or(0, |c| c.running),
            Scope::Number(_) => 0,
        }
    }
}
