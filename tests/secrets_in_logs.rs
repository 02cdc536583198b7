//! No secret in any log line at any level: the real binary runs with `RUST_LOG=trace` through
//! a REGISTER answered with a digest challenge (the trunk's password), API requests with wrong
//! and right bearer tokens (the token), an answered call whose signed `call.completed`
//! callback is delivered (the webhook secret), and a call on SRTP (the SDES keys, the
//! caller's and the one the gateway answered with); then every line it wrote is searched for
//! each secret.

mod support;

use std::time::Duration;

use support::daemon::Daemon;
use support::gw::scratch_dir;
use support::http::CallbackServer;
use support::restart::{write_config, Conf};
use support::rtp::RtpPeer;
use support::ua::{offer, Ua};
use tokio::net::UdpSocket;
use trunkgate::core::sip::message::{HeaderName, Limits, Message, Method, OutMessage};

const TOKEN: &str = "tok-7f3a9c1e5b2d";
const PASSWORD: &str = "pw-e41b77d0c9a6";
const SECRET: &str = "hmac-2c8d5f0a9e13";
const CHALLENGE: &str = "Digest realm=\"carrier\", nonce=\"n0nce42\", qop=\"auth\", algorithm=MD5";
const WAIT: Duration = Duration::from_secs(5);
/// The caller's SDES key and salt (30 bytes, base64).
const CALLER_KEY: &str = "WVNfX19zZWNyZXRfc3J0cF9rZXlfc2FsdF8zMCEh";

/// The next REGISTER on `sock`, answered with `status` (and the challenge for 401).
async fn answer_register(sock: &UdpSocket, status: u16) -> Message {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("a REGISTER in time")
        .expect("recv");
    let req = Message::parse(&buf[..n], &Limits::default()).expect("REGISTER parses");
    assert_eq!(req.method(), Some(&Method::Register));
    let mut out = OutMessage::response_to(&req, status, None, Some("registrar"));
    if status == 401 {
        out.add_header("WWW-Authenticate", CHALLENGE);
    }
    sock.send_to(&out.to_bytes(), from).await.expect("send");
    req
}

async fn api_get(http: &reqwest::Client, base: &str, path: &str, token: &str) -> u16 {
    let req = http.get(format!("{base}{path}")).bearer_auth(token).send();
    let resp = tokio::time::timeout(WAIT, req)
        .await
        .expect("API answers in time")
        .expect("HTTP");
    resp.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_a_trace_level_log() {
    let dir = scratch_dir("secrets-in-logs");
    let registrar = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let reg_addr = registrar.local_addr().expect("addr");
    let (password_file, secret_file) = (dir.join("trunk.password"), dir.join("webhook.secret"));
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret file");
    let mut callbacks = CallbackServer::start(0).await;
    let api_probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let api_addr = api_probe.local_addr().expect("addr");
    drop(api_probe);
    let api_listen = api_addr.to_string();
    let extra = format!(
        "[webhook]\nsecret_file = \"{}\"\n[[trunk]]\nname = \"carrier\"\n\
         outbound = {{ address = \"{reg_addr}\", transport = \"udp\", username = \"alice\", \
         password_file = \"{}\", register = true }}\n",
        secret_file.display(),
        password_file.display()
    );
    let config = write_config(
        &dir,
        &Conf {
            ports: (39100, 39119),
            api: Some((&api_listen, TOKEN)),
            callback: &callbacks.url,
            cdr: true,
            extra,
            agent: r#"{ url = "builtin:echo", dialect = "raw", sample_rate = 8000 }"#.to_owned(),
        },
    );
    // SDES over the loopback's plain UDP, so that a key can be sent at all.
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen("[rtp]\n", "[rtp]\nsrtp_allow_plain_sip = true\n", 1);
    std::fs::write(&config, text).expect("config");
    let daemon = Daemon::start_logging(&config, "trace").await;

    // The password: a challenged REGISTER, answered with a digest.
    let first = answer_register(&registrar, 401).await;
    let authed = answer_register(&registrar, 200).await;
    assert!(first.header(&HeaderName::Authorization).is_none());
    assert!(
        authed.header(&HeaderName::Authorization).is_some(),
        "digest sent"
    );

    // The token: wrong ones (logged as failures), then the right one.
    trunkgate::io::tls::install_default_provider();
    let (http, base) = (reqwest::Client::new(), format!("http://{api_addr}"));
    for wrong in ["nope", "tok-7f3a9c1e5b2", "tok-7f3a9c1e5b2dX"] {
        assert_eq!(api_get(&http, &base, "/v1/calls", wrong).await, 401);
    }
    assert_eq!(api_get(&http, &base, "/v1/trunks", TOKEN).await, 200);

    // The webhook secret: a call and its signed callback.
    let mut ua = Ua::udp(daemon.udp).await;
    let rtp = RtpPeer::bind().await;
    ua.send(&ua.request("INVITE", "s1", 1, None, &offer(rtp.addr(), "0")))
        .await;
    let ok = ua.expect_status(200).await;
    let tag = ok.to_tag().expect("tag");
    ua.send(&ua.request("ACK", "s2", 1, Some(&tag), "")).await;
    ua.send(&ua.request("BYE", "s3", 2, Some(&tag), "")).await;
    ua.expect_status(200).await;
    let delivered = callbacks.success(WAIT).await;
    assert!(
        delivered.header("x-trunkgate-signature").is_some(),
        "the callback is signed with the secret"
    );

    // The SRTP keys: a call offering RTP/SAVP with the caller's key, answered with ours.
    let savp = offer(rtp.addr(), "0").replace("RTP/AVP", "RTP/SAVP")
        + &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{CALLER_KEY}\r\n");
    let mut ua = Ua::udp(daemon.udp).await;
    ua.send(&ua.request("INVITE", "k1", 1, None, &savp)).await;
    let ok = ua.expect_status(200).await;
    let ours = ok
        .body
        .lines()
        .find_map(|l| l.split_once("inline:"))
        .map(|(_, key)| key.trim().to_string())
        .expect("the gateway's key in its answer");
    assert_eq!(ours.len(), CALLER_KEY.len(), "{}", ok.body);
    let tag = ok.to_tag().expect("tag");
    ua.send(&ua.request("ACK", "k2", 1, Some(&tag), "")).await;
    ua.send(&ua.request("BYE", "k3", 2, Some(&tag), "")).await;
    ua.expect_status(200).await;
    callbacks.success(WAIT).await;

    let log = daemon.stop_and_collect().await;
    let text = log.join("\n");
    assert!(
        text.contains(" TRACE ") && text.contains(" DEBUG ") && text.contains("call ended"),
        "a trace-level log was written ({} lines):\n{text}",
        log.len()
    );
    assert!(text.contains("API authentication failed"), "{text}");
    for (what, secret) in [
        ("API token", TOKEN),
        ("trunk password", PASSWORD),
        ("webhook secret", SECRET),
        ("caller's SRTP key", CALLER_KEY),
        ("gateway's SRTP key", ours.as_str()),
    ] {
        let leaks: Vec<&String> = log.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "the {what} is in the log:\n{leaks:#?}");
    }
}
