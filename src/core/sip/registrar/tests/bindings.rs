//! Bindings: removal, expiry, limits, ordering, the AOR, reloads.

use super::*;

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
