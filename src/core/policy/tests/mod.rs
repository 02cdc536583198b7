//! Table tests of admission with a fake clock: `Now` values built from one anchor `Instant` and
//! a chosen wall time, moved on by hand; zones from jiff's bundled tzdb so DST cases do not
//! depend on the machine.

mod flood;
mod fraud;
mod hours;
mod layers;
mod minutes;
mod outbound;
mod windows;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use jiff::tz::TimeZoneDatabase;
use jiff::Timestamp;

use super::*;

pub(super) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A `Now` at wall time `wall`, with a fresh monotonic anchor.
pub(super) fn start(wall: &str) -> Now {
    Now {
        mono: Instant::now(),
        wall: ts(wall),
    }
}

pub(super) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub(super) fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter()
        .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

pub(super) fn prefixes(list: &[&str]) -> Option<Vec<E164Prefix>> {
    Some(
        list.iter()
            .map(|s| E164Prefix::parse(s).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
    )
}

pub(super) fn hours(start_min: u16, end_min: u16, tz: &str) -> Option<Option<Hours>> {
    Some(Some(Hours {
        start_min,
        end_min,
        tz: tz.to_string(),
    }))
}

pub(super) fn policy(
    global: PolicyConfig,
    trunks: Vec<TrunkLayer>,
    numbers: Vec<NumberLayer>,
) -> Policy {
    Policy::with_tz_db(global, trunks, numbers, &TimeZoneDatabase::bundled())
}

pub(super) fn only(global: PolicyConfig) -> Admission {
    Admission::new(policy(global, Vec::new(), Vec::new()))
}

pub(super) fn trunk(name: &str, cidrs: &[&str], p: PolicyConfig) -> TrunkLayer {
    TrunkLayer {
        name: name.to_string(),
        match_cidrs: nets(cidrs),
        require_headers: Vec::new(),
        policy: p,
    }
}

pub(super) fn number(did: Option<&str>, p: PolicyConfig) -> NumberLayer {
    NumberLayer {
        did: did.map(str::to_string),
        policy: p,
    }
}

pub(super) const NO_HEADERS: &[(String, String)] = &[];

/// An attempt from `source` by `caller` to `dialled`, no headers.
pub(super) fn call<'a>(
    source: &str,
    caller: Option<&'a str>,
    dialled: Option<&'a str>,
) -> Attempt<'a> {
    Attempt {
        source: ip(source),
        caller,
        dialled,
        headers: NO_HEADERS,
        user_agent: None,
    }
}

/// A plain attempt that every default policy admits.
pub(super) fn plain() -> Attempt<'static> {
    call("192.0.2.10", Some("+48600100200"), Some("+48123456789"))
}

#[track_caller]
pub(super) fn ticket(d: Decision) -> Ticket {
    match d {
        Decision::Admit(t) => t,
        other => panic!("expected Admit, got {other:?}"),
    }
}

/// `Ok(())` for Admit, else `(status, reason, retry_after)`; Drop is status 0.
pub(super) type Outcome = Result<(), (u16, &'static str, Option<u32>)>;

pub(super) fn outcome(d: &Decision) -> Outcome {
    match d {
        Decision::Admit(_) => Ok(()),
        Decision::Reject {
            status,
            reason,
            retry_after,
        } => Err((*status, reason.as_str(), *retry_after)),
        Decision::Drop { reason } => Err((0, reason.as_str(), None)),
    }
}

#[test]
fn reason_names_are_unique_snake_case() {
    let all = [
        RejectReason::SourceNotAllowed,
        RejectReason::MissingHeader { name: "X".into() },
        RejectReason::NoCallerNumber,
        RejectReason::CallerNotAllowed,
        RejectReason::CallerBlocked,
        RejectReason::OutsideHours,
        RejectReason::DailyMinutesUsed,
        RejectReason::HourlyLimit,
        RejectReason::DailyLimit,
        RejectReason::Busy,
        RejectReason::Flood,
        RejectReason::BlockedUserAgent,
    ];
    let mut names: Vec<&str> = all.iter().map(RejectReason::as_str).collect();
    assert!(names
        .iter()
        .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
}

#[test]
fn defaults_admit_anything_and_never_cut() {
    let mut adm = Admission::new(Policy::new(PolicyConfig::default(), Vec::new(), Vec::new()));
    let now = start("2026-06-01T12:00:00Z");
    for caller in [None, Some("anonymous"), Some("+48600"), Some("")] {
        let a = Attempt { caller, ..plain() };
        let t = ticket(adm.admit(&a, &now));
        assert_eq!(t.max_duration(), None);
        assert_eq!(t.scopes(), &[Scope::Global]);
    }
    assert_eq!(adm.next_deadline(), None);
    assert!(adm.calls_to_cut(&now.after(secs(1e6))).is_empty());
    assert!(adm.policy().unknown_zones().is_empty());
}

#[test]
fn unknown_zone_is_reported_and_read_as_utc() {
    let p = policy(
        PolicyConfig {
            hours: hours(480, 1200, "Mars/Olympus_Mons"),
            ..PolicyConfig::default()
        },
        Vec::new(),
        Vec::new(),
    );
    assert_eq!(p.unknown_zones(), ["Mars/Olympus_Mons".to_string()]);
    let mut adm = Admission::new(p);
    assert!(outcome(&adm.admit(&plain(), &start("2026-06-01T08:00:00Z"))).is_ok());
    assert_eq!(
        outcome(&adm.admit(&plain(), &start("2026-06-01T07:59:00Z"))),
        Err((480, "outside_hours", Some(60)))
    );
}
