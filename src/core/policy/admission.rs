//! `Admission`: the counters of every scope plus the running calls, and the decision for each
//! attempt (rule order and scope rule: see the module header in `mod.rs`).
//!
//! Owns: counting attempts/admissions/minutes per scope, cutting calls over their caps, fraud
//! alert episodes, and keeping all of it across a policy swap. Must not read the clock, do IO
//! or hold anything per rejected attempt except fraud-window timestamps (bounded).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;

use crate::core::number::E164;

use super::compiled::Layer;
use super::compiled::{Chain, LayerRef, Policy};
use super::counters::Window;
use super::counters::{rel_ns, ScopeState, DAY, HOUR};
use super::hours::{next_day_start, retry_secs};
use super::rules::{reject, static_rules};
use super::settings::PolicyConfig;
use super::CutReason;
use super::{Attempt, Decision, FraudAlertEvent, Now, RejectReason, Scope, Ticket, TicketId};

/// Alerts waiting for `poll_alert`; one per episode and scope, so this only fills if the
/// caller never polls.
const MAX_QUEUED_ALERTS: usize = 1024;

/// A running call.
#[derive(Debug)]
struct Running {
    /// Scope indices: global, trunk, number.
    path: [Option<usize>; 3],
    admitted: Instant,
    /// The per-call cap in force (non-zero).
    call_cap: Option<Duration>,
    /// The scope whose daily minutes cap is in force, and that cap in minutes (> 0).
    minutes: Option<(usize, u32)>,
    /// Already returned by `calls_to_cut`.
    cut: bool,
}

/// Admission state: survives policy swaps (counters are keyed by scope name).
#[derive(Debug)]
pub struct Admission {
    policy: Policy,
    scopes: Vec<ScopeState>,
    index: HashMap<Scope, usize>,
    /// Scope index of each layer of the current policy.
    global_idx: usize,
    trunk_idx: Vec<usize>,
    number_idx: Vec<usize>,
    /// The current policy's layer for each scope index (`None`: no longer configured).
    layer_of: Vec<Option<LayerRef>>,
    running: HashMap<TicketId, Running>,
    next_id: u64,
    /// Origin of the ns sums; the first `now` seen.
    epoch: Option<Instant>,
    alerts: VecDeque<FraudAlertEvent>,
    /// Per-source INVITE limits of number layers that set `flood_per_source`, by layer index.
    number_floods: HashMap<usize, super::FloodGuard>,
}

impl Admission {
    pub fn new(policy: Policy) -> Self {
        let mut adm = Admission {
            policy,
            scopes: Vec::new(),
            index: HashMap::new(),
            global_idx: 0,
            trunk_idx: Vec::new(),
            number_idx: Vec::new(),
            layer_of: Vec::new(),
            running: HashMap::new(),
            next_id: 1,
            epoch: None,
            alerts: VecDeque::new(),
            number_floods: HashMap::new(),
        };
        adm.bind();
        adm
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Live reload: counters, windows and running calls are kept; running calls take the new
    /// per-call and daily caps (which may make `calls_to_cut` return them).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
        self.number_floods.clear();
        self.bind();
        self.scopes.iter_mut().for_each(ScopeState::recheck_day);
        let Admission {
            policy,
            layer_of,
            running,
            ..
        } = self;
        for r in running.values_mut() {
            // The lowest layer on the call's path that sets the key, in the new policy.
            let in_force = |key: fn(&PolicyConfig) -> Option<u64>| {
                r.path.iter().rev().flatten().find_map(|&s| {
                    let layer = layer_of.get(s).copied().flatten()?;
                    Some((s, key(&policy.layer(layer)?.cfg)?))
                })
            };
            r.call_cap = in_force(|c| {
                c.max_call_duration
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            })
            .and_then(|(_, ns)| (ns > 0).then(|| Duration::from_nanos(ns)));
            r.minutes = in_force(|c| c.daily_minutes_cap.map(u64::from))
                .and_then(|(s, cap)| Some((s, u32::try_from(cap).ok().filter(|c| *c > 0)?)));
        }
    }

    /// Maps the current policy's layers to scope indices, creating scopes met for the first
    /// time. Scopes no longer configured keep their counters (running calls still count there,
    /// and a layer added back finds them).
    fn bind(&mut self) {
        let mut refs = Vec::new();
        for (r, layer) in self.policy.layers() {
            let next = self.scopes.len();
            let idx = *self.index.entry(layer.scope.clone()).or_insert(next);
            if idx == next {
                self.scopes.push(ScopeState::new(layer.scope.clone()));
            }
            refs.push((r, idx));
        }
        self.layer_of = vec![None; self.scopes.len()];
        self.trunk_idx.clear();
        self.number_idx.clear();
        for (r, idx) in refs {
            if let Some(slot) = self.layer_of.get_mut(idx) {
                // The first layer with a scope name owns it (names are unique once validated).
                slot.get_or_insert(r);
            }
            match r {
                LayerRef::Global => self.global_idx = idx,
                LayerRef::Trunk(_) => self.trunk_idx.push(idx),
                LayerRef::Number(_) => self.number_idx.push(idx),
            }
        }
    }

    /// The decision for one attempt, evaluated before any webhook or media work. Admitted
    /// calls are counted until [`Admission::call_ended`].
    pub fn admit(&mut self, a: &Attempt, now: &Now) -> Decision {
        let epoch = *self.epoch.get_or_insert(now.mono);
        let source = a.source.to_canonical();
        let caller = a.caller.and_then(E164::parse);
        let dialled = a.dialled.and_then(E164::parse);
        let Admission {
            policy,
            scopes,
            global_idx,
            trunk_idx,
            number_idx,
            layer_of,
            running,
            next_id,
            alerts,
            number_floods,
            ..
        } = self;
        let chain = Chain {
            policy,
            trunk: policy.trunk_for(source),
            number: policy.number_for(dialled.as_ref().map(E164::as_str)),
        };
        let path: [Option<(LayerRef, usize)>; 3] = [
            Some((LayerRef::Global, *global_idx)),
            chain
                .trunk
                .and_then(|i| Some((LayerRef::Trunk(i), *trunk_idx.get(i)?))),
            chain
                .number
                .and_then(|i| Some((LayerRef::Number(i), *number_idx.get(i)?))),
        ];
        let scope_of = |r: LayerRef| path.iter().flatten().find(|(l, _)| *l == r).map(|p| p.1);
        let zone_of = |s: usize| -> TimeZone {
            layer_of
                .get(s)
                .copied()
                .flatten()
                .and_then(|r| policy.layer(r))
                .map_or(TimeZone::UTC, |l| l.day_zone.clone())
        };
        let mut books = Books {
            scopes: &mut *scopes,
            running: &*running,
            epoch,
        };

        // Fraud watch: every attempt that reaches a layer with an alert, admitted or not.
        for (r, s) in path.iter().flatten() {
            let Some(fa) = policy.layer(*r).and_then(|l| l.cfg.fraud_alert.as_ref()) else {
                continue;
            };
            if fa.calls == 0 || fa.within.is_zero() {
                continue;
            }
            let Some(st) = books.scopes.get_mut(*s) else {
                continue;
            };
            // The attempt is counted first, whether or not the alert goes anywhere.
            let fired = st.attempt(now.mono, fa.within, fa.calls);
            if fired && (fa.url.is_some() || !fa.email.is_empty()) {
                if alerts.len() >= MAX_QUEUED_ALERTS {
                    alerts.pop_front();
                }
                alerts.push_back(FraudAlertEvent {
                    scope: st.scope.clone(),
                    url: fa.url.clone(),
                    email: fa.email.clone(),
                    calls: fa.calls.saturating_add(1),
                    within_s: fa.within.as_secs(),
                    threshold: fa.calls,
                });
            }
        }

        let caller = caller.as_ref().map(E164::as_str);
        if let Some(d) = static_rules(&chain, a, source, caller, now) {
            return d;
        }
        // A number's own per-source limit on calls to it (INVITEs only: other requests are
        // not addressed to a number; the global and trunk limits cover them).
        if let Some(i) = chain.number {
            let flood = policy
                .layer(LayerRef::Number(i))
                .and_then(|l| l.cfg.flood_per_source);
            if let Some(flood) = flood.filter(|f| f.burst > 0) {
                let guard = number_floods
                    .entry(i)
                    .or_insert_with(|| super::FloodGuard::new(flood, now.mono));
                if !guard.check(source, now.mono) {
                    return Decision::Drop {
                        reason: RejectReason::Flood,
                    };
                }
            }
        }
        // 5. Daily minutes.
        let mut minutes = None;
        if let Some((&cap, r)) = chain.pick(|l| l.cfg.daily_minutes_cap.as_ref()) {
            if let (true, Some(s)) = (cap > 0, scope_of(r)) {
                let zone = zone_of(s);
                books.roll(s, now, &zone);
                let left = cap_ns(cap) - books.used_ns(s, now.mono);
                if left <= 0 {
                    let retry = next_day_start(&zone, now.wall).map(|t| retry_secs(now.wall, t));
                    return reject(480, RejectReason::DailyMinutesUsed, retry);
                }
                minutes = Some((s, cap, left));
            }
        }
        // 6, 7. Strict sliding windows (admissions only).
        type Pick = for<'l> fn(&'l Layer) -> Option<&'l u32>;
        type Slot = fn(&mut ScopeState) -> &mut Window;
        let windows: [(Pick, Slot, Duration, RejectReason); 2] = [
            (
                |l| l.cfg.max_calls_per_hour.as_ref(),
                |st| &mut st.per_hour,
                HOUR,
                RejectReason::HourlyLimit,
            ),
            (
                |l| l.cfg.max_calls_per_day.as_ref(),
                |st| &mut st.per_day,
                DAY,
                RejectReason::DailyLimit,
            ),
        ];
        for (key, slot, width, reason) in windows {
            let Some((&n, r)) = chain.pick(key).filter(|(n, _)| **n > 0) else {
                continue;
            };
            let Some(st) = scope_of(r).and_then(|s| books.scopes.get_mut(s)) else {
                continue;
            };
            if let Err(retry) = slot(st).check(now.mono, width, n) {
                return reject(503, reason, Some(retry));
            }
        }
        // 8. Concurrency.
        if let Some((&n, r)) = chain.pick(|l| l.cfg.max_concurrent.as_ref()) {
            let busy = scope_of(r)
                .and_then(|s| books.scopes.get(s))
                .is_some_and(|st| n > 0 && st.running >= n);
            if busy {
                return reject(486, RejectReason::Busy, None);
            }
        }

        // Admitted: count it in every scope on its path.
        let mut ticket_scopes = Vec::with_capacity(3);
        for (r, s) in path.iter().flatten() {
            books.roll(*s, now, &zone_of(*s));
            let own = policy.layer(*r).map(|l| &l.cfg);
            let Some(st) = books.scopes.get_mut(*s) else {
                continue;
            };
            st.running = st.running.saturating_add(1);
            st.start_sum += rel_ns(epoch, st.minutes_start(now.mono));
            if let Some(&n) = own.and_then(|c| c.max_calls_per_hour.as_ref()) {
                if n > 0 {
                    st.per_hour.record(now.mono, HOUR, n);
                }
            }
            if let Some(&n) = own.and_then(|c| c.max_calls_per_day.as_ref()) {
                if n > 0 {
                    st.per_day.record(now.mono, DAY, n);
                }
            }
            ticket_scopes.push(st.scope.clone());
        }
        let call_cap = chain
            .pick(|l| l.cfg.max_call_duration.as_ref())
            .map(|(d, _)| *d)
            .filter(|d| !d.is_zero());
        let left = minutes
            .map(|(_, _, left)| Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX)));
        let max_duration = match (call_cap, left) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let id = TicketId(*next_id);
        *next_id += 1;
        running.insert(
            id,
            Running {
                path: path.map(|p| p.map(|(_, s)| s)),
                admitted: now.mono,
                call_cap,
                minutes: minutes.map(|(s, cap, _)| (s, cap)),
                cut: false,
            },
        );
        Decision::Admit(Ticket {
            id,
            scopes: ticket_scopes,
            max_duration,
        })
    }

    /// Releases the call's concurrency slots and adds its minutes. Unknown or already ended
    /// tickets are ignored.
    pub fn call_ended(&mut self, ticket: &Ticket, now: &Now) {
        let (Some(epoch), Some(r)) = (self.epoch, self.running.get(&ticket.id)) else {
            return;
        };
        let (path, admitted) = (r.path, r.admitted);
        for s in path.iter().flatten() {
            let zone = self.zone_of(*s);
            self.books(epoch).roll(*s, now, &zone);
        }
        self.running.remove(&ticket.id);
        for s in path.iter().flatten() {
            let Some(st) = self.scopes.get_mut(*s) else {
                continue;
            };
            let start = st.minutes_start(admitted);
            st.closed = st
                .closed
                .saturating_add(now.mono.saturating_duration_since(start));
            st.running = st.running.saturating_sub(1);
            st.start_sum -= rel_ns(epoch, start);
        }
    }

    /// Running calls that reached their per-call cap or whose daily-minutes scope is used up;
    /// each is returned once (end it, then call `call_ended`).
    pub fn calls_to_cut(&mut self, now: &Now) -> Vec<TicketId> {
        self.calls_to_cut_why(now)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// As [`Admission::calls_to_cut`], with why each call is cut (the per-call cap wins when
    /// both apply).
    pub fn calls_to_cut_why(&mut self, now: &Now) -> Vec<(TicketId, CutReason)> {
        let Some(epoch) = self.epoch else {
            return Vec::new();
        };
        let mut targets: Vec<usize> = self
            .running
            .values()
            .filter(|r| !r.cut)
            .filter_map(|r| r.minutes.map(|m| m.0))
            .collect();
        targets.sort_unstable();
        targets.dedup();
        for s in targets {
            let zone = self.zone_of(s);
            self.books(epoch).roll(s, now, &zone);
        }
        let mut out = Vec::new();
        for (id, r) in self.running.iter_mut().filter(|(_, r)| !r.cut) {
            let over_cap = r
                .call_cap
                .is_some_and(|c| now.mono.saturating_duration_since(r.admitted) >= c);
            let over_minutes = r.minutes.is_some_and(|(s, cap)| {
                self.scopes
                    .get(s)
                    .is_some_and(|st| st.used_ns(now.mono, epoch) >= cap_ns(cap))
            });
            if over_cap || over_minutes {
                r.cut = true;
                let why = if over_cap {
                    CutReason::CallDuration
                } else {
                    CutReason::DailyMinutes
                };
                out.push((*id, why));
            }
        }
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }

    /// When `calls_to_cut` could next return something (may be in the past: call it then).
    pub fn next_deadline(&self) -> Option<Instant> {
        let epoch = self.epoch?;
        self.running
            .values()
            .filter(|r| !r.cut)
            .flat_map(|r| {
                let cap = r.call_cap.and_then(|c| r.admitted.checked_add(c));
                let minutes = r
                    .minutes
                    .and_then(|(s, cap)| self.scopes.get(s)?.exhausted_at(cap_ns(cap), epoch));
                [cap, minutes]
            })
            .flatten()
            .min()
    }

    /// The next fraud alert to POST, once per episode and scope.
    pub fn poll_alert(&mut self) -> Option<FraudAlertEvent> {
        self.alerts.pop_front()
    }

    /// Calls admitted and not yet ended.
    pub fn running_calls(&self) -> usize {
        self.running.len()
    }

    /// Running calls counted in `scope` (0 for a scope never seen).
    pub fn running_in(&self, scope: &Scope) -> u32 {
        self.index
            .get(scope)
            .and_then(|&s| self.scopes.get(s))
            .map_or(0, |st| st.running)
    }

    fn zone_of(&self, s: usize) -> TimeZone {
        self.layer_of
            .get(s)
            .copied()
            .flatten()
            .and_then(|r| self.policy.layer(r))
            .map_or(TimeZone::UTC, |l| l.day_zone.clone())
    }

    fn books(&mut self, epoch: Instant) -> Books<'_> {
        Books {
            scopes: &mut self.scopes,
            running: &self.running,
            epoch,
        }
    }
}

/// The scopes together with the running calls, for day rolls that must re-sum minutes.
struct Books<'a> {
    scopes: &'a mut Vec<ScopeState>,
    running: &'a HashMap<TicketId, Running>,
    epoch: Instant,
}

impl Books<'_> {
    fn roll(&mut self, s: usize, now: &Now, zone: &TimeZone) {
        let Some(st) = self.scopes.get_mut(s) else {
            return;
        };
        if st.roll(now, zone) && st.running > 0 {
            let epoch = self.epoch;
            let st = &*st;
            let sum = self
                .running
                .values()
                .filter(|r| r.path.contains(&Some(s)))
                .map(|r| rel_ns(epoch, st.minutes_start(r.admitted)))
                .sum();
            if let Some(st) = self.scopes.get_mut(s) {
                st.start_sum = sum;
            }
        }
    }

    fn used_ns(&self, s: usize, now: Instant) -> i128 {
        self.scopes
            .get(s)
            .map_or(0, |st| st.used_ns(now, self.epoch))
    }
}

fn cap_ns(minutes: u32) -> i128 {
    i128::from(minutes) * 60 * 1_000_000_000
}
