//! Strict sliding windows at their exact edges: N means at most N admissions in ANY rolling
//! 3600 s / 86400 s, only admissions count, Retry-After is when the blocking entry leaves.

use super::*;

fn per_hour(n: u32) -> Admission {
    only(PolicyConfig {
        max_calls_per_hour: Some(n),
        ..PolicyConfig::default()
    })
}

#[test]
fn hour_window_edges() {
    // (seconds after t, expected) — three calls were admitted at exactly t.
    let cases: &[(f64, Outcome)] = &[
        (0.0, Err((503, "hourly_limit", Some(3600)))),
        (1800.0, Err((503, "hourly_limit", Some(1800)))),
        (3599.0, Err((503, "hourly_limit", Some(1)))),
        (3599.999, Err((503, "hourly_limit", Some(1)))),
        (3600.0, Ok(())),
    ];
    for (after, want) in cases {
        let mut adm = per_hour(3);
        let t = start("2026-06-01T12:00:00Z");
        for _ in 0..3 {
            ticket(adm.admit(&plain(), &t));
        }
        let d = adm.admit(&plain(), &t.after(secs(*after)));
        assert_eq!(outcome(&d), *want, "at t+{after}");
    }
}

#[test]
fn spread_admissions_leave_one_by_one() {
    let mut adm = per_hour(3);
    let t = start("2026-06-01T12:00:00Z");
    for s in [0.0, 100.0, 200.0] {
        ticket(adm.admit(&plain(), &t.after(secs(s))));
    }
    let steps: &[(f64, Outcome)] = &[
        (3599.5, Err((503, "hourly_limit", Some(1)))),
        (3600.0, Ok(())), // t+0 left; now 100, 200, 3600
        (3650.0, Err((503, "hourly_limit", Some(50)))),
        (3700.0, Ok(())), // t+100 left; now 200, 3600, 3700
        (3700.0, Err((503, "hourly_limit", Some(100)))),
    ];
    for (at, want) in steps {
        assert_eq!(
            outcome(&adm.admit(&plain(), &t.after(secs(*at)))),
            *want,
            "at t+{at}"
        );
    }
}

#[test]
fn only_admitted_calls_count() {
    let mut adm = per_hour(2);
    let t = start("2026-06-01T12:00:00Z");
    ticket(adm.admit(&plain(), &t));
    ticket(adm.admit(&plain(), &t));
    // A steady stream of rejected attempts does not push the window out.
    for s in (10..3600).step_by(10) {
        let d = adm.admit(&plain(), &t.after(secs(f64::from(s))));
        assert_eq!(outcome(&d).err().map(|e| e.1), Some("hourly_limit"));
    }
    let t2 = t.after(secs(3600.0));
    ticket(adm.admit(&plain(), &t2));
    ticket(adm.admit(&plain(), &t2));
    assert!(outcome(&adm.admit(&plain(), &t2)).is_err());
}

#[test]
fn day_window_edges() {
    let mut adm = only(PolicyConfig {
        max_calls_per_day: Some(2),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T12:00:00Z");
    ticket(adm.admit(&plain(), &t));
    ticket(adm.admit(&plain(), &t.after(secs(43_200.0))));
    let steps: &[(f64, Outcome)] = &[
        (50_000.0, Err((503, "daily_limit", Some(36_400)))),
        (86_399.5, Err((503, "daily_limit", Some(1)))),
        (86_400.0, Ok(())),
        (86_400.0, Err((503, "daily_limit", Some(43_200)))),
    ];
    for (at, want) in steps {
        assert_eq!(
            outcome(&adm.admit(&plain(), &t.after(secs(*at)))),
            *want,
            "at t+{at}"
        );
    }
}

#[test]
fn hour_and_day_windows_together() {
    let mut adm = only(PolicyConfig {
        max_calls_per_hour: Some(10),
        max_calls_per_day: Some(3),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T12:00:00Z");
    for _ in 0..3 {
        ticket(adm.admit(&plain(), &t));
    }
    assert_eq!(
        outcome(&adm.admit(&plain(), &t.after(secs(3600.0)))),
        Err((503, "daily_limit", Some(82_800)))
    );
}
