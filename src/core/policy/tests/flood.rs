//! The flood guard with a driven clock: bursts, refill, /64 grouping, eviction; and the
//! scanner user-agent check.

use std::time::Instant;

use super::*;

fn guard(burst: u32, per_second: u32) -> (FloodGuard, Instant) {
    let t = Instant::now();
    (FloodGuard::new(Flood { burst, per_second }, t), t)
}

#[test]
fn burst_excess_dropped_other_source_admitted_refill() {
    let (g, t) = guard(5, 1);
    let a = ip("203.0.113.5");
    let results: Vec<bool> = (0..7).map(|_| g.check(a, t)).collect();
    assert_eq!(results, [true, true, true, true, true, false, false]);
    assert!(g.check(ip("203.0.113.6"), t));
    assert!(!g.check(a, t + secs(0.999)));
    assert!(g.check(a, t + secs(1.0)));
    assert!(!g.check(a, t + secs(1.0)));
    // A clock handed in late (out of order) does not move time back.
    assert!(!g.check(a, t));
    assert_eq!(g.len(), 2);
}

#[test]
fn ipv6_grouped_by_64() {
    let (g, t) = guard(2, 1);
    assert!(g.check(ip("2001:db8::1"), t));
    assert!(g.check(ip("2001:db8::ffff:1"), t));
    assert!(!g.check(ip("2001:db8::abcd"), t), "same /64");
    assert!(g.check(ip("2001:db8:0:1::1"), t), "next /64");
    assert_eq!(flood_key(ip("2001:db8::1:2:3:4")), ip("2001:db8::"));
    assert_eq!(flood_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    assert_eq!(flood_key(ip("192.0.2.1")), ip("192.0.2.1"));
    assert_eq!(g.len(), 2);
}

#[test]
fn eviction_forgets_refilled_sources_only() {
    let (mut g, t) = guard(5, 1);
    let v4 = |base: u32, i: u32| IpAddr::from(std::net::Ipv4Addr::from(base + i));
    for i in 0..1000 {
        assert!(g.check(v4(0x0a00_0000, i), t));
    }
    assert_eq!(g.len(), 1000);
    // One request costs 1 s of refill; governor forgets a key one interval after it is full.
    g.evict_idle(t + secs(1.5));
    assert_eq!(g.len(), 1000, "not idle long enough");
    for i in 0..10 {
        assert!(g.check(v4(0x0b00_0000, i), t + secs(1.5)));
    }
    g.evict_idle(t + secs(2.0));
    assert_eq!(g.len(), 10, "only the late sources stay");
    g.evict_idle(t + secs(3.5));
    assert!(g.is_empty());
    // A forgotten source starts with a full bucket again.
    assert!((0..5).all(|_| g.check(v4(0x0a00_0000, 0), t + secs(3.5))));
}

#[test]
fn burst_zero_is_off() {
    let (mut g, t) = guard(0, 20);
    assert!((0..1000).all(|_| g.check(ip("203.0.113.5"), t)));
    g.evict_idle(t);
    assert_eq!(g.len(), 0);
}

#[test]
fn reload_changes_quota() {
    let (mut g, t) = guard(1, 1);
    assert!(g.check(ip("203.0.113.5"), t));
    assert!(!g.check(ip("203.0.113.5"), t));
    g.set_flood(
        Flood {
            burst: 1,
            per_second: 1,
        },
        t,
    );
    assert!(
        !g.check(ip("203.0.113.5"), t),
        "unchanged quota keeps state"
    );
    g.set_flood(
        Flood {
            burst: 3,
            per_second: 1,
        },
        t,
    );
    assert_eq!(g.flood().burst, 3);
    assert!(g.check(ip("203.0.113.5"), t));
}

#[test]
fn scanner_user_agents() {
    let list: Vec<String> = DEFAULT_USER_AGENT_BLOCKLIST
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cases = [
        ("friendly-scanner", true),
        ("Friendly-Scanner/1.0", true),
        ("sipvicious 0.3.4", true),
        ("SIPVicious", true),
        ("vaxsipuseragent/3.1", true),
        ("Zoiper rv2.10", false),
        ("", false),
        ("sip", false),
        ("Łódź-phone sipcli", true),
    ];
    for (ua, want) in cases {
        assert_eq!(blocked_user_agent(ua, &list), want, "{ua:?}");
    }
    assert!(!blocked_user_agent("anything", &[String::new()]));
}

#[test]
fn layer_user_agent_blocklist_and_number_flood_apply_to_calls() {
    let mut adm = Admission::new(policy(
        PolicyConfig {
            user_agent_blocklist: Some(Vec::new()),
            ..PolicyConfig::default()
        },
        vec![trunk(
            "pbx",
            &["198.51.100.0/24"],
            PolicyConfig {
                user_agent_blocklist: Some(vec!["evil-pbx".into()]),
                ..PolicyConfig::default()
            },
        )],
        vec![number(
            Some("+48111"),
            PolicyConfig {
                flood_per_source: Some(Flood {
                    burst: 2,
                    per_second: 1,
                }),
                ..PolicyConfig::default()
            },
        )],
    ));
    let now = start("2026-06-01T12:00:00Z");
    let evil = Attempt {
        user_agent: Some("Evil-PBX/2"),
        ..call("198.51.100.7", Some("+48600"), Some("+48999"))
    };
    assert_eq!(
        outcome(&adm.admit(&evil, &now)),
        Err((0, "blocked_user_agent", None))
    );
    let elsewhere = Attempt {
        user_agent: Some("Evil-PBX/2"),
        ..call("192.0.2.10", Some("+48600"), Some("+48999"))
    };
    assert!(
        matches!(adm.admit(&elsewhere, &now), Decision::Admit(_)),
        "the trunk's list only"
    );
    // Two INVITEs to +48111 from one source pass at once, the third is dropped; another
    // source still gets through.
    for _ in 0..2 {
        let t = ticket(adm.admit(&call("192.0.2.10", Some("+48600"), Some("+48111")), &now));
        adm.call_ended(&t, &now);
    }
    let third = adm.admit(&call("192.0.2.10", Some("+48600"), Some("+48111")), &now);
    assert_eq!(outcome(&third), Err((0, "flood", None)));
    assert!(matches!(
        adm.admit(&call("192.0.2.11", Some("+48600"), Some("+48111")), &now),
        Decision::Admit(_)
    ));
}
