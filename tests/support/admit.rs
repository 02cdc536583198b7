//! Admission daemon tests: a gateway config whose `[policy]`, `[[trunk]]` and `[[number]]`
//! tables the test writes itself (unlike `gw::config_text`, the flood limit is NOT raised
//! unless the test says so), a scratch directory for the spool and CDR, and the CDR reader.
//!
//! Must not hide what a test configures: every policy key a test relies on is in its own text.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use trunkgate::app::Gateway;
use trunkgate::config::{self, Config};

/// The agent every test number uses: the built-in echo, answering at once.
pub const ECHO: &str = r#"agent = { url = "builtin:echo", dialect = "raw", sample_rate = 8000 }"#;

/// A directory under the system temp dir, removed when dropped.
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "trunkgate-{tag}-{}-{n}-{:x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&path).expect("create test dir");
        TestDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The ended-call records (one JSON object per line) written so far.
    pub fn cdr(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.0.join("cdr.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a test chooses; the rest of the config is fixed (loopback, no API, CDR in `dir`).
pub struct Spec<'a> {
    /// RTP port range, distinct per test.
    pub ports: (u16, u16),
    /// SIP UDP listeners.
    pub listen_udp: &'a [&'a str],
    /// Lines inside `[policy]`.
    pub policy: &'a str,
    /// `[[trunk]]` / `[[number]]` tables; a catch-all `did = "*"` number is appended.
    pub layers: &'a str,
    pub log_level: &'a str,
    /// `[webhook] secret_file` contents (written to the scratch dir): signs every POST.
    pub secret: Option<&'a [u8]>,
}

impl<'a> Spec<'a> {
    pub fn new(ports: (u16, u16), policy: &'a str) -> Spec<'a> {
        Spec {
            ports,
            listen_udp: &["127.0.0.1:0"],
            policy,
            layers: "",
            log_level: "warn",
            secret: None,
        }
    }

    pub fn layers(mut self, layers: &'a str) -> Spec<'a> {
        self.layers = layers;
        self
    }

    pub fn secret(mut self, secret: &'a [u8]) -> Spec<'a> {
        self.secret = Some(secret);
        self
    }

    pub fn listen(mut self, udp: &'a [&'a str]) -> Spec<'a> {
        self.listen_udp = udp;
        self
    }

    pub fn text(&self, dir: &Path) -> String {
        let udp = self
            .listen_udp
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            r#"
[sip]
listen_udp = [{udp}]
listen_tcp = []
[rtp]
bind = "127.0.0.1"
port_min = {pmin}
port_max = {pmax}
rtp_timeout = "30s"
[api]
listen = ""
{webhook}
[callbacks]
spool_dir = "{dir}/spool"
cdr_file = "{dir}/cdr.jsonl"
[log]
level = "{level}"
format = "text"
[policy]
{policy}
{layers}
[[number]]
did = "*"
{ECHO}
"#,
            pmin = self.ports.0,
            pmax = self.ports.1,
            dir = dir.display(),
            level = self.log_level,
            policy = self.policy,
            layers = self.layers,
            webhook = match self.secret {
                Some(_) => format!("[webhook]\nsecret_file = \"{}/secret\"", dir.display()),
                None => String::new(),
            },
        )
    }

    pub fn config(&self, dir: &Path) -> Config {
        let text = self.text(dir);
        config::parse(&text, "admission test").unwrap_or_else(|e| panic!("test config: {e}"))
    }

    /// Starts a gateway on this spec, with its own scratch directory.
    pub async fn start(&self) -> (Gateway, TestDir) {
        let dir = TestDir::new("admission");
        if let Some(secret) = self.secret {
            std::fs::write(dir.path().join("secret"), secret).expect("write the secret file");
        }
        let gw = Gateway::start(self.config(dir.path()))
            .await
            .expect("gateway starts");
        (gw, dir)
    }
}

/// A `[[number]]` table answered by the echo agent, with its own `policy = { ... }`.
pub fn number(did: &str, policy: &str) -> String {
    format!("[[number]]\ndid = \"{did}\"\n{ECHO}\npolicy = {{ {policy} }}\n")
}

/// A `[[trunk]]` table: `name`, `match_cidrs` and any further lines (`policy = {...}`,
/// `require_headers = {...}`).
pub fn trunk(name: &str, cidr: &str, lines: &str) -> String {
    format!("[[trunk]]\nname = \"{name}\"\nmatch_cidrs = [\"{cidr}\"]\n{lines}\n")
}

/// The CDR record written for a call that ended with `status` and `end_reason`, if any.
pub fn find_record<'r>(
    records: &'r [serde_json::Value],
    status: u16,
    end_reason: &str,
) -> Option<&'r serde_json::Value> {
    records.iter().find(|r| {
        r["sip_status"].as_u64() == Some(u64::from(status))
            && r["end_reason"].as_str() == Some(end_reason)
    })
}
