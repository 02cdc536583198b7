//! Garbage in, secrets out, bounded tables, algorithms held per user.

use super::*;

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
