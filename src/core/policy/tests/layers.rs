//! Layer overrides (number over trunk over global), separately counted scopes, trunk
//! `require_headers`, IPv4/IPv6 allowlists and caller prefixes.

use std::sync::Arc;

use super::*;

const TRUNK_SRC: &str = "198.51.100.7";
const OTHER_SRC: &str = "192.0.2.10";

fn trunk_scope(name: &str) -> Scope {
    Scope::Trunk(Arc::from(name))
}

fn number_scope(did: &str) -> Scope {
    Scope::Number(Arc::from(did))
}

#[test]
fn number_overrides_trunk_overrides_global() {
    let mut adm = Admission::new(policy(
        PolicyConfig {
            allowed_prefixes: prefixes(&["+48"]),
            ..PolicyConfig::default()
        },
        vec![trunk(
            "carrier",
            &["198.51.100.0/24"],
            PolicyConfig {
                allowed_prefixes: prefixes(&["+1"]),
                ..PolicyConfig::default()
            },
        )],
        vec![
            number(
                Some("+48111"),
                PolicyConfig {
                    allowed_prefixes: Some(Vec::new()),
                    ..PolicyConfig::default()
                },
            ),
            number(
                None,
                PolicyConfig {
                    blocked_prefixes: prefixes(&["+1900"]),
                    ..PolicyConfig::default()
                },
            ),
        ],
    ));
    let now = start("2026-06-01T12:00:00Z");
    let cases: &[(&str, &str, &str, Result<(), &str>)] = &[
        (OTHER_SRC, "+48600", "+48999", Ok(())),
        (OTHER_SRC, "+1212", "+48999", Err("caller_not_allowed")),
        (TRUNK_SRC, "+1212", "+48999", Ok(())),
        (TRUNK_SRC, "+48600", "+48999", Err("caller_not_allowed")),
        // "*" number blocks +1900 while the trunk allows +1: blocked wins.
        (TRUNK_SRC, "+1900555", "+48999", Err("caller_blocked")),
        // The +48111 number clears the allowlist for itself.
        (TRUNK_SRC, "+7495", "+48111", Ok(())),
        (OTHER_SRC, "+7495", "0048111", Ok(())),
    ];
    for (src, caller, did, want) in cases {
        let d = adm.admit(&call(src, Some(caller), Some(did)), &now);
        assert_eq!(
            outcome(&d).map_err(|e| e.1),
            *want,
            "{src} {caller} → {did}"
        );
    }
}

#[test]
fn each_scope_counts_its_own_limit() {
    let mut adm = Admission::new(policy(
        PolicyConfig {
            max_concurrent: Some(3),
            ..PolicyConfig::default()
        },
        vec![trunk(
            "carrier",
            &["198.51.100.0/24"],
            PolicyConfig {
                max_concurrent: Some(1),
                ..PolicyConfig::default()
            },
        )],
        vec![number(
            Some("+48111"),
            PolicyConfig {
                max_concurrent: Some(2),
                ..PolicyConfig::default()
            },
        )],
    ));
    let now = start("2026-06-01T12:00:00Z");
    let a = ticket(adm.admit(&call(TRUNK_SRC, None, Some("+48999")), &now));
    assert_eq!(a.scopes(), &[Scope::Global, trunk_scope("carrier")]);
    // The trunk's own limit (1) is in force for its calls, not the global 3.
    assert_eq!(
        outcome(&adm.admit(&call(TRUNK_SRC, None, Some("+48999")), &now)),
        Err((486, "busy", None))
    );
    // The number's limit (2) overrides the trunk's for calls to +48111.
    let b = ticket(adm.admit(&call(TRUNK_SRC, None, Some("+48111")), &now));
    assert_eq!(
        b.scopes(),
        &[
            Scope::Global,
            trunk_scope("carrier"),
            number_scope("+48111")
        ]
    );
    ticket(adm.admit(&call(OTHER_SRC, None, Some("+48111")), &now));
    assert_eq!(
        outcome(&adm.admit(&call(OTHER_SRC, None, Some("+48111")), &now)),
        Err((486, "busy", None))
    );
    assert_eq!(adm.running_in(&trunk_scope("carrier")), 2);
    assert_eq!(adm.running_in(&number_scope("+48111")), 2);
    // Global counts everything (3 running) and is in force for plain calls.
    assert_eq!(adm.running_in(&Scope::Global), 3);
    assert_eq!(
        outcome(&adm.admit(&call(OTHER_SRC, None, Some("+48999")), &now)),
        Err((486, "busy", None))
    );
    adm.call_ended(&a, &now);
    assert_eq!(adm.running_in(&trunk_scope("carrier")), 1);
    ticket(adm.admit(&call(OTHER_SRC, None, Some("+48999")), &now));
}

#[test]
fn number_rate_counts_calls_from_any_trunk_and_star_is_one_scope() {
    let mut adm = Admission::new(policy(
        PolicyConfig::default(),
        vec![trunk(
            "carrier",
            &["198.51.100.0/24"],
            PolicyConfig::default(),
        )],
        vec![
            number(
                Some("+48111"),
                PolicyConfig {
                    max_calls_per_hour: Some(1),
                    ..PolicyConfig::default()
                },
            ),
            number(
                None,
                PolicyConfig {
                    max_concurrent: Some(1),
                    ..PolicyConfig::default()
                },
            ),
        ],
    ));
    let now = start("2026-06-01T12:00:00Z");
    ticket(adm.admit(&call(TRUNK_SRC, None, Some("+48111")), &now));
    assert_eq!(
        outcome(&adm.admit(&call(OTHER_SRC, None, Some("+48111")), &now)),
        Err((503, "hourly_limit", Some(3600)))
    );
    let star = ticket(adm.admit(&call(OTHER_SRC, None, Some("+48201")), &now));
    assert_eq!(star.scopes(), &[Scope::Global, number_scope("*")]);
    assert_eq!(
        outcome(&adm.admit(&call(TRUNK_SRC, None, Some("+48202")), &now)),
        Err((486, "busy", None))
    );
    // No DID at all still lands on "*".
    assert_eq!(
        outcome(&adm.admit(&call(OTHER_SRC, None, None), &now)),
        Err((486, "busy", None))
    );
}

#[test]
fn trunk_require_headers() {
    let mut t = trunk("ameyo", &["198.51.100.0/24"], PolicyConfig::default());
    t.require_headers = vec![
        ("X-Workspace-ID".into(), "2b37ba17".into()),
        ("X-Tenant".into(), "acme".into()),
    ];
    let mut adm = Admission::new(policy(PolicyConfig::default(), vec![t], Vec::new()));
    let now = start("2026-06-01T12:00:00Z");
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    type Case = (
        &'static str,
        Vec<(String, String)>,
        Result<(), RejectReason>,
    );
    let cases: Vec<Case> = vec![
        (
            TRUNK_SRC,
            h(&[]),
            Err(RejectReason::MissingHeader {
                name: "X-Workspace-ID".into(),
            }),
        ),
        (
            TRUNK_SRC,
            h(&[("x-workspace-id", "2b37ba17")]),
            Err(RejectReason::MissingHeader {
                name: "X-Tenant".into(),
            }),
        ),
        (
            TRUNK_SRC,
            h(&[("x-workspace-id", "2B37BA17"), ("X-Tenant", "acme")]),
            Err(RejectReason::MissingHeader {
                name: "X-Workspace-ID".into(),
            }),
        ),
        (
            TRUNK_SRC,
            h(&[("X-TENANT", " acme "), ("x-workspace-id", "2b37ba17")]),
            Ok(()),
        ),
        (
            TRUNK_SRC,
            h(&[
                ("X-Workspace-ID", "x"),
                ("X-Workspace-ID", "2b37ba17"),
                ("X-Tenant", "acme"),
            ]),
            Ok(()),
        ),
        // Not from the trunk: its headers are not required.
        (OTHER_SRC, h(&[]), Ok(())),
    ];
    for (src, headers, want) in cases {
        let a = Attempt {
            headers: &headers,
            ..call(src, None, None)
        };
        let got = match adm.admit(&a, &now) {
            Decision::Admit(_) => Ok(()),
            Decision::Reject { status, reason, .. } => {
                assert_eq!(status, 403);
                Err(reason)
            }
            Decision::Drop { reason } => panic!("dropped: {reason}"),
        };
        assert_eq!(got, want, "{src} {headers:?}");
    }
}

#[test]
fn ipv4_and_ipv6_allowlists() {
    let global = PolicyConfig {
        allow_cidrs: Some(nets(&["2001:db8::/32", "198.51.100.0/24"])),
        ..PolicyConfig::default()
    };
    let v6_trunk = trunk("v6", &["2001:db8:aa::/48"], PolicyConfig::default());
    let mut adm = Admission::new(policy(global.clone(), vec![v6_trunk], Vec::new()));
    let now = start("2026-06-01T12:00:00Z");
    let cases: &[(&str, Outcome)] = &[
        ("2001:db8:1::5", Ok(())),
        ("2001:db9::1", Err((403, "source_not_allowed", None))),
        ("198.51.100.200", Ok(())),
        ("::ffff:198.51.100.7", Ok(())),
        ("198.51.101.1", Err((403, "source_not_allowed", None))),
        (
            "::ffff:198.51.101.1",
            Err((403, "source_not_allowed", None)),
        ),
    ];
    for (src, want) in cases {
        assert_eq!(
            outcome(&adm.admit(&call(src, None, None), &now)),
            *want,
            "{src}"
        );
    }
    let t = ticket(adm.admit(&call("2001:db8:aa:1::9", None, None), &now));
    assert_eq!(t.scopes(), &[Scope::Global, trunk_scope("v6")]);

    let mut dropping = only(PolicyConfig {
        reject_action: Some(RejectAction::Drop),
        ..global
    });
    assert_eq!(
        dropping.admit(&call("203.0.113.1", None, None), &now),
        Decision::Drop {
            reason: RejectReason::SourceNotAllowed
        }
    );
}

#[test]
fn caller_prefixes_blocked_beats_allowed() {
    let mut adm = only(PolicyConfig {
        allowed_prefixes: prefixes(&["+48"]),
        blocked_prefixes: prefixes(&["+4870"]),
        ..PolicyConfig::default()
    });
    let now = start("2026-06-01T12:00:00Z");
    let cases: &[(Option<&str>, Result<(), &str>)] = &[
        (Some("+48700100200"), Err("caller_blocked")),
        (Some("0048 700 100 200"), Err("caller_blocked")),
        (Some("0048 600 100 200"), Ok(())),
        (Some("+49 30 1234"), Err("caller_not_allowed")),
        (None, Err("no_caller_number")),
        (Some("anonymous"), Err("no_caller_number")),
        // Bare digits get a "+" (core::number's one rule), as routing reads them.
        (Some("48700100200"), Err("caller_blocked")),
        (Some("600100200"), Err("caller_not_allowed")),
        (Some("+48 70;x=1"), Err("caller_blocked")),
    ];
    for (caller, want) in cases {
        let d = adm.admit(&call(OTHER_SRC, *caller, None), &now);
        assert_eq!(outcome(&d).map_err(|e| e.1), *want, "{caller:?}");
    }
    let mut blocked_only = only(PolicyConfig {
        blocked_prefixes: prefixes(&["+99"]),
        ..PolicyConfig::default()
    });
    assert!(outcome(&blocked_only.admit(&call(OTHER_SRC, None, None), &now)).is_ok());
    assert_eq!(
        outcome(&blocked_only.admit(&call(OTHER_SRC, Some("00991"), None), &now)),
        Err((403, "caller_blocked", None))
    );
}

#[test]
fn rule_order_source_before_caller_before_hours() {
    let mut adm = only(PolicyConfig {
        allow_cidrs: Some(nets(&["198.51.100.0/24"])),
        allowed_prefixes: prefixes(&["+48"]),
        hours: hours(480, 1200, "UTC"),
        max_concurrent: Some(1),
        ..PolicyConfig::default()
    });
    let night = start("2026-06-01T02:00:00Z");
    let cases: &[(&str, Option<&str>, &str)] = &[
        (OTHER_SRC, Some("+1"), "source_not_allowed"),
        (TRUNK_SRC, Some("+1"), "caller_not_allowed"),
        (TRUNK_SRC, Some("+48600"), "outside_hours"),
    ];
    for (src, caller, want) in cases {
        let d = adm.admit(&call(src, *caller, None), &night);
        assert_eq!(d.reason().map(RejectReason::as_str), Some(*want));
    }
}
