//! The real `trunkgate` binary as a child process: started on a config file, its stderr log
//! (RUST_LOG=info, text format) read line by line, signals sent with `kill`.
//!
//! Must not leave the child behind: it is killed on drop (and by `stop`), and every wait is
//! bounded.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub struct Daemon {
    child: Child,
    pid: u32,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far, for failure messages.
    pub log: Vec<String>,
    /// The SIP UDP address, from the "trunkgate started" line.
    pub udp: SocketAddr,
}

/// `text` without ANSI colour sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The first `127.0.0.1:<port>` after `udp=` in a "trunkgate started" line.
fn udp_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("udp=")? + 4..];
    let start = rest.find("127.0.0.1:")?;
    let addr: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.parse().ok()
}

impl Daemon {
    /// Starts `trunkgate --config <path>` and waits for it to report its listeners.
    pub async fn start(config: &Path) -> Daemon {
        Self::start_logging(config, "info").await
    }

    /// The same with `RUST_LOG=<filter>` (e.g. `trace`: every line at every level).
    pub async fn start_logging(config: &Path, filter: &str) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trunkgate"))
            .arg("--config")
            .arg(config)
            .arg("--drain-seconds")
            .arg("1")
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn trunkgate");
        let pid = child.id().expect("child pid");
        let stderr = child.stderr.take().expect("child stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut rd = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = rd.next_line().await {
                if tx.send(strip_ansi(&line)).is_err() {
                    break;
                }
            }
        });
        let mut d = Daemon {
            child,
            pid,
            lines,
            log: Vec::new(),
            udp: "127.0.0.1:9".parse().expect("placeholder addr"),
        };
        let started = d
            .wait_log("trunkgate started", Duration::from_secs(10))
            .await;
        d.udp = udp_addr(&started)
            .unwrap_or_else(|| panic!("no UDP address in the start line: {started}"));
        d
    }

    /// The next log line containing `needle`; panics (with the log so far) after `wait`.
    pub async fn wait_log(&mut self, needle: &str, wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Ok(None) => panic!(
                    "trunkgate's stderr closed before {needle:?}:\n{}",
                    self.log.join("\n")
                ),
                Err(_) => panic!(
                    "no log line {needle:?} within {wait:?}:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// The process id (for /proc figures: RSS, open fds).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` ("HUP", "TERM") with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid);
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the daemon (as [`Daemon::stop`]) and returns every line it logged, up to its exit.
    pub async fn stop_and_collect(mut self) -> Vec<String> {
        self.signal("TERM");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.log.push(line),
                Ok(None) => break,
                Err(_) => panic!("trunkgate's log did not end after SIGTERM"),
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        std::mem::take(&mut self.log)
    }

    /// SIGTERM, then a bounded wait for the exit (SIGKILL after it).
    pub async fn stop(mut self) {
        self.signal("TERM");
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
    }
}
