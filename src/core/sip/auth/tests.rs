use super::*;

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

fn mufasa() -> Credentials {
    Credentials::new("Mufasa", "Circle of Life")
}

fn rfc7616_challenge(alg: &str) -> String {
    format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, \
         nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
    )
}

fn ok(value: &str) -> Challenge {
    match parse_challenge(value) {
        Ok(c) => c,
        Err(e) => panic!("{value:?}: {e}"),
    }
}

#[test]
fn rfc7616_md5_vector() {
    let c = ok(&rfc7616_challenge("MD5"));
    assert_eq!(c.algorithm, Algorithm::Md5);
    let r = respond(&mufasa(), &c, "GET", "/dir/index.html", RFC7616_CNONCE, 1).unwrap();
    assert_eq!(r.response, "8ca523f5e9506fed4657c9700eebdbec");
    assert_eq!(
        r.to_string(),
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
             nonce=\"{RFC7616_NONCE}\", uri=\"/dir/index.html\", \
             response=\"8ca523f5e9506fed4657c9700eebdbec\", algorithm=MD5, \
             cnonce=\"{RFC7616_CNONCE}\", qop=auth, nc=00000001, opaque=\"{RFC7616_OPAQUE}\""
        )
    );
}

#[test]
fn rfc7616_sha256_vector() {
    let c = ok(&rfc7616_challenge("SHA-256"));
    assert_eq!(c.algorithm, Algorithm::Sha256);
    let r = respond(&mufasa(), &c, "GET", "/dir/index.html", RFC7616_CNONCE, 1).unwrap();
    assert_eq!(
        r.response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert!(r.header_value().contains("algorithm=SHA-256, cnonce="));
}

#[test]
fn rfc2617_vector_with_qop() {
    // RFC 2617 §3.5.
    let c = ok(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
                nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
                opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    );
    let r = respond(
        &Credentials::new("Mufasa", "Circle Of Life"),
        &c,
        "GET",
        "/dir/index.html",
        "0a4f113b",
        1,
    )
    .unwrap();
    assert_eq!(r.response, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn sip_example_without_qop_is_rfc2069_form() {
    // RFC 3261-style INVITE challenge, no qop: response = H(HA1:nonce:HA2).
    let c = ok("Digest realm=\"biloxi.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"");
    assert_eq!(c.qop, None);
    assert_eq!(c.algorithm, Algorithm::Md5);
    let creds = Credentials::new("bob", "zanzibar");
    let r = respond(&creds, &c, "INVITE", "sip:bob@biloxi.com", "ignored", 7).unwrap();
    assert_eq!(r.response, "bf57e4e0d0bffc0fbaedce64d59add5e");
    assert_eq!(
        r.to_string(),
        "Digest username=\"bob\", realm=\"biloxi.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:bob@biloxi.com\", \
         response=\"bf57e4e0d0bffc0fbaedce64d59add5e\", algorithm=MD5"
    );
}

#[test]
fn sess_variants() {
    let creds = Credentials::new("bob", "zanzibar");
    for (alg, want) in [
        ("MD5-sess", "26741dd3bdc8a685906ad413b7ce1e4e"),
        (
            "SHA-256-sess",
            "31a914b14abe96171b4425512d5c5df1ece32da38b5eb126b3f60ffd39c55586",
        ),
    ] {
        let c = ok(&format!(
            "Digest realm=\"biloxi.com\", nonce=\"n1\", qop=\"auth\", algorithm={alg}"
        ));
        let r = respond(&creds, &c, "REGISTER", "sip:biloxi.com", "c1", 2).unwrap();
        assert_eq!(r.response, want, "{alg}");
        assert!(r.to_string().contains(&format!("algorithm={alg},")));
    }
    // -sess without qop cannot be answered.
    let c = ok("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess");
    assert!(respond(&creds, &c, "INVITE", "sip:x", "c", 1).is_err());
}

#[test]
fn parsing_order_case_quoting_and_escapes() {
    let c = ok(
        "dIgEsT NONCE=abc123, Stale=TRUE, ReAlM=\"a \\\"quoted\\\" \\\\ realm\", \
                ALGORITHM=sha-256, QOP=auth, foo=bar, baz=\"q,u=o\\\"ted\"",
    );
    assert_eq!(c.realm, "a \"quoted\" \\ realm");
    assert_eq!(c.nonce, "abc123");
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(
        c.qop,
        Some(QopOptions {
            auth: true,
            auth_int: false
        })
    );
    assert!(c.stale);
    assert_eq!(c.opaque, None);

    // Whitespace around '=' and commas, folded whitespace, empty list elements, UTF-8.
    let c = ok("Digest  realm = \"réalm\" ,, nonce\t=\r\n \"n/+=\" , stale=false,");
    assert_eq!(c.realm, "réalm");
    assert_eq!(c.nonce, "n/+=");
    assert!(!c.stale);
    // Lenient: quoted algorithm, unquoted base64 nonce.
    let c = ok("Digest realm=r, nonce=7ypf/xlj9X+=, algorithm=\"MD5\"");
    assert_eq!(c.nonce, "7ypf/xlj9X+=");
    assert_eq!(c.algorithm, Algorithm::Md5);
}

#[test]
fn parsing_errors_never_panic() {
    use ChallengeError as E;
    let long = format!(
        "Digest realm=\"r\", nonce=\"{}\"",
        "a".repeat(MAX_PARAM_LEN + 1)
    );
    let huge = format!("Digest realm=\"{}\"", "a".repeat(MAX_VALUE_LEN));
    let many = format!(
        "Digest realm=r, nonce=n{}",
        (0..MAX_PARAMS)
            .map(|i| format!(", p{i}=v"))
            .collect::<String>()
    );
    let cases: Vec<(&str, ChallengeError)> = vec![
        ("", E::Empty),
        ("   ", E::Empty),
        ("Digest", E::MissingRealm),
        ("Digest realm=\"r\"", E::MissingNonce),
        ("Digest nonce=\"n\"", E::MissingRealm),
        ("Digest realm=\"r", E::UnterminatedQuote),
        ("Digest realm=\"r\\", E::UnterminatedQuote),
        ("Digest realm=\"r\\\n\", nonce=n", E::BadChar),
        ("Digest realm=\"r\x01\", nonce=n", E::BadChar),
        ("Digest realm=\"r\" nonce=\"n\"", E::Unexpected(17)),
        ("Digest realm=, nonce=n", E::Unexpected(13)),
        ("Digest realm", E::Unexpected(12)),
        ("Digest realm=r\"x\"", E::Unexpected(14)),
        ("=realm", E::Unexpected(0)),
        ("Digest\"", E::Unexpected(6)),
        (
            "Digest realm=r, realm=s, nonce=n",
            E::Duplicate("realm".into()),
        ),
        (
            "Digest realm=r, nonce=n, Nonce=m",
            E::Duplicate("nonce".into()),
        ),
        ("Basic realm=\"r\"", E::UnsupportedScheme("Basic".into())),
        (
            "Digest realm=r, nonce=n, algorithm=SHA-512-256",
            E::UnsupportedAlgorithm("SHA-512-256".into()),
        ),
        (&long, E::TooLong),
        (&huge, E::TooLong),
        (&many, E::TooLong),
        (
            "Digest realm=r, nonce=n, Digest realm=s, nonce=m",
            E::NotOne(2),
        ),
    ];
    for (value, want) in cases {
        assert_eq!(parse_challenge(value), Err(want), "{value:?}");
    }
    // Arbitrary bytes-ish garbage: any result, no panic.
    for g in [
        "\"",
        "\\",
        ",",
        "Digest ,",
        "Digest =",
        "Digest a=\"\\é\"",
        "é=é",
        "Digest a=b,,=",
        "Digest a=b, c",
        "Digest a=b, c d",
    ] {
        let _ = parse_challenges(g);
        let _ = select_challenges(&[g]);
    }
}

#[test]
fn several_challenges_in_one_value() {
    let all = parse_challenges(
        "Digest realm=\"a\", nonce=\"1\", algorithm=MD5, Digest realm=\"a\", nonce=\"2\", \
         algorithm=SHA-256, Basic realm=\"b\"",
    );
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].as_ref().map(|c| c.nonce.as_str()), Ok("1"));
    assert_eq!(all[1].as_ref().map(|c| c.algorithm), Ok(Algorithm::Sha256));
    assert_eq!(
        all[2],
        Err(ChallengeError::UnsupportedScheme("Basic".into()))
    );
}

#[test]
fn selection_prefers_sha256_and_skips_unusable() {
    let values = [
        "Digest realm=\"x\", nonce=\"m\", qop=\"auth\", algorithm=MD5",
        "Digest realm=\"x\", nonce=\"a\", qop=\"auth-int\", algorithm=SHA-256",
        "Digest realm=\"x\", nonce=\"s\", qop=\"auth\", algorithm=SHA-256",
        "Digest realm=\"x\", nonce=\"t\", algorithm=SHA-512-256",
        "Digest realm=\"x\", nonce=\"u\", qop=\"auth\", algorithm=SHA-256",
        "Digest realm=\"y\", nonce=\"y1\"",
        "garbage \"",
    ];
    let chosen = select_challenges(&values).unwrap();
    assert_eq!(chosen.len(), 2);
    assert_eq!(chosen[0].realm, "x");
    assert_eq!(chosen[0].nonce, "s");
    assert_eq!(chosen[1].nonce, "y1");

    // SHA-256 listed after MD5 still wins; MD5 alone is taken.
    let chosen = select_challenges(&[
        "Digest realm=\"x\", nonce=\"m\"",
        "Digest realm=\"x\", nonce=\"s\", algorithm=SHA-256",
    ])
    .unwrap();
    assert_eq!(chosen[0].nonce, "s");

    assert_eq!(
        select_challenges(&["Digest realm=\"x\", nonce=\"a\", qop=\"auth-int\""]),
        Err(AuthError::NoUsableChallenge(ChallengeError::UnsupportedQop))
    );
    assert_eq!(
        select_challenges(&[]),
        Err(AuthError::NoUsableChallenge(ChallengeError::Empty))
    );
}

fn nc_of(header: &AuthHeader) -> &str {
    let at = header.value.find("nc=").unwrap() + 3;
    &header.value[at..at + 8]
}

#[test]
fn nc_counts_per_nonce_and_resets_for_a_new_nonce() {
    let mut client = DigestClient::new(Credentials::new("bob", "zanzibar"));
    assert_eq!(client.authorize("INVITE", "sip:a@b", "c").unwrap(), vec![]);

    let mut req = RequestAuth::default();
    let ch = ["Digest realm=\"b\", nonce=\"n1\", qop=\"auth\", opaque=\"o\""];
    client
        .on_challenge(&mut req, ChallengeKind::Www, &ch)
        .unwrap();
    for want in ["00000001", "00000002", "00000003"] {
        let h = client.authorize("INVITE", "sip:a@b", "c").unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].name, "Authorization");
        assert_eq!(nc_of(&h[0]), want);
        assert!(h[0].value.contains("nonce=\"n1\""));
        assert!(h[0].value.ends_with("opaque=\"o\""));
    }
    // A new request challenged with a new nonce: nc starts again.
    let mut req = RequestAuth::default();
    let ch = ["Digest realm=\"b\", nonce=\"n2\", qop=\"auth\""];
    client
        .on_challenge(&mut req, ChallengeKind::Www, &ch)
        .unwrap();
    let h = client.authorize("BYE", "sip:a@b", "c").unwrap();
    assert_eq!(nc_of(&h[0]), "00000001");
    assert!(h[0].value.contains("nonce=\"n2\""));
}

#[test]
fn proxy_then_www_both_answered_on_the_resend() {
    let mut client = DigestClient::new(Credentials::new("bob", "zanzibar"));
    let mut req = RequestAuth::default();
    client
        .on_challenge(
            &mut req,
            ChallengeKind::Proxy,
            &["Digest realm=\"proxy\", nonce=\"p\", qop=auth"],
        )
        .unwrap();
    // The resend after the 407 carries Proxy-Authorization nc=1 and draws a 401.
    let h = client.authorize("INVITE", "sip:a@b", "c").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(nc_of(&h[0]), "00000001");
    client
        .on_challenge(
            &mut req,
            ChallengeKind::Www,
            &["Digest realm=\"uas\", nonce=\"u\""],
        )
        .unwrap();
    let h = client.authorize("INVITE", "sip:a@b", "c").unwrap();
    let names: Vec<_> = h.iter().map(|h| h.name).collect();
    assert_eq!(names, ["Proxy-Authorization", "Authorization"]);
    assert_eq!(nc_of(&h[0]), "00000002");
    assert!(!h[1].value.contains("nc="));
}

#[test]
fn second_challenge_rejected_unless_stale_once() {
    let mut client = DigestClient::new(Credentials::new("bob", "wrong"));
    let mut req = RequestAuth::default();
    let kind = ChallengeKind::Www;
    client
        .on_challenge(&mut req, kind, &["Digest realm=\"b\", nonce=\"n1\""])
        .unwrap();
    client.authorize("INVITE", "sip:a@b", "c").unwrap();
    // Stale: answer once more with the new nonce.
    client
        .on_challenge(
            &mut req,
            kind,
            &["Digest realm=\"b\", nonce=\"n2\", stale=true"],
        )
        .unwrap();
    let h = client.authorize("INVITE", "sip:a@b", "c").unwrap();
    assert!(h[0].value.contains("nonce=\"n2\""));
    // A second stale is not answered.
    assert_eq!(
        client.on_challenge(
            &mut req,
            kind,
            &["Digest realm=\"b\", nonce=\"n3\", stale=true"],
        ),
        Err(AuthError::Rejected { realm: "b".into() })
    );
    // The rejected nonce is forgotten: no stale credentials on later requests.
    assert_eq!(client.authorize("INVITE", "sip:a@b", "c").unwrap(), vec![]);

    // Non-stale second challenge: rejected at once.
    let mut req = RequestAuth::default();
    client
        .on_challenge(&mut req, kind, &["Digest realm=\"b\", nonce=\"n4\""])
        .unwrap();
    assert_eq!(
        client.on_challenge(&mut req, kind, &["Digest realm=\"b\", nonce=\"n5\""]),
        Err(AuthError::Rejected { realm: "b".into() })
    );
    // A fresh request may answer the realm again (preemptive credentials do not count).
    let mut req = RequestAuth::default();
    client
        .on_challenge(&mut req, kind, &["Digest realm=\"b\", nonce=\"n6\""])
        .unwrap();
}

#[test]
fn invalid_caller_input() {
    let c = ok("Digest realm=\"r\", nonce=\"n\", qop=auth");
    let creds = Credentials::new("bob", "pw");
    assert_eq!(
        respond(&creds, &c, "INVITE", "sip:x", "", 1),
        Err(AuthError::InvalidInput("cnonce"))
    );
    assert_eq!(
        respond(&creds, &c, "INVITE", "sip:x\r\nX: y", "c", 1),
        Err(AuthError::InvalidInput("uri"))
    );
    assert_eq!(
        respond(
            &Credentials::new("b\nob", "pw"),
            &c,
            "INVITE",
            "sip:x",
            "c",
            1
        ),
        Err(AuthError::InvalidInput("username"))
    );
    let mut bad = c.clone();
    bad.nonce = "n\r\nX: y".into();
    assert_eq!(
        respond(&creds, &bad, "INVITE", "sip:x", "c", 1),
        Err(AuthError::InvalidInput("nonce"))
    );
    // Quotes and backslashes are escaped on output.
    let r = respond(
        &Credentials::new("a\"b\\", "pw"),
        &c,
        "INVITE",
        "sip:x",
        "c",
        1,
    )
    .unwrap();
    assert!(r
        .to_string()
        .starts_with("Digest username=\"a\\\"b\\\\\", "));
}

#[test]
fn debug_redacts_the_password() {
    let creds = Credentials::new("bob", "s3cret-Pa55");
    let mut client = DigestClient::new(creds.clone());
    let mut req = RequestAuth::default();
    client
        .on_challenge(
            &mut req,
            ChallengeKind::Www,
            &["Digest realm=\"b\", nonce=\"n\""],
        )
        .unwrap();
    for dbg in [
        format!("{creds:?}"),
        format!("{creds:#?}"),
        format!("{client:?}"),
        format!("{req:?}"),
    ] {
        assert!(!dbg.contains("s3cret"), "{dbg}");
    }
    assert!(format!("{creds:?}").contains("bob"));
    assert!(format!("{creds:?}").contains("<redacted>"));
}

#[test]
fn kinds_map_statuses_and_headers() {
    assert_eq!(ChallengeKind::from_status(401), Some(ChallengeKind::Www));
    assert_eq!(ChallengeKind::from_status(407), Some(ChallengeKind::Proxy));
    assert_eq!(ChallengeKind::from_status(403), None);
    assert_eq!(
        ChallengeKind::Proxy.challenge_header(),
        "Proxy-Authenticate"
    );
    assert_eq!(ChallengeKind::Www.challenge_header(), "WWW-Authenticate");
}
