//! The control API over a real socket: probes, bearer-token auth, Prometheus counters.

mod support;

use std::time::Duration;

use support::gw::scratch_dir;
use support::rtp::RtpPeer;
use support::ua::{offer, Ua};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTP/1.1 GET (Connection: close): status and body.
async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let (status, _, body) = get_from(None, addr, path, token, None).await;
    (status, body)
}

/// A GET from `source` (a loopback address; `None`: any), with `X-Forwarded-For: forwarded`
/// if given: status, head and body.
async fn get_from(
    source: Option<std::net::IpAddr>,
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
    forwarded: Option<&str>,
) -> (u16, String, String) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(ip) = source {
        socket.bind((ip, 0).into()).expect("bind source");
    }
    let mut s = socket.connect(addr).await.expect("connect API");
    let mut auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    if let Some(client) = forwarded {
        auth.push_str(&format!("X-Forwarded-For: {client}\r\n"));
    }
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("API answers")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn metric(body: &str, name: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// A gateway (built-in echo agent, RTP on `ports`) whose API needs the token `s3cret`, and
/// the API's address.
async fn start_with_token(
    name: &str,
    ports: (u16, u16),
    extra_api: &str,
) -> (trunkgate::app::Gateway, std::net::SocketAddr) {
    let dir = scratch_dir(name);
    let token_file = dir.join("api.token");
    std::fs::write(&token_file, "s3cret\n").expect("token file");
    let text = support::gw::config_text(ports, "builtin:echo", "").replace(
        "listen = \"\"",
        &format!(
            "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n{extra_api}",
            token_file.display()
        ),
    );
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    let gw = trunkgate::app::Gateway::start(cfg).await.expect("start");
    let api = gw.api_addr.expect("API listening");
    (gw, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_auth_and_metrics() {
    let (gw, api) = start_with_token("api", (30800, 30899), "").await;

    assert_eq!(get(api, "/healthz", None).await.0, 200);
    assert_eq!(get(api, "/readyz", None).await.0, 200);
    assert_eq!(get(api, "/metrics", None).await.0, 401, "no token");
    assert_eq!(
        get(api, "/metrics", Some("wrong!")).await.0,
        401,
        "wrong token"
    );
    let (status, body) = get(api, "/metrics", Some("s3cret")).await;
    assert_eq!(status, 200);
    assert_eq!(metric(&body, "trunkgate_calls_started_total"), Some(0));

    // One call, then the counters show it.
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    ua.send(&ua.request("INVITE", "a1", 1, None, &offer(rtp.addr(), "0")))
        .await;
    let ok = ua.expect_status(200).await;
    let tag = ok.to_tag().expect("tag");
    ua.send(&ua.request("ACK", "a2", 1, Some(&tag), "")).await;
    let (_, body) = get(api, "/metrics", Some("s3cret")).await;
    assert_eq!(metric(&body, "trunkgate_calls_active"), Some(1));
    assert_eq!(metric(&body, "trunkgate_rtp_ports_in_use"), Some(1));
    ua.send(&ua.request("BYE", "a3", 2, Some(&tag), "")).await;
    ua.expect_status(200).await;
    // Its end: by reason, its setup time, its packets (a bounded poll: the record comes first).
    let ended = "trunkgate_calls_ended_by_reason_total{end_reason=\"caller_hangup\"}";
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (_, body) = get(api, "/metrics", Some("s3cret")).await;
        if metric(&body, ended) == Some(1) || std::time::Instant::now() > until {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(metric(&body, ended), Some(1), "{body}");
    assert_eq!(metric(&body, "trunkgate_call_setup_seconds_count"), Some(1));
    assert_eq!(
        metric(&body, "trunkgate_call_setup_seconds_bucket{le=\"+Inf\"}"),
        Some(1)
    );
    assert!(body.contains("# TYPE trunkgate_call_setup_seconds histogram"));
    assert!(body.contains("# TYPE trunkgate_calls_refused_total counter"));
    assert_eq!(metric(&body, "trunkgate_rtp_packets_lost_total"), Some(0));

    // Draining: readiness goes false.
    gw.drain(Duration::from_secs(1)).await;
    assert_eq!(get(api, "/readyz", None).await.0, 503);
    let (_, body) = get(api, "/metrics", Some("s3cret")).await;
    assert_eq!(metric(&body, "trunkgate_calls_started_total"), Some(1));
    assert_eq!(metric(&body, "trunkgate_draining"), Some(1));
}

/// A source that keeps sending wrong tokens is refused with 429 (even with the right token)
/// once it used up its allowance (the probes still answer); another source is unaffected;
/// failures are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_auth_is_limited_per_source() {
    let (_gw, api) = start_with_token("api-auth-limit", (30900, 30999), "").await;
    let guesser = Some("127.0.0.3".parse().expect("ip"));
    let other = Some("127.0.0.4".parse().expect("ip"));

    for i in 0..10 {
        let (status, _, _) =
            get_from(guesser, api, "/v1/calls", Some(&format!("guess{i}")), None).await;
        assert_eq!(status, 401, "guess {i}");
    }
    let (status, head, body) = get_from(guesser, api, "/v1/calls", Some("s3cret"), None).await;
    assert_eq!(status, 429, "refused, right token or not: {body}");
    assert!(head.contains("\r\nretry-after: "), "{head}");
    assert!(body.contains("\"rate_limited\""), "{body}");
    let (_, _, doc) = get_from(other, api, "/v1/openapi.json", Some("s3cret"), None).await;
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("document");
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    support::schema::assert_response(&doc, "/v1/calls", "get", 429, &body);
    let probe = get_from(guesser, api, "/readyz", None, None).await.0;
    assert_eq!(probe, 200, "probes stay served");

    let (status, _, body) = get_from(other, api, "/metrics", Some("s3cret"), None).await;
    assert_eq!(status, 200, "another source is served");
    assert_eq!(metric(&body, "trunkgate_api_auth_failures_total"), Some(10));
}

/// Behind a trusted reverse proxy the limit applies to the client named by X-Forwarded-For,
/// not to the proxy: one client guessing does not lock out the others behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_auth_behind_a_trusted_proxy_counts_the_client() {
    let proxies = "trusted_proxies = [\"127.0.0.5/32\"]";
    let (_gw, api) = start_with_token("api-auth-proxy", (31100, 31199), proxies).await;
    let proxy = Some("127.0.0.5".parse().expect("ip"));
    let guesser = Some("203.0.113.7");
    for i in 0..10 {
        let token = format!("guess{i}");
        let status = get_from(proxy, api, "/v1/calls", Some(&token), guesser)
            .await
            .0;
        assert_eq!(status, 401, "guess {i}");
    }
    let refused = get_from(proxy, api, "/v1/calls", Some("s3cret"), guesser)
        .await
        .0;
    assert_eq!(refused, 429, "the guessing client is refused");
    // A claimed address left of the client's own does not help it.
    let spoofed = Some("198.51.100.1, 203.0.113.7");
    assert_eq!(
        get_from(proxy, api, "/v1/calls", Some("s3cret"), spoofed)
            .await
            .0,
        429
    );
    let other = Some("203.0.113.8");
    let served = get_from(proxy, api, "/v1/calls", Some("s3cret"), other)
        .await
        .0;
    assert_eq!(
        served, 200,
        "another client behind the same proxy is served"
    );
    // An untrusted peer's header is ignored: it is counted as itself.
    let direct = Some("127.0.0.6".parse().expect("ip"));
    assert_eq!(
        get_from(direct, api, "/v1/calls", Some("s3cret"), guesser)
            .await
            .0,
        200
    );
}

/// `--check-config` reads every file the configuration names, as the daemon would at start:
/// a missing token file, an empty webhook secret and a CA file without a certificate each fail
/// the check with their key path (and never print a file's content); fixed, the check passes.
#[test]
fn check_config_reads_every_named_file() {
    let dir = scratch_dir("check-files");
    let token = dir.join("api.token");
    let secret = dir.join("webhook.secret");
    let ca = dir.join("ca.pem");
    let alice = dir.join("alice.password");
    let _ = std::fs::remove_file(&token);
    let _ = std::fs::remove_file(&alice);
    std::fs::write(&secret, "\n").expect("secret file");
    std::fs::write(&ca, "hunter2 is not a certificate\n").expect("CA file");
    let extra = format!(
        "[webhook]\nsecret_file = \"{}\"\n[agent]\nextra_ca_file = \"{}\"\n\
         [[user]]\nname = \"alice\"\npassword_file = \"{}\"\n",
        secret.display(),
        ca.display(),
        alice.display()
    );
    let text = support::gw::config_text((30900, 30909), "builtin:echo", &extra).replace(
        "listen = \"\"",
        &format!(
            "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
            token.display()
        ),
    );
    let file = dir.join("trunkgate.toml");
    std::fs::write(&file, text).expect("config file");
    let check = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trunkgate"))
            .arg("--check-config")
            .arg(&file)
            .output()
            .expect("run trunkgate --check-config");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = check();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("api.token_file: cannot read {}", token.display())),
        "{text}"
    );
    assert!(
        text.contains("webhook.secret_file: ") && text.contains("is empty"),
        "{text}"
    );
    assert!(text.contains("agent.extra_ca_file: "), "{text}");
    assert!(text.contains("user[0].password_file: "), "{text}");
    assert!(
        !text.contains("hunter2"),
        "a file's content is never printed: {text}"
    );

    std::fs::write(&token, "t0ken\n").expect("token file");
    std::fs::write(&secret, "s3cret\n").expect("secret file");
    std::fs::write(&alice, "al1ce-pw\n").expect("password file");
    let (code, text) = check();
    assert_eq!(
        code,
        Some(1),
        "the CA file still has no certificate: {text}"
    );
    assert!(
        !text.contains("api.token_file")
            && !text.contains("webhook.secret_file")
            && !text.contains("user[0]"),
        "{text}"
    );
    let _ = std::fs::remove_file(&ca);
    let text = support::gw::config_text(
        (30900, 30909),
        "builtin:echo",
        &extra.replace(
            &format!("[agent]\nextra_ca_file = \"{}\"\n", ca.display()),
            "",
        ),
    )
    .replace(
        "listen = \"\"",
        &format!(
            "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
            token.display()
        ),
    );
    std::fs::write(&file, text).expect("config file");
    let (code, text) = check();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(": OK"), "{text}");
}
