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

mod auth;
mod bindings;
mod robustness;
