//! The callback spool survives `kill -9` (issue 3, PROTOCOLS.md §4): the real `trunkgate`
//! binary takes a call while the callback receiver is down, keeps the record in its spool
//! directory, is killed with SIGKILL mid-retry, and a second daemon on the same spool
//! delivers it once the receiver is up — with the same event_id and body, and the spool
//! empties. Readiness comes from the daemon's JSON log line "trunkgate started"; only the
//! spool directory is polled (bounded, 20 ms steps), since nothing else signals its state.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use support::baresip::TempDir;
use support::bridge::{poll_until, spooled};
use support::http::CallbackServer;
use support::leg::{dial_to, WAIT};

const CALLER_HZ: f32 = 1000.0;

struct Daemon {
    child: Child,
    sip: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `trunkgate --config <config>` and waits for its "trunkgate started" line.
    async fn start(config: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trunkgate"))
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn trunkgate");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if v["fields"]["message"] == "trunkgate started" {
                    let udp = v["fields"]["udp"].as_str().unwrap_or_default();
                    let addr = udp.trim_matches(['[', ']']).parse::<SocketAddr>().ok();
                    if let (Some(tx), Some(addr)) = (ready.take(), addr) {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let sip = match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(addr)) => addr,
            _ => panic!(
                "trunkgate did not start:\n{}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            ),
        };
        Daemon { child, sip, log }
    }

    /// SIGKILL, no goodbye.
    async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let status = self.child.wait().await.expect("wait");
        assert!(!status.success(), "killed, not exited: {status:?}");
    }
}

fn config(dir: &Path, callback: &str) -> String {
    format!(
        r#"
[sip]
listen_udp = ["127.0.0.1:0"]
listen_tcp = []
[rtp]
bind = "127.0.0.1"
port_min = 35300
port_max = 35399
[api]
listen = ""
[callbacks]
url = "{callback}"
spool_dir = "{spool}"
cdr_file = ""
max_attempts = 50
retry_backoff = "100ms"
[billing]
minimum_s = 1
increment_s = 2
[policy]
flood_per_source = {{ burst = 100000, per_second = 100000 }}
[log]
level = "info"
format = "json"
[[number]]
did = "*"
agent = {{ url = "builtin:echo", dialect = "raw", sample_rate = 8000 }}
"#,
        spool = dir.join("spool").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_callback_survives_kill_9() {
    let dir = TempDir::new("tg-restart").expect("temp dir");
    // A port nobody listens on (yet): bind, note, drop.
    let down: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let url = format!("http://{down}/status");
    let cfg = dir.path().join("trunkgate.toml");
    std::fs::write(&cfg, config(dir.path(), &url)).expect("write config");
    let spool = dir.path().join("spool");

    let first = Daemon::start(&cfg).await;
    let mut call = dial_to(first.sip).await.expect_answer(CALLER_HZ).await;
    assert!(
        call.caller
            .wait_until(WAIT, |h| h.tone_times(CALLER_HZ).len() >= 25)
            .await,
        "the call is up (the echo agent plays the caller's tone back)"
    );
    let bye_at = call.hangup().await;
    let call_s = (bye_at - call.answered).as_secs_f64();

    // The record waits in the spool, and at least one delivery attempt has failed.
    let envelope = || -> Option<Value> {
        let files = spooled(&spool);
        let [file] = files.as_slice() else {
            return None;
        };
        let v: Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
        (v["attempts"].as_u64() >= Some(1)).then_some(v)
    };
    poll_until("a failed, spooled callback", WAIT, || envelope().is_some()).await;
    first.kill9().await;
    let env = envelope().expect("the spool file outlives the daemon");
    assert_eq!(env["url"], url.as_str());
    let event_id = env["event_id"].as_str().expect("event_id").to_owned();

    let mut cb = CallbackServer::start_on(down, 0)
        .await
        .expect("the receiver comes up on the port the daemon tried");
    let second = Daemon::start(&cfg).await;
    let got = cb.success(WAIT).await;
    assert_eq!(got.event_id().as_deref(), Some(event_id.as_str()));
    assert_eq!(got.header("X-Trunkgate-Event-Id"), Some(event_id.as_str()));
    assert_eq!(
        got.body,
        env["body"].as_str().unwrap_or_default().as_bytes(),
        "the spooled record is sent as it was"
    );
    let body = got.json();
    assert_eq!(body["event"], "call.completed", "{body}");
    assert_eq!(body["end_reason"], "caller_hangup", "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["sip_status"], 200, "{body}");
    let duration = body["duration_s"].as_f64().unwrap_or(-1.0);
    assert!(
        (duration - call_s).abs() <= 0.5,
        "duration_s {duration} vs {call_s:.2}"
    );

    poll_until("the spool to empty", WAIT, || spooled(&spool).is_empty()).await;
    // At least once, never another record: every delivery is this one event.
    for d in cb.deliveries() {
        assert_eq!(d.event_id().as_deref(), Some(event_id.as_str()));
    }
    let dead = std::fs::read_dir(spool.join("dead"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(dead, 0, "nothing given up");
    // The daemon's stderr is read by another thread: wait for the line rather than race it.
    poll_until("the delivery to be logged", WAIT, || {
        second
            .log
            .lock()
            .map(|l| l.contains("callback delivered"))
            .unwrap_or(false)
    })
    .await;
}
