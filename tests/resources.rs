//! Ports and file descriptors return to their idle count after every call (UDP and TCP).
//! Its own test binary, so no other test's sockets share the process's fd table.

mod support;

use std::time::Duration;

use support::gw::{self, open_fds, wait_event};
use support::rtp::RtpPeer;
use support::ua::{offer, Ua};
use trunkgate::app::GatewayEvent;

/// Polls a condition the gateway reaches asynchronously (a closed TCP connection has no
/// event of its own); bounded.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_and_fds_return_to_idle_after_each_call() {
    let gw = gw::start((31000, 31099), "builtin:echo", "").await;
    let mut events = gw.subscribe();
    let idle = open_fds();
    for round in 0..3 {
        for tcp in [false, true] {
            let rtp = RtpPeer::bind().await;
            let mut ua = if tcp {
                Ua::tcp(gw.tcp_addrs[0]).await
            } else {
                Ua::udp(gw.udp_addrs[0]).await
            };
            let branch = format!("r{round}{tcp}");
            ua.send(&ua.request("INVITE", &branch, 1, None, &offer(rtp.addr(), "0")))
                .await;
            let ok = ua.expect_status(200).await;
            let tag = ok.to_tag().unwrap();
            ua.send(&ua.request("ACK", &format!("{branch}a"), 1, Some(&tag), ""))
                .await;
            assert_eq!(gw.rtp_ports_in_use(), 1);
            ua.send(&ua.request("BYE", &format!("{branch}b"), 2, Some(&tag), ""))
                .await;
            ua.expect_status(200).await;
            wait_event(&mut events, Duration::from_secs(5), |e| {
                matches!(e, GatewayEvent::CallEnded { .. })
            })
            .await;
            assert_eq!(
                gw.rtp_ports_in_use(),
                0,
                "port back after call {round}/{tcp}"
            );
            drop(ua);
            drop(rtp);
            eventually("fds back to idle", || open_fds() == idle).await;
        }
    }
}
