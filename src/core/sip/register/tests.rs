//! REGISTER rules on a virtual clock: a scripted registrar answers each request we emit.

use super::*;
use crate::core::sip::auth::{parse_challenge, respond};
use crate::core::sip::message::{Limits, OutMessage};

const CONTACT: &str = "<sip:trunkgate@192.0.2.1:5060>";
const REGISTRAR: &str = "sip:trunk.example.net";
const MD5_CHALLENGE: &str = "Digest realm=\"trunk\", nonce=\"n1\", qop=\"auth\", algorithm=MD5";

fn params(credentials: bool) -> Params {
    Params {
        registrar: REGISTRAR.into(),
        aor: "sip:alice@trunk.example.net".into(),
        contact: CONTACT.into(),
        expires: 600,
        credentials: credentials.then(|| Credentials::new("alice", "s3cret-pw")),
        transport: Transport::Udp,
        sent_by: "192.0.2.1:5060".into(),
        user_agent: "trunkgate".into(),
        timers: Timers::default(),
    }
}

fn started(credentials: bool) -> (Registration, Instant) {
    let now = Instant::now();
    let mut r = Registration::new(params(credentials), 7);
    r.start(now);
    (r, now)
}

/// The one request waiting to go out (retransmissions aside).
fn sent(r: &mut Registration) -> Message {
    let bytes = r.poll_transmit().expect("a request was sent");
    let msg = Message::parse(&bytes, &Limits::default()).expect("our request parses");
    assert_eq!(msg.method(), Some(&Method::Register));
    assert_eq!(r.poll_transmit(), None, "one request at a time");
    msg
}

fn answer(req: &Message, status: u16, headers: &[(&str, &str)]) -> Message {
    let mut out = OutMessage::response_to(req, status, None, Some("reg-tag"));
    for (n, v) in headers {
        out.add_header(n, *v);
    }
    Message::parse(&out.to_bytes(), &Limits::default()).expect("answer parses")
}

fn ok_with(r: &mut Registration, now: Instant, req: &Message, contact: &str) {
    assert!(r.handle_response(now, &answer(req, 200, &[("Contact", contact)])));
}

fn expires_of(req: &Message) -> Option<u32> {
    req.header(&HeaderName::Expires)?.parse().ok()
}

/// Steps the clock to the next deadline until a request goes out; returns it and the time.
fn next_request(r: &mut Registration, after: Instant) -> (Message, Instant) {
    for _ in 0..100 {
        let now = r.poll_timeout().expect("something is planned");
        assert!(now >= after, "time runs forward");
        r.handle_timeout(now);
        if let Some(bytes) = r.poll_transmit() {
            let msg = Message::parse(&bytes, &Limits::default()).expect("parses");
            return (msg, now);
        }
    }
    panic!("no request after 100 timeouts");
}

fn param<'a>(header: &'a str, name: &str) -> &'a str {
    let at = header.find(&format!("{name}=")).expect("param present") + name.len() + 1;
    let rest = &header[at..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',']).unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn first_register_shape() {
    let (mut r, _) = started(false);
    let req = sent(&mut r);
    assert_eq!(req.request_uri(), Some(REGISTRAR));
    assert_eq!(req.from_hdr().uri.raw, "sip:alice@trunk.example.net");
    assert!(req.from_tag().is_some());
    assert_eq!(req.to_tag(), None);
    assert_eq!(req.top_via().transport, "UDP");
    assert!(req
        .top_via()
        .branch()
        .is_some_and(|b| b.starts_with("z9hG4bK")));
    assert_eq!(
        req.contact().map(|c| c.uri.raw),
        Some("sip:trunkgate@192.0.2.1:5060")
    );
    assert_eq!(expires_of(&req), Some(600));
    assert_eq!(req.header(&HeaderName::Authorization), None);
}

#[test]
fn granted_expiry_from_our_contact_and_refresh_at_half() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    let contacts =
        "<sip:other@198.51.100.9>;expires=3600, <sip:trunkgate@192.0.2.1:5060>;expires=120";
    assert!(r.handle_response(
        t0,
        &answer(&req, 200, &[("Contact", contacts), ("Expires", "900")])
    ));
    let st = r.state();
    assert!(st.registered);
    assert_eq!(st.last_error, None);
    assert_eq!(st.expires_at, Some(t0 + Duration::from_secs(120)));
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    let (refresh, at) = next_request(&mut r, t0);
    assert_eq!(at, t0 + Duration::from_secs(60));
    assert_eq!(refresh.call_id(), req.call_id(), "same Call-ID");
    assert_eq!(refresh.from_tag(), req.from_tag(), "same From tag");
    assert_eq!(refresh.cseq().seq, req.cseq().seq + 1);
    assert_ne!(refresh.top_via().branch(), req.top_via().branch());
}

#[test]
fn granted_expiry_falls_back_to_header_then_request() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    let other = "<sip:other@198.51.100.9>;expires=3600";
    assert!(r.handle_response(
        t0,
        &answer(&req, 200, &[("Contact", other), ("Expires", "300")])
    ));
    assert_eq!(r.state().expires_at, Some(t0 + Duration::from_secs(300)));
    let (req, t1) = next_request(&mut r, t0);
    ok_with(&mut r, t1, &req, "<sip:other@198.51.100.9>");
    assert_eq!(r.state().expires_at, Some(t1 + Duration::from_secs(600)));
}

#[test]
fn refresh_delay_rule() {
    let s = Duration::from_secs;
    assert_eq!(refresh_delay(s(600)), s(300), "half");
    assert_eq!(refresh_delay(s(50)), s(20), "30 s before the end is sooner");
    assert_eq!(refresh_delay(s(20)), s(5), "never sooner than 5 s");
    assert_eq!(refresh_delay(s(2)), s(1), "a tiny grant: half of it");
    for secs in [1, 2, 7, 31, 59, 61, 3600] {
        assert!(
            refresh_delay(s(secs)) < s(secs),
            "{secs}: refresh before expiry"
        );
    }
}

#[test]
fn too_brief_retries_at_once_with_min_expires() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    assert!(r.handle_response(t0, &answer(&req, 423, &[("Min-Expires", "1800")])));
    let retry = sent(&mut r);
    assert_eq!(expires_of(&retry), Some(1800));
    assert_eq!(retry.cseq().seq, req.cseq().seq + 1);
    ok_with(
        &mut r,
        t0,
        &retry,
        "<sip:trunkgate@192.0.2.1:5060>;expires=1800",
    );
    assert!(r.state().registered);
    let (refresh, _) = next_request(&mut r, t0);
    assert_eq!(
        expires_of(&refresh),
        Some(1800),
        "later REGISTERs keep the minimum"
    );
}

#[test]
fn too_brief_without_min_expires_fails() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    assert!(r.handle_response(t0, &answer(&req, 423, &[])));
    assert!(!r.state().registered);
    assert!(r
        .state()
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("423")));
    assert_eq!(r.poll_timeout(), Some(t0 + FIRST_BACKOFF));
}

#[test]
fn backoff_doubles_caps_and_resets() {
    let (mut r, mut now) = started(false);
    let mut req = sent(&mut r);
    let mut delays = Vec::new();
    for _ in 0..9 {
        assert!(r.handle_response(now, &answer(&req, 503, &[])));
        assert_eq!(
            r.state().last_error.as_deref(),
            Some("503 Service Unavailable")
        );
        let (next, at) = next_request(&mut r, now);
        delays.push((at - now).as_secs());
        (req, now) = (next, at);
    }
    assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    ok_with(&mut r, now, &req, CONTACT);
    assert!(r.state().registered);
    assert_eq!(r.state().last_error, None);
    let (req, t1) = next_request(&mut r, now);
    assert!(r.handle_response(t1, &answer(&req, 500, &[])));
    assert_eq!(
        r.poll_timeout(),
        Some(t1 + FIRST_BACKOFF),
        "reset by the success"
    );
}

#[test]
fn timeout_is_a_failure_after_retransmissions() {
    let (mut r, t0) = started(false);
    let first = sent(&mut r);
    let mut now = t0;
    let mut copies = 0;
    while r.state().last_error.is_none() {
        now = r.poll_timeout().expect("timer");
        r.handle_timeout(now);
        while let Some(b) = r.poll_transmit() {
            assert_eq!(b, first.to_bytes(), "a retransmission is the same request");
            copies += 1;
        }
    }
    assert!(copies >= 5, "Timer E retransmitted ({copies})");
    assert_eq!(now - t0, Timers::default().t64(), "Timer F");
    assert!(!r.state().registered);
    assert!(r
        .state()
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("timeout")));
    assert_eq!(r.poll_timeout(), Some(now + FIRST_BACKOFF));
}

#[test]
fn transport_error_is_a_failure() {
    let (mut r, t0) = started(false);
    let _ = sent(&mut r);
    r.handle_transport_error(t0, "network unreachable");
    assert!(r
        .state()
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("unreachable")));
    assert_eq!(r.poll_timeout(), Some(t0 + FIRST_BACKOFF));
}

/// The first REGISTER answered with a 401 carrying `challenge`: it and the retry.
fn challenged(r: &mut Registration, now: Instant, challenge: &str) -> (Message, Message) {
    let req = sent(r);
    assert!(r.handle_response(now, &answer(&req, 401, &[("WWW-Authenticate", challenge)])));
    let authed = sent(r);
    (req, authed)
}

#[test]
fn challenge_401_then_200() {
    let (mut r, t0) = started(true);
    let (req, authed) = challenged(&mut r, t0, MD5_CHALLENGE);
    assert_eq!(authed.call_id(), req.call_id());
    assert_eq!(authed.cseq().seq, req.cseq().seq + 1);
    let value = authed
        .header(&HeaderName::Authorization)
        .expect("Authorization");
    let challenge = parse_challenge(MD5_CHALLENGE).expect("challenge");
    let creds = Credentials::new("alice", "s3cret-pw");
    let cnonce = param(value, "cnonce");
    let expect = respond(&creds, &challenge, "REGISTER", REGISTRAR, cnonce, 1).expect("respond");
    assert_eq!(param(value, "response"), expect.response, "{value}");
    assert_eq!(param(value, "nc"), "00000001");
    ok_with(&mut r, t0, &authed, CONTACT);
    assert!(r.state().registered);
    // The refresh carries credentials up front, with the next nonce count.
    let (refresh, _) = next_request(&mut r, t0);
    let value = refresh
        .header(&HeaderName::Authorization)
        .expect("proactive");
    assert_eq!(param(value, "nc"), "00000002");
}

#[test]
fn a_refresh_challenged_again_is_answered_with_the_new_nonce() {
    let (mut r, t0) = started(true);
    let (_, authed) = challenged(&mut r, t0, MD5_CHALLENGE);
    ok_with(&mut r, t0, &authed, CONTACT);
    // The registrar has moved on to a new nonce (not stale=true): the refresh's proactive
    // credentials are refused and it is challenged like a first REGISTER.
    let (refresh, t1) = next_request(&mut r, t0);
    let fresh = "Digest realm=\"trunk\", nonce=\"n9\", qop=\"auth\", algorithm=MD5";
    assert!(r.handle_response(t1, &answer(&refresh, 401, &[("WWW-Authenticate", fresh)])));
    let again = sent(&mut r);
    assert_eq!(again.call_id(), refresh.call_id());
    assert!(again.cseq().seq > refresh.cseq().seq);
    let value = again
        .header(&HeaderName::Authorization)
        .expect("Authorization");
    assert_eq!(param(value, "nonce"), "n9");
    assert_eq!(param(value, "nc"), "00000001", "a new nonce counts from 1");
    let challenge = parse_challenge(fresh).expect("challenge");
    let creds = Credentials::new("alice", "s3cret-pw");
    let expect = respond(
        &creds,
        &challenge,
        "REGISTER",
        REGISTRAR,
        param(value, "cnonce"),
        1,
    )
    .expect("respond");
    assert_eq!(param(value, "response"), expect.response);
    ok_with(&mut r, t1, &again, CONTACT);
    assert!(r.state().registered);
    assert_eq!(r.state().last_error, None);
    // A 407 on a later refresh is answered the same way, with Proxy-Authorization.
    let (refresh, t2) = next_request(&mut r, t1);
    let proxy = "Digest realm=\"proxy\", nonce=\"p7\", qop=\"auth\", algorithm=SHA-256";
    assert!(r.handle_response(t2, &answer(&refresh, 407, &[("Proxy-Authenticate", proxy)])));
    let again = sent(&mut r);
    let value = again
        .header(&HeaderName::ProxyAuthorization)
        .expect("Proxy-Authorization");
    assert_eq!(param(value, "nonce"), "p7");
    ok_with(&mut r, t2, &again, CONTACT);
    assert!(r.state().registered);
}

#[test]
fn challenge_407_answered_with_proxy_authorization() {
    let (mut r, t0) = started(true);
    let req = sent(&mut r);
    let sha = "Digest realm=\"proxy\", nonce=\"p1\", qop=\"auth\", algorithm=SHA-256";
    assert!(r.handle_response(t0, &answer(&req, 407, &[("Proxy-Authenticate", sha)])));
    let authed = sent(&mut r);
    let value = authed
        .header(&HeaderName::ProxyAuthorization)
        .expect("Proxy-Authorization");
    assert!(value.contains("algorithm=SHA-256"), "{value}");
    assert_eq!(authed.header(&HeaderName::Authorization), None);
}

#[test]
fn stale_challenge_retried_once() {
    let (mut r, t0) = started(true);
    let req = sent(&mut r);
    assert!(r.handle_response(
        t0,
        &answer(&req, 401, &[("WWW-Authenticate", MD5_CHALLENGE)])
    ));
    let authed = sent(&mut r);
    let stale = "Digest realm=\"trunk\", nonce=\"n2\", qop=\"auth\", stale=true";
    assert!(r.handle_response(t0, &answer(&authed, 401, &[("WWW-Authenticate", stale)])));
    let again = sent(&mut r);
    let value = again
        .header(&HeaderName::Authorization)
        .expect("Authorization");
    assert_eq!(param(value, "nonce"), "n2");
    assert_eq!(r.state().last_error, None, "a stale nonce is no failure");
    ok_with(&mut r, t0, &again, CONTACT);
    assert!(r.state().registered);
}

#[test]
fn second_challenge_for_the_realm_fails() {
    let (mut r, t0) = started(true);
    let req = sent(&mut r);
    assert!(r.handle_response(
        t0,
        &answer(&req, 401, &[("WWW-Authenticate", MD5_CHALLENGE)])
    ));
    let authed = sent(&mut r);
    assert!(r.handle_response(
        t0,
        &answer(&authed, 401, &[("WWW-Authenticate", MD5_CHALLENGE)])
    ));
    assert_eq!(r.poll_transmit(), None, "no third try");
    let err = r.state().last_error.clone().expect("failed");
    assert!(err.contains("auth failed"), "{err}");
    assert!(!err.contains("s3cret-pw"));
    assert_eq!(r.poll_timeout(), Some(t0 + FIRST_BACKOFF));
    // The retry is a new request: one challenge may be answered again.
    let (retry, t1) = next_request(&mut r, t0);
    assert!(r.handle_response(
        t1,
        &answer(&retry, 401, &[("WWW-Authenticate", MD5_CHALLENGE)])
    ));
    assert!(r.poll_transmit().is_some());
}

#[test]
fn challenge_without_credentials_fails() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    assert!(r.handle_response(
        t0,
        &answer(&req, 401, &[("WWW-Authenticate", MD5_CHALLENGE)])
    ));
    assert!(r
        .state()
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("no credentials")));
}

#[test]
fn unregister_on_stop() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    ok_with(&mut r, t0, &req, CONTACT);
    r.stop(t0);
    let un = sent(&mut r);
    assert_eq!(expires_of(&un), Some(0));
    assert_eq!(
        un.contact().and_then(|c| c.params.get("expires").flatten()),
        Some("0")
    );
    assert_eq!(un.call_id(), req.call_id());
    assert!(!r.is_done());
    ok_with(&mut r, t0, &un, "");
    assert!(r.is_done());
    assert!(!r.state().registered);
    assert_eq!(r.poll_timeout(), None, "nothing more planned");
}

#[test]
fn unregister_done_on_timeout_and_skipped_when_never_registered() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    ok_with(&mut r, t0, &req, CONTACT);
    r.stop(t0);
    let _ = sent(&mut r);
    while !r.is_done() {
        let at = r.poll_timeout().expect("Timer F");
        r.handle_timeout(at);
        while r.poll_transmit().is_some() {}
    }
    assert_eq!(r.poll_timeout(), None);

    let (mut failed, t0) = started(false);
    let req = sent(&mut failed);
    assert!(failed.handle_response(t0, &answer(&req, 403, &[])));
    failed.stop(t0);
    assert!(failed.is_done());
    assert_eq!(failed.poll_transmit(), None, "nothing to remove");
}

#[test]
fn other_call_ids_and_stale_branches_ignored() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    let mut other = OutMessage::response_to(&req, 200, None, Some("x"));
    other.set_header("Call-ID", "someone-else");
    let other = Message::parse(&other.to_bytes(), &Limits::default()).expect("parses");
    assert!(!r.handle_response(t0, &other));
    let mut wrong_branch = OutMessage::response_to(&req, 200, None, Some("x"));
    wrong_branch.set_header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKold");
    let wrong = Message::parse(&wrong_branch.to_bytes(), &Limits::default()).expect("parses");
    assert!(r.handle_response(t0, &wrong), "ours by Call-ID, absorbed");
    assert!(!r.state().registered, "but not acted on");
    ok_with(&mut r, t0, &req, CONTACT);
    ok_with(&mut r, t0, &req, "<sip:trunkgate@192.0.2.1:5060>;expires=5");
    assert_eq!(
        r.state().expires_at,
        Some(t0 + Duration::from_secs(600)),
        "retransmission absorbed"
    );
}

#[test]
fn garbage_answers_never_panic() {
    let (mut r, t0) = started(true);
    let req = sent(&mut r);
    let junk: &[&[(&str, &str)]] = &[
        &[("Contact", "<sip:trunkgate@192.0.2.1:5060>;expires=banana")],
        &[("Contact", "*"), ("Expires", "-5")],
        &[("Expires", "99999999999999999999")],
        &[("WWW-Authenticate", "Basic realm=x")],
        &[("WWW-Authenticate", "Digest \"")],
        &[("Min-Expires", "")],
    ];
    for status in [100, 183, 200, 401, 407, 423, 302, 699] {
        for headers in junk {
            let mut reg = Registration::new(params(true), 9);
            reg.start(t0);
            let req = sent(&mut reg);
            let _ = reg.handle_response(t0, &answer(&req, status, headers));
            let _ = reg.poll_timeout();
            while reg.poll_transmit().is_some() {}
        }
    }
    let request = Message::parse(&req.to_bytes(), &Limits::default()).expect("parses");
    assert!(!r.handle_response(t0, &request), "a request is no answer");
}

#[test]
fn password_never_in_debug() {
    let (r, _) = started(true);
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("s3cret-pw"));
    assert!(dbg.contains("alice"));
}

#[test]
fn a_binding_held_after_a_failed_refresh_is_still_removed() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    ok_with(
        &mut r,
        t0,
        &req,
        "<sip:trunkgate@192.0.2.1:5060>;expires=120",
    );
    let (refresh, t1) = next_request(&mut r, t0);
    assert!(r.handle_response(t1, &answer(&refresh, 500, &[])));
    assert!(!r.state().registered);
    r.stop(t1);
    let un = sent(&mut r);
    assert_eq!(
        expires_of(&un),
        Some(0),
        "the registrar may still hold the first binding"
    );
}

#[test]
fn a_binding_run_out_is_not_removed() {
    let (mut r, t0) = started(false);
    let req = sent(&mut r);
    ok_with(
        &mut r,
        t0,
        &req,
        "<sip:trunkgate@192.0.2.1:5060>;expires=20",
    );
    let (refresh, t1) = next_request(&mut r, t0);
    assert!(r.handle_response(t1, &answer(&refresh, 500, &[])));
    let later = t0 + Duration::from_secs(21);
    r.stop(later);
    assert!(r.is_done());
    assert_eq!(r.poll_transmit(), None);
}
