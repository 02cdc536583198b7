//! Self-test of the scripted trunk (`tests/support/trunk.rs`): a minimal hand-written UAC
//! (the scripted UA's sockets and SIP text) drives it over loopback UDP and TCP. The digest
//! answers are computed with trunkgate's own client (`core::sip::auth`), so the trunk's
//! independent check and the gateway's client verify each other.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::caller::Caller;
use support::trunk::digest::{self, Expected};
use support::trunk::*;
use support::ua::{offer, Msg, Ua};
use trunkgate::core::sip::auth;

const WAIT: Duration = Duration::from_secs(5);

/// The test's UAC: one Call-ID over one socket.
struct Uac {
    ua: Ua,
    rtp: Caller,
    cseq: u32,
    to_tag: Option<String>,
}

impl Uac {
    async fn new(t: Transport, trunk: SocketAddr) -> Uac {
        let ua = match t {
            Transport::Udp => Ua::udp(trunk).await,
            Transport::Tcp => Ua::tcp(trunk).await,
            Transport::Tls => unreachable!("the harness's own tests run over UDP and TCP"),
        };
        Uac {
            ua,
            rtp: Caller::bind().await,
            cseq: 0,
            to_tag: None,
        }
    }

    fn ruri(&self) -> String {
        format!("sip:+48123456789@{}", self.ua.server)
    }

    /// A request with `extra` header lines, to `uri` (None: the Request-URI of the INVITE).
    fn req(
        &self,
        method: &str,
        branch: &str,
        cseq: u32,
        uri: Option<&str>,
        extra: &str,
        body: &str,
    ) -> String {
        let text = self
            .ua
            .request(method, branch, cseq, self.to_tag.as_deref(), body);
        let text = text.replacen("Content-Length:", &format!("{extra}Content-Length:"), 1);
        match uri {
            Some(u) => text.replacen(&self.ruri(), u, 1),
            None => text,
        }
    }

    /// Sends an INVITE (new transaction, CSeq + 1); returns its branch.
    async fn invite(&mut self, extra: &str) -> String {
        self.cseq += 1;
        let branch = format!("inv{}x{:x}", self.cseq, fastrand::u32(..));
        let body = offer(self.rtp.addr, "0 8");
        let text = self.req("INVITE", &branch, self.cseq, None, extra, &body);
        self.ua.send(&text).await;
        branch
    }

    async fn status(&mut self, status: u16) -> Msg {
        self.ua
            .expect(WAIT, &format!("status {status}"), |m| {
                m.status() == Some(status)
            })
            .await
    }

    /// The next final response (skipping 1xx).
    async fn final_answer(&mut self) -> Msg {
        self.ua
            .expect(WAIT, "a final response", |m| {
                m.status().is_some_and(|s| s >= 200)
            })
            .await
    }

    /// ACK for a non-2xx final: the INVITE's branch, CSeq and Request-URI.
    async fn ack_failure(&mut self, branch: &str, resp: &Msg) {
        let saved = self.to_tag.replace(resp.to_tag().unwrap_or_default());
        let text = self.req("ACK", branch, self.cseq, None, "", "");
        self.to_tag = saved;
        self.ua.send(&text).await;
    }

    /// ACK for the 2xx: a new branch, to its Contact.
    async fn ack_ok(&mut self, ok: &Msg) -> String {
        self.to_tag = ok.to_tag();
        let contact = ok.header("Contact").unwrap_or_default();
        let uri = contact
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        let text = self.req("ACK", "ack1", self.cseq, Some(&uri), "", "");
        self.ua.send(&text).await;
        uri
    }

    /// Answers `chal` (401/407) with trunkgate's digest client: the header line to add.
    fn answer(&self, chal: &Msg, user: &str, pass: &str, nc: u32) -> String {
        let (h, r) = match chal.status() {
            Some(407) => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => ("WWW-Authenticate", "Authorization"),
        };
        let parsed = auth::parse_challenge(chal.header(h).expect("challenge header"))
            .expect("trunk challenge parses");
        let creds = auth::Credentials::new(user, pass);
        let resp = auth::respond(&creds, &parsed, "INVITE", &self.ruri(), "c0ffee", nc)
            .expect("digest answer");
        format!("{r}: {}\r\n", resp.header_value())
    }
}

/// INVITE → 401/407 → INVITE with credentials → 100, 180 → 200 → ACK, with media both
/// ways, then the UAC's BYE.
async fn authenticated_call(t: Transport, ch: Challenge) {
    let trunk = Trunk::with_script(
        t,
        Script::answer()
            .challenge(ch.clone())
            .ring(Duration::from_millis(20))
            .tone(1000.0),
    )
    .await;
    let mut uac = Uac::new(t, trunk.addr).await;
    let b1 = uac.invite("").await;
    let status = ch.kind.status();
    let chal = uac.status(status).await;
    uac.ack_failure(&b1, &chal).await;
    let auth = uac.answer(&chal, &ch.username, &ch.password, 1);
    uac.invite(&auth).await;
    uac.status(100).await;
    let ringing = uac.status(180).await;
    let ok = uac.final_answer().await;
    assert_eq!(ok.status(), Some(200), "{}", ok.start);
    assert_eq!(ringing.to_tag(), ok.to_tag(), "one To tag for the dialog");
    let media = ok.sdp_media().expect("SDP in the 200");
    let contact = uac.ack_ok(&ok).await;
    uac.rtp.start(media, 440.0);

    let call = trunk
        .expect_call(0, WAIT, "acked", |c| c.acked && c.ack.is_some())
        .await;
    assert_eq!(call.invites, 2);
    assert_eq!(call.auth_ok, Some(true), "{:?}", call.auth);
    assert_eq!(call.sent, vec![status, 100, 180, 200]);
    assert_eq!(call.contact, contact);
    let ack = call.ack.as_ref().expect("ACK recorded");
    assert_eq!(ack.uri, call.contact);
    assert_eq!(ack.cseq(), Some(2));
    assert!(call.problems.is_empty(), "{:?}", call.problems);
    let invite = trunk.expect_request("INVITE", WAIT).await;
    assert!(
        invite.header("Authorization").is_none() && invite.header("Proxy-Authorization").is_none()
    );
    let retry = trunk.expect_request("INVITE", WAIT).await;
    assert!(retry.header(ch.kind.answer_header()).is_some());

    // Content both ways: the trunk's tone reaches the UAC, the UAC's tone the trunk.
    assert!(
        uac.rtp
            .wait_until(WAIT, |h| h.tone_times(1000.0).len() >= 5)
            .await,
        "UAC heard the trunk's 1 kHz"
    );
    assert!(
        trunk
            .wait_heard(0, WAIT, |h| h.tone_times(440.0).len() >= 5)
            .await,
        "trunk heard the UAC's 440 Hz"
    );

    uac.cseq += 1;
    let bye = uac.req("BYE", "bye1", uac.cseq, Some(&contact), "", "");
    uac.ua.send(&bye).await;
    uac.status(200).await;
    let call = trunk.expect_call(0, WAIT, "ended", |c| c.ended).await;
    assert_eq!(call.bye_from, Some(Side::Gateway));
    assert!(call.problems.is_empty(), "{:?}", call.problems);
}

#[tokio::test]
async fn udp_401_md5_ring_answer_bye() {
    authenticated_call(
        Transport::Udp,
        Challenge::www(Algorithm::Md5, "alice", "s3cret"),
    )
    .await;
}

#[tokio::test]
async fn tcp_401_md5_ring_answer_bye() {
    authenticated_call(
        Transport::Tcp,
        Challenge::www(Algorithm::Md5, "alice", "s3cret"),
    )
    .await;
}

#[tokio::test]
async fn udp_407_sha256_ring_answer_bye() {
    let ch = Challenge::proxy(Algorithm::Sha256, "bob", "pa55").realm("carrier.example");
    authenticated_call(Transport::Udp, ch).await;
}

#[tokio::test]
async fn tcp_407_sha256_ring_answer_bye() {
    let ch = Challenge::proxy(Algorithm::Sha256, "bob", "pa55").nonce("fixed-nonce-1");
    authenticated_call(Transport::Tcp, ch).await;
}

/// 100, 180, then the UAC CANCELs: 200 to the CANCEL, 487 to the INVITE, ACK absorbed.
async fn canceled_call(t: Transport) {
    let trunk = Trunk::with_script(t, Script::answer().ring(Duration::ZERO).never_answer()).await;
    let mut uac = Uac::new(t, trunk.addr).await;
    let b = uac.invite("").await;
    uac.status(180).await;
    let cancel = uac.req("CANCEL", &b, uac.cseq, None, "", "");
    uac.ua.send(&cancel).await;
    let ok = uac
        .ua
        .expect(WAIT, "200 to CANCEL", |m| {
            m.status() == Some(200) && m.header("CSeq").is_some_and(|c| c.ends_with("CANCEL"))
        })
        .await;
    assert!(ok.to_tag().is_some());
    let term = uac.final_answer().await;
    assert_eq!(term.status(), Some(487));
    uac.ack_failure(&b, &term).await;
    let call = trunk.expect_call(0, WAIT, "ended", |c| c.ended).await;
    assert!(call.canceled && call.acked, "{call:#?}");
    assert_eq!(call.final_status, Some(487));
    assert_eq!(call.sent, vec![100, 180, 487]);
    assert!(call.problems.is_empty(), "{:?}", call.problems);
    trunk.expect_request("CANCEL", WAIT).await;
}

#[tokio::test]
async fn udp_cancel_gets_487() {
    canceled_call(Transport::Udp).await;
}

#[tokio::test]
async fn tcp_cancel_gets_487() {
    canceled_call(Transport::Tcp).await;
}

#[tokio::test]
async fn wrong_password_gets_403() {
    let ch = Challenge::www(Algorithm::Md5, "alice", "right");
    let trunk = Trunk::with_script(Transport::Udp, Script::answer().challenge(ch)).await;
    let mut uac = Uac::new(Transport::Udp, trunk.addr).await;
    let b = uac.invite("").await;
    let chal = uac.status(401).await;
    uac.ack_failure(&b, &chal).await;
    let auth = uac.answer(&chal, "alice", "wrong", 1);
    let b = uac.invite(&auth).await;
    let fin = uac.final_answer().await;
    assert_eq!(fin.status(), Some(403));
    uac.ack_failure(&b, &fin).await;
    let call = trunk.expect_call(0, WAIT, "ended", |c| c.ended).await;
    assert_eq!(call.auth_ok, Some(false));
    assert!(call.auth[0].reason.contains("response"), "{:?}", call.auth);
}

#[tokio::test]
async fn stale_rechallenge_once_then_second_challenge() {
    let ch = Challenge::www(Algorithm::Sha256, "alice", "pw")
        .stale_once()
        .again();
    let trunk = Trunk::with_script(Transport::Udp, Script::answer().challenge(ch)).await;
    let mut uac = Uac::new(Transport::Udp, trunk.addr).await;
    let b = uac.invite("").await;
    let first = uac.status(401).await;
    uac.ack_failure(&b, &first).await;
    let b = uac.invite(&uac.answer(&first, "alice", "pw", 1)).await;
    let stale = uac.status(401).await;
    uac.ack_failure(&b, &stale).await;
    let parsed = auth::parse_challenge(stale.header("WWW-Authenticate").unwrap_or_default());
    assert!(
        parsed.is_ok_and(|c| c.stale),
        "stale=true: {:?}",
        stale.header("WWW-Authenticate")
    );
    let b = uac.invite(&uac.answer(&stale, "alice", "pw", 1)).await;
    let again = uac.status(401).await;
    uac.ack_failure(&b, &again).await;
    let parsed = auth::parse_challenge(again.header("WWW-Authenticate").unwrap_or_default());
    assert!(parsed.is_ok_and(|c| !c.stale));
    let call = trunk
        .expect_call(0, WAIT, "3 challenges", |c| {
            c.sent == [401, 401, 401] && c.acked
        })
        .await;
    assert_eq!(
        call.auth.iter().filter(|a| a.ok).count(),
        2,
        "{:?}",
        call.auth
    );
    assert_eq!(call.invites, 3);
}

/// Without an ACK the 200 is retransmitted (T1 doubling); the ACK stops it.
#[tokio::test]
async fn udp_200_retransmitted_until_ack() {
    let trunk = Trunk::start(Transport::Udp).await;
    trunk.set_t1(Duration::from_millis(40));
    let mut uac = Uac::new(Transport::Udp, trunk.addr).await;
    uac.invite("").await;
    for _ in 0..3 {
        uac.status(200).await;
    }
    let ok = uac.status(200).await;
    uac.ack_ok(&ok).await;
    let call = trunk.expect_call(0, WAIT, "acked", |c| c.acked).await;
    assert!(call.ok_sent >= 4, "{call:#?}");
    assert!(!call.ack_timeout);
}

#[tokio::test]
async fn rejects_and_redirects() {
    for script in [
        Script::answer().reject(486),
        Script::answer().reject(603).no_trying(),
        Script::answer().redirect(302, "sip:+4930111@127.0.0.1:5999"),
    ] {
        let trunk = Trunk::with_script(Transport::Udp, script.clone()).await;
        let mut uac = Uac::new(Transport::Udp, trunk.addr).await;
        let b = uac.invite("").await;
        let fin = uac.final_answer().await;
        uac.ack_failure(&b, &fin).await;
        match script.final_ {
            Final::Reject { status, .. } => assert_eq!(fin.status(), Some(status)),
            Final::Redirect { status, .. } => {
                assert_eq!(fin.status(), Some(status));
                assert_eq!(fin.header("Contact"), Some("<sip:+4930111@127.0.0.1:5999>"));
            }
            _ => unreachable!(),
        }
        let call = trunk
            .expect_call(0, WAIT, "acked", |c| c.acked && c.ended)
            .await;
        assert!(call.problems.is_empty(), "{:?}", call.problems);
    }
}

/// 183 with SDP: media before the answer; then a 200 without SDP; a 422 Min-SE first.
#[tokio::test]
async fn min_se_then_early_media_then_200_without_sdp() {
    let trunk = Trunk::with_script(
        Transport::Udp,
        Script::answer()
            .min_se(120)
            .early_media(Duration::ZERO)
            .answer_after(Duration::from_millis(300))
            .no_sdp()
            .tone(1000.0),
    )
    .await;
    let mut uac = Uac::new(Transport::Udp, trunk.addr).await;
    let b = uac
        .invite("Session-Expires: 90\r\nSupported: timer\r\n")
        .await;
    let too_small = uac.status(422).await;
    assert_eq!(too_small.header("Min-SE"), Some("120"));
    uac.ack_failure(&b, &too_small).await;
    uac.invite("Session-Expires: 120\r\nSupported: timer\r\n")
        .await;
    let early = uac.status(183).await;
    let media = early.sdp_media().expect("SDP in 183");
    uac.rtp.start(media, 0.0);
    assert!(
        uac.rtp
            .wait_until(WAIT, |h| !h.tone_times(1000.0).is_empty())
            .await
    );
    let ok = uac.final_answer().await;
    assert_eq!(ok.status(), Some(200));
    assert!(ok.body.is_empty(), "200 without SDP");
    uac.ack_ok(&ok).await;
    let call = trunk.expect_call(0, WAIT, "acked", |c| c.acked).await;
    assert_eq!(call.sent, vec![422, 100, 183, 200]);
}

/// Session timer in the 200; the first refresh answered, the second ignored; the trunk's BYE
/// when told to.
#[tokio::test]
async fn session_timer_refreshes_then_trunk_bye() {
    let trunk = Trunk::with_script(
        Transport::Tcp,
        Script::answer()
            .session_timer(90, Refresher::Uac)
            .require_timer()
            .refreshes(Refreshes::AnswerFirst(1))
            .codec(Codec::Pcma),
    )
    .await;
    let mut uac = Uac::new(Transport::Tcp, trunk.addr).await;
    uac.invite("Supported: timer\r\n").await;
    let ok = uac.final_answer().await;
    assert_eq!(ok.header("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(ok.header("Require"), Some("timer"));
    assert!(ok.body.contains("RTP/AVP 8 101"), "{}", ok.body);
    let contact = uac.ack_ok(&ok).await;
    // Refresh 1: re-INVITE, answered with SDP.
    uac.cseq += 1;
    let body = offer(uac.rtp.addr, "8");
    let reinvite = uac.req(
        "INVITE",
        "re1",
        uac.cseq,
        Some(&contact),
        "Session-Expires: 90;refresher=uac\r\n",
        &body,
    );
    uac.ua.send(&reinvite).await;
    let ok2 = uac.final_answer().await;
    assert_eq!(ok2.status(), Some(200));
    assert!(
        ok2.body.contains("o=trunk 1 2 "),
        "version raised: {}",
        ok2.body
    );
    uac.ack_ok(&ok2).await;
    // Refresh 2: UPDATE, never answered.
    uac.cseq += 1;
    let update = uac.req(
        "UPDATE",
        "up1",
        uac.cseq,
        Some(&contact),
        "Session-Expires: 90;refresher=uac\r\n",
        "",
    );
    uac.ua.send(&update).await;
    let call = trunk
        .expect_call(0, WAIT, "2 refreshes", |c| c.refreshes.len() == 2)
        .await;
    assert!(call.refreshes[0].answered && call.refreshes[0].has_sdp);
    assert!(!call.refreshes[1].answered);
    assert_eq!(call.refreshes[1].method, "UPDATE");
    // The trunk hangs up on the same TCP connection.
    assert!(trunk.bye(0));
    let bye = uac
        .ua
        .expect(WAIT, "the trunk's BYE", |m| m.method() == Some("BYE"))
        .await;
    assert!(bye.start.starts_with("BYE sip:caller@"), "{}", bye.start);
    uac.ua.send(&support::leg::ok_for(&bye)).await;
    let call = trunk.expect_call(0, WAIT, "ended", |c| c.ended).await;
    assert_eq!(
        (call.bye_from, call.bye_status),
        (Some(Side::Trunk), Some(200))
    );
    assert!(call.problems.is_empty(), "{:?}", call.problems);
}

#[tokio::test]
async fn no_common_codec_answer() {
    let trunk = Trunk::with_script(Transport::Udp, Script::answer().no_common_codec()).await;
    let mut uac = Uac::new(Transport::Udp, trunk.addr).await;
    uac.invite("").await;
    let ok = uac.final_answer().await;
    assert!(
        ok.body.contains("m=audio") && ok.body.contains("RTP/AVP 18\r\n"),
        "{}",
        ok.body
    );
}

/// Queued scripts are taken one per new Call-ID, then the default.
#[tokio::test]
async fn script_queue_then_default() {
    let trunk = Trunk::with_script(Transport::Udp, Script::answer().reject(404)).await;
    trunk.push(Script::answer().reject(486));
    for want in [486, 404] {
        let mut uac = Uac::new(Transport::Udp, trunk.addr).await;
        let b = uac.invite("").await;
        let fin = uac.final_answer().await;
        assert_eq!(fin.status(), Some(want));
        uac.ack_failure(&b, &fin).await;
    }
    assert_eq!(trunk.calls().len(), 2);
}

/// The harness's digest check against RFC 2617 §3.5's worked example.
#[test]
fn digest_check_matches_rfc_2617_example() {
    let exp = Expected {
        username: "Mufasa",
        password: "Circle Of Life",
        realm: "testrealm@host.com",
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        opaque: "5ccc069c403ebaf9f0171e9517f40e41",
        alg: Algorithm::Md5,
        method: "GET",
        request_uri: "/dir/index.html",
    };
    let v = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
             response=\"6629fae49393a05397450978507c4ef1\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let c = digest::verify("Authorization", Some(v), &exp);
    assert!(c.ok, "{}", c.reason);
    let bad = v.replace("6629fae4", "6629fae5");
    assert!(!digest::verify("Authorization", Some(&bad), &exp).ok);
    assert!(!digest::verify("Authorization", Some("Digest garbage=\"x"), &exp).ok);
    assert!(!digest::verify("Authorization", None, &exp).ok);
}
