//! The crash-restart tests' common ground (`journal_restart`, `recording_restart`,
//! `transcript_restart`): the config they give the real `trunkgate` binary (SIP on an
//! ephemeral UDP port, RTP in the test's own range, callbacks spooled under `<dir>/spool`
//! with a 100 ms retry and 200 ms checkpoints, no flood limit, one catch-all number),
//! SIGKILL with a bounded wait for the process to be gone, and the files a dead daemon left.
//! Must not: sleep to wait for anything but the process's exit (20 ms steps, bounded).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::daemon::Daemon;
use super::leg::WAIT;

/// What differs between the restart tests' configs.
pub struct Conf<'a> {
    /// `[rtp] port_min`, `port_max`.
    pub ports: (u16, u16),
    /// `[api] listen` and the bearer token (written to `<dir>/api.token`); `None`: no API.
    pub api: Option<(&'a str, &'a str)>,
    /// `[callbacks] url`.
    pub callback: &'a str,
    /// `[callbacks] cdr_file` at `<dir>/cdr.jsonl`; `false`: no CDR.
    pub cdr: bool,
    /// Whole sections after `[callbacks]` (`[billing]`, `[recording]`, ...).
    pub extra: String,
    /// The catch-all number's `agent` (an inline table).
    pub agent: String,
}

/// Writes `<dir>/trunkgate.toml` (and the API token, if any); returns the config's path.
pub fn write_config(dir: &Path, c: &Conf) -> PathBuf {
    let api = match c.api {
        Some((listen, token)) => {
            let token_file = dir.join("api.token");
            std::fs::write(&token_file, token).expect("write the API token");
            format!(
                "listen = \"{listen}\"\ntoken_file = \"{}\"",
                token_file.display()
            )
        }
        None => "listen = \"\"".to_owned(),
    };
    let cdr = if c.cdr {
        dir.join("cdr.jsonl").display().to_string()
    } else {
        String::new()
    };
    let text = format!(
        r#"
[sip]
listen_udp = ["127.0.0.1:0"]
listen_tcp = []
[rtp]
bind = "127.0.0.1"
port_min = {lo}
port_max = {hi}
[api]
{api}
[callbacks]
url = "{callback}"
spool_dir = "{spool}"
cdr_file = "{cdr}"
retry_backoff = "100ms"
checkpoint = "200ms"
{extra}[policy]
flood_per_source = {{ burst = 100000, per_second = 100000 }}
[log]
level = "info"
format = "text"
[[number]]
did = "*"
agent = {agent}
"#,
        lo = c.ports.0,
        hi = c.ports.1,
        callback = c.callback,
        spool = dir.join("spool").display(),
        extra = c.extra,
        agent = c.agent,
    );
    let cfg = dir.join("trunkgate.toml");
    std::fs::write(&cfg, text).expect("write config");
    cfg
}

/// `[recording]` on for every call, into `<dir>/rec`.
pub fn recording(dir: &Path) -> String {
    format!(
        "[recording]\nenabled = true\ndir = \"{}\"\n",
        dir.join("rec").display()
    )
}

/// A Twilio-dialect WebSocket agent at `url`, at 8 kHz.
pub fn twilio_agent(url: &str) -> String {
    format!("{{ url = \"{url}\", dialect = \"twilio\", sample_rate = 8000 }}")
}

/// SIGKILL, and a bounded wait (20 ms steps) until the process is gone.
pub async fn kill_9(daemon: &mut Daemon) {
    daemon.signal("KILL");
    let deadline = tokio::time::Instant::now() + WAIT;
    while daemon.alive() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "SIGKILL took effect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The files in `dir` whose names end with `suffix` (none if `dir` is missing).
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}
