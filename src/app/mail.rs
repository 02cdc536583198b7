//! Fraud-alert mail: the SMTP sender built from `[smtp]` (at start, and again on reload), and
//! the one mail per alert episode (its subject and plain-text body), delivered off the call
//! path.
//!
//! Owns the lettre transport (STARTTLS, implicit TLS or plain; AUTH when configured), the
//! wording of the mail and its bounded, retried delivery. Must not: be awaited on a call's or
//! the endpoint task's path (every delivery runs in a spawned task, bounded by
//! `[smtp] timeout` per attempt); put the SMTP password into a log line, an error text or
//! `Debug` output (it lives only in lettre's `Credentials`, whose `Debug` hides it, and in the
//! `Debug`-less [`Mailer`], kept there to scrub error texts); decide when an alert fires (`core::policy` does).

use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::start::{read_secret, StartError};
use crate::config::{SmtpConfig, SmtpTls};
use crate::core::policy::FraudAlertEvent;

/// Delivery attempts per mail; only temporary failures (4xx, network, timeout) are retried.
const ATTEMPTS: u32 = 3;

/// The current sender, swapped whole on reload; `None` → no `[smtp] host`.
pub(super) struct Mail {
    current: RwLock<Option<Arc<Mailer>>>,
}

impl Mail {
    /// The sender of `[smtp]`. An unreadable password file stops the start (as every other
    /// secret file does, and as `--check-config` reports); any other problem building the
    /// sender leaves alerts unmailed, logged.
    pub(super) fn start(cfg: &SmtpConfig) -> Result<Mail, StartError> {
        let password = match &cfg.password_file {
            Some(path) => Some(read_secret("smtp.password_file", path)?),
            None => None,
        };
        Ok(Mail {
            current: RwLock::new(build_logged(cfg, password)),
        })
    }

    /// Rebuilds the sender from a reloaded `[smtp]` (re-reading the password file); when
    /// that file cannot be read, the running sender is kept.
    pub(super) fn reload(&self, cfg: &SmtpConfig) {
        let password = match &cfg.password_file {
            Some(path) => match read_secret("smtp.password_file", path) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "[smtp] not reloaded; the running mail settings stay in force");
                    return;
                }
            },
            None => None,
        };
        let mailer = build_logged(cfg, password);
        match self.current.write() {
            Ok(mut c) => *c = mailer,
            Err(poisoned) => *poisoned.into_inner() = mailer,
        }
    }

    fn mailer(&self) -> Option<Arc<Mailer>> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Mails `alert` to its recipients in a spawned task (nothing when it has none). Returns
    /// at once.
    pub(super) fn send(&self, alert: &FraudAlertEvent, at: jiff::Timestamp) {
        if alert.email.is_empty() {
            return;
        }
        let scope = alert.scope.to_string();
        let Some(mailer) = self.mailer() else {
            tracing::warn!(scope = %scope, "fraud alert not mailed: no usable [smtp] server");
            return;
        };
        let message = match mailer.message(alert, at) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(scope = %scope, error = %e, "fraud alert not mailed");
                return;
            }
        };
        tokio::spawn(async move { mailer.deliver(message, &scope).await });
    }
}

fn build_logged(cfg: &SmtpConfig, password: Option<String>) -> Option<Arc<Mailer>> {
    match Mailer::new(cfg, password) {
        Ok(m) => m.map(Arc::new),
        Err(e) => {
            tracing::error!(error = %e, "[smtp] unusable; fraud alerts are not mailed");
            None
        }
    }
}

/// One configured SMTP server. No `Debug`: nothing here is for printing.
struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// This machine's name, for EHLO, the Message-ID and the body.
    node: String,
    timeout: Duration,
    /// The AUTH password, kept only to scrub it out of error texts.
    password: Option<String>,
}

impl Mailer {
    /// `None` → `[smtp] host` is not set. Errors name the key, never a secret.
    fn new(cfg: &SmtpConfig, password: Option<String>) -> Result<Option<Mailer>, String> {
        let Some(host) = &cfg.host else {
            return Ok(None);
        };
        let from = cfg
            .from
            .as_ref()
            .ok_or_else(|| "smtp.from is not set".to_string())?;
        let address = Address::from_str(&from.address)
            .map_err(|e| format!("smtp.from: {:?}: {e}", from.address))?;
        let from = Mailbox::new(from.name.clone(), address);
        let tls = match cfg.starttls {
            SmtpTls::Off => Tls::None,
            SmtpTls::Required => Tls::Required(tls_parameters(host)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(host)?),
        };
        let node = node_name();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout))
            .hello_name(ClientId::Domain(node.clone()));
        let password = match (&cfg.username, password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                Some(password)
            }
            _ => None,
        };
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            node,
            timeout: cfg.timeout,
            password,
        }))
    }

    fn message(&self, alert: &FraudAlertEvent, at: jiff::Timestamp) -> Result<Message, String> {
        let (subject, body) = alert_text(alert, &self.node, at);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!(
                "<fraud-alert.{}.{:016x}@{}>",
                at.as_millisecond(),
                fastrand::u64(..),
                self.node
            )))
            .header(ContentType::TEXT_PLAIN);
        let mut any = false;
        for to in &alert.email {
            match Address::from_str(to) {
                Ok(a) => {
                    builder = builder.to(Mailbox::new(None, a));
                    any = true;
                }
                Err(e) => {
                    tracing::warn!(to = %to, error = %e, "fraud alert not mailed to this address")
                }
            }
        }
        if !any {
            return Err("no usable recipient".to_string());
        }
        builder.body(body).map_err(|e| e.to_string())
    }

    /// Up to [`ATTEMPTS`] tries, each bounded by `[smtp] timeout`; logs the outcome.
    async fn deliver(&self, message: Message, scope: &str) {
        for attempt in 0..ATTEMPTS {
            let retry = match tokio::time::timeout(
                self.timeout,
                self.transport.send(message.clone()),
            )
            .await
            {
                Ok(Ok(_)) => {
                    tracing::info!(scope = %scope, "fraud alert mailed");
                    return;
                }
                Ok(Err(e)) => {
                    let error = self.scrub(&e.to_string());
                    tracing::warn!(scope = %scope, attempt = attempt + 1, error = %error, "fraud alert not mailed");
                    !e.is_permanent()
                }
                Err(_) => {
                    let timeout = format!("{:?}", self.timeout);
                    tracing::warn!(scope = %scope, attempt = attempt + 1, timeout = %timeout, "fraud alert not mailed: timed out");
                    true
                }
            };
            if !retry || attempt + 1 == ATTEMPTS {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
    }

    /// `text` with the password (should a server ever echo it) replaced.
    fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) if !p.is_empty() => text.replace(p.as_str(), "<redacted>"),
            _ => text.to_string(),
        }
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, String> {
    TlsParameters::new(host.to_string()).map_err(|e| format!("smtp: TLS toward {host}: {e}"))
}

/// This machine's host name (`/proc/sys/kernel/hostname`), or `localhost` when it is unusable
/// as an EHLO name.
fn node_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    let usable = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if usable {
        name.to_string()
    } else {
        "localhost".to_string()
    }
}

/// A window in the words of the config (`"5m"`, `"1h"`, `"90s"`).
fn window_text(secs: u64) -> String {
    match secs {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The subject and plain-text body of an alert's mail.
fn alert_text(alert: &FraudAlertEvent, node: &str, at: jiff::Timestamp) -> (String, String) {
    // Scope names come from the config (trunk names, DIDs); no control character may reach a
    // header.
    let scope: String = alert
        .scope
        .to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let window = window_text(alert.within_s);
    let subject = format!(
        "trunkgate fraud alert: {scope} {} calls in {window}",
        alert.calls
    );
    let body = format!(
        "More than {threshold} calls reached {scope} within {window}.\n\
         \n\
         scope:     {scope}\n\
         calls:     {calls}\n\
         threshold: {threshold}\n\
         window:    {window} ({within_s} s)\n\
         node:      {node}\n\
         time:      {at}\n\
         \n\
         No further mail comes for this episode; a new episode starts once the count is\n\
         back at or under the threshold.\n",
        threshold = alert.threshold,
        calls = alert.calls,
        within_s = alert.within_s,
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::Scope;

    fn alert() -> FraudAlertEvent {
        FraudAlertEvent {
            scope: Scope::Global,
            url: None,
            email: vec!["ops@example.com".into()],
            calls: 3,
            within_s: 300,
            threshold: 2,
        }
    }

    #[test]
    fn subject_and_body_name_the_episode() {
        let at: jiff::Timestamp = "2026-06-01T12:00:00Z".parse().unwrap_or_default();
        let (subject, body) = alert_text(&alert(), "gw1.example", at);
        assert_eq!(subject, "trunkgate fraud alert: global 3 calls in 5m");
        for line in [
            "scope:     global",
            "calls:     3",
            "threshold: 2",
            "window:    5m (300 s)",
            "node:      gw1.example",
            "time:      2026-06-01T12:00:00Z",
        ] {
            assert!(body.contains(line), "{line:?} in {body}");
        }
        assert_eq!(window_text(90), "90s");
        assert_eq!(window_text(7200), "2h");
    }

    #[test]
    fn addresses_the_config_accepts_are_addresses_to_lettre() {
        for a in [
            "ops@example.com",
            "a.b+c@mail.example.org",
            "root@localhost",
            "x@[127.0.0.1]",
        ] {
            assert!(Address::from_str(a).is_ok(), "{a}");
        }
    }

    #[test]
    fn errors_are_scrubbed_of_the_password() {
        let cfg = SmtpConfig {
            host: Some("127.0.0.1".into()),
            port: 2525,
            starttls: SmtpTls::Off,
            username: Some("alerts".into()),
            password_file: None,
            from: Some(crate::config::MailFrom {
                name: Some("trunkgate".into()),
                address: "alerts@example.com".into(),
            }),
            timeout: Duration::from_secs(1),
        };
        let Ok(Some(m)) = Mailer::new(&cfg, Some("pw-9d1c".into())) else {
            panic!("mailer not built");
        };
        assert_eq!(m.scrub("535 bad pw-9d1c here"), "535 bad <redacted> here");
        assert!(m.message(&alert(), jiff::Timestamp::now()).is_ok());
        // STARTTLS and implicit TLS build their rustls parameters (ring, system roots).
        crate::io::tls::install_default_provider();
        for starttls in [SmtpTls::Required, SmtpTls::Tls] {
            let cfg = SmtpConfig {
                host: Some("smtp.example.com".into()),
                starttls,
                ..cfg.clone()
            };
            assert!(
                matches!(Mailer::new(&cfg, None), Ok(Some(_))),
                "{starttls:?}"
            );
        }
        let none = SmtpConfig { host: None, ..cfg };
        assert!(matches!(Mailer::new(&none, None), Ok(None)));
    }
}
