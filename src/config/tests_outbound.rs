//! Configuration tests for placing calls: a trunk's `outbound` (every key, its default and
//! derived values), `[outbound_policy]` with a trunk's overrides, and each problem's exact
//! text, key path and line.

use std::path::PathBuf;
use std::time::Duration;

use super::tests::{errors, ok};
use super::*;

const TRUNK: &str = "[[trunk]]\nname = \"c\"\n";

fn outbound(line: &str) -> Outbound {
    let c = ok(&format!("{TRUNK}{line}\n"));
    match c.trunks.into_iter().next().and_then(|t| t.outbound) {
        Some(o) => o,
        None => panic!("no outbound"),
    }
}

fn host(host: &str, port: u16) -> HostPort {
    HostPort {
        host: host.to_string(),
        port,
    }
}

#[test]
fn outbound_defaults_follow_the_address() {
    let o = outbound("outbound = { address = \"sip.carrier.example:5060\" }");
    assert_eq!(
        o,
        Outbound {
            address: host("sip.carrier.example", 5060),
            transport: Transport::Udp,
            outbound_proxy: None,
            username: String::new(),
            auth_username: String::new(),
            password_file: None,
            from_domain: "sip.carrier.example".into(),
            caller_id: CallerId::From,
            register: false,
            register_expires: Duration::from_secs(600),
            srtp: SrtpMode::Off,
            tls_check_hostname: true,
        }
    );
    assert_eq!(o.address.to_string(), "sip.carrier.example:5060");
    // Empty strings mean "none / the default", as everywhere.
    let o = outbound(concat!(
        "outbound = { address = \"[2001:db8::1]:5080\", outbound_proxy = \"\", username = \"acc\", ",
        "auth_username = \"\", from_domain = \"\" }",
    ));
    assert_eq!(o.outbound_proxy, None);
    assert_eq!(o.auth_username, "acc", "auth_username defaults to username");
    assert_eq!(o.from_domain, "[2001:db8::1]", "ready for a SIP URI");
    assert_eq!(o.address.ip(), "2001:db8::1".parse().ok());
}

#[test]
fn outbound_every_key() {
    let o = outbound(concat!(
        "outbound = { address = \"192.0.2.1:5060\", transport = \"tcp\", ",
        "outbound_proxy = \"proxy.example:5070\", username = \"acc\", auth_username = \"auth7\", ",
        "password_file = \"/etc/trunkgate/c.pw\", from_domain = \"pbx.example\", caller_id = \"pai\", ",
        "register = true, register_expires = \"1h\", srtp = \"off\" }",
    ));
    assert_eq!(o.transport, Transport::Tcp);
    assert_eq!(o.outbound_proxy, Some(host("proxy.example", 5070)));
    assert_eq!(
        (o.username.as_str(), o.auth_username.as_str()),
        ("acc", "auth7")
    );
    assert_eq!(o.password_file, Some(PathBuf::from("/etc/trunkgate/c.pw")));
    assert_eq!(o.from_domain, "pbx.example");
    assert_eq!(o.caller_id, CallerId::Pai);
    assert!(o.register);
    assert_eq!(o.register_expires, Duration::from_secs(3600));
    assert_eq!(
        outbound("outbound = { address = \"h:1\", caller_id = \"rpid\" }").caller_id,
        CallerId::Rpid
    );
}

#[test]
fn outbound_problems() {
    let text = concat!(
        "[[trunk]]\nname = \"c\"\noutbound = { address = \"h:5060\", transport = \"sctp\" }\n",
        "[[trunk]]\nname = \"d\"\noutbound = { address = \"h:5060\", srtp = \"required\" }\n",
        "[[trunk]]\nname = \"e\"\noutbound = { address = \"h:5060\", register_expires = \"59s\", outbound_proxy = \"proxy\" }\n",
        "[[trunk]]\nname = \"f\"\noutbound = { address = \"h:5060\", password_file = \"/p\", from_domain = \"a b\" }\n",
        "[[trunk]]\nname = \"g\"\noutbound = { address = \"h:5060\", caller_id = \"pid\", username = \"a\\\"b\" }\n",
    );
    assert_eq!(
        errors(text),
        [
            "t.toml:3: trunk[0].outbound.transport: \"sctp\" is not one of \"udp\", \"tcp\", \"tls\"",
            "t.toml:6: trunk[1].outbound.srtp: SRTP over transport \"udp\" would send its keys in clear; use transport = \"tls\", or set rtp.srtp_allow_plain_sip = true",
            "t.toml:9: trunk[2].outbound.outbound_proxy: \"proxy\" is not host:port (write e.g. \"sip.carrier.example:5060\")",
            "t.toml:9: trunk[2].outbound.register_expires: must be at least 60s",
            "t.toml:12: trunk[3].outbound.password_file: a password needs a username (or auth_username) to authenticate as",
            "t.toml:12: trunk[3].outbound.from_domain: \"a b\" is not a host name or IP address",
            "t.toml:15: trunk[4].outbound.caller_id: \"pid\" is not one of \"from\", \"pai\", \"rpid\"",
            "t.toml:15: trunk[4].outbound.username: must not contain control characters or '\"'",
        ]
        .join("\n")
    );
    assert_eq!(
        errors(&format!("{TRUNK}outbound = {{ address = \"h:1\", proxy = \"p:1\" }}\n")),
        "t.toml:3: trunk[0].outbound.proxy: unknown key; expected one of: address, transport, outbound_proxy, username, auth_username, password_file, from_domain, caller_id, register, register_expires, srtp, tls_check_hostname"
    );
}

#[test]
fn outbound_policy_defaults_and_layers() {
    let c = ok("");
    assert_eq!(c.outbound_policy, OutboundPolicyConfig::defaults());
    let c = ok(concat!(
        "[outbound_policy]\nmax_concurrent = 100\ncalls_per_second = 10\n",
        "blocked_prefixes = [\"+882\", \"00883\"]\nhours = \"08:00-20:00 UTC\"\n",
        "[[trunk]]\nname = \"c\"\noutbound = { address = \"h:5060\" }\n",
        "outbound_policy = { calls_per_second = 5, allowed_prefixes = [\"+91\"], hours = \"\" }\n",
        "[[trunk]]\nname = \"inbound-only\"\n",
    ));
    let g = &c.outbound_policy;
    assert_eq!(
        (g.max_concurrent, g.calls_per_second),
        (Some(100), Some(10))
    );
    let blocked: Vec<&str> = g
        .blocked_prefixes
        .iter()
        .flatten()
        .map(E164Prefix::as_str)
        .collect();
    assert_eq!(blocked, ["+882", "+883"]);
    assert_eq!(g.allowed_prefixes, Some(Vec::new()), "default filled in");
    let t = &c.trunks[0].outbound_policy;
    assert_eq!(t.max_concurrent, None, "a trunk holds only its overrides");
    let eff = g.merged(t);
    assert_eq!(eff.calls_per_second, Some(5));
    assert_eq!(eff.max_concurrent, Some(100));
    assert_eq!(eff.hours, Some(None), "the trunk clears the global hours");
    assert_eq!(eff.blocked_prefixes, g.blocked_prefixes);
    // Only trunks that place calls become gate layers.
    let layers = c.outbound_trunk_layers();
    assert_eq!(layers.len(), 1);
    assert_eq!((layers[0].name.as_str(), &layers[0].policy), ("c", t));
}

#[test]
fn outbound_policy_problems() {
    let text = concat!(
        "[outbound_policy]\nallowed_prefixes = [\"+4a\"]\nhours = \"8-20\"\ncalls_per_second = -1\nburst = 3\n",
        "[[trunk]]\nname = \"c\"\noutbound_policy = { max_concurrent = 1 }\n",
    );
    let got = errors(text);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 5, "{got}");
    assert!(
        lines[0].starts_with("t.toml:2: outbound_policy.allowed_prefixes[0]: "),
        "{got}"
    );
    assert_eq!(
        lines[1],
        "t.toml:3: outbound_policy.hours: \"8-20\" is not \"HH:MM-HH:MM Area/City\" (e.g. \"08:00-20:00 Europe/Warsaw\")"
    );
    assert_eq!(
        lines[2],
        "t.toml:4: outbound_policy.calls_per_second: expected a non-negative integer, found -1"
    );
    assert_eq!(
        lines[3],
        "t.toml:5: outbound_policy.burst: unknown key; expected one of: max_concurrent, calls_per_second, allowed_prefixes, blocked_prefixes, hours"
    );
    assert_eq!(
        lines[4],
        "t.toml:8: trunk[0].outbound_policy: this trunk has no outbound, so it places no calls to admit"
    );
}

#[test]
fn shipped_template_examples_show_every_outbound_key() {
    let text = std::fs::read_to_string(super::tests::ETC).unwrap_or_default();
    let c = ok(&super::tests::with_examples(&text));
    let blocked: Vec<&str> = c
        .outbound_policy
        .blocked_prefixes
        .iter()
        .flatten()
        .map(E164Prefix::as_str)
        .collect();
    assert_eq!(blocked, ["+882", "+883"]);
    assert!(matches!(c.outbound_policy.hours, Some(Some(_))));
    let [trunk] = c.trunks.as_slice() else {
        panic!("{:?}", c.trunks)
    };
    let o = trunk
        .outbound
        .as_ref()
        .map(|o| (&o.address, o.register_expires));
    assert_eq!(
        o,
        Some((&host("sip.carrier.example", 5060), Duration::from_secs(600)))
    );
    let p = &trunk.outbound_policy;
    assert_eq!((p.max_concurrent, p.calls_per_second), (Some(30), Some(5)));
    assert_eq!(p.hours, None, "inherited");
}
