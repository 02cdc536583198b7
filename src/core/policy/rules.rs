//! The stateless admission rules, in order: source CIDR → trunk `require_headers` → caller
//! prefixes → hours. They depend on the policy and the attempt only, so they run before any
//! counter is touched.
//!
//! Owns the status codes of these refusals (403, or a silent drop for the source check with
//! `reject_action = "drop"`; 480 with Retry-After outside hours). Must not count anything:
//! the stateful rules (minutes, windows, concurrency) are `Admission`'s.

use std::net::IpAddr;

use super::compiled::Chain;
use super::hours::retry_secs;
use super::settings::RejectAction;
use super::{Attempt, Decision, Now, RejectReason};

pub(crate) fn reject(status: u16, reason: RejectReason, retry_after: Option<u32>) -> Decision {
    Decision::Reject {
        status,
        reason,
        retry_after,
    }
}

/// The first stateless rule the attempt fails, if any. `source` is canonical (IPv4-mapped
/// IPv6 as IPv4) and `caller` normalised E.164 or absent.
pub(crate) fn static_rules(
    chain: &Chain<'_>,
    a: &Attempt,
    source: IpAddr,
    caller: Option<&str>,
    now: &Now,
) -> Option<Decision> {
    // 0. User-Agent blocklist in force for this call (a trunk or number list replaces the
    //    global one for its calls; the global list also runs on every request, before parsing).
    if let (Some(ua), Some((list, _))) = (
        a.user_agent,
        chain.pick(|l| l.cfg.user_agent_blocklist.as_ref()),
    ) {
        if super::blocked_user_agent(ua, list) {
            return Some(Decision::Drop {
                reason: RejectReason::BlockedUserAgent,
            });
        }
    }
    // 1. Source allowlist (empty → any).
    if let Some((cidrs, _)) = chain.pick(|l| l.cfg.allow_cidrs.as_ref()) {
        if !cidrs.is_empty() && !cidrs.iter().any(|n| n.contains(&source)) {
            let reason = RejectReason::SourceNotAllowed;
            return Some(match chain.pick(|l| l.cfg.reject_action.as_ref()) {
                Some((RejectAction::Drop, _)) => Decision::Drop { reason },
                _ => reject(403, reason, None),
            });
        }
    }
    // 2. Trunk headers: present with exactly that value (any one instance), names
    //    case-insensitive; surrounding whitespace is not part of a header value.
    if let Some(trunk) = chain.trunk() {
        for (name, value) in &trunk.require_headers {
            let present = a
                .headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim() == value);
            if !present {
                let reason = RejectReason::MissingHeader { name: name.clone() };
                return Some(reject(403, reason, None));
            }
        }
    }
    // 3. Caller prefixes: blocked wins over allowed.
    if let (Some(c), Some((blocked, _))) = (caller, chain.pick(|l| l.cfg.blocked_prefixes.as_ref()))
    {
        if blocked.iter().any(|p| p.matches(c)) {
            return Some(reject(403, RejectReason::CallerBlocked, None));
        }
    }
    if let Some((allowed, _)) = chain.pick(|l| l.cfg.allowed_prefixes.as_ref()) {
        if !allowed.is_empty() {
            match caller {
                None => return Some(reject(403, RejectReason::NoCallerNumber, None)),
                Some(c) if !allowed.iter().any(|p| p.matches(c)) => {
                    return Some(reject(403, RejectReason::CallerNotAllowed, None))
                }
                Some(_) => {}
            }
        }
    }
    // 4. Hours.
    if let Some((Some(w), _)) = chain.pick(|l| l.hours.as_ref()) {
        if !w.contains(now.wall) {
            let retry = w.next_opening(now.wall).map(|t| retry_secs(now.wall, t));
            return Some(reject(480, RejectReason::OutsideHours, retry));
        }
    }
    None
}
