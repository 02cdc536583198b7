//! Configuration tests for fraud-alert mail (`fraud_alert.email` in every policy layer and the
//! `[smtp]` section): defaults, typed values, the rule that an address needs `[smtp] host` and
//! `from`, and each problem's exact text, key path and line. The shipped template's defaults
//! are checked with every other section's in `tests.rs`.

use std::path::PathBuf;
use std::time::Duration;

use super::tests::{errors, ok, with_examples, ETC};
use super::*;

const SMTP: &str = "[smtp]\nhost = \"smtp.example.com\"\nfrom = \"alerts@example.com\"\n";

fn email(p: &PolicyConfig) -> Vec<String> {
    p.fraud_alert
        .as_ref()
        .map(|f| f.email.clone())
        .unwrap_or_default()
}

#[test]
fn defaults_send_no_mail() {
    let c = ok("");
    let s = &c.smtp;
    assert_eq!(s.host, None);
    assert_eq!(s.port, 587);
    assert_eq!(s.starttls, SmtpTls::Required);
    assert_eq!(
        (&s.username, &s.password_file, &s.from),
        (&None, &None, &None)
    );
    assert_eq!(s.timeout, Duration::from_secs(10));
    assert!(email(&c.policy).is_empty());
    let empty = ok(
        "[smtp]\nhost = \"\"\nusername = \"\"\npassword_file = \"\"\nfrom = \"\"\n\
                    [policy]\nfraud_alert = { calls = 0, email = \"\" }\n",
    );
    assert_eq!(empty.smtp, c.smtp, "\"\" is none");
    assert!(email(&empty.policy).is_empty());
    assert!(email(&ok("[policy]\nfraud_alert = { email = [] }\n").policy).is_empty());
}

#[test]
fn values_are_typed() {
    let c = ok(concat!(
        "[smtp]\n",
        "host = \"smtp.example.com\"\n",
        "port = 2525\n",
        "starttls = \"required\"\n",
        "username = \"trunkgate\"\n",
        "password_file = \"/etc/trunkgate/smtp.password\"\n",
        "from = \"Trunk Gate <alerts@example.com>\"\n",
        "timeout = \"30s\"\n",
        "[policy]\n",
        "fraud_alert = { calls = 10, within = \"1m\", email = \"noc@example.com\" }\n",
        "[[trunk]]\nname = \"carrier\"\n",
        "policy = { fraud_alert = { calls = 5, email = [\"a@example.com\", \"b.c+d@ops.example.org\"], url = \"https://ops.example/a\" } }\n",
        "[[number]]\ndid = \"+48123456789\"\nagent = { url = \"wss://a\" }\n",
        "policy = { fraud_alert = { calls = 2, email = [\"root@localhost\", \"x@[192.0.2.1]\"] } }\n",
    ));
    let s = &c.smtp;
    assert_eq!(s.host.as_deref(), Some("smtp.example.com"));
    assert_eq!(s.port, 2525);
    assert_eq!(s.username.as_deref(), Some("trunkgate"));
    assert_eq!(
        s.password_file,
        Some(PathBuf::from("/etc/trunkgate/smtp.password"))
    );
    assert_eq!(
        s.from,
        Some(MailFrom {
            name: Some("Trunk Gate".into()),
            address: "alerts@example.com".into()
        })
    );
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!(email(&c.policy), ["noc@example.com"]);
    assert_eq!(
        email(&c.trunks[0].policy),
        ["a@example.com", "b.c+d@ops.example.org"]
    );
    let trunk_alert = c.trunks[0].policy.fraud_alert.as_ref();
    assert_eq!(
        trunk_alert.and_then(|f| f.url.as_deref()),
        Some("https://ops.example/a")
    );
    assert_eq!(
        email(&c.numbers[0].policy),
        ["root@localhost", "x@[192.0.2.1]"]
    );

    let tls = ok(&format!("{SMTP}starttls = \"tls\"\n"));
    assert_eq!((tls.smtp.starttls, tls.smtp.port), (SmtpTls::Tls, 465));
    let tls = ok(&format!("{SMTP}starttls = \"tls\"\nport = 10465\n"));
    assert_eq!(tls.smtp.port, 10465);
    let off = ok(&format!("{SMTP}starttls = \"off\"\n"));
    assert_eq!((off.smtp.starttls, off.smtp.port), (SmtpTls::Off, 587));
    let quoted = ok("[smtp]\nfrom = '\"NOC, trunkgate\" <noc@example.com>'\n");
    assert_eq!(
        quoted.smtp.from.and_then(|f| f.name).as_deref(),
        Some("NOC, trunkgate")
    );
    // Loopback may be given a password over plain SMTP (tests, local relays).
    let local = ok(
        "[smtp]\nhost = \"127.0.0.1\"\nstarttls = \"off\"\nusername = \"u\"\n\
                    password_file = \"/p\"\n",
    );
    assert_eq!(local.smtp.host.as_deref(), Some("127.0.0.1"));
}

#[test]
fn an_alert_may_be_mailed_only() {
    let c = ok(&format!(
        "{SMTP}[policy]\nfraud_alert = {{ calls = 3, within = \"5m\", email = \"noc@example.com\" }}\n"
    ));
    let alert = c.policy.fraud_alert.as_ref();
    assert_eq!(alert.map(|a| (a.calls, a.url.is_none())), Some((3, true)));
    assert_eq!(
        errors("[policy]\nfraud_alert = { calls = 3, email = [] }\n"),
        "t.toml:2: policy.fraud_alert: calls = 3 needs a url or an email to send the alert to"
    );
}

#[test]
fn email_needs_smtp_host_and_from() {
    let text = concat!(
        "[policy]\n",
        "fraud_alert = { calls = 3, email = \"noc@example.com\" }\n",
        "[[trunk]]\nname = \"a\"\n",
        "policy = { fraud_alert = { calls = 3, email = [\"a@example.com\"] } }\n",
        "[[number]]\ndid = \"+48123456789\"\nagent = { url = \"wss://a\" }\n",
        "policy = { fraud_alert = { calls = 3, url = \"https://ops.example/a\" } }\n",
    );
    assert_eq!(
        errors(text),
        [
            "t.toml:2: policy.fraud_alert.email: mailing the alert needs smtp.host and smtp.from to be set",
            "t.toml:5: trunk[0].policy.fraud_alert.email: mailing the alert needs smtp.host and smtp.from to be set",
        ]
        .join("\n")
    );
    let no_from = format!("[smtp]\nhost = \"smtp.example.com\"\n{text}");
    let got = errors(&no_from);
    assert!(
        got.starts_with(
            "t.toml:4: policy.fraud_alert.email: mailing the alert needs smtp.from to be set"
        ),
        "{got}"
    );
    let no_host = format!("[smtp]\nfrom = \"alerts@example.com\"\n{text}");
    assert!(errors(&no_host).contains("needs smtp.host to be set"));
    // Set but invalid: only its own problem.
    assert_eq!(
        errors(&format!("[smtp]\nhost = \"smtp.example.com\"\nfrom = \"nobody\"\n{text}")),
        "t.toml:3: smtp.from: \"nobody\" is not a sender (write e.g. \"alerts@example.com\" or \"trunkgate <alerts@example.com>\")"
    );
    ok(&format!("{SMTP}{text}"));
}

#[test]
fn bad_addresses_name_key_and_line() {
    let text = format!(
        "{SMTP}[policy]\nfraud_alert = {{ calls = 1, email = \"noc@\" }}\n\
         [[trunk]]\nname = \"a\"\n\
         policy = {{ fraud_alert = {{ calls = 1, email = [\"ok@example.com\", \"two words@example.com\", \"ok@example.com\", \"a@b..c\", \"\"] }} }}\n"
    );
    assert_eq!(
        errors(&text),
        [
            "t.toml:5: policy.fraud_alert.email: \"noc@\" is not an e-mail address (write e.g. \"ops@example.com\")",
            "t.toml:8: trunk[0].policy.fraud_alert.email[1]: \"two words@example.com\" is not an e-mail address (write e.g. \"ops@example.com\")",
            "t.toml:8: trunk[0].policy.fraud_alert.email[2]: \"ok@example.com\" is listed twice",
            "t.toml:8: trunk[0].policy.fraud_alert.email[3]: \"a@b..c\" is not an e-mail address (write e.g. \"ops@example.com\")",
            "t.toml:8: trunk[0].policy.fraud_alert.email[4]: \"\" is not an e-mail address (write e.g. \"ops@example.com\")",
        ]
        .join("\n")
    );
    for bad in [
        "@example.com",
        "a@",
        "a@@b",
        "a.@example.com",
        "a@-x.example",
        "a@[300.1.1.1]",
    ] {
        let got = errors(&format!(
            "{SMTP}[policy]\nfraud_alert = {{ email = \"{bad}\" }}\n"
        ));
        assert!(got.contains("is not an e-mail address"), "{bad}: {got}");
    }
    let long = format!("{}@example.com", "a".repeat(250));
    let got = errors(&format!(
        "{SMTP}[policy]\nfraud_alert = {{ email = \"{long}\" }}\n"
    ));
    assert!(got.contains("is longer than 254 characters"), "{got}");
    assert!(errors("[policy]\nfraud_alert = { email = 5 }\n")
        .contains("policy.fraud_alert.email: expected a string or an array of strings, found 5"));
}

#[test]
fn smtp_problems_name_key_and_line() {
    let text = concat!(
        "[smtp]\n",
        "host = \"smtp.example.com:587\"\n",
        "port = 0\n",
        "username = \"a b\"\n",
        "from = \"Ops <ops@>\"\n",
        "timeout = \"0s\"\n",
    );
    assert_eq!(
        errors(text),
        [
            "t.toml:2: smtp.host: \"smtp.example.com:587\": write the port in smtp.port",
            "t.toml:3: smtp.port: must be from 1 to 65535",
            "t.toml:4: smtp.username: must not contain whitespace or control characters",
            "t.toml:4: smtp.username: needs smtp.password_file (the password to log in with)",
            "t.toml:5: smtp.from: \"Ops <ops@>\" is not a sender (write e.g. \"alerts@example.com\" or \"trunkgate <alerts@example.com>\")",
            "t.toml:6: smtp.timeout: must be more than 0s",
        ]
        .join("\n")
    );
    assert_eq!(
        errors("[smtp]\nhost = \"smtp example\"\n"),
        "t.toml:2: smtp.host: \"smtp example\" is not a host name or IP address"
    );
    assert_eq!(
        errors("[smtp]\npassword_file = \"/p\"\n"),
        "t.toml:2: smtp.password_file: needs smtp.username (who to log in as)"
    );
    assert_eq!(
        errors("[smtp]\nhost = \"smtp.example.com\"\nstarttls = \"off\"\nusername = \"u\"\npassword_file = \"/p\"\n"),
        "t.toml:5: smtp.password_file: with starttls = \"off\" the password would cross the network to smtp.example.com unencrypted; use starttls = \"required\" or \"tls\" (plain SMTP with a password is allowed to a loopback host only)"
    );
    assert_eq!(
        errors("[smtp]\nstarttls = \"yes\"\n"),
        "t.toml:2: smtp.starttls: \"yes\" is not one of \"required\", \"tls\", \"off\""
    );
    assert_eq!(
        errors("[smtp]\ntimeout = 10\n"),
        "t.toml:2: smtp.timeout: 10 has no unit; write e.g. \"10s\" (units: ms, s, m, h)"
    );
    assert_eq!(
        errors("[smtp]\nsender = \"a@b\"\n"),
        "t.toml:2: smtp.sender: unknown key; expected one of: host, port, starttls, username, password_file, from, timeout"
    );
    assert_eq!(
        errors("[policy]\nfraud_alert = { mail = \"a@b\" }\n"),
        "t.toml:2: policy.fraud_alert.mail: unknown key; expected one of: calls, within, url, email"
    );
}

#[test]
fn template_example_is_valid() {
    let text = std::fs::read_to_string(ETC).unwrap_or_default();
    let c = ok(&with_examples(&text));
    assert_eq!(c.smtp.host.as_deref(), Some("smtp.example.com"));
    assert_eq!(c.smtp.username.as_deref(), Some("trunkgate"));
    assert_eq!(
        c.smtp.password_file,
        Some(PathBuf::from("/etc/trunkgate/smtp.password"))
    );
    assert_eq!(
        c.smtp.from.as_ref().map(|f| f.address.as_str()),
        Some("alerts@example.com")
    );
    assert_eq!(email(&c.policy), ["noc@example.com", "oncall@example.com"]);
}
