//! Scripted-trunk tests of digest retries on our INVITE (RFC 3261 §22.2, RFC 7616): 401 and
//! 407 answered once with the same Call-ID and From tag and the next CSeq, `stale=true`
//! answered once more, anything else ending the call `AuthFailed`. Harness in `tests_uac.rs`.

use super::tests_uac::*;
use super::*;
use crate::core::sip::auth::{self, Credentials};
use crate::core::sip::message::Message;
use crate::core::Transport;

const CHALLENGE: &str =
    "Digest realm=\"carrier.example\", nonce=\"n1\", qop=\"auth\", algorithm=MD5";

/// Checks that `value` answers `challenge` for `alice` (recomputed with `auth::respond`).
fn check_digest(value: &str, challenge: &str) {
    let param = |name: &str| -> String {
        let at = value.find(&format!("{name}=")).expect(name) + name.len() + 1;
        let rest = value[at..].trim_start_matches('"');
        rest.split(['"', ',']).next().unwrap_or("").to_string()
    };
    let c = auth::parse_challenge(challenge).expect("challenge");
    let nc = u32::from_str_radix(&param("nc"), 16).expect("nc");
    let creds = Credentials::new("alice", "secret");
    let expected =
        auth::respond(&creds, &c, "INVITE", RURI, &param("cnonce"), nc).expect("respond");
    assert_eq!(param("response"), expected.response, "{value}");
    assert_eq!(param("uri"), RURI);
    assert_eq!(param("username"), "alice");
    assert_eq!(nc, 1);
}

/// A challenge answered: the new INVITE keeps the Call-ID and From tag, raises CSeq, takes a
/// new branch and carries `header` with a correct digest. Returns the new INVITE.
fn challenged(h: &mut Uac, inv: &Message, status: u16, challenge: &str) -> Message {
    let (ask, answer) = match status {
        401 => ("WWW-Authenticate", "Authorization"),
        _ => ("Proxy-Authenticate", "Proxy-Authorization"),
    };
    let out = h.recv(reply(
        inv,
        status,
        Some("x"),
        &format!("{ask}: {challenge}\r\n"),
        "",
    ));
    assert_eq!(
        kinds(&out),
        vec!["ACK", "INVITE"],
        "the 401's ACK, then the retry"
    );
    assert!(events(&out).is_empty());
    let msgs = sent(&out);
    assert_eq!(
        branch(&msgs[0]),
        branch(inv),
        "the non-2xx ACK is in the transaction"
    );
    assert_eq!(hdr(&msgs[0], "CSeq"), format!("{} ACK", inv.cseq().seq));
    let retry = msgs[1].clone();
    assert_eq!(retry.call_id(), inv.call_id());
    assert_eq!(retry.from_tag(), inv.from_tag());
    assert_eq!(retry.to_tag(), None);
    assert_eq!(retry.cseq().seq, inv.cseq().seq + 1);
    assert_ne!(branch(&retry), branch(inv));
    assert_eq!(retry.body(), OFFER.as_bytes());
    check_digest(hdr(&retry, answer), challenge);
    retry
}

#[test]
fn www_challenge_md5_then_answered() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, true);
    let retry = challenged(&mut h, &inv, 401, CHALLENGE);
    assert_eq!(hdr(&retry, "CSeq"), "2 INVITE");
    assert!(retry.header_by_name("Proxy-Authorization").is_none());
    // A retransmitted 401 gets its ACK again and no second retry.
    let out = h.recv(reply(
        &inv,
        401,
        Some("x"),
        &format!("WWW-Authenticate: {CHALLENGE}\r\n"),
        "",
    ));
    assert_eq!(kinds(&out), vec!["ACK"]);
    let out = h.recv(reply(
        &retry,
        200,
        Some("t2"),
        "Contact: <sip:b@127.0.0.1:5080>\r\n",
        ANSWER,
    ));
    let msgs = sent(&out);
    assert_eq!(kinds(&out), vec!["ACK"]);
    assert_eq!(hdr(&msgs[0], "CSeq"), "2 ACK");
    let sdp = Some(ANSWER.as_bytes().to_vec());
    assert_eq!(events(&out), vec![CallEvent::Answered { sdp }]);
}

#[test]
fn proxy_challenge_gets_proxy_authorization() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Tcp, true);
    let retry = challenged(&mut h, &inv, 407, CHALLENGE);
    assert!(retry.header_by_name("Authorization").is_none());
}

#[test]
fn second_challenge_for_the_same_realm_is_auth_failed() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, true);
    let retry = challenged(&mut h, &inv, 401, CHALLENGE);
    let again = CHALLENGE.replace("n1", "n2");
    let out = h.recv(reply(
        &retry,
        401,
        Some("y"),
        &format!("WWW-Authenticate: {again}\r\n"),
        "",
    ));
    assert_eq!(kinds(&out), vec!["ACK"], "no third INVITE");
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::AuthFailed(401))]
    );
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn stale_rechallenge_is_retried_once() {
    let mut h = Uac::new();
    let inv = dialed(&mut h, Transport::Udp, true);
    let retry = challenged(&mut h, &inv, 401, CHALLENGE);
    let stale = CHALLENGE.replace("n1", "n2") + ", stale=true";
    let third = challenged(&mut h, &retry, 401, &stale);
    assert_eq!(hdr(&third, "CSeq"), "3 INVITE");
    // A second stale challenge is not answered again.
    let stale3 = CHALLENGE.replace("n1", "n3") + ", stale=true";
    let out = h.recv(reply(
        &third,
        401,
        Some("z"),
        &format!("WWW-Authenticate: {stale3}\r\n"),
        "",
    ));
    assert_eq!(kinds(&out), vec!["ACK"]);
    assert_eq!(
        events(&out),
        vec![CallEvent::Ended(EndReason::AuthFailed(401))]
    );
}

#[test]
fn challenge_without_credentials_or_unusable_is_auth_failed() {
    for (creds, status, challenge) in [
        (false, 401, CHALLENGE),
        (false, 407, CHALLENGE),
        (true, 401, "Basic realm=\"x\""),
        (
            true,
            407,
            "Digest realm=\"x\", nonce=\"n\", algorithm=AKAv1-MD5",
        ),
    ] {
        let mut h = Uac::new();
        let inv = dialed(&mut h, Transport::Udp, creds);
        let ask = if status == 401 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let out = h.recv(reply(
            &inv,
            status,
            Some("x"),
            &format!("{ask}: {challenge}\r\n"),
            "",
        ));
        assert_eq!(kinds(&out), vec!["ACK"], "{challenge}");
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended(EndReason::AuthFailed(status))]
        );
        // Nor does a 401 without any challenge header retry.
        let mut h = Uac::new();
        let inv = dialed(&mut h, Transport::Udp, creds);
        let out = h.recv(reply(&inv, status, Some("x"), "", ""));
        assert_eq!(
            events(&out),
            vec![CallEvent::Ended(EndReason::AuthFailed(status))]
        );
    }
}
