//! The control API over a real socket: probes, bearer-token auth, Prometheus counters.

mod support;

use std::time::Duration;

use support::gw::scratch_dir;
use support::rtp::RtpPeer;
use support::ua::{offer, Ua};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTP/1.1 GET (Connection: close): status and body.
async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect API");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("API answers")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn metric(body: &str, name: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_auth_and_metrics() {
    let dir = scratch_dir("api");
    let token_file = dir.join("api.token");
    std::fs::write(&token_file, "s3cret\n").expect("token file");
    let text = support::gw::config_text((30800, 30899), "builtin:echo", "").replace(
        "listen = \"\"",
        &format!(
            "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
            token_file.display()
        ),
    );
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    let gw = trunkgate::app::Gateway::start(cfg).await.expect("start");
    let api = gw.api_addr.expect("API listening");

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

    // Draining: readiness goes false.
    gw.drain(Duration::from_secs(1)).await;
    assert_eq!(get(api, "/readyz", None).await.0, 503);
    let (_, body) = get(api, "/metrics", Some("s3cret")).await;
    assert_eq!(metric(&body, "trunkgate_calls_started_total"), Some(1));
    assert_eq!(metric(&body, "trunkgate_draining"), Some(1));
}
