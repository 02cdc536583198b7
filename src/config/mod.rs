//! trunkgate's configuration: TOML text → raw schema → validation → [`Config`].
//!
//! PURE apart from [`load`], which reads one file, the hours check, which looks up zone
//! files, and `secret.rs`, which reads a secret file when the daemon asks (never while
//! parsing: `--check-config` runs where the secrets are not). Every problem in a file is
//! reported at once, each as
//! `<origin>:<line>: <key.path>: <message>`. Defaults for absent keys are those shown in
//! `etc/trunkgate.toml`; an empty file is a valid configuration.
//!
//! Pipeline: `tree` (toml → located value tree) → `de` (each section deserialized into the
//! `schema` types, collecting serde errors per key) → `validate*` (meaning, defaults,
//! cross-section rules) → `types` / `policy` (what the daemon reads). Must not import `io`, `api`
//! or `app`; from `core` it only assembles core's own settings types (`core::policy::settings`,
//! re-exported by `policy`): core never imports config.

mod de;
mod error;
mod policy;
mod schema;
mod secret;
mod tree;
mod types;
pub mod units;
mod validate;
mod validate_outbound;
mod validate_routes;
mod validate_sections;
mod validate_smtp;
mod validate_srtp;
mod validate_transcription;
mod validate_users;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_api;
#[cfg(test)]
mod tests_callbacks;
#[cfg(test)]
mod tests_outbound;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_sip;
#[cfg(test)]
mod tests_smtp;
#[cfg(test)]
mod tests_srtp;
#[cfg(test)]
mod tests_transcription;
#[cfg(test)]
mod tests_users;

use std::path::Path;

pub use error::{ConfigError, Problem};
pub use policy::{
    E164Prefix, Flood, FraudAlert, Hours, OutboundPolicyConfig, PolicyConfig, RejectAction,
    DEFAULT_USER_AGENT_BLOCKLIST,
};
pub use secret::{read_secret_file, Secret, SecretError};
pub use types::{
    AgentConfig, AgentSection, ApiConfig, BillingConfig, CallbacksConfig, CallerId, Config,
    Dialect, DidPattern, HostPort, LoadedUser, LogConfig, LogFormat, MailFrom, NumberConfig,
    OnDisconnect, Outbound, PublicAddress, RecordingConfig, RtpConfig, SipConfig, SmtpConfig,
    SmtpTls, SrtpMode, TemplateValue, TlsFiles, TranscriptionConfig, TransferConfig, TransferMode,
    Transport, TrunkConfig, UserConfig, WebhookConfig, WebhookFormat,
};

/// The embedded configuration of `trunkgate demo`.
pub const DEMO_TOML: &str = include_str!("demo.toml");

/// Reads and parses the file at `path`; problems are reported against the path as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin),
        Err(e) => Err(ConfigError {
            origin,
            problems: vec![Problem {
                line: None,
                path: String::new(),
                message: format!("cannot read: {e}"),
            }],
        }),
    }
}

/// Parses configuration text; `origin` names it in messages (usually the file path).
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let mut problems = error::Problems::new(text);
    let root = match tree::parse_document(text) {
        Ok(root) => root,
        Err(e) => {
            // toml's messages may span several lines; keep one line per problem.
            let message = e.message().trim().replace('\n', "; ");
            problems.push("", &e.span(), message);
            return Err(problems.into_error(origin));
        }
    };
    let raw = validate::read_sections(&root, &mut problems);
    let config = validate::build(raw, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems.into_error(origin))
    }
}

impl Config {
    /// The configuration `trunkgate demo` runs: loopback only, open API, echo agent.
    pub fn demo() -> Config {
        // DEMO_TOML is a compile-time constant, not operator input; `tests::demo_parses`
        // guarantees this never fires.
        #[allow(clippy::expect_used)]
        parse(DEMO_TOML, "demo.toml").expect("embedded demo config is valid")
    }
}
