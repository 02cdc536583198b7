//! Configuration tests: the shipped files parse, defaults match the template, and every class
//! of problem is reported with its exact text, key path and line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

pub(super) const ETC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/etc/trunkgate.toml");

/// The config `text` describes (the test fails on any problem); shared by the other
/// `tests_*` files.
pub(super) fn ok(text: &str) -> Config {
    match parse(text, "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("unexpected problems:\n{e}"),
    }
}

/// The problems `text` has, as the operator reads them (the test fails if it is accepted).
pub(super) fn errors(text: &str) -> String {
    match parse(text, "t.toml") {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|_| panic!("bad test address {s}"))
}

/// Activates the template's `#key = value` examples: each replaces the same key's active line
/// in its table, and `#[[...]]` headers start new tables.
pub(super) fn with_examples(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut table_start = 0;
    for line in text.lines() {
        let example = line
            .strip_prefix('#')
            .filter(|l| !l.is_empty() && !l.starts_with(' '));
        let Some(active) = example else {
            out.push(line.to_string());
            if line.starts_with('[') {
                table_start = out.len();
            }
            continue;
        };
        if active.starts_with('[') {
            out.push(active.to_string());
            table_start = out.len();
            continue;
        }
        let key = active.split(" = ").next().unwrap_or_default();
        let earlier = out[table_start..]
            .iter()
            .rposition(|l| l.starts_with(&format!("{key} = ")));
        match earlier {
            Some(i) => out[table_start + i] = active.to_string(),
            None => out.push(active.to_string()),
        }
    }
    out.join("\n")
}

#[test]
fn shipped_template_is_valid_and_shows_the_defaults() {
    let shipped = match load(Path::new(ETC)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        shipped,
        ok(""),
        "a default in etc/trunkgate.toml differs from the code"
    );
    assert_eq!(shipped.sip.listen_udp, vec![sock("0.0.0.0:5060")]);
    assert_eq!(shipped.sip.listen_tcp, vec![sock("0.0.0.0:5060")]);
}

#[test]
fn shipped_template_examples_are_valid() {
    let text = std::fs::read_to_string(ETC).unwrap_or_default();
    let c = ok(&with_examples(&text));
    assert!(c.sip.tls.is_some());
    assert_eq!(
        c.webhook.url.as_deref(),
        Some("https://platform.example/trunkgate/incoming")
    );
    let [trunk] = c.trunks.as_slice() else {
        panic!("{:?}", c.trunks)
    };
    assert_eq!(trunk.name, "ameyo");
    assert_eq!(
        trunk.require_headers,
        vec![(
            "X-Workspace-ID".to_string(),
            "2b37ba17-7b20-4b3e-b138-1161e351d5c5".to_string()
        )]
    );
    let transfer = trunk.transfer.as_ref().map(|t| (t.mode, t.await_bye));
    assert_eq!(
        transfer,
        Some((TransferMode::Notify, Duration::from_secs(30)))
    );
    let Some(TemplateValue::Object(body)) = trunk.transfer.as_ref().and_then(|t| t.body.clone())
    else {
        panic!("no body");
    };
    let keys: Vec<&str> = body.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["notificationId", "uniqueId", "callResponse", "sessionId"],
        "file order kept"
    );
    let [number] = c.numbers.as_slice() else {
        panic!("{:?}", c.numbers)
    };
    assert_eq!(number.did, DidPattern::Exact("+48123456789".into()));
    assert_eq!(
        number.policy.allowed_prefixes,
        Some(vec![
            E164Prefix::parse("+48").unwrap_or_else(|e| panic!("{e}"))
        ])
    );
}

#[test]
fn demo_parses() {
    let c = Config::demo();
    assert_eq!(c.sip.listen_udp, vec![sock("127.0.0.1:5060")]);
    assert_eq!(c.sip.listen_tcp, vec![sock("127.0.0.1:5060")]);
    assert_eq!(c.api.listen, Some(sock("127.0.0.1:8080")));
    assert!(c.api.token_file.is_none() && c.api.is_open());
    assert_eq!(
        (c.rtp.bind, c.rtp.port_min, c.rtp.port_max),
        (IpAddr::V4(Ipv4Addr::LOCALHOST), 20000, 29999)
    );
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(
        c.callbacks.spool_dir,
        PathBuf::from("./trunkgate-data/spool")
    );
    assert_eq!(
        c.recording.dir,
        PathBuf::from("./trunkgate-data/recordings")
    );
    let [number] = c.numbers.as_slice() else {
        panic!("{:?}", c.numbers)
    };
    assert_eq!(number.did, DidPattern::Any);
    let agent = AgentConfig {
        url: "builtin:echo".into(),
        dialect: Dialect::Raw,
        sample_rate: 8000,
    };
    assert_eq!(number.agent, Some(agent));
}

#[test]
fn empty_file_gives_defaults() {
    let c = ok("");
    assert_eq!(c.sip.max_message_size, 65536);
    assert_eq!(c.rtp.rtp_timeout, Duration::from_secs(30));
    assert_eq!(c.rtp.srtp, SrtpMode::Optional);
    assert_eq!(
        c.api.token_file,
        Some(PathBuf::from("/etc/trunkgate/api.token"))
    );
    assert!(!c.api.is_open());
    assert_eq!(c.policy, PolicyConfig::defaults());
    assert!(c.trunks.is_empty() && c.numbers.is_empty());
    let c = ok("[sip]\nlisten_udp = []\nlisten_tcp = []\n[api]\nlisten = \"\"\n");
    assert!(c.sip.listen_udp.is_empty() && c.api.listen.is_none());
}

#[test]
fn values_are_typed() {
    let c = ok(concat!(
        "[sip]\npublic_address = \"203.0.113.9\"\nmax_message_size = 1500\n",
        "[policy]\nallowed_prefixes = [\"0048\", \"+1\"]\nallow_cidrs = [\"192.0.2.7\", \"10.1.2.3/8\"]\n",
        "hours = \"22:00-06:00 UTC\"\nmax_call_duration = \"1h\"\n",
        "[webhook]\nformat = \"twilio-form\"\n[log]\nlevel = \"DEBUG\"\n",
    ));
    assert_eq!(
        c.sip.public_address,
        Some(PublicAddress::Ip(
            "203.0.113.9"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        ))
    );
    assert_eq!(c.sip.max_message_size, 1500);
    let prefixes: Vec<&str> = c
        .policy
        .allowed_prefixes
        .iter()
        .flatten()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(prefixes, ["+48", "+1"]);
    let cidrs: Vec<String> = c
        .policy
        .allow_cidrs
        .iter()
        .flatten()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(cidrs, ["192.0.2.7/32", "10.0.0.0/8"]);
    assert_eq!(
        c.policy.hours,
        Some(Some(Hours {
            start_min: 1320,
            end_min: 360,
            tz: "UTC".into()
        }))
    );
    assert_eq!(c.policy.max_call_duration, Some(Duration::from_secs(3600)));
    assert_eq!(c.webhook.format, WebhookFormat::TwilioForm);
    assert_eq!(c.log.level, "debug");
}

// ---- one test per class of problem, exact text ----

#[test]
fn toml_syntax() {
    assert_eq!(
        errors("[sip]\nuser_agent = \n"),
        "t.toml:2: invalid string; expected `\"`, `'`"
    );
}

#[test]
fn unknown_key() {
    assert_eq!(
        errors("[rtp]\nport_min = 10000\nport_mx = 20000\n"),
        "t.toml:3: rtp.port_mx: unknown key; expected one of: bind, port_min, port_max, ptime_ms, rtp_timeout, srtp, srtp_allow_plain_sip"
    );
    assert_eq!(
        errors("[sipp]\n"),
        "t.toml:1: sipp: unknown key; expected one of: sip, rtp, api, webhook, callbacks, recording, transcription, smtp, billing, policy, outbound_policy, trunk, number, user, log, agent"
    );
    assert_eq!(
        errors("[[number]]\ndid = \"*\"\nagent = { url = \"builtin:echo\", codec = \"pcmu\" }\n"),
        "t.toml:3: number[0].agent.codec: unknown key; expected one of: url, dialect, sample_rate"
    );
}

#[test]
fn wrong_type() {
    assert_eq!(
        errors("[rtp]\nport_min = \"10000\"\n"),
        "t.toml:2: rtp.port_min: expected an integer from 0 to 65535, found \"10000\""
    );
    assert_eq!(
        errors("[recording]\nenabled = \"yes\"\n"),
        "t.toml:2: recording.enabled: expected true or false, found \"yes\""
    );
    assert_eq!(
        errors("sip = 5\n"),
        "t.toml:1: sip: expected a table, found 5"
    );
    assert_eq!(
        errors("[rtp]\nbind = 1979-05-27\n"),
        "t.toml:2: rtp.bind: expected a string, found a date/time"
    );
    assert_eq!(
        errors("[trunk]\nname = \"a\"\n"),
        "t.toml:1: trunk: expected an array of tables ([[trunk]]), found a table"
    );
}

#[test]
fn out_of_range_and_enum() {
    assert_eq!(
        errors("[rtp]\nport_max = 70000\n"),
        "t.toml:2: rtp.port_max: expected an integer from 0 to 65535, found 70000"
    );
    assert_eq!(
        errors("[rtp]\nsrtp = \"maybe\"\n"),
        "t.toml:2: rtp.srtp: \"maybe\" is not one of \"off\", \"optional\", \"required\""
    );
    assert_eq!(errors("[log]\nlevel = \"loud\"\n"), "t.toml:2: log.level: \"loud\" is not one of \"trace\", \"debug\", \"info\", \"warn\", \"error\"");
}

#[test]
fn missing_required_key() {
    assert_eq!(
        errors("[[trunk]]\nmatch_cidrs = []\n"),
        "t.toml:1: trunk[0]: missing required key `name`"
    );
}

#[test]
fn bad_cidr() {
    let text = "[policy]\n\n\n\n\nallow_cidrs = [\n  \"10.0.0.0/8\",\n  \"192.0.2.7\",\n  \"10.0.0.0/33\",\n]\n";
    assert_eq!(
        errors(text),
        "t.toml:9: policy.allow_cidrs[2]: \"10.0.0.0/33\" is not a CIDR"
    );
}

#[test]
fn bad_durations() {
    let text = "[webhook]\ntimeout = \"30\"\n[rtp]\nrtp_timeout = \"-1s\"\n[policy]\nmax_call_duration = \"1x\"\nfraud_alert = { within = 5 }\n";
    assert_eq!(
        errors(text),
        [
            "t.toml:2: webhook.timeout: \"30\" has no unit; write e.g. \"30s\" (units: ms, s, m, h)",
            "t.toml:4: rtp.rtp_timeout: \"-1s\" is not a duration; write e.g. \"30s\", \"5m\" or \"250ms\"",
            "t.toml:6: policy.max_call_duration: \"1x\" has an unknown unit \"x\" (units: ms, s, m, h)",
            "t.toml:7: policy.fraud_alert.within: 5 has no unit; write e.g. \"5s\" (units: ms, s, m, h)",
        ]
        .join("\n")
    );
    assert_eq!(
        errors("[rtp]\nrtp_timeout = \"0s\"\n"),
        "t.toml:2: rtp.rtp_timeout: must be more than 0s"
    );
}

#[test]
fn bad_sizes() {
    assert_eq!(
        errors("[sip]\nmax_message_size = \"64KB\"\n"),
        "t.toml:2: sip.max_message_size: \"64KB\" has an unknown unit \"KB\" (units: B, KiB, MiB, GiB)"
    );
    assert_eq!(
        errors("[sip]\nmax_message_size = 100\n"),
        "t.toml:2: sip.max_message_size: 100 bytes is outside 1KiB..16MiB"
    );
}

#[test]
fn bad_e164() {
    assert_eq!(
        errors("[policy]\nblocked_prefixes = [\"+99\", \"9x\"]\n"),
        "t.toml:2: policy.blocked_prefixes[1]: \"9x\" is not E.164: write 1 to 15 digits, optionally after \"+\" or \"00\" (separators \" -.()/\" are allowed)"
    );
    assert_eq!(
        errors("[[number]]\ndid = \"+48 12#3\"\nagent = { url = \"builtin:echo\" }\n"),
        "t.toml:2: number[0].did: \"+48 12#3\" is not E.164: write 1 to 15 digits, optionally after \"+\" or \"00\" (separators \" -.()/\" are allowed); use \"*\" for any DID"
    );
    // The one rule of core::number: separators and bare digits are numbers, as on calls.
    let ok = "[policy]\nblocked_prefixes = [\"99\"]\n[[number]]\ndid = \"+48 123\"\nagent = { url = \"builtin:echo\" }\n";
    let cfg = self::ok(ok);
    assert_eq!(cfg.numbers[0].did, DidPattern::Exact("+48123".into()));
}

#[test]
fn bad_urls() {
    let text = "[webhook]\nurl = \"ftp://x\"\n[callbacks]\nurl = \"https://\"\n[[number]]\ndid = \"*\"\nagent = { url = \"https://agent\" }\n[[number]]\ndid = \"+1\"\nagent = { url = \"builtin:parrot\" }\n";
    assert_eq!(
        errors(text),
        [
            "t.toml:2: webhook.url: \"ftp://x\" is not a URL starting with http:// or https://",
            "t.toml:4: callbacks.url: \"https://\" has no host",
            "t.toml:7: number[0].agent.url: \"https://agent\" is not a URL starting with ws:// or wss://",
            "t.toml:10: number[1].agent.url: \"builtin:parrot\" is not a built-in agent (known: builtin:echo)",
        ]
        .join("\n")
    );
}

#[test]
fn agent_sample_rate() {
    let text = "[[number]]\ndid = \"*\"\nagent = { url = \"wss://a\", dialect = \"raw\", sample_rate = 44100 }\n[[number]]\ndid = \"+1\"\nagent = { url = \"wss://a\", sample_rate = 16000 }\n";
    assert_eq!(
        errors(text),
        [
            "t.toml:3: number[0].agent.sample_rate: 44100 is not 8000 or 16000",
            "t.toml:6: number[1].agent.sample_rate: the twilio dialect carries 8000 Hz mu-law only",
        ]
        .join("\n")
    );
}

#[test]
fn duplicates() {
    let text = "[[trunk]]\nname = \"a\"\n[[trunk]]\nname = \"a\"\n[[number]]\ndid = \"+48123\"\nagent = { url = \"wss://a\" }\n[[number]]\ndid = \"0048123\"\nagent = { url = \"wss://a\" }\n";
    assert_eq!(
        errors(text),
        "t.toml:4: trunk[1].name: \"a\" is already the name of trunk[0]\nt.toml:9: number[1].did: \"0048123\" is already routed by number[0]"
    );
}

#[test]
fn fraud_alert_needs_url() {
    assert_eq!(
        errors(
            "[[trunk]]\nname = \"a\"\npolicy = { fraud_alert = { calls = 10, within = \"1m\" } }\n"
        ),
        "t.toml:3: trunk[0].policy.fraud_alert: calls = 10 needs a url or an email to send the alert to"
    );
}

#[test]
fn bad_hours() {
    assert_eq!(
        errors("[policy]\nhours = \"8-20\"\n"),
        "t.toml:2: policy.hours: \"8-20\" is not \"HH:MM-HH:MM Area/City\" (e.g. \"08:00-20:00 Europe/Warsaw\")"
    );
    if Path::new("/usr/share/zoneinfo").is_dir() {
        assert_eq!(
            errors("[policy]\nhours = \"08:00-20:00 Mars/Olympus\"\n"),
            "t.toml:2: policy.hours: unknown time zone \"Mars/Olympus\" (not in /usr/share/zoneinfo)"
        );
    }
}

#[test]
fn routes_and_transfers() {
    assert_eq!(
        errors("[[number]]\ndid = \"+48123\"\n"),
        "t.toml:2: number[0]: has no agent and webhook.url is empty: its calls could not be answered"
    );
    ok("[webhook]\nurl = \"https://p.example/in\"\n[[number]]\ndid = \"+48123\"\n");
    let text = "[[trunk]]\nname = \"t\"\nrequire_headers = { \"X Y\" = \"a\", Ok = \"a\\r\\nB: c\" }\ntransfer = { mode = \"notify\" }\noutbound = { address = \"host\", register = true }\n";
    assert_eq!(
        errors(text),
        [
            "t.toml:3: trunk[0].require_headers.\"X Y\": \"X Y\" is not a valid header name",
            "t.toml:3: trunk[0].require_headers.Ok: header values must not contain line breaks or control characters",
            "t.toml:4: trunk[0].transfer.url: mode \"notify\" needs the PBX notification url",
            "t.toml:5: trunk[0].outbound.address: \"host\" is not host:port (write e.g. \"sip.carrier.example:5060\")",
            "t.toml:5: trunk[0].outbound.username: register = true needs a username",
        ]
        .join("\n")
    );
}

#[test]
fn many_problems_reported_together() {
    let text = concat!(
        "[sip]\n",                           // 1
        "listen_udp = [\"nope\"]\n",         // 2
        "colour = \"blue\"\n",               // 3
        "max_headers = \"many\"\n",          // 4
        "shape = 1\n",                       // 5
        "[rtp]\n",                           // 6
        "port_min = 10001\n",                // 7
        "[policy]\n",                        // 8
        "allow_cidrs = [\"10.0.0.0/33\"]\n", // 9
        "[[trunk]]\n",                       // 10
        "name = \"a\"\n",                    // 11
        "[[trunk]]\n",                       // 12
        "name = \"a\"\n",                    // 13
        "unknown = true\n",                  // 14
        "[log]\n",                           // 15
        "format = \"xml\"\n",                // 16
    );
    let expected = [
        "t.toml:2: sip.listen_udp[0]: \"nope\" is not a socket address (write e.g. \"0.0.0.0:5060\")",
        "t.toml:3: sip.colour: unknown key; expected one of: listen_udp, listen_tcp, listen_tls, tls, public_address, user_agent, max_message_size, max_headers, max_header_len, session_expires, min_se, max_connections_per_source",
        "t.toml:4: sip.max_headers: expected a non-negative integer, found \"many\"",
        "t.toml:5: sip.shape: unknown key; expected one of: listen_udp, listen_tcp, listen_tls, tls, public_address, user_agent, max_message_size, max_headers, max_header_len, session_expires, min_se, max_connections_per_source",
        "t.toml:7: rtp.port_min: 10001 is odd; RTP uses even ports (RTCP takes the odd one above)",
        "t.toml:9: policy.allow_cidrs[0]: \"10.0.0.0/33\" is not a CIDR",
        "t.toml:13: trunk[1].name: \"a\" is already the name of trunk[0]",
        "t.toml:14: trunk[1].unknown: unknown key; expected one of: name, match_cidrs, require_headers, outbound, outbound_policy, transfer, policy, srtp, tls_client_ca, tls_client_names",
        "t.toml:16: log.format: \"xml\" is not one of \"json\", \"text\"",
    ];
    assert_eq!(errors(text), expected.join("\n"));
    let problems = parse(text, "t.toml").err().map(|e| e.problems.len());
    assert_eq!(problems, Some(expected.len()));
}

#[test]
fn load_reports_unreadable_file() {
    let e = load(Path::new("/nonexistent/trunkgate.toml"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e,
        Some(
            "/nonexistent/trunkgate.toml: cannot read: No such file or directory (os error 2)"
                .to_string()
        )
    );
}

#[test]
fn arbitrary_text_never_panics() {
    // A cheap stand-in for the fuzz target: many prefixes of a dense config.
    let text = std::fs::read_to_string(ETC).unwrap_or_default();
    let dense = with_examples(&text);
    for end in (0..dense.len())
        .step_by(7)
        .filter(|&i| dense.is_char_boundary(i))
    {
        let _ = parse(&dense[..end], "t.toml");
    }
}
