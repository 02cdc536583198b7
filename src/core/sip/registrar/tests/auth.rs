//! Challenges, answers, wrong-password buckets and nonces.

use super::*;

#[test]
fn no_credentials_get_both_challenges() {
    let mut f = Fix::new();
    let r = f.send(
        ALICE,
        &register("alice", "c1", 1, &[contact("sip:alice@192.0.2.10")]),
    );
    assert_eq!(
        (r.status, r.reason, r.why),
        (401, "Unauthorized", Why::NoCredentials)
    );
    assert_eq!(r.user, None);
    let values: Vec<&str> = r.header_values("www-authenticate").collect();
    assert_eq!(values.len(), 2, "{values:?}");
    let parsed: Vec<Challenge> = values
        .iter()
        .map(|v| parse_challenge(v).unwrap_or_else(|e| panic!("{e}: {v}")))
        .collect();
    let algs: Vec<Algorithm> = parsed.iter().map(|c| c.algorithm).collect();
    assert_eq!(algs, [Algorithm::Sha256, Algorithm::Md5], "SHA-256 first");
    for c in &parsed {
        assert_eq!(c.realm, "pbx.example");
        assert!(c.qop.is_some_and(|q| q.auth));
        assert!(!c.stale);
        assert_eq!(c.nonce.len(), 80, "hex of time, random and MAC");
    }
    assert_eq!(parsed[0].nonce, parsed[1].nonce, "one nonce for both");
    // A fresh draw gives a fresh nonce.
    let r2 = f.send(ALICE, &register("alice", "c1", 1, &[]));
    let n2 = r2
        .header("WWW-Authenticate")
        .and_then(|v| parse_challenge(v).ok());
    assert_ne!(n2.map(|c| c.nonce), Some(parsed[0].nonce.clone()));
    assert!(f.contacts("alice").is_empty());
}

#[test]
fn md5_and_sha256_answers_register() {
    for (alg, uri) in [
        (Algorithm::Md5, "sip:alice@192.0.2.10:5060"),
        (Algorithm::Sha256, "sip:alice@192.0.2.10:5062;transport=tcp"),
    ] {
        let mut f = Fix::new();
        let mut phone = Phone::new("alice", ALICE_PW, alg);
        let lines = [contact(uri), "Expires: 120".to_string()];
        let r = login(&mut f, &mut phone, ALICE, alice_req("c1", 1, &lines));
        assert_eq!((r.status, r.why), (200, Why::Registered), "{alg:?} {r:?}");
        assert_eq!(r.user.as_deref(), Some("alice"));
        assert_eq!(
            r.header("Contact"),
            Some(format!("<{uri}>;expires=120").as_str())
        );
        let b = f.reg.contacts("alice", f.now);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].uri, uri);
        assert_eq!(b[0].source, addr(ALICE));
        assert_eq!(b[0].call_id, "c1");
        assert_eq!(b[0].cseq, 1);
        assert_eq!(b[0].expires, f.now + Duration::from_secs(120));
        assert_eq!(f.reg.poll_timeout(), Some(b[0].expires));
    }
}

#[test]
fn expiry_from_contact_header_default_and_caps() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Sha256);
    // Contact's own expires wins over Expires; no expiry at all → the default; above max → max.
    let lines = [
        "Contact: <sip:a@192.0.2.10>;expires=90, <sip:b@192.0.2.10>".to_string(),
        "Contact: <sip:c@192.0.2.10>;expires=99999".to_string(),
    ];
    let r = login(&mut f, &mut phone, ALICE, alice_req("c1", 1, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    let got: Vec<&str> = r.header_values("Contact").collect();
    assert_eq!(
        got,
        [
            "<sip:a@192.0.2.10>;expires=90",
            "<sip:b@192.0.2.10>;expires=600",
            "<sip:c@192.0.2.10>;expires=3600"
        ]
    );
    // Below the minimum: 423 with Min-Expires, nothing changed.
    let lines = [contact("sip:a@192.0.2.10"), "Expires: 30".into()];
    let r = f.send(
        ALICE,
        &register("alice", "c1", 2, &with_auth(&lines, phone.authorization())),
    );
    assert_eq!((r.status, r.why), (423, Why::IntervalTooBrief));
    assert_eq!(r.header("Min-Expires"), Some("60"));
    assert_eq!(f.contacts("alice").len(), 3);
    // No Contact: the bindings are listed.
    let r = f.send(ALICE, &register("alice", "c1", 3, &[phone.authorization()]));
    assert_eq!((r.status, r.why), (200, Why::Queried));
    assert_eq!(r.header_values("Contact").count(), 3);
}

/// Only the source bucket counts (the per-user one has its own test).
fn source_only() -> Settings {
    Settings {
        per_user: RateLimit {
            burst: 1000,
            refill: Duration::from_secs(1),
        },
        ..settings()
    }
}

#[test]
fn wrong_password_then_source_bucket_blocks_without_checking() {
    let mut f = Fix::with(source_only());
    let mut liar = Phone::new("alice", "not-the-password", Algorithm::Md5);
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let first = f.send(ALICE, &register("alice", "c1", 1, &[]));
    liar.take(&first);
    phone.take(&first);
    for i in 0..5 {
        let r = f.send(
            ALICE,
            &register("alice", "c1", 2 + i, &[liar.authorization()]),
        );
        assert_eq!((r.status, r.why), (401, Why::WrongPassword), "attempt {i}");
        assert!(r.header("WWW-Authenticate").is_some(), "re-challenged");
        assert!(!r
            .header_values("WWW-Authenticate")
            .any(|v| v.contains("stale")));
    }
    // The bucket is empty: even the right password is not looked at.
    let r = f.send(ALICE, &register("alice", "c1", 9, &[phone.authorization()]));
    assert_eq!(
        (r.status, r.reason, r.why),
        (403, "Forbidden", Why::RateLimitedSource)
    );
    assert!(r.headers.is_empty());
    // Another port on the same IP is the same source; another IPv4 address is not.
    let r = f.send(
        "192.0.2.10:5999",
        &register("alice", "c1", 10, &[phone.authorization()]),
    );
    assert_eq!(r.why, Why::RateLimitedSource);
    let r = f.send(
        "192.0.2.11:5060",
        &register(
            "alice",
            "c1",
            11,
            &[contact("sip:a@x.example"), phone.authorization()],
        ),
    );
    assert_eq!((r.status, r.why), (200, Why::Registered), "{r:?}");
    // One token back per refill (10 s): one more try, then blocked again.
    f.at(10);
    let r = f.send(ALICE, &register("alice", "c1", 12, &[liar.authorization()]));
    assert_eq!(r.why, Why::WrongPassword);
    let r = f.send(
        ALICE,
        &register("alice", "c1", 13, &[phone.authorization()]),
    );
    assert_eq!(r.why, Why::RateLimitedSource);
    // Full again later; the refilled bucket is forgotten by expire().
    f.at(100);
    f.reg.expire(f.now);
    assert_eq!(f.reg.sources.len(), 0);
    let mut fresh = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let r = login(
        &mut f,
        &mut fresh,
        ALICE,
        alice_req("c2", 1, &[contact("sip:a@x.example")]),
    );
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn per_user_bucket_blocks_from_any_source() {
    let mut f = Fix::new();
    let mut liar = Phone::new("alice", "guess", Algorithm::Sha256);
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Sha256);
    let first = f.send(ALICE, &register("alice", "c1", 1, &[]));
    liar.take(&first);
    phone.take(&first);
    for i in 0..5u32 {
        let src = format!("203.0.113.{}:5060", i + 1);
        let r = f.send(
            &src,
            &register("alice", "c1", 2 + i, &[liar.authorization()]),
        );
        assert_eq!(r.why, Why::WrongPassword);
    }
    let r = f.send(ALICE, &register("alice", "c1", 9, &[phone.authorization()]));
    assert_eq!((r.status, r.why), (403, Why::RateLimitedUser));
    // Bob is not affected.
    let mut bob = Phone::new("bob", BOB_PW, Algorithm::Sha256);
    let bob_req = |auth: Option<String>| {
        let mut l = vec![contact("sip:bob@198.51.100.5")];
        l.extend(auth);
        register("bob", "b1", 1, &l)
    };
    let r = login(&mut f, &mut bob, "198.51.100.5:5060", bob_req);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn ipv6_sources_share_a_bucket_per_64() {
    let mut f = Fix::with(source_only());
    let mut liar = Phone::new("alice", "guess", Algorithm::Md5);
    let first = f.send("[2001:db8:1:2::1]:5060", &register("alice", "c1", 1, &[]));
    liar.take(&first);
    for i in 0..5u32 {
        let src = format!("[2001:db8:1:2::{}]:5060", i + 1);
        let r = f.send(&src, &register("bob-not", "c1", 2 + i, &[]));
        assert_eq!(r.why, Why::NoCredentials, "no answer, no charge");
        let r = f.send(
            &src,
            &register("alice", "c1", 2 + i, &[liar.authorization()]),
        );
        assert_eq!(r.why, Why::WrongPassword);
    }
    let r = f.send(
        "[2001:db8:1:2:ffff::9]:5060",
        &register("alice", "c1", 9, &[liar.authorization()]),
    );
    assert_eq!(r.why, Why::RateLimitedSource, "same /64");
    let r = f.send(
        "[2001:db8:1:3::1]:5060",
        &register("alice", "c1", 10, &[liar.authorization()]),
    );
    assert_eq!(r.why, Why::WrongPassword, "another /64");
    // An IPv4-mapped source is its IPv4 address.
    let mut f = Fix::with(source_only());
    let first = f.send("[::ffff:192.0.2.77]:5060", &register("alice", "c1", 1, &[]));
    liar.take(&first);
    for i in 0..5u32 {
        let r = f.send(
            "[::ffff:192.0.2.77]:5060",
            &register("alice", "c1", 2 + i, &[liar.authorization()]),
        );
        assert_eq!(r.why, Why::WrongPassword);
    }
    let r = f.send(
        "192.0.2.77:5060",
        &register("alice", "c1", 9, &[liar.authorization()]),
    );
    assert_eq!(r.why, Why::RateLimitedSource);
}

#[test]
fn unknown_user_is_answered_like_a_wrong_password() {
    let mut f = Fix::new();
    let mut ghost = Phone::new("mallory", "whatever", Algorithm::Md5);
    let mk = |auth: Vec<String>| register("mallory", "m1", 1, &auth);
    let r = f.send(ALICE, &mk(vec![]));
    assert_eq!(
        (r.status, r.why),
        (401, Why::NoCredentials),
        "challenged like anyone"
    );
    ghost.take(&r);
    for _ in 0..5 {
        let r = f.send(ALICE, &mk(vec![ghost.authorization()]));
        assert_eq!((r.status, r.why), (401, Why::UnknownUser));
        assert_eq!(r.header_values("WWW-Authenticate").count(), 2);
    }
    let r = f.send(ALICE, &mk(vec![ghost.authorization()]));
    assert_eq!(
        (r.status, r.why),
        (403, Why::RateLimitedSource),
        "charged to the source"
    );
    // The charge was the source's: alice from there is blocked too.
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    phone.take(&r_challenge(&mut f));
    let r = f.send(ALICE, &register("alice", "c1", 1, &[phone.authorization()]));
    assert_eq!(r.why, Why::RateLimitedSource);
}

/// A 401 drawn from a source no test blocks.
fn r_challenge(f: &mut Fix) -> Reply {
    f.send("192.0.2.200:5060", &register("alice", "x", 1, &[]))
}

#[test]
fn source_outside_allow_cidrs_is_forbidden_before_any_check() {
    let mut f = Fix::new();
    let mut bob = Phone::new("bob", BOB_PW, Algorithm::Sha256);
    let bob_req = |auth: Option<String>| {
        let mut l = vec![contact("sip:bob@198.51.100.5")];
        l.extend(auth);
        register("bob", "b1", 1, &l)
    };
    let r = f.send("192.0.2.50:5060", &bob_req(None));
    assert_eq!((r.status, r.why), (403, Why::SourceNotAllowed));
    assert!(r.headers.is_empty(), "no challenge");
    // With valid credentials (taken from an allowed source) still 403, and nothing charged.
    let ok = f.send("198.51.100.5:5060", &bob_req(None));
    bob.take(&ok);
    for _ in 0..10 {
        let r = f.send("192.0.2.50:5060", &bob_req(Some(bob.authorization())));
        assert_eq!(r.why, Why::SourceNotAllowed);
    }
    assert_eq!(f.reg.sources.len(), 0);
    assert_eq!(f.reg.user_failures.len(), 0);
    let r = f.send(
        "[2001:db8:b:1::5]:5060",
        &bob_req(Some(bob.authorization())),
    );
    assert_eq!(
        (r.status, r.why),
        (200, Why::Registered),
        "inside the IPv6 CIDR: {r:?}"
    );
    let r = f.send("[2001:db8:c::5]:5060", &bob_req(Some(bob.authorization())));
    assert_eq!(r.why, Why::SourceNotAllowed);
}

#[test]
fn stale_nonce_gets_stale_true() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Sha256);
    let first = f.send(ALICE, &register("alice", "c1", 1, &[]));
    phone.take(&first);
    // Within the lifetime (300 s) the nonce is good.
    f.at(300);
    let r = f.send(
        ALICE,
        &register(
            "alice",
            "c1",
            2,
            &[contact("sip:a@x.example"), phone.authorization()],
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    f.at(301);
    let r = f.send(
        ALICE,
        &register(
            "alice",
            "c1",
            3,
            &[contact("sip:a@x.example"), phone.authorization()],
        ),
    );
    assert_eq!((r.status, r.why), (401, Why::StaleNonce));
    let values: Vec<&str> = r.header_values("WWW-Authenticate").collect();
    assert_eq!(values.len(), 2);
    for v in &values {
        let c = parse_challenge(v).unwrap_or_else(|e| panic!("{e}: {v}"));
        assert!(c.stale, "{v}");
    }
    // The fresh nonce works; a stale nonce with a wrong password is a wrong password.
    let old = phone.challenge.clone();
    phone.take(&r);
    let r2 = f.send(
        ALICE,
        &register(
            "alice",
            "c1",
            4,
            &[contact("sip:a@x.example"), phone.authorization()],
        ),
    );
    assert_eq!(r2.status, 200, "{r2:?}");
    let mut liar = Phone::new("alice", "nope", Algorithm::Sha256);
    liar.challenge = old;
    let r3 = f.send(ALICE, &register("alice", "c1", 5, &[liar.authorization()]));
    assert_eq!(r3.why, Why::WrongPassword);
}

#[test]
fn nonce_count_must_increase() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let first = f.send(ALICE, &register("alice", "c1", 1, &[]));
    phone.take(&first);
    let auth = phone.authorization();
    let r = f.send(
        ALICE,
        &register(
            "alice",
            "c1",
            2,
            &[contact("sip:a@x.example"), auth.clone()],
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The very same request again: a replay.
    let r = f.send(
        ALICE,
        &register("alice", "c1", 2, &[contact("sip:a@x.example"), auth]),
    );
    assert_eq!((r.status, r.why), (401, Why::Replay));
    // Skipping ahead is fine, going back is not.
    let r = f.send(
        ALICE,
        &register(
            "alice",
            "c1",
            3,
            &[format!("Authorization: {}", phone.answer(5))],
        ),
    );
    assert_eq!(r.why, Why::Queried);
    for nc in [5, 4, 1] {
        let r = f.send(
            ALICE,
            &register(
                "alice",
                "c1",
                4,
                &[format!("Authorization: {}", phone.answer(nc))],
            ),
        );
        assert_eq!(r.why, Why::Replay, "nc {nc}");
    }
    let r = f.send(
        ALICE,
        &register(
            "alice",
            "c1",
            5,
            &[format!("Authorization: {}", phone.answer(6))],
        ),
    );
    assert_eq!(r.why, Why::Queried);
    // nc=0 is not a count.
    let r = f.send(
        ALICE,
        &register(
            "alice",
            "c1",
            6,
            &[format!("Authorization: {}", phone.answer(0))],
        ),
    );
    assert_eq!(r.why, Why::BadCredentials("missing or malformed nc"));
    assert_eq!(f.reg.nonces.len(), 1);
}

#[test]
fn nonce_from_another_key_or_forged_is_refused() {
    let mut f = Fix::new();
    let other = Registrar::new(settings(), users(), [9; 32], f.t0);
    let foreign = other.challenge(f.t0, [1; 16], &Alg::BOTH, Why::NoCredentials);
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    phone.take(&foreign);
    let r = f.send(ALICE, &register("alice", "c1", 1, &[phone.authorization()]));
    assert_eq!((r.status, r.why), (401, Why::BadNonce));
    // A flipped digit in one of our nonces.
    let first = f.send(ALICE, &register("alice", "c1", 1, &[]));
    phone.take(&first);
    if let Some(c) = phone.challenge.as_mut() {
        let flipped = if c.nonce.ends_with('0') { '1' } else { '0' };
        c.nonce.pop();
        c.nonce.push(flipped);
    }
    let r = f.send(ALICE, &register("alice", "c1", 2, &[phone.authorization()]));
    assert_eq!(r.why, Why::BadNonce);
}
