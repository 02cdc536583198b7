//! Memory and descriptors under abuse: the real binary takes bursts of seeded, mutated
//! INVITEs over UDP and TCP (about one in six a valid call that is answered and never ACKed,
//! so it lives until Timer H), then — once every abandoned call has timed out — still answers
//! OPTIONS, has its idle descriptors back, and its RSS after each later burst stays within
//! 10 % of its RSS after the first. `TRUNKGATE_ABUSE_INVITES` (per burst, default 2000) and
//! `TRUNKGATE_ABUSE_BURSTS` (default 3) scale it up for measuring.
//!
//! Ended calls stay visible to the API for `[api] call_retention` (default 1 h, at most
//! `registry::MAX_ENDED` of them): memory kept on purpose, growing with every abandoned call
//! until that bound. The test turns retention off (`call_retention = "0s"`) so that what it
//! checks is everything else; `TRUNKGATE_ABUSE_CONF` replaces those `[api]` lines (e.g. with
//! `""` for the default retention) to measure the retained records too.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::daemon::Daemon;
use support::gw::scratch_dir;
use support::mutate;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(30);
/// Timer H (64 × T1) and the end of the calls it abandons, with room.
const SETTLE: Duration = Duration::from_secs(90);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// What the daemon's descriptors are (for failure messages).
fn fd_targets(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// The daemon's sockets, as `ss` shows them (for failure messages).
fn sockets(pid: u32) -> String {
    let out = std::process::Command::new("ss")
        .args(["-anp"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let me = format!("pid={pid},");
    out.lines()
        .filter(|l| l.contains(&me))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One gauge from `/metrics`.
async fn gauge(http: &reqwest::Client, api: SocketAddr, name: &str) -> Option<u64> {
    let text = http
        .get(format!("http://{api}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("trunkgate_{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// OPTIONS over `sock`, answered 200 (other datagrams — answers to the burst — skipped).
async fn options(sock: &UdpSocket, to: SocketAddr, n: usize) {
    let local = sock.local_addr().expect("addr");
    let call_id = format!("ping-{n}@abuse");
    let req = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ping-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:ping@127.0.0.1>;tag=p{n}\r\nTo: <sip:127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), to)
        .await
        .expect("send OPTIONS");
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped = 0;
    loop {
        let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        let Ok(Ok((n, _))) = got else {
            panic!("no answer to OPTIONS {call_id} within {WAIT:?} ({skipped} other datagrams)");
        };
        skipped += 1;
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.contains(&call_id) {
            assert!(text.starts_with("SIP/2.0 200"), "{text}");
            return;
        }
    }
}

/// One burst: `count` messages, half over UDP (an OPTIONS round trip every 25 keeps the
/// daemon's queue from overflowing: the burst tests its state, not the socket buffer), half
/// over TCP connections of 25 messages each.
async fn burst(
    rng: &mut fastrand::Rng,
    count: usize,
    udp: SocketAddr,
    tcp: SocketAddr,
    base: usize,
) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let from = sock.local_addr().expect("addr");
    for i in 0..count / 2 {
        let msg = mutate::invite(rng, base + i, from, false);
        let _ = sock.send_to(&msg, udp).await;
        if i % 25 == 24 {
            options(&sock, udp, base + i).await;
        }
    }
    options(&sock, udp, base + count).await;
    let mut i = count / 2;
    while i < count {
        let Ok(mut conn) = TcpStream::connect(tcp).await else {
            panic!("TCP connect refused");
        };
        let local = conn.local_addr().expect("addr");
        for _ in 0..25 {
            if i >= count {
                break;
            }
            let msg = mutate::invite(rng, base + i, local, true);
            i += 1;
            if conn.write_all(&msg).await.is_err() {
                break; // closed by the daemon (a framing error): a new connection
            }
        }
        let _ = conn.shutdown().await;
    }
    // Keep the UDP socket until here: the daemon's answers to it are not refused meanwhile.
    drop(sock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_and_abandoned_invites_leave_no_memory_or_descriptors_behind() {
    let invites = env_or("TRUNKGATE_ABUSE_INVITES", 2000);
    let bursts = env_or("TRUNKGATE_ABUSE_BURSTS", 3).max(2);
    let dir = scratch_dir("abuse");
    let (tcp_port, api_port) = (free_port(), free_port());
    let config = dir.join("trunkgate.toml");
    let text = format!(
        "[sip]\nlisten_udp = [\"127.0.0.1:0\"]\nlisten_tcp = [\"127.0.0.1:{tcp_port}\"]\n\
         [rtp]\nbind = \"127.0.0.1\"\nport_min = 22000\nport_max = 29999\n\
         [api]\nlisten = \"127.0.0.1:{api_port}\"\ntoken_file = \"\"\n{retention}\
         [callbacks]\nspool_dir = \"{spool}\"\ncdr_file = \"\"\n\
         [policy]\nflood_per_source = {{ burst = 10000000, per_second = 10000000 }}\n\
         [log]\nlevel = \"warn\"\nformat = \"text\"\n\
         [[number]]\ndid = \"*\"\nagent = {{ url = \"builtin:echo\" }}\n",
        spool = dir.join("spool").display(),
        retention = std::env::var("TRUNKGATE_ABUSE_CONF")
            .unwrap_or_else(|_| "call_retention = \"0s\"\n".into())
            .replace("\\n", "\n"),
    );
    std::fs::write(&config, text).expect("config");
    let daemon = Daemon::start(&config).await;
    let pid = daemon.pid();
    let (udp, tcp) = (daemon.udp, SocketAddr::from(([127, 0, 0, 1], tcp_port)));
    let api = SocketAddr::from(([127, 0, 0, 1], api_port));
    trunkgate::io::tls::install_default_provider();
    // No keep-alive: between polls the daemon holds no connection of ours.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let ping = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    options(&ping, udp, 0).await;
    assert_eq!(gauge(&http, api, "calls_active").await, Some(0));
    let (idle_fds, idle_rss) = (fds(pid), rss_kib(pid));
    let mut rng = fastrand::Rng::with_seed(0x5eed_ab05e);
    let mut after = Vec::new();
    for b in 0..bursts {
        let t0 = Instant::now();
        burst(&mut rng, invites, udp, tcp, 1_000_000 * (b + 1)).await;
        let peak = rss_kib(pid);
        // Bounded poll: every abandoned call times out (Timer H, then its BYE transaction).
        let deadline = Instant::now() + SETTLE;
        loop {
            let active = gauge(&http, api, "calls_active").await;
            let ports = gauge(&http, api, "rtp_ports_in_use").await;
            if active == Some(0) && ports == Some(0) && fds(pid) <= idle_fds {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "burst {b}: not settled after {SETTLE:?}: calls {active:?}, ports {ports:?}, fds {} (idle {idle_fds}) {:?}; sockets:\n{}",
                fds(pid),
                fd_targets(pid),
                sockets(pid)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // The daemon gives freed memory back once a burst has drained: one more malformed
        // request after the drain makes sure a trim follows it (bounded poll).
        let trims = gauge(&http, api, "heap_trims_total").await.unwrap_or(0);
        let malformed = gauge(&http, api, "sip_malformed_total").await.unwrap_or(0);
        ping.send_to(b"INVITE garbage\r\n\r\n", udp)
            .await
            .expect("send");
        while gauge(&http, api, "sip_malformed_total").await.unwrap_or(0) <= malformed {
            assert!(
                Instant::now() < deadline,
                "burst {b}: the malformed request not counted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while gauge(&http, api, "heap_trims_total").await.unwrap_or(0) <= trims {
            assert!(
                Instant::now() < deadline,
                "burst {b}: no heap trim after it drained"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        options(&ping, udp, b + 1).await;
        let rss = rss_kib(pid);
        eprintln!(
            "burst {b}: {invites} INVITEs in {:.1} s; RSS idle {idle_rss} KiB, peak {peak}, settled {rss}; fds {} (idle {idle_fds}); settled after {:.1} s",
            t0.elapsed().as_secs_f64(),
            fds(pid),
            t0.elapsed().as_secs_f64()
        );
        after.push(rss);
    }
    let first = after[0];
    for (b, rss) in after.iter().enumerate().skip(1) {
        assert!(
            *rss * 10 <= first * 11,
            "RSS after burst {b} is {rss} KiB, more than 10 % over {first} KiB after the first: {after:?}"
        );
    }
    daemon.stop().await;
}
