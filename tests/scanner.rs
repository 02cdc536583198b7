//! A SIP scanner gets no answer: Debian's `sipvicious` (`svmap` looking for SIP devices with
//! OPTIONS and INVITE, `svwar` guessing extensions with REGISTER) is run against the daemon on
//! loopback and finds nothing, while the daemon saw its requests (the blocked user-agent
//! counter rises) and still answers an ordinary OPTIONS. `scripts/test.sh` installs sipvicious.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::ua::Ua;

const WAIT: Duration = Duration::from_secs(5);

/// Runs a sipvicious tool (bounded: 60 s) and returns what it printed.
async fn run(tool: &str, args: &[&str]) -> String {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is missing: scripts/test.sh installs sipvicious"
    );
    let child = tokio::process::Command::new(tool)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .unwrap_or_else(|_| panic!("{tool} did not finish in 60 s"))
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn blocked(gw: &trunkgate::app::Gateway) -> u64 {
    gw.stats()
        .blocked_user_agent
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether an ordinary OPTIONS from `127.0.0.1` is answered 200.
async fn answers_options(addr: SocketAddr) -> bool {
    let mut ua = Ua::udp(addr).await;
    ua.send(&ua.request("OPTIONS", "probe", 1, None, "")).await;
    ua.recv(WAIT).await.and_then(|m| m.status()) == Some(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipvicious_finds_nothing() {
    let gw = support::gw::start((39200, 39219), "builtin:echo", "").await;
    let sip = gw.udp_addrs[0];
    let port = sip.port().to_string();
    assert!(answers_options(sip).await, "the daemon answers a phone");

    for method in ["OPTIONS", "INVITE"] {
        let before = blocked(&gw);
        let out = run(
            "svmap",
            &["-p", &port, "-b", "127.0.0.1", "-m", method, "127.0.0.1"],
        )
        .await;
        assert!(out.contains("found nothing"), "svmap -m {method}:\n{out}");
        assert!(blocked(&gw) > before, "svmap's {method} reached the daemon");
    }

    let before = blocked(&gw);
    let out = run(
        "svwar",
        &["-e100-105", "-p", &port, "-b", "127.0.0.1", "127.0.0.1"],
    )
    .await;
    assert!(out.contains("found nothing"), "svwar:\n{out}");
    assert!(
        blocked(&gw) > before,
        "svwar's REGISTERs reached the daemon"
    );
    assert_eq!(gw.stats().active_calls(), 0);

    assert!(answers_options(sip).await, "still answering phones");
}
