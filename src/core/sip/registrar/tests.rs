//! The registrar on a virtual clock: every `Instant` is built from one start, nothing sleeps.
//! Phones answer our challenges with the UAC digest code (`core::sip::auth::respond`), so the
//! server side is checked against the client the gateway already uses toward trunks.

use super::*;
use crate::core::sip::auth::{parse_challenge, respond, Algorithm, Challenge, Credentials};
use crate::core::sip::message::Limits;

const RURI: &str = "sip:pbx.example";
const ALICE_PW: &str = "alice-pw-Zq81";
const BOB_PW: &str = "bob-pw-Hx22";
const ALICE: &str = "192.0.2.10:5060";
const KEY: [u8; 32] = [7; 32];

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn users() -> Vec<User> {
    vec![
        User {
            name: "alice".into(),
            password: ALICE_PW.into(),
            allow_cidrs: Vec::new(),
            digest: Vec::new(),
        },
        User {
            name: "bob".into(),
            password: BOB_PW.into(),
            allow_cidrs: vec![net("198.51.100.0/24"), net("2001:db8:b::/48")],
            digest: Vec::new(),
        },
    ]
}

fn settings() -> Settings {
    Settings {
        realm: "pbx.example".into(),
        max_contacts_per_user: 3,
        ..Settings::default()
    }
}

/// A registrar and its clock.
struct Fix {
    reg: Registrar,
    t0: Instant,
    now: Instant,
    draws: u8,
}

impl Fix {
    fn new() -> Fix {
        Fix::with(settings())
    }

    fn with(settings: Settings) -> Fix {
        let t0 = Instant::now();
        Fix {
            reg: Registrar::new(settings, users(), KEY, t0),
            t0,
            now: t0,
            draws: 0,
        }
    }

    fn at(&mut self, secs: u64) {
        self.now = self.t0 + Duration::from_secs(secs);
    }

    fn send(&mut self, source: &str, req: &Message) -> Reply {
        self.draws = self.draws.wrapping_add(1);
        let random = [self.draws; 16];
        self.reg.handle(self.now, addr(source), req, random)
    }

    fn contacts(&self, user: &str) -> Vec<String> {
        let b = self.reg.contacts(user, self.now);
        b.into_iter().map(|b| b.uri).collect()
    }
}

/// A REGISTER for `to_user` with `extra` header lines (each without CRLF).
fn register(to_user: &str, call_id: &str, cseq: u32, extra: &[String]) -> Message {
    let mut s = format!(
        "REGISTER {RURI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{call_id}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{to_user}@pbx.example>;tag=ph1\r\n\
         To: <sip:{to_user}@pbx.example>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    for line in extra {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(s.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{s}"))
}

fn contact(uri: &str) -> String {
    format!("Contact: <{uri}>")
}

/// A desk phone: its credentials, the challenge it last took and its `nc`.
struct Phone {
    credentials: Credentials,
    algorithm: Algorithm,
    challenge: Option<Challenge>,
    nc: u32,
}

impl Phone {
    fn new(user: &str, password: &str, algorithm: Algorithm) -> Phone {
        Phone {
            credentials: Credentials::new(user, password),
            algorithm,
            challenge: None,
            nc: 0,
        }
    }

    /// Takes the challenge of its algorithm from a 401.
    fn take(&mut self, reply: &Reply) {
        assert_eq!(reply.status, 401, "{reply:?}");
        let c = reply
            .header_values("WWW-Authenticate")
            .filter_map(|v| parse_challenge(v).ok())
            .find(|c| c.algorithm == self.algorithm)
            .unwrap_or_else(|| panic!("no {:?} challenge in {reply:?}", self.algorithm));
        self.challenge = Some(c);
        self.nc = 0;
    }

    /// `Authorization: …` for the next request, `nc` advanced.
    fn authorization(&mut self) -> String {
        self.nc += 1;
        format!("Authorization: {}", self.answer(self.nc))
    }

    /// The Authorization value with a chosen `nc` (the phone's own count is not touched).
    fn answer(&self, nc: u32) -> String {
        let c = self.challenge.as_ref().expect("a challenge was taken");
        respond(&self.credentials, c, "REGISTER", RURI, "0a4f113b", nc)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    }
}

/// Challenge, then answer: the reply to the authenticated REGISTER.
fn login(
    f: &mut Fix,
    phone: &mut Phone,
    source: &str,
    req: impl Fn(Option<String>) -> Message,
) -> Reply {
    let first = f.send(source, &req(None));
    phone.take(&first);
    let auth = phone.authorization();
    f.send(source, &req(Some(auth)))
}

/// REGISTER from alice with `lines`, plus Authorization when given.
fn alice_req(call_id: &str, cseq: u32, lines: &[String]) -> impl Fn(Option<String>) -> Message {
    let (call_id, lines) = (call_id.to_owned(), lines.to_vec());
    move |auth| {
        let mut l = lines.clone();
        l.extend(auth);
        register("alice", &call_id, cseq, &l)
    }
}

fn with_auth(lines: &[String], auth: String) -> Vec<String> {
    let mut l = lines.to_vec();
    l.push(auth);
    l
}

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

#[test]
fn expires_zero_removes_one_binding() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Sha256);
    let lines = [contact("sip:a@192.0.2.10"), contact("sip:b@192.0.2.10")];
    let r = login(&mut f, &mut phone, ALICE, alice_req("c1", 1, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        f.contacts("alice"),
        ["sip:a@192.0.2.10", "sip:b@192.0.2.10"]
    );
    // URI case is ignored when matching.
    let lines = [
        contact("sip:A@192.0.2.10"),
        "Expires: 0".into(),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 2, &lines));
    assert_eq!((r.status, r.why), (200, Why::Registered));
    assert_eq!(f.contacts("alice"), ["sip:b@192.0.2.10"]);
    assert_eq!(
        r.header_values("Contact").collect::<Vec<_>>(),
        ["<sip:b@192.0.2.10>;expires=600"]
    );
    // Via the Contact parameter, and removing an unknown contact is fine.
    let lines = [
        "Contact: <sip:b@192.0.2.10>;expires=0, <sip:zz@192.0.2.10>;expires=0".to_string(),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 3, &lines));
    assert_eq!(r.status, 200);
    assert!(f.contacts("alice").is_empty());
    assert!(r.header("Contact").is_none());
    assert_eq!(f.reg.poll_timeout(), None);
}

#[test]
fn star_with_expires_zero_removes_all() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let lines = [contact("sip:a@192.0.2.10"), contact("sip:b@192.0.2.10")];
    let r = login(&mut f, &mut phone, ALICE, alice_req("c1", 1, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    // `*` needs Expires: 0 and nothing else.
    let r = f.send(
        ALICE,
        &register(
            "alice",
            "c1",
            2,
            &["Contact: *".into(), phone.authorization()],
        ),
    );
    assert_eq!(r.status, 400, "{r:?}");
    let lines = [
        "Contact: *".into(),
        contact("sip:c@192.0.2.10"),
        "Expires: 0".into(),
        phone.authorization(),
    ];
    assert_eq!(
        f.send(ALICE, &register("alice", "c1", 3, &lines)).status,
        400
    );
    // Out of order for this Call-ID: nothing removed.
    let lines = [
        "Contact: *".into(),
        "Expires: 0".into(),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 1, &lines));
    assert_eq!((r.status, r.why), (500, Why::OutOfOrder));
    assert_eq!(f.contacts("alice").len(), 2);
    let lines = [
        "Contact: *".into(),
        "Expires: 0".into(),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 4, &lines));
    assert_eq!((r.status, r.why), (200, Why::Registered));
    assert!(r.header("Contact").is_none());
    assert!(f.contacts("alice").is_empty());
    assert_eq!(f.reg.location.len(), 0);
}

#[test]
fn bindings_expire_over_time() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let lines = [
        "Contact: <sip:short@192.0.2.10>;expires=60, <sip:long@192.0.2.10>;expires=300".to_string(),
    ];
    let r = login(&mut f, &mut phone, ALICE, alice_req("c1", 1, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(f.reg.poll_timeout(), Some(f.t0 + Duration::from_secs(60)));
    f.now = f.t0 + Duration::from_millis(59_500);
    let b = f.reg.contacts("alice", f.now);
    assert_eq!(b.len(), 2);
    assert_eq!(
        b[0].header_value(f.now),
        "<sip:short@192.0.2.10>;expires=1",
        "rounded up"
    );
    f.at(60);
    assert_eq!(
        f.contacts("alice"),
        ["sip:long@192.0.2.10"],
        "gone from lookup at once"
    );
    assert_eq!(f.reg.location.len(), 2, "until expire() runs");
    f.reg.expire(f.now);
    assert_eq!(f.reg.location.len(), 1);
    assert_eq!(f.reg.poll_timeout(), Some(f.t0 + Duration::from_secs(300)));
    // A refresh moves the expiry.
    f.at(200);
    let lines = [
        contact("sip:long@192.0.2.10"),
        "Expires: 300".into(),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 2, &lines));
    assert_eq!(
        r.header("Contact"),
        Some("<sip:long@192.0.2.10>;expires=300")
    );
    f.at(499);
    assert_eq!(f.contacts("alice").len(), 1);
    f.at(500);
    assert!(f.contacts("alice").is_empty());
    f.reg.expire(f.now);
    assert_eq!(f.reg.poll_timeout(), None);
    assert!(format!("{:?}", f.reg).contains("bindings: 0"));
}

#[test]
fn too_many_contacts_are_forbidden_and_nothing_changes() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let lines = [contact("sip:a@192.0.2.10"), contact("sip:b@192.0.2.10")];
    let r = login(&mut f, &mut phone, ALICE, alice_req("c1", 1, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    let lines = [
        contact("sip:c@192.0.2.10"),
        contact("sip:d@192.0.2.10"),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 2, &lines));
    assert_eq!((r.status, r.why), (403, Why::TooManyContacts));
    assert_eq!(
        f.contacts("alice"),
        ["sip:a@192.0.2.10", "sip:b@192.0.2.10"]
    );
    // Removing one while adding two stays within three.
    let lines = [
        "Contact: <sip:a@192.0.2.10>;expires=0".to_string(),
        contact("sip:c@192.0.2.10"),
        contact("sip:d@192.0.2.10"),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 3, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        f.contacts("alice"),
        ["sip:b@192.0.2.10", "sip:c@192.0.2.10", "sip:d@192.0.2.10"]
    );
    // Beyond what one request may carry: 403 too.
    let many = vec![contact("sip:x@192.0.2.10"); contact::MAX_CONTACTS_IN_REQUEST + 1];
    let r = f.send(
        ALICE,
        &register("alice", "c1", 4, &with_auth(&many, phone.authorization())),
    );
    assert_eq!((r.status, r.why), (403, Why::TooManyContacts));
    // The same contact twice counts once (the later wins).
    let lines = [
        "Contact: <sip:b@192.0.2.10>;expires=100, <sip:B@192.0.2.10>;expires=200".to_string(),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 5, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Contact"), Some("<sip:B@192.0.2.10>;expires=200"));
}

#[test]
fn out_of_order_cseq_for_the_same_call_id_is_500() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Sha256);
    let lines = [contact("sip:a@192.0.2.10")];
    let r = login(&mut f, &mut phone, ALICE, alice_req("c1", 5, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    for cseq in [5, 4] {
        let lines = [
            contact("sip:a@192.0.2.10"),
            "Expires: 0".into(),
            phone.authorization(),
        ];
        let r = f.send(ALICE, &register("alice", "c1", cseq, &lines));
        assert_eq!(
            (r.status, r.reason, r.why),
            (500, "Server Internal Error", Why::OutOfOrder),
            "cseq {cseq}"
        );
        assert_eq!(f.contacts("alice").len(), 1, "nothing changed");
    }
    // All or nothing: a new contact in the same failing request is not added.
    let lines = [
        contact("sip:new@192.0.2.10"),
        contact("sip:a@192.0.2.10"),
        phone.authorization(),
    ];
    let r = f.send(ALICE, &register("alice", "c1", 3, &lines));
    assert_eq!(r.why, Why::OutOfOrder);
    assert_eq!(f.contacts("alice"), ["sip:a@192.0.2.10"]);
    // Another Call-ID (the phone rebooted) may use any CSeq.
    let lines = [
        contact("sip:a@192.0.2.10"),
        "Expires: 100".into(),
        phone.authorization(),
    ];
    let r = f.send("192.0.2.10:6000", &register("alice", "other", 1, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    let b = f.reg.contacts("alice", f.now);
    assert_eq!(
        (b[0].call_id.as_str(), b[0].cseq, b[0].source),
        ("other", 1, addr("192.0.2.10:6000"))
    );
    let lines = [contact("sip:a@192.0.2.10"), phone.authorization()];
    assert_eq!(
        f.send(ALICE, &register("alice", "other", 2, &lines)).status,
        200
    );
}

#[test]
fn aor_must_be_the_digest_username() {
    let mut f = Fix::new();
    // Bob's valid credentials used to register alice's AOR.
    let mut bob = Phone::new("bob", BOB_PW, Algorithm::Md5);
    let first = f.send("198.51.100.5:5060", &register("alice", "c1", 1, &[]));
    bob.take(&first);
    let lines = [contact("sip:evil@198.51.100.5"), bob.authorization()];
    let r = f.send("198.51.100.5:5060", &register("alice", "c1", 2, &lines));
    assert_eq!((r.status, r.why), (403, Why::UserMismatch));
    assert!(f.contacts("alice").is_empty());
    assert!(f.contacts("bob").is_empty());
    // The To host is not checked; the To user is unescaped.
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    phone.take(&first);
    let s = format!(
        "REGISTER {RURI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
         From: <sip:alice@elsewhere>;tag=1\r\nTo: <sip:%61lice@elsewhere.example>\r\n\
         Call-ID: c9\r\nCSeq: 1 REGISTER\r\n{}\r\nContent-Length: 0\r\n\r\n",
        phone.authorization()
    );
    let req = Message::parse(s.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.send(ALICE, &req).why, Why::Queried);
}

#[test]
fn requests_that_are_not_usable_registers() {
    let mut f = Fix::new();
    let opt = "OPTIONS sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
               From: <sip:alice@pbx.example>;tag=1\r\nTo: <sip:alice@pbx.example>\r\n\
               Call-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let req = Message::parse(opt.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let r = f.send(ALICE, &req);
    assert_eq!((r.status, r.why), (405, Why::NotRegister));
    assert_eq!(r.header("Allow"), Some("REGISTER"));
    let no_user =
        "REGISTER sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
                   From: <sip:pbx.example>;tag=1\r\nTo: <sip:pbx.example>\r\n\
                   Call-ID: o1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    let req =
        Message::parse(no_user.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.send(ALICE, &req).status, 404);
    // The digest uri must be the Request-URI.
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    phone.take(&f.send(ALICE, &register("alice", "c1", 1, &[])));
    let c = phone.challenge.clone().expect("challenge");
    let other_uri = respond(
        &phone.credentials,
        &c,
        "REGISTER",
        "sip:other.example",
        "cn",
        1,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = f.send(
        ALICE,
        &register("alice", "c1", 2, &[format!("Authorization: {other_uri}")]),
    );
    assert_eq!(
        (r.status, r.why),
        (400, Why::BadRequest("digest uri is not the Request-URI"))
    );
    // Another realm, an unsupported algorithm, no qop: 401, not charged.
    let for_realm = |realm: &str, alg: &str| {
        format!(
            "Authorization: Digest username=\"alice\", realm=\"{realm}\", nonce=\"{}\", uri=\"{RURI}\", \
             response=\"{}\", algorithm={alg}, qop=auth, nc=00000001, cnonce=\"x\"",
            c.nonce,
            "0".repeat(32)
        )
    };
    let r = f.send(
        ALICE,
        &register("alice", "c1", 3, &[for_realm("elsewhere", "MD5")]),
    );
    assert_eq!(r.why, Why::BadCredentials("realm is not ours"));
    let r = f.send(
        ALICE,
        &register("alice", "c1", 3, &[for_realm("pbx.example", "SHA-512-256")]),
    );
    assert_eq!(r.why, Why::BadCredentials("unsupported algorithm"));
    let no_qop = format!(
        "Authorization: Digest username=\"alice\", realm=\"pbx.example\", nonce=\"{}\", uri=\"{RURI}\", response=\"{}\"",
        c.nonce,
        "0".repeat(32)
    );
    let r = f.send(ALICE, &register("alice", "c1", 3, &[no_qop]));
    assert_eq!(r.why, Why::BadCredentials("qop=auth required"));
    assert_eq!(f.reg.sources.len(), 0);
    // Our realm's Authorization is found among others.
    let lines = [for_realm("elsewhere", "MD5"), phone.authorization()];
    assert_eq!(
        f.send(ALICE, &register("alice", "c1", 4, &lines)).why,
        Why::Queried
    );
    // Bad Expires / Contact: 400.
    for bad in [
        "Expires: soon",
        "Contact: <tel:+48123>",
        "Contact: <sip:a@b>;expires",
    ] {
        let r = f.send(
            ALICE,
            &register("alice", "c1", 5, &[bad.to_string(), phone.authorization()]),
        );
        assert_eq!(r.status, 400, "{bad}: {r:?}");
    }
}

#[test]
fn reload_drops_bindings_of_removed_or_excluded_users() {
    let mut f = Fix::new();
    let mut alice = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let r = login(
        &mut f,
        &mut alice,
        ALICE,
        alice_req("c1", 1, &[contact("sip:a@192.0.2.10")]),
    );
    assert_eq!(r.status, 200);
    let mut bob = Phone::new("bob", BOB_PW, Algorithm::Md5);
    let bob_req = |auth: Option<String>| {
        let mut l = vec![contact("sip:bob@198.51.100.5")];
        l.extend(auth);
        register("bob", "b1", 1, &l)
    };
    assert_eq!(
        login(&mut f, &mut bob, "198.51.100.5:5060", bob_req).status,
        200
    );
    let mut u = users();
    u[0].allow_cidrs = vec![net("10.0.0.0/8")];
    u.truncate(1);
    f.reg.set_users(u);
    assert!(f.contacts("alice").is_empty(), "source now excluded");
    assert!(f.contacts("bob").is_empty(), "user removed");
    assert_eq!(f.reg.location.len(), 0);
}

#[test]
fn garbage_authorization_never_panics() {
    let lenient = RateLimit {
        burst: 1_000_000,
        refill: Duration::from_secs(1),
    };
    let mut f = Fix::with(Settings {
        per_source: lenient,
        per_user: lenient,
        ..settings()
    });
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Sha256);
    phone.take(&f.send(ALICE, &register("alice", "c1", 1, &[])));
    let good = phone.answer(1);
    let mut inputs: Vec<String> = vec![
        String::new(),
        "Digest".into(),
        "Digest ".into(),
        "Digest ,,,,".into(),
        "Digest a".into(),
        "Digest a=".into(),
        "Digest a=\"".into(),
        "Digest a=\"\\".into(),
        "Digest username=\"alice\"".into(),
        "Digest username=alice, username=alice".into(),
        "Basic YWxpY2U6cHc=".into(),
        format!("Digest {}", "x=y, ".repeat(100)),
        format!("Digest username=\"{}\"", "a".repeat(5000)),
        format!("{good}, nc=ffffffffff"),
        good.replace("nc=00000001", "nc=zz"),
        good.replace("nc=00000001", "nc=ffffffff"),
        good.replace("qop=auth", "qop=auth-int"),
        good.replace("algorithm=SHA-256", "algorithm=SHA-256-sess"),
        good.replace("algorithm=SHA-256", "algorithm=MD5"),
        good.replace("username=\"alice\"", "username=\"bob\""),
        good.replace("username=\"alice\"", "username=\"al\\\"ice\""),
        good.replace("Digest ", "Digest\t"),
        good.replace("Digest ", "DIGEST "),
        good.replace('"', ""),
        good.replace(", ", ","),
        good.replace("response=\"", "response=\"é"),
        format!("{good}, {good}"),
        format!("Digest nonce=\"{}\"", "0".repeat(80)),
    ];
    let specials = [
        '"', ',', '=', '\\', ' ', '\t', 'x', '0', 'é', '<', ';', '\u{7f}', '\u{0}',
    ];
    let chars: Vec<(usize, char)> = good.char_indices().collect();
    for &(i, ch) in &chars {
        let (head, tail) = (&good[..i], &good[i + ch.len_utf8()..]);
        inputs.push(format!("{head}{tail}"));
        inputs.push(good[..i].to_string());
        inputs.push(format!("{head}{ch}{ch}{tail}"));
        for s in specials {
            inputs.push(format!("{head}{s}{tail}"));
        }
    }
    let mut tried = 0;
    for (n, value) in inputs.iter().enumerate() {
        let line = format!("Authorization: {value}");
        let s = format!(
            "REGISTER {RURI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{n}\r\n\
             From: <sip:alice@pbx.example>;tag=1\r\nTo: <sip:alice@pbx.example>\r\n\
             Call-ID: g1\r\nCSeq: {} REGISTER\r\n{line}\r\nContact: <sip:a@192.0.2.10>\r\n\
             Content-Length: 0\r\n\r\n",
            n + 1
        );
        let Ok(req) = Message::parse(s.as_bytes(), &Limits::default()) else {
            continue;
        };
        tried += 1;
        let r = f.send(ALICE, &req);
        assert!(
            matches!(r.status, 200 | 400 | 401 | 403),
            "{value:?} gave {r:?}"
        );
        assert!(!format!("{r:?}").contains(ALICE_PW));
    }
    assert!(
        tried > inputs.len() / 2,
        "{tried} of {} parsed",
        inputs.len()
    );
    // Direct calls to the parser, without the message layer's filtering, never panic either.
    for value in &inputs {
        let _ = digest::parse_authorization(value);
    }
}

#[test]
fn passwords_never_reach_debug_or_display() {
    let mut f = Fix::new();
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let r = login(
        &mut f,
        &mut phone,
        ALICE,
        alice_req("c1", 1, &[contact("sip:a@192.0.2.10")]),
    );
    let mut liar = Phone::new("alice", "guess", Algorithm::Md5);
    liar.challenge = phone.challenge.clone();
    let wrong = f.send(ALICE, &register("alice", "c1", 2, &[liar.authorization()]));
    let users = users();
    let text = format!(
        "{:?} {:?} {:?} {} {:?} {:?} {:?} {} {:?}",
        users,
        f.reg,
        r,
        r.why,
        wrong,
        f.reg.contacts("alice", f.now),
        settings(),
        wrong.why,
        f.reg.users,
    );
    for pw in [ALICE_PW, BOB_PW] {
        assert!(!text.contains(pw), "{text}");
    }
    assert!(text.contains("<redacted>"), "{text}");
    assert!(text.contains("alice"), "{text}");
}

#[test]
fn nonce_table_is_bounded() {
    let mut f = Fix::with(Settings {
        max_nonces: 2,
        ..settings()
    });
    let mut phones: Vec<Phone> = (0..3)
        .map(|_| Phone::new("alice", ALICE_PW, Algorithm::Md5))
        .collect();
    for (i, p) in phones.iter_mut().enumerate() {
        p.take(&f.send(ALICE, &register("alice", &format!("n{i}"), 1, &[])));
    }
    for (i, p) in phones.iter_mut().enumerate() {
        let r = f.send(
            ALICE,
            &register("alice", &format!("n{i}"), 2, &[p.authorization()]),
        );
        assert_eq!(r.why, Why::Queried);
    }
    assert_eq!(f.reg.nonces.len(), 2);
    // The evicted nonce (the oldest) cannot be replayed: it counts as stale.
    let r = f.send(
        ALICE,
        &register("alice", "n0", 3, &[phones[0].authorization()]),
    );
    assert_eq!(r.why, Why::StaleNonce);
    let r = f.send(
        ALICE,
        &register("alice", "n2", 3, &[phones[2].authorization()]),
    );
    assert_eq!(r.why, Why::Queried);
}

/// A user held to MD5 (`digest = ["MD5"]`) is challenged with MD5 alone, and an answer with
/// SHA-256 (which was not offered) does not register.
#[test]
fn a_user_held_to_md5_is_offered_md5_only() {
    let mut users = users();
    users[0].digest = vec![Alg::Md5];
    let t0 = Instant::now();
    let mut f = Fix {
        reg: Registrar::new(settings(), users, KEY, t0),
        t0,
        now: t0,
        draws: 0,
    };
    let lines = [contact("sip:alice@192.0.2.10:5060")];
    let r = f.send(ALICE, &alice_req("c1", 1, &lines)(None));
    assert_eq!(r.status, 401, "{r:?}");
    let offered: Vec<&str> = r.header_values("WWW-Authenticate").collect();
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert!(offered[0].contains("algorithm=MD5"), "{offered:?}");
    // Bob has no setting: both, SHA-256 first.
    let bob = register("bob", "b1", 1, &[contact("sip:bob@198.51.100.7")]);
    let r = f.send("198.51.100.7:5060", &bob);
    let offered: Vec<&str> = r.header_values("WWW-Authenticate").collect();
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert!(offered[0].contains("algorithm=SHA-256"), "{offered:?}");
    let mut phone = Phone::new("alice", ALICE_PW, Algorithm::Md5);
    let r = login(&mut f, &mut phone, ALICE, alice_req("c2", 1, &lines));
    assert_eq!(r.status, 200, "{r:?}");
    // The MD5 answer rewritten to claim SHA-256 (with a SHA-256-length response) is refused.
    let mut f2 = Fix {
        reg: Registrar::new(
            settings(),
            {
                let mut u = self::users();
                u[0].digest = vec![Alg::Md5];
                u
            },
            KEY,
            t0,
        ),
        t0,
        now: t0,
        draws: 0,
    };
    let mut sha = Phone::new("alice", ALICE_PW, Algorithm::Sha256);
    let challenge = f2.send(ALICE, &alice_req("c3", 1, &lines)(None));
    let forged = challenge.headers[0]
        .1
        .replace("algorithm=MD5", "algorithm=SHA-256");
    let mut forged_reply = challenge.clone();
    forged_reply.headers = vec![("WWW-Authenticate", forged)];
    sha.take(&forged_reply);
    let r = f2.send(
        ALICE,
        &alice_req("c3", 2, &lines)(Some(sha.authorization())),
    );
    assert_eq!(r.status, 401, "{r:?}");
    assert!(f2.contacts("alice").is_empty());
}
