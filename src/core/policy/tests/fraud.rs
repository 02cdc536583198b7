//! Fraud alerts: more than X attempts within Y → one alert per episode; the episode ends when
//! an attempt finds the count back at or under X; rejected attempts count too.

use std::sync::Arc;

use super::*;

fn alerting(calls: u32, within_s: f64) -> Option<FraudAlert> {
    Some(FraudAlert {
        calls,
        within: secs(within_s),
        url: Some("https://ops.example/alert".into()),
        email: vec!["ops@example.com".into()],
    })
}

#[test]
fn one_alert_per_episode_then_again_after_it_ends() {
    let mut adm = only(PolicyConfig {
        fraud_alert: alerting(3, 60.0),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T12:00:00Z");
    let at = |s: f64| t.after(secs(s));
    for s in [0.0, 1.0, 2.0] {
        adm.admit(&plain(), &at(s));
    }
    assert_eq!(adm.poll_alert(), None, "3 attempts is not more than 3");
    adm.admit(&plain(), &at(3.0));
    assert_eq!(
        adm.poll_alert(),
        Some(FraudAlertEvent {
            scope: Scope::Global,
            url: Some("https://ops.example/alert".into()),
            email: vec!["ops@example.com".into()],
            calls: 4,
            within_s: 60,
            threshold: 3,
        })
    );
    for s in 4..40 {
        adm.admit(&plain(), &at(f64::from(s)));
    }
    assert_eq!(adm.poll_alert(), None, "same episode");
    // Quiet for longer than the window: the next attempt ends the episode.
    adm.admit(&plain(), &at(200.0));
    assert_eq!(adm.poll_alert(), None);
    for s in [201.0, 202.0, 203.0] {
        adm.admit(&plain(), &at(s));
    }
    assert_eq!(adm.poll_alert().map(|e| e.calls), Some(4));
    assert_eq!(adm.poll_alert(), None);
}

#[test]
fn rejected_attempts_count_and_each_layer_watches_its_own() {
    let mut adm = Admission::new(policy(
        PolicyConfig {
            allowed_prefixes: prefixes(&["+48"]),
            fraud_alert: alerting(5, 60.0),
            ..PolicyConfig::default()
        },
        vec![trunk(
            "carrier",
            &["198.51.100.0/24"],
            PolicyConfig {
                fraud_alert: alerting(2, 60.0),
                ..PolicyConfig::default()
            },
        )],
        Vec::new(),
    ));
    let t = start("2026-06-01T12:00:00Z");
    // Three rejected attempts through the trunk: the trunk alerts (3 > 2), global does not.
    for _ in 0..3 {
        let d = adm.admit(&call("198.51.100.7", Some("+1900"), None), &t);
        assert!(outcome(&d).is_err());
    }
    assert_eq!(
        adm.poll_alert().map(|e| (e.scope, e.threshold)),
        Some((Scope::Trunk(Arc::from("carrier")), 2))
    );
    assert_eq!(adm.poll_alert(), None);
    // Global counts the trunk's attempts as well: 3 + 3 = 6 > 5.
    for _ in 0..3 {
        adm.admit(&call("192.0.2.1", Some("+48600"), None), &t);
    }
    assert_eq!(adm.poll_alert().map(|e| e.scope), Some(Scope::Global));
    assert_eq!(adm.poll_alert(), None);
}

#[test]
fn an_alert_with_only_recipients_still_fires() {
    let mut adm = only(PolicyConfig {
        fraud_alert: Some(FraudAlert {
            calls: 1,
            within: secs(60.0),
            url: None,
            email: vec!["noc@example.org".into()],
        }),
        ..PolicyConfig::default()
    });
    let t = start("2026-06-01T12:00:00Z");
    adm.admit(&plain(), &t);
    adm.admit(&plain(), &t.after(secs(1.0)));
    let alert = adm.poll_alert().map(|e| (e.url, e.email, e.calls));
    assert_eq!(alert, Some((None, vec!["noc@example.org".into()], 2)));
}
