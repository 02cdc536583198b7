//! Running calls: concurrency released by `call_ended`, per-call caps and the daily minutes cap
//! through `calls_to_cut` / `next_deadline`, calendar days in the hours' zone, and a policy
//! reload that keeps every counter.

use std::sync::Arc;

use super::*;

#[test]
fn concurrency_released_once_on_call_ended() {
    let mut adm = only(PolicyConfig {
        max_concurrent: Some(2),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T12:00:00Z");
    let a = ticket(adm.admit(&plain(), &t));
    let _b = ticket(adm.admit(&plain(), &t));
    assert_eq!(outcome(&adm.admit(&plain(), &t)), Err((486, "busy", None)));
    adm.call_ended(&a, &t.after(secs(5.0)));
    let _c = ticket(adm.admit(&plain(), &t.after(secs(5.0))));
    // Ending the same ticket twice must not free a second slot.
    adm.call_ended(&a, &t.after(secs(6.0)));
    assert_eq!(adm.running_calls(), 2);
    assert_eq!(
        outcome(&adm.admit(&plain(), &t.after(secs(6.0)))),
        Err((486, "busy", None))
    );
}

#[test]
fn per_call_cap_cut_once() {
    let mut adm = only(PolicyConfig {
        max_call_duration: Some(secs(60.0)),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T12:00:00Z");
    let a = ticket(adm.admit(&plain(), &t));
    let b = ticket(adm.admit(&plain(), &t.after(secs(10.0))));
    assert_eq!(a.max_duration(), Some(secs(60.0)));
    assert_eq!(adm.next_deadline(), Some(t.mono + secs(60.0)));
    assert!(adm.calls_to_cut(&t.after(secs(59.999))).is_empty());
    assert_eq!(adm.calls_to_cut(&t.after(secs(60.0))), vec![a.id()]);
    assert!(
        adm.calls_to_cut(&t.after(secs(61.0))).is_empty(),
        "reported once"
    );
    assert_eq!(adm.next_deadline(), Some(t.mono + secs(70.0)));
    assert_eq!(adm.calls_to_cut(&t.after(secs(75.0))), vec![b.id()]);
    assert_eq!(adm.next_deadline(), None);
    adm.call_ended(&a, &t.after(secs(76.0)));
    adm.call_ended(&b, &t.after(secs(76.0)));
    assert_eq!(adm.running_calls(), 0);
}

#[test]
fn daily_minutes_cap_cuts_then_rejects_until_midnight() {
    let mut adm = only(PolicyConfig {
        daily_minutes_cap: Some(2),
        max_call_duration: Some(secs(600.0)),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T12:00:00Z");
    let a = ticket(adm.admit(&plain(), &t));
    assert_eq!(
        a.max_duration(),
        Some(secs(120.0)),
        "the day's 2 min < 10 min cap"
    );
    adm.call_ended(&a, &t.after(secs(90.0)));
    let b = ticket(adm.admit(&plain(), &t.after(secs(100.0))));
    assert_eq!(b.max_duration(), Some(secs(30.0)));
    assert_eq!(adm.next_deadline(), Some(t.mono + secs(130.0)));
    assert!(adm.calls_to_cut(&t.after(secs(129.9))).is_empty());
    assert_eq!(adm.calls_to_cut(&t.after(secs(130.0))), vec![b.id()]);
    adm.call_ended(&b, &t.after(secs(131.0)));
    assert_eq!(
        outcome(&adm.admit(&plain(), &t.after(secs(140.0)))),
        Err((480, "daily_minutes_used", Some(43_060)))
    );
    // 2026-06-02T00:00:00Z: a new UTC day.
    let next_day = t.after(secs(12.0 * 3600.0));
    assert_eq!(
        ticket(adm.admit(&plain(), &next_day)).max_duration(),
        Some(secs(120.0))
    );
}

#[test]
fn concurrent_calls_share_the_rest_of_the_day() {
    let mut adm = only(PolicyConfig {
        daily_minutes_cap: Some(1),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T12:00:00Z");
    let a = ticket(adm.admit(&plain(), &t));
    let b = ticket(adm.admit(&plain(), &t.after(secs(10.0))));
    assert_eq!(b.max_duration(), Some(secs(50.0)));
    // 35 s + 25 s = the 60 s of the day.
    assert_eq!(adm.next_deadline(), Some(t.mono + secs(35.0)));
    assert!(adm.calls_to_cut(&t.after(secs(34.9))).is_empty());
    assert_eq!(adm.calls_to_cut(&t.after(secs(35.0))), vec![a.id(), b.id()]);
    assert_eq!(adm.next_deadline(), None);
}

#[test]
fn minutes_day_follows_the_hours_zone() {
    let mut adm = only(PolicyConfig {
        hours: hours(0, 0, "Europe/Warsaw"),
        daily_minutes_cap: Some(1),
        ..PolicyConfig::default()
    });
    let t = start("2026-03-10T22:00:00Z"); // 23:00 CET
    let a = ticket(adm.admit(&plain(), &t));
    adm.call_ended(&a, &t.after(secs(60.0)));
    assert_eq!(
        outcome(&adm.admit(&plain(), &t.after(secs(1800.0)))),
        Err((480, "daily_minutes_used", Some(1800)))
    );
    // 23:00Z is midnight in Warsaw though still 2026-03-10 in UTC.
    ticket(adm.admit(&plain(), &t.after(secs(3600.0))));
}

#[test]
fn running_call_over_midnight_starts_the_new_day_afresh() {
    let mut adm = only(PolicyConfig {
        daily_minutes_cap: Some(1),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T23:59:30Z");
    let a = ticket(adm.admit(&plain(), &t));
    assert_eq!(adm.next_deadline(), Some(t.mono + secs(60.0)));
    // At 00:00:30 only 30 s belong to the new day.
    assert!(adm.calls_to_cut(&t.after(secs(60.0))).is_empty());
    assert_eq!(adm.next_deadline(), Some(t.mono + secs(90.0)));
    assert_eq!(adm.calls_to_cut(&t.after(secs(90.0))), vec![a.id()]);
}

#[test]
fn reload_keeps_counters_and_running_calls() {
    let limits = |concurrent, per_hour| PolicyConfig {
        max_concurrent: Some(concurrent),
        max_calls_per_hour: Some(per_hour),
        ..PolicyConfig::default()
    };
    let mut adm = only(limits(2, 3));
    let t = start("2026-06-01T12:00:00Z");
    let a = ticket(adm.admit(&plain(), &t));
    ticket(adm.admit(&plain(), &t));
    assert_eq!(outcome(&adm.admit(&plain(), &t)), Err((486, "busy", None)));
    adm.set_policy(policy(limits(3, 4), Vec::new(), Vec::new()));
    ticket(adm.admit(&plain(), &t.after(secs(1.0))));
    assert_eq!(
        outcome(&adm.admit(&plain(), &t.after(secs(2.0)))),
        Err((486, "busy", None))
    );
    adm.set_policy(policy(limits(10, 3), Vec::new(), Vec::new()));
    assert_eq!(
        outcome(&adm.admit(&plain(), &t.after(secs(2.0)))),
        Err((503, "hourly_limit", Some(3598)))
    );
    adm.call_ended(&a, &t.after(secs(3.0)));
    assert_eq!(adm.running_calls(), 2);
}

#[test]
fn reload_applies_new_caps_to_running_calls() {
    let mut adm = only(PolicyConfig::default());
    let t = start("2026-06-01T12:00:00Z");
    let a = ticket(adm.admit(&plain(), &t));
    let b = ticket(adm.admit(&plain(), &t.after(secs(30.0))));
    adm.set_policy(policy(
        PolicyConfig {
            max_call_duration: Some(secs(40.0)),
            daily_minutes_cap: Some(10),
            ..PolicyConfig::default()
        },
        Vec::new(),
        Vec::new(),
    ));
    assert_eq!(adm.next_deadline(), Some(t.mono + secs(40.0)));
    assert_eq!(adm.calls_to_cut(&t.after(secs(45.0))), vec![a.id()]);
    assert_eq!(adm.next_deadline(), Some(t.mono + secs(70.0)));
    assert_eq!(adm.calls_to_cut(&t.after(secs(70.0))), vec![b.id()]);
}

#[test]
fn reload_dropping_a_trunk_still_releases_its_calls() {
    let carrier = Scope::Trunk(Arc::from("carrier"));
    let mut adm = Admission::new(policy(
        PolicyConfig::default(),
        vec![trunk(
            "carrier",
            &["198.51.100.0/24"],
            PolicyConfig {
                max_concurrent: Some(1),
                ..PolicyConfig::default()
            },
        )],
        Vec::new(),
    ));
    let t = start("2026-06-01T12:00:00Z");
    let a = ticket(adm.admit(&call("198.51.100.7", None, None), &t));
    adm.set_policy(policy(PolicyConfig::default(), Vec::new(), Vec::new()));
    assert_eq!(adm.running_in(&carrier), 1);
    adm.call_ended(&a, &t.after(secs(1.0)));
    assert_eq!(adm.running_in(&carrier), 0);
    assert_eq!(adm.running_in(&Scope::Global), 0);
    // Added back: its counter is the same one.
    adm.set_policy(policy(
        PolicyConfig::default(),
        vec![trunk(
            "carrier",
            &["198.51.100.0/24"],
            PolicyConfig {
                max_concurrent: Some(1),
                ..PolicyConfig::default()
            },
        )],
        Vec::new(),
    ));
    ticket(adm.admit(&call("198.51.100.7", None, None), &t.after(secs(2.0))));
    assert_eq!(
        outcome(&adm.admit(&call("198.51.100.7", None, None), &t.after(secs(2.0)))),
        Err((486, "busy", None))
    );
}
