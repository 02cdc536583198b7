//! Configuration tests for `[[user]]`: the keys and their defaults, each problem's exact text,
//! key path and line, and reading the password files (`Config::read_users`).

use std::path::PathBuf;

use super::tests::{errors, ok};
use super::*;

/// A file in this test process's own directory.
fn temp(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trunkgate-users-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, content) {
        panic!("{}: {e}", path.display());
    }
    path
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn user_toml(name: &str, password_file: &str, extra: &str) -> String {
    format!("[[user]]\nname = {name:?}\npassword_file = {password_file:?}\n{extra}")
}

#[test]
fn valid_users_and_their_passwords() {
    let alice = temp("alice", b"alice-pw-91\n");
    let bob = temp("bob", b"bob-pw-22");
    let text = format!(
        "{}{}",
        user_toml(
            "alice",
            &alice.display().to_string(),
            "allow_cidrs = [\"192.0.2.0/24\", \"2001:db8::1/32\", \"198.51.100.7\"]\n\
             digest = [\"md5\"]\n"
        ),
        user_toml("bob.desk_2-b", &bob.display().to_string(), ""),
    );
    let c = ok(&text);
    assert_eq!(
        c.users,
        vec![
            UserConfig {
                name: "alice".into(),
                password_file: alice.clone(),
                allow_cidrs: vec![
                    net("192.0.2.0/24"),
                    net("2001:db8::/32"),
                    net("198.51.100.7/32")
                ],
                digest: vec!["MD5".into()],
            },
            UserConfig {
                name: "bob.desk_2-b".into(),
                password_file: bob.clone(),
                allow_cidrs: Vec::new(),
                digest: Vec::new(),
            },
        ]
    );
    let loaded = c.read_users().unwrap_or_else(|e| panic!("{e:?}"));
    let got: Vec<(&str, &str, usize)> = loaded
        .iter()
        .map(|u| (u.name.as_str(), u.password.expose(), u.allow_cidrs.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("alice", "alice-pw-91", 3),
            ("bob.desk_2-b", "bob-pw-22", 0)
        ]
    );
    let shown = format!("{loaded:?} {c:?}");
    assert!(!shown.contains("alice-pw-91") && !shown.contains("bob-pw-22"));
    assert!(shown.contains("<redacted>"), "{shown}");
    // No [[user]] at all: none.
    assert!(ok("").users.is_empty());
    assert_eq!(ok("").read_users(), Ok(Vec::new()));
    let _ = std::fs::remove_file(alice);
    let _ = std::fs::remove_file(bob);
}

#[test]
fn missing_or_empty_password_file_is_reported_at_check_time() {
    let good = temp("good", b"pw");
    let empty = temp("empty", b" \n");
    let missing = good.with_file_name("missing");
    let text = format!(
        "{}{}{}",
        user_toml("a", &missing.display().to_string(), ""),
        user_toml("b", &good.display().to_string(), ""),
        user_toml("c", &empty.display().to_string(), ""),
    );
    // Parsing never reads the files (`--check-config` parses where the secrets are not)...
    let c = ok(&text);
    // ...reading them reports each unusable one by its key path.
    let problems = c.read_users().err().unwrap_or_default();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(
        problems[0],
        format!(
            "user[0].password_file: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert_eq!(
        problems[1],
        format!("user[2].password_file: {} is empty", empty.display())
    );
    assert!(c.users[1].read_password().is_ok());
    // The key itself is required and may not be "".
    assert_eq!(
        errors("[[user]]\nname = \"a\"\n"),
        "t.toml:1: user[0]: missing required key `password_file`"
    );
    assert_eq!(
        errors(&user_toml("a", "", "")),
        "t.toml:3: user[0].password_file: must name the file holding the user's password"
    );
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(empty);
}

#[test]
fn empty_or_bad_name() {
    assert_eq!(
        errors(&user_toml("", "/etc/trunkgate/users/x", "")),
        "t.toml:2: user[0].name: \"\" is not a user name (letters, digits, '.', '_', '-')"
    );
    for bad in ["al ice", "alice@pbx", "al:ice", "\u{e9}ve", "a;b", "a\"b"] {
        let e = errors(&user_toml(bad, "/etc/trunkgate/users/x", ""));
        assert!(
            e.starts_with("t.toml:2: user[0].name: ")
                && e.ends_with("is not a user name (letters, digits, '.', '_', '-')"),
            "{bad:?}: {e}"
        );
    }
    assert_eq!(
        errors("[[user]]\npassword_file = \"/x\"\n"),
        "t.toml:1: user[0]: missing required key `name`"
    );
}

#[test]
fn duplicate_name() {
    let text = format!(
        "{}{}{}",
        user_toml("alice", "/etc/trunkgate/users/a", ""),
        user_toml("bob", "/etc/trunkgate/users/b", ""),
        user_toml("alice", "/etc/trunkgate/users/c", ""),
    );
    assert_eq!(
        errors(&text),
        "t.toml:8: user[2].name: \"alice\" is already the name of user[0]"
    );
}

#[test]
fn bad_cidr() {
    let text = user_toml(
        "alice",
        "/etc/trunkgate/users/a",
        "allow_cidrs = [\"10.0.0.0/8\", \"10.0.0.0/33\", \"host.example\"]\n",
    );
    assert_eq!(
        errors(&text),
        [
            "t.toml:4: user[0].allow_cidrs[1]: \"10.0.0.0/33\" is not a CIDR",
            "t.toml:4: user[0].allow_cidrs[2]: \"host.example\" is not a CIDR",
        ]
        .join("\n")
    );
    assert_eq!(
        errors(&user_toml("a", "/p", "allow_cidrs = \"10.0.0.0/8\"\n")),
        "t.toml:4: user[0].allow_cidrs: expected an array, found \"10.0.0.0/8\""
    );
}

#[test]
fn bad_digest() {
    let e = errors(&user_toml("a", "/p", "digest = [\"SHA-512\"]\n"));
    assert!(
        e.contains("user[0].digest[0]: \"SHA-512\" is not a digest algorithm"),
        "{e}"
    );
    for bad in ["[]", "[\"MD5\", \"md5\"]"] {
        let e = errors(&user_toml("a", "/p", &format!("digest = {bad}\n")));
        assert!(e.contains("user[0].digest: one or both"), "{bad}: {e}");
    }
}

#[test]
fn unknown_key_and_wrong_shape() {
    assert_eq!(
        errors(&user_toml("alice", "/p", "password = \"hunter2\"\n")),
        "t.toml:4: user[0].password: unknown key; expected one of: name, password_file, allow_cidrs, digest"
    );
    let e = errors("user = \"alice\"\n");
    assert!(
        e.starts_with("t.toml:1: user: expected an array of tables ([[user]])"),
        "{e}"
    );
    assert!(!e.contains("hunter2"));
}
