//! Configuration tests for `[api]`: the Twilio-compatible resource's keys and call retention
//! (defaults, typed values, key-path errors). The shipped template's defaults are checked
//! with every other section's in `tests.rs`.

use std::time::Duration;

use super::parse;
use super::tests::errors;

#[test]
fn api_defaults() {
    let c = parse("", "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.api.twilio_compat);
    assert_eq!(c.api.account_sid, "AC00000000000000000000000000000000");
    assert_eq!(c.api.call_retention, Duration::from_secs(3600));
}

#[test]
fn api_values_are_typed() {
    let text = "[api]\ntwilio_compat = true\naccount_sid = \"ACabcdef0123456789ABCDEF0123456789\"\ncall_retention = \"90s\"\n";
    let c = parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.api.twilio_compat);
    assert_eq!(c.api.account_sid, "ACabcdef0123456789ABCDEF0123456789");
    assert_eq!(c.api.call_retention, Duration::from_secs(90));
    let c = parse("[api]\ncall_retention = \"0s\"\n", "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.api.call_retention, Duration::ZERO);
}

#[test]
fn api_errors_name_the_key() {
    assert_eq!(
        errors("[api]\naccount_sid = \"AC123\"\n"),
        "t.toml:2: api.account_sid: \"AC123\" is not a Twilio AccountSid (\"AC\" and 32 hex digits)"
    );
    assert_eq!(
        errors("[api]\naccount_sid = \"XX00000000000000000000000000000000\"\n"),
        "t.toml:2: api.account_sid: \"XX00000000000000000000000000000000\" is not a Twilio AccountSid (\"AC\" and 32 hex digits)"
    );
    assert_eq!(
        errors("[api]\naccount_sid = \"AC0000000000000000000000000000000g\"\n"),
        "t.toml:2: api.account_sid: \"AC0000000000000000000000000000000g\" is not a Twilio AccountSid (\"AC\" and 32 hex digits)"
    );
    let e = errors("[api]\ncall_retention = 3600\n");
    assert!(
        e.starts_with("t.toml:2: api.call_retention: 3600 has no unit"),
        "{e}"
    );
    let e = errors("[api]\ntwilio_compat = \"yes\"\n");
    assert!(e.contains("api.twilio_compat"), "{e}");
}

#[test]
fn trusted_proxies_are_cidrs() {
    let c = parse("", "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(c.api.trusted_proxies.is_empty());
    let text = "[api]\ntrusted_proxies = [\"127.0.0.1\", \"10.1.2.3/8\", \"::1\"]\n";
    let c = parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let nets: Vec<String> = c
        .api
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
    let problems = errors("[api]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]\n");
    assert!(
        problems.starts_with("t.toml:2: api.trusted_proxies[1]: "),
        "{problems}"
    );
}
