//! Fraud alerts by e-mail, end to end: a real SMTP server (Python's aiosmtpd, started by the
//! test on 127.0.0.1, AUTH required for one user) and the real `trunkgate` binary at
//! `RUST_LOG=trace`. More calls than `fraud_alert.calls` within the window bring exactly one
//! mail for the episode, logged in with the configured user and password, with the right
//! envelope, From, To, Subject and plain-text body; the password is in no log line. And
//! `--check-config` refuses a `fraud_alert.email` without `[smtp] host`/`from`, and an
//! unreadable `smtp.password_file`.
//!
//! `scripts/test.sh` installs aiosmtpd (Debian's `python3-aiosmtpd`, else PyPI); without it
//! the test fails, saying so. Must not: sleep to wait for anything (every wait is a bounded
//! poll or a bounded read), or leave the SMTP server behind (killed on drop).

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use support::call::{ua_from, Call};
use support::daemon::Daemon;
use support::gw::scratch_dir;
use support::rtp::RtpPeer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const USER: &str = "alerts";
const PASSWORD: &str = "smtp-pw-5c2e91d7a4b3";
const WAIT: Duration = Duration::from_secs(10);
const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");

/// The Python that has aiosmtpd: Debian's package goes to /usr/bin/python3, which a pyenv or
/// venv `python3` on PATH may shadow; `TRUNKGATE_PYTHON` wins when set.
fn python_with_aiosmtpd() -> String {
    let mut candidates: Vec<String> = std::env::var("TRUNKGATE_PYTHON").into_iter().collect();
    candidates.extend(["python3".to_string(), "/usr/bin/python3".to_string()]);
    let found = candidates.iter().find(|py| {
        std::process::Command::new(py.as_str())
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    match found {
        Some(py) => py.clone(),
        None => panic!(
            "aiosmtpd is missing (tried {candidates:?}): scripts/test.sh installs it \
             (Debian's python3-aiosmtpd, else `pip install aiosmtpd`)"
        ),
    }
}

/// aiosmtpd on 127.0.0.1 (see `tests/support/smtp_sink.py`), writing each message it
/// accepts to `<dir>/mail-<n>.json`.
struct SmtpSink {
    _child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    async fn start(dir: &Path, password_file: &Path) -> SmtpSink {
        let mail_dir = dir.join("mail");
        std::fs::create_dir_all(&mail_dir).expect("mail dir");
        let mut child = Command::new(python_with_aiosmtpd())
            .arg(SINK)
            .arg(&mail_dir)
            .arg(USER)
            .arg(password_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("its stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the SMTP server reports its port in time")
            .expect("read its stdout")
            .expect("a line from the SMTP server");
        let port = first
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("not a port line: {first:?}"));
        SmtpSink {
            _child: child,
            port,
            dir: mail_dir,
        }
    }

    /// Every message accepted so far, in arrival order.
    fn mails(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&self.dir)
            .expect("mail dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                let n = name
                    .strip_prefix("mail-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| {
                let text = std::fs::read_to_string(p).expect("read a mail");
                serde_json::from_str(&text).expect("a mail record")
            })
            .collect()
    }

    /// Polls (20 ms steps, bounded) until `n` messages are in.
    async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} mails within {WAIT:?}: {mails:?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The daemon's config: SMTP at `127.0.0.1:<smtp_port>` with `password_file`, RTP ports from
/// `rtp`, a global alert over 2 calls in 5 min to two addresses, and a DID whose own alert
/// (over 1 call) serves as a barrier.
fn config(dir: &Path, smtp_port: u16, password_file: &Path, rtp: u16) -> PathBuf {
    let text = format!(
        r#"
[sip]
listen_udp = ["127.0.0.1:0"]
listen_tcp = []
[rtp]
bind = "127.0.0.1"
port_min = {rtp}
port_max = {rtp_max}
[api]
listen = ""
[callbacks]
spool_dir = "{spool}"
[recording]
dir = "{rec}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
starttls = "off"
username = "{USER}"
password_file = "{password}"
from = "trunkgate alerts <alerts@gw.example>"
timeout = "5s"
[policy]
allow_cidrs = ["127.0.0.1/32"]
fraud_alert = {{ calls = 2, within = "5m", email = ["ops@example.com", "noc@example.org"] }}
flood_per_source = {{ burst = 100000, per_second = 100000 }}
[log]
level = "info"
format = "text"
[[number]]
did = "+48700000000"
agent = {{ url = "builtin:echo", dialect = "raw", sample_rate = 8000 }}
policy = {{ fraud_alert = {{ calls = 1, within = "5m", email = "barrier@example.net" }} }}
[[number]]
did = "*"
agent = {{ url = "builtin:echo", dialect = "raw", sample_rate = 8000 }}
"#,
        spool = dir.join("spool").display(),
        rec = dir.join("rec").display(),
        password = password_file.display(),
        rtp_max = rtp + 19,
    );
    let file = dir.join("trunkgate.toml");
    std::fs::write(&file, text).expect("write config");
    file
}

fn field<'a>(mail: &'a serde_json::Value, key: &str) -> &'a str {
    mail[key].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mail_per_episode_through_a_real_smtp_server() {
    let dir = scratch_dir("fraud-email");
    let password_file = dir.join("smtp.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let sink = SmtpSink::start(&dir, &password_file).await;
    let cfg = config(&dir, sink.port, &password_file, 39300);
    let mut daemon = Daemon::start_logging(&cfg, "trace").await;

    let rtp = RtpPeer::bind().await;
    // Attempts count whether admitted or not: these are all refused (403), from 127.0.0.2.
    let mut stranger = ua_from("127.0.0.2", daemon.udp).await;
    for _ in 0..2 {
        Call::new().refused(&mut stranger, rtp.addr(), 403).await;
    }
    Call::new().refused(&mut stranger, rtp.addr(), 403).await;
    daemon.wait_log("fraud alert mailed", WAIT).await;
    let [mail] = sink.wait_for(1).await.try_into().unwrap_or_else(|m| {
        panic!("one mail for the first episode: {m:?}");
    });
    assert_eq!(mail["authenticated"], true, "{mail}");
    assert_eq!(field(&mail, "login"), USER);
    assert_eq!(field(&mail, "mail_from"), "alerts@gw.example");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["ops@example.com", "noc@example.org"])
    );
    assert_eq!(field(&mail, "from"), "trunkgate alerts <alerts@gw.example>");
    assert_eq!(field(&mail, "to"), "ops@example.com, noc@example.org");
    assert_eq!(
        field(&mail, "subject"),
        "trunkgate fraud alert: global 3 calls in 5m"
    );
    assert_eq!(field(&mail, "content_type"), "text/plain");
    let body = field(&mail, "body");
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for line in [
        "scope:     global".to_string(),
        "calls:     3".into(),
        "threshold: 2".into(),
        "window:    5m (300 s)".into(),
        format!("node:      {}", node.trim()),
    ] {
        assert!(body.contains(&line), "{line:?} in {body}");
    }
    let time = body
        .lines()
        .find_map(|l| l.strip_prefix("time:      "))
        .unwrap_or_default();
    assert!(
        time.parse::<jiff::Timestamp>().is_ok(),
        "an RFC 3339 time: {time:?} in {body}"
    );

    // More attempts in the same episode: no second global mail. The second of these also
    // fires the DID's own alert (the barrier). Every alert is logged as "fraud alert" when it
    // fires, before its mail is spawned, and every spawned mail ends in one "fraud alert
    // mailed" (or "not mailed") line: once the barrier's delivery is logged, every mail there
    // will be is in the mailbox.
    for _ in 0..2 {
        Call::new()
            .did("+48700000000")
            .refused(&mut stranger, rtp.addr(), 403)
            .await;
    }
    daemon.wait_log("fraud alert mailed", WAIT).await;
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(
        mails[1]["rcpt_tos"],
        serde_json::json!(["barrier@example.net"])
    );
    assert_eq!(
        field(&mails[1], "subject"),
        "trunkgate fraud alert: number:+48700000000 2 calls in 5m"
    );

    let log = daemon.stop_and_collect().await;
    let fired: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("fraud alert scope="))
        .collect();
    assert_eq!(fired.len(), 2, "one global and one DID alert: {fired:?}");
    assert!(fired[0].contains("scope=global"), "{fired:?}");
    assert!(
        !log.iter().any(|l| l.contains("not mailed")),
        "{}",
        log.join("\n")
    );
    // AUTH PLAIN sends base64("\0user\0password"); neither form may be logged.
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    let login = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    for line in &log {
        for secret in [PASSWORD, plain.as_str(), login.as_str()] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
    assert!(
        mails.iter().all(|m| !field(m, "raw").contains(PASSWORD)),
        "the password is not in any mail"
    );
}

/// The server refuses the login: the failure is a warning naming the scope and the server's
/// answer (a permanent 535, which is not retried), never the password; no mail is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_a_warning_without_the_password() {
    const WRONG: &str = "wrong-pw-0e7d44a1c9";
    let dir = scratch_dir("fraud-email-refused");
    let (right, wrong) = (dir.join("right.password"), dir.join("wrong.password"));
    std::fs::write(&right, format!("{PASSWORD}\n")).expect("password file");
    std::fs::write(&wrong, format!("{WRONG}\n")).expect("password file");
    let sink = SmtpSink::start(&dir, &right).await;
    let mut daemon = Daemon::start_logging(&config(&dir, sink.port, &wrong, 39320), "trace").await;
    let rtp = RtpPeer::bind().await;
    let mut stranger = ua_from("127.0.0.2", daemon.udp).await;
    for _ in 0..3 {
        Call::new().refused(&mut stranger, rtp.addr(), 403).await;
    }
    let warning = daemon.wait_log("fraud alert not mailed", WAIT).await;
    assert!(
        warning.contains(" WARN ")
            && warning.contains("scope=global")
            && warning.contains("permanent error (535)"),
        "{warning}"
    );
    let log = daemon.stop_and_collect().await;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{WRONG}"));
    for line in &log {
        assert!(
            !line.contains(WRONG) && !line.contains(&plain),
            "a secret in the log: {line}"
        );
    }
    assert!(sink.mails().is_empty(), "{:?}", sink.mails());
}

/// `--check-config` on `text`: exit code and everything printed.
fn check_config(dir: &Path, text: &str) -> (Option<i32>, String) {
    let file = dir.join("check.toml");
    std::fs::write(&file, text).expect("config file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trunkgate"))
        .arg("--check-config")
        .arg(&file)
        .output()
        .expect("run trunkgate --check-config");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn check_config_refuses_mail_without_smtp_and_reads_its_password_file() {
    let dir = scratch_dir("fraud-email-check");
    let alert = "[api]\ntoken_file = \"\"\n\
                 [policy]\nfraud_alert = { calls = 5, email = \"ops@example.com\" }\n";
    let (code, text) = check_config(&dir, alert);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "policy.fraud_alert.email: mailing the alert needs smtp.host and smtp.from to be set"
        ),
        "{text}"
    );

    let password_file = dir.join("missing.password");
    let _ = std::fs::remove_file(&password_file);
    let smtp = format!(
        "[smtp]\nhost = \"smtp.example.com\"\nusername = \"{USER}\"\npassword_file = \"{}\"\n\
         from = \"alerts@example.com\"\n{alert}",
        password_file.display()
    );
    let (code, text) = check_config(&dir, &smtp);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "smtp.password_file: cannot read {}",
            password_file.display()
        )),
        "{text}"
    );
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let (code, text) = check_config(&dir, &smtp);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}
