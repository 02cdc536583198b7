//! Outbound admission scenarios on a virtual clock: each rule with its reason, status and
//! scope, the check order, trunk overrides, refusals that consume nothing, reload keeping the
//! counts, and the strict one-second window at its exact edges.

use super::*;

fn gate(global: OutboundPolicyConfig, trunks: &[(&str, OutboundPolicyConfig)]) -> OutboundGate {
    OutboundGate::new(compile(global, trunks))
}

fn compile(
    global: OutboundPolicyConfig,
    trunks: &[(&str, OutboundPolicyConfig)],
) -> OutboundPolicy {
    let trunks = trunks
        .iter()
        .map(|(name, p)| OutboundTrunkLayer {
            name: name.to_string(),
            policy: p.clone(),
        })
        .collect();
    OutboundPolicy::with_tz_db(global, trunks, &TimeZoneDatabase::bundled())
}

fn cps(n: u32) -> OutboundPolicyConfig {
    OutboundPolicyConfig {
        calls_per_second: Some(n),
        ..OutboundPolicyConfig::default()
    }
}

fn concurrent(n: u32) -> OutboundPolicyConfig {
    OutboundPolicyConfig {
        max_concurrent: Some(n),
        ..OutboundPolicyConfig::default()
    }
}

const NOON: &str = "2026-06-01T12:00:00Z";
const DEST: Option<&str> = Some("+48600100200");

/// `Ok(())` when admitted, else `(reason, scope, retry_after)`.
type Out = Result<(), (&'static str, String, Option<Duration>)>;

fn out(r: &Result<OutboundTicket, OutboundRefusal>) -> Out {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err((e.reason.as_str(), e.scope.to_string(), e.retry_after)),
    }
}

#[track_caller]
fn placed(r: Result<OutboundTicket, OutboundRefusal>) -> OutboundTicket {
    r.unwrap_or_else(|e| panic!("refused: {e:?}"))
}

fn refused(reason: &'static str, scope: &str, retry: Option<Duration>) -> Out {
    Err((reason, scope.to_string(), retry))
}

#[test]
fn reasons_have_stable_names_and_statuses() {
    let names: Vec<(&str, u16)> = OutboundReason::ALL
        .iter()
        .map(|r| (r.as_str(), r.http_status()))
        .collect();
    assert_eq!(
        names,
        [
            ("blocked_prefix", 403),
            ("prefix_not_allowed", 403),
            ("outside_hours", 403),
            ("max_concurrent", 429),
            ("rate_limited", 429),
        ]
    );
}

#[test]
fn defaults_admit_everything() {
    let mut g = gate(OutboundPolicyConfig::default(), &[]);
    let t = start(NOON);
    for dest in [DEST, None, Some("not a number")] {
        assert_eq!(out(&g.admit(&t, "any", dest)), Ok(()));
    }
    assert_eq!(g.running(), 3);
}

#[test]
fn prefixes_blocked_wins_then_allowed() {
    let p = OutboundPolicyConfig {
        allowed_prefixes: prefixes(&["+48", "+882"]),
        blocked_prefixes: prefixes(&["+882"]),
        ..OutboundPolicyConfig::default()
    };
    let mut g = gate(p, &[]);
    let t = start(NOON);
    let cases: &[(Option<&str>, Out)] = &[
        (Some("+48600100200"), Ok(())),
        (Some("0048 600-100-200"), Ok(())), // the one E.164 rule normalises it
        (Some("+88212345"), refused("blocked_prefix", "global", None)),
        (
            Some("+4930123"),
            refused("prefix_not_allowed", "global", None),
        ),
        // A SIP URI cannot be checked against an allowlist: refused, never waved through.
        (None, refused("prefix_not_allowed", "global", None)),
        (
            Some("garbage"),
            refused("prefix_not_allowed", "global", None),
        ),
    ];
    for (dest, want) in cases {
        assert_eq!(out(&g.admit(&t, "t", *dest)), *want, "{dest:?}");
    }
    // Blocked only: a URI is not blocked.
    let mut g = gate(
        OutboundPolicyConfig {
            blocked_prefixes: prefixes(&["+882"]),
            ..OutboundPolicyConfig::default()
        },
        &[],
    );
    assert_eq!(out(&g.admit(&t, "t", None)), Ok(()));
}

#[test]
fn hours_refuse_until_opening() {
    let p = OutboundPolicyConfig {
        hours: hours(8 * 60, 20 * 60, "Europe/Warsaw"),
        ..OutboundPolicyConfig::default()
    };
    let mut g = gate(p, &[]);
    // 12:00 UTC is 14:00 in Warsaw (CEST): open.
    assert_eq!(out(&g.admit(&start(NOON), "t", DEST)), Ok(()));
    // 19:30 UTC is 21:30 in Warsaw: closed until 06:00 UTC next day.
    let late = start("2026-06-01T19:30:00Z");
    let want = refused("outside_hours", "global", Some(secs(10.5 * 3600.0)));
    assert_eq!(out(&g.admit(&late, "t", DEST)), want);
    assert_eq!(g.running(), 1, "the refusal is not counted");
}

#[test]
fn concurrency_frees_on_end_and_refusals_take_no_slot() {
    let mut g = gate(concurrent(2), &[]);
    let t = start(NOON);
    let a = placed(g.admit(&t, "t", DEST));
    let _b = placed(g.admit(&t, "t", DEST));
    for _ in 0..3 {
        let want = refused("max_concurrent", "global", None);
        assert_eq!(out(&g.admit(&t, "t", DEST)), want);
    }
    assert_eq!(g.running_in(&Scope::Global), 2);
    g.ended(&a);
    g.ended(&a); // twice: harmless
    assert_eq!(g.running_in(&Scope::Global), 1);
    assert_eq!(out(&g.admit(&t, "t", DEST)), Ok(()));
    assert_eq!(
        out(&g.admit(&t, "t", DEST)),
        refused("max_concurrent", "global", None)
    );
}

#[test]
fn strict_second_window_edges() {
    let n = 5;
    let t = start(NOON);
    // Five calls spread over the first 400 ms, then probes: (ms after t, expected).
    let spread = [0.0, 0.1, 0.2, 0.3, 0.4];
    let cases: &[(f64, Out)] = &[
        (0.4, refused("rate_limited", "global", Some(secs(0.6)))),
        (0.999, refused("rate_limited", "global", Some(secs(0.001)))),
        (1.0, Ok(())), // the call at t has left: exactly 1 s later
    ];
    for (at, want) in cases {
        let mut g = gate(cps(n), &[]);
        for s in spread {
            placed(g.admit(&t.after(secs(s)), "t", DEST));
        }
        assert_eq!(out(&g.admit(&t.after(secs(*at)), "t", DEST)), *want, "{at}");
    }
    // Any sliding second holds at most n: after the slot at t+1.0, the next frees at t+1.1.
    let mut g = gate(cps(n), &[]);
    for s in spread {
        placed(g.admit(&t.after(secs(s)), "t", DEST));
    }
    placed(g.admit(&t.after(secs(1.0)), "t", DEST));
    let want = refused("rate_limited", "global", Some(secs(0.05)));
    assert_eq!(out(&g.admit(&t.after(secs(1.05)), "t", DEST)), want);
    assert_eq!(out(&g.admit(&t.after(secs(1.1)), "t", DEST)), Ok(()));
}

#[test]
fn rate_refusals_do_not_consume_and_ended_calls_still_count() {
    let mut g = gate(cps(2), &[]);
    let t = start(NOON);
    let a = placed(g.admit(&t, "t", DEST));
    placed(g.admit(&t, "t", DEST));
    g.ended(&a); // a rate counts admissions, not running calls
    for ms in [0.0, 0.5, 0.9] {
        let r = g.admit(&t.after(secs(ms)), "t", DEST);
        assert_eq!(out(&r).err().map(|e| e.0), Some("rate_limited"));
    }
    // Refused attempts left no stamps: both slots free exactly at t+1.
    let t1 = t.after(secs(1.0));
    placed(g.admit(&t1, "t", DEST));
    placed(g.admit(&t1, "t", DEST));
}

#[test]
fn checks_run_in_order() {
    let p = OutboundPolicyConfig {
        blocked_prefixes: prefixes(&["+882"]),
        allowed_prefixes: prefixes(&["+48"]),
        hours: hours(8 * 60, 20 * 60, "UTC"),
        max_concurrent: Some(1),
        calls_per_second: Some(1),
    };
    let mut g = gate(p, &[]);
    let (day, night) = (start(NOON), start("2026-06-01T22:00:00Z"));
    placed(g.admit(&day, "t", DEST));
    let reason = |g: &mut OutboundGate, now: &Now, d: &str| {
        out(&g.admit(now, "t", Some(d))).err().map(|e| e.0)
    };
    assert_eq!(reason(&mut g, &night, "+88212"), Some("blocked_prefix"));
    assert_eq!(reason(&mut g, &night, "+4930"), Some("prefix_not_allowed"));
    assert_eq!(reason(&mut g, &night, "+48600"), Some("outside_hours"));
    assert_eq!(reason(&mut g, &day, "+48600"), Some("max_concurrent"));
    let mut g = gate(
        OutboundPolicyConfig {
            max_concurrent: Some(2),
            calls_per_second: Some(1),
            ..OutboundPolicyConfig::default()
        },
        &[],
    );
    placed(g.admit(&day, "t", DEST));
    assert_eq!(reason(&mut g, &day, "+48600"), Some("rate_limited"));
}

#[test]
fn trunk_overrides_key_by_key_with_its_own_counts() {
    let global = OutboundPolicyConfig {
        max_concurrent: Some(3),
        allowed_prefixes: prefixes(&["+48"]),
        ..OutboundPolicyConfig::default()
    };
    let big = OutboundPolicyConfig {
        max_concurrent: Some(1),
        allowed_prefixes: prefixes(&[]), // clears the global allowlist for this trunk
        ..OutboundPolicyConfig::default()
    };
    let mut g = gate(
        global,
        &[("big", big), ("plain", OutboundPolicyConfig::default())],
    );
    let t = start(NOON);
    // Prefixes: "big" allows all, "plain" inherits the global +48 only.
    placed(g.admit(&t, "big", Some("+4930123")));
    assert_eq!(
        out(&g.admit(&t, "plain", Some("+4930123"))),
        refused("prefix_not_allowed", "global", None)
    );
    // Concurrency: "big" is held to its own 1...
    assert_eq!(
        out(&g.admit(&t, "big", DEST)),
        refused("max_concurrent", "trunk:big", None)
    );
    // ...while the others are checked against 3 counting every call, "big"'s included.
    placed(g.admit(&t, "plain", DEST));
    placed(g.admit(&t, "unknown-trunk", DEST));
    assert_eq!(
        out(&g.admit(&t, "plain", DEST)),
        refused("max_concurrent", "global", None)
    );
    assert_eq!(g.running_in(&Scope::Trunk("big".into())), 1);
    assert_eq!(g.running_in(&Scope::Trunk("plain".into())), 1);
    assert_eq!(g.running_in(&Scope::Global), 3);
}

#[test]
fn trunk_rate_limit_is_its_own_window() {
    let mut g = gate(cps(3), &[("slow", cps(1))]);
    let t = start(NOON);
    placed(g.admit(&t, "slow", DEST));
    let want = refused("rate_limited", "trunk:slow", Some(secs(1.0)));
    assert_eq!(out(&g.admit(&t.after(secs(0.0)), "slow", DEST)), want);
    // The trunk's call counts in the global second too: two more fit, not three.
    placed(g.admit(&t, "other", DEST));
    placed(g.admit(&t, "other", DEST));
    let want = refused("rate_limited", "global", Some(secs(1.0)));
    assert_eq!(out(&g.admit(&t, "other", DEST)), want);
}

#[test]
fn reload_keeps_running_calls_and_recent_admissions() {
    let mut g = gate(
        OutboundPolicyConfig::default(),
        &[("t", OutboundPolicyConfig::default())],
    );
    let t = start(NOON);
    let calls: Vec<OutboundTicket> = (0..3).map(|_| placed(g.admit(&t, "t", DEST))).collect();
    // A limit set by the reload sees the calls already running and placed this second.
    g.set_policy(compile(
        OutboundPolicyConfig::default(),
        &[(
            "t",
            OutboundPolicyConfig {
                max_concurrent: Some(3),
                calls_per_second: Some(3),
                ..OutboundPolicyConfig::default()
            },
        )],
    ));
    let t2 = t.after(secs(0.5));
    assert_eq!(
        out(&g.admit(&t2, "t", DEST)),
        refused("max_concurrent", "trunk:t", None)
    );
    g.ended(&calls[0]);
    assert_eq!(
        out(&g.admit(&t2, "t", DEST)),
        refused("rate_limited", "trunk:t", Some(secs(0.5)))
    );
    placed(g.admit(&t.after(secs(1.0)), "t", DEST));
    // A trunk dropped by a reload still frees its calls when they end.
    g.set_policy(compile(OutboundPolicyConfig::default(), &[]));
    for c in &calls {
        g.ended(c);
    }
    assert_eq!(g.running_in(&Scope::Trunk("t".into())), 1);
    assert_eq!(g.running(), 1);
}

#[test]
fn trunk_clears_global_hours_and_unknown_zones_are_reported() {
    let global = OutboundPolicyConfig {
        hours: hours(8 * 60, 20 * 60, "UTC"),
        ..OutboundPolicyConfig::default()
    };
    let always = OutboundPolicyConfig {
        hours: Some(None),
        ..OutboundPolicyConfig::default()
    };
    let odd = OutboundPolicyConfig {
        hours: hours(8 * 60, 20 * 60, "Mars/Olympus"),
        ..OutboundPolicyConfig::default()
    };
    let p = compile(global, &[("always", always), ("odd", odd)]);
    assert_eq!(p.unknown_zones(), ["Mars/Olympus".to_string()]);
    let mut g = OutboundGate::new(p);
    let night = start("2026-06-01T22:00:00Z");
    assert_eq!(out(&g.admit(&night, "always", DEST)), Ok(()));
    let r = out(&g.admit(&night, "other", DEST));
    assert_eq!(
        r.err().map(|e| (e.0, e.1)),
        Some(("outside_hours", "global".into()))
    );
    let r = out(&g.admit(&night, "odd", DEST));
    assert_eq!(
        r.err().map(|e| (e.0, e.1)),
        Some(("outside_hours", "trunk:odd".into()))
    );
}
