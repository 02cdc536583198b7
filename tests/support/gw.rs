//! Starting a gateway for a test: loopback listeners on port 0, its own RTP port range.

#![allow(dead_code)]

use std::time::Duration;

use tokio::sync::broadcast;
use trunkgate::app::{Gateway, GatewayEvent};
use trunkgate::config;

/// A config for tests: SIP on 127.0.0.1:0 (UDP+TCP), RTP on `ports`, every call answered by
/// the built-in echo agent (`agent_url` may add options), plus `extra` TOML.
pub fn config_text(ports: (u16, u16), agent_url: &str, extra: &str) -> String {
    format!(
        r#"
[sip]
listen_udp = ["127.0.0.1:0"]
listen_tcp = ["127.0.0.1:0"]
[rtp]
bind = "127.0.0.1"
port_min = {}
port_max = {}
rtp_timeout = "30s"
[api]
listen = ""
[callbacks]
spool_dir = "{spool}"
cdr_file = ""
[log]
level = "warn"
format = "text"
[policy]
# Tests send bursts from one address; the flood guard has its own tests.
flood_per_source = {{ burst = 100000, per_second = 100000 }}
{extra}
[[number]]
did = "*"
agent = {{ url = "{agent_url}", dialect = "raw", sample_rate = 8000 }}
"#,
        ports.0,
        ports.1,
        spool = scratch_dir("spool").display()
    )
}

pub async fn start(ports: (u16, u16), agent_url: &str, extra: &str) -> Gateway {
    let text = config_text(ports, agent_url, extra);
    let cfg = config::parse(&text, "test").unwrap_or_else(|e| panic!("test config: {e}"));
    Gateway::start(cfg).await.expect("gateway starts")
}

/// Waits for the first event matching `pred` (fails the test after `wait`).
pub async fn wait_event(
    rx: &mut broadcast::Receiver<GatewayEvent>,
    wait: Duration,
    pred: impl Fn(&GatewayEvent) -> bool,
) -> GatewayEvent {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("gateway event stream closed"),
            }
        }
    };
    tokio::time::timeout(wait, fut)
        .await
        .expect("timed out waiting for a gateway event")
}

/// A fresh directory under the system temp dir for one gateway's files (tests never write to
/// /var/lib/trunkgate).
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "trunkgate-test-{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
