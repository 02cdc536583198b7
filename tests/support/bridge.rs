//! Gateway set-up for agent-bridge tests: a config with the inbound webhook, a static agent
//! for the dialled number, callbacks into a private spool directory, billing and agent keys
//! as a test needs them, plus checks shared by the bridge tests (the call record's billing).
//! Must not: touch paths outside the test's temp directory (spool, CDR, secret).

use std::path::{Path, PathBuf};

use trunkgate::app::Gateway;
use trunkgate::config;

/// The number the scripted UA dials (see `ua.rs`).
pub const DID: &str = "+48123456789";

#[derive(Debug, Clone)]
pub struct Setup {
    pub ports: (u16, u16),
    pub webhook_url: Option<String>,
    pub webhook_timeout: &'static str,
    /// `json` or `twilio-form`.
    pub webhook_format: &'static str,
    pub secret_file: Option<PathBuf>,
    pub callback_url: Option<String>,
    pub spool_dir: PathBuf,
    pub cdr_file: Option<PathBuf>,
    pub retry_backoff: &'static str,
    /// `[callbacks] events`, a TOML list.
    pub callback_events: &'static str,
    /// `{ url = .., dialect = .., sample_rate = .. }` for the dialled number.
    pub static_agent: Option<String>,
    /// The dialled number's own `callback_url` (needs `static_agent`).
    pub number_callback_url: Option<String>,
    pub billing: (u32, u32),
    pub on_disconnect: &'static str,
    pub sip_tcp: bool,
    /// More configuration appended as written (e.g. a `[[trunk]]`).
    pub extra: String,
}

impl Setup {
    pub fn new(ports: (u16, u16), dir: &Path) -> Setup {
        Setup {
            ports,
            webhook_url: None,
            webhook_timeout: "2s",
            webhook_format: "json",
            secret_file: None,
            callback_url: None,
            spool_dir: dir.join("spool"),
            cdr_file: None,
            retry_backoff: "50ms",
            callback_events: r#"["completed"]"#,
            static_agent: None,
            number_callback_url: None,
            billing: (1, 2),
            on_disconnect: "hangup",
            sip_tcp: false,
            extra: String::new(),
        }
    }

    pub fn config_text(&self) -> String {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let number = match &self.static_agent {
            Some(agent) => {
                let cb = self
                    .number_callback_url
                    .as_ref()
                    .map(|u| format!("callback_url = \"{u}\"\n"))
                    .unwrap_or_default();
                format!("[[number]]\ndid = \"{DID}\"\nagent = {agent}\n{cb}")
            }
            None => String::new(),
        };
        format!(
            r#"
[sip]
listen_udp = ["127.0.0.1:0"]
listen_tcp = [{tcp}]
[rtp]
bind = "127.0.0.1"
port_min = {pmin}
port_max = {pmax}
rtp_timeout = "10s"
[api]
listen = ""
[webhook]
url = "{hook}"
timeout = "{timeout}"
format = "{format}"
secret_file = "{secret}"
[callbacks]
url = "{cb}"
spool_dir = "{spool}"
cdr_file = "{cdr}"
max_attempts = 20
retry_backoff = "{backoff}"
events = {events}
[agent]
connect_timeout = "2s"
on_disconnect = "{on_disc}"
[billing]
minimum_s = {min}
increment_s = {inc}
[policy]
# Tests send bursts from one address; the flood guard has its own tests.
flood_per_source = {{ burst = 100000, per_second = 100000 }}
[log]
level = "warn"
format = "text"
{number}
{extra}"#,
            tcp = if self.sip_tcp { "\"127.0.0.1:0\"" } else { "" },
            pmin = self.ports.0,
            pmax = self.ports.1,
            hook = opt(&self.webhook_url),
            timeout = self.webhook_timeout,
            format = self.webhook_format,
            secret = path(&self.secret_file),
            cb = opt(&self.callback_url),
            spool = self.spool_dir.display(),
            cdr = path(&self.cdr_file),
            backoff = self.retry_backoff,
            events = self.callback_events,
            on_disc = self.on_disconnect,
            min = self.billing.0,
            inc = self.billing.1,
            extra = self.extra,
        )
    }

    pub async fn start(&self) -> Gateway {
        let text = self.config_text();
        let cfg = config::parse(&text, "test").unwrap_or_else(|e| panic!("test config: {e}"));
        Gateway::start(cfg).await.expect("gateway starts")
    }
}

/// Billed seconds per PROTOCOLS.md §4 / `[billing]`, computed here independently: nothing
/// for an unanswered call, the minimum in full, then whole increments rounded up.
pub fn billable(duration_s: f64, minimum_s: u32, increment_s: u32) -> u64 {
    if duration_s <= 0.0 {
        return 0;
    }
    let (min, inc) = (f64::from(minimum_s), f64::from(increment_s.max(1)));
    if duration_s <= min {
        return u64::from(minimum_s);
    }
    (min + ((duration_s - min) / inc).ceil() * inc) as u64
}

/// Whether `billed` is right for a record whose `duration_s` was rounded to 0.1 s.
pub fn billing_ok(billed: u64, duration_s: f64, billing: (u32, u32)) -> bool {
    [-0.05, 0.0, 0.05]
        .iter()
        .any(|d| billable((duration_s + d).max(0.001), billing.0, billing.1) == billed)
}

/// `*.json` files waiting in a spool directory (not `dead/`, not `.tmp`).
pub fn spooled(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

/// Bounded polling for conditions nothing signals (files appearing or leaving a spool
/// directory): checks every 20 ms, panics after `wait`.
pub async fn poll_until(what: &str, wait: std::time::Duration, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + wait;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
