//! Validated configuration types: what the rest of trunkgate reads. No raw strings are left
//! where a type fits; optional things are `Option`s, "0 means unlimited" is documented per field.
//!
//! Owns the shape of `Config`. Must not parse or validate (see `validate*.rs`); the only logic
//! here is small accessors. Policy types live in `policy.rs`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::policy::PolicyConfig;
use crate::core::hooks::callback::EventSet;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub api: ApiConfig,
    pub webhook: WebhookConfig,
    pub callbacks: CallbacksConfig,
    pub recording: RecordingConfig,
    pub billing: BillingConfig,
    /// The global layer, with every field `Some` (defaults filled in).
    pub policy: PolicyConfig,
    pub trunks: Vec<TrunkConfig>,
    pub numbers: Vec<NumberConfig>,
    pub log: LogConfig,
    pub agent: AgentSection,
}

/// `[agent]`: how agent WebSockets are reached and what happens when one drops mid-call.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSection {
    pub connect_timeout: Duration,
    pub on_disconnect: OnDisconnect,
    /// Extra CA certificates (PEM) trusted for wss:// agents, webhooks and callbacks.
    pub extra_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDisconnect {
    /// End the call (default).
    Hangup,
    /// Keep the caller (silence) and reconnect once.
    Reconnect,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    pub listen_udp: Vec<SocketAddr>,
    pub listen_tcp: Vec<SocketAddr>,
    pub listen_tls: Vec<SocketAddr>,
    /// Present whenever `listen_tls` is non-empty (validated).
    pub tls: Option<TlsFiles>,
    /// What to advertise in Contact/Via/SDP; `None` → the socket's local address.
    pub public_address: Option<PublicAddress>,
    pub user_agent: String,
    pub max_message_size: usize,
    pub max_headers: usize,
    pub max_header_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The advertised address: an IP literal (never unspecified), or a DNS host name that the
/// operator guarantees resolves to this host. SDP `c=` lines take either (`IN IP4 <name>` is
/// legal but poorly supported, so prefer an IP behind NAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicAddress {
    Ip(IpAddr),
    Host(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RtpConfig {
    pub bind: IpAddr,
    /// Even; RTP takes even ports, RTCP the odd one above.
    pub port_min: u16,
    /// Inclusive; greater than `port_min`.
    pub port_max: u16,
    /// One of 10, 20, 30, 40.
    pub ptime_ms: u32,
    /// Positive: no media for this long ends the call.
    pub rtp_timeout: Duration,
    pub srtp: SrtpMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// `None` → no HTTP API at all.
    pub listen: Option<SocketAddr>,
    /// `None` → no bearer token: see [`ApiConfig::is_open`].
    pub token_file: Option<PathBuf>,
    /// Serve the Twilio-compatible `/2010-04-01/Accounts/{sid}/Calls` resource.
    pub twilio_compat: bool,
    /// The AccountSid of that resource (`AC` + 32 hex digits): its URL and Basic auth user.
    pub account_sid: String,
    /// How long ended calls stay visible to `GET /v1/calls/{id}` (0 → not kept).
    pub call_retention: Duration,
}

impl ApiConfig {
    /// Without a token the full API is served only on a loopback address (the demo); on any
    /// other address the API layer must serve just `/healthz` and `/readyz`.
    pub fn is_open(&self) -> bool {
        self.token_file.is_none() && self.listen.is_some_and(|a| a.ip().is_loopback())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// http(s) URL of the inbound-call webhook; `None` → static routes only.
    pub url: Option<String>,
    pub timeout: Duration,
    pub format: WebhookFormat,
    /// HMAC key for signing webhooks and callbacks; `None` → unsigned.
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookFormat {
    Json,
    TwilioForm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbacksConfig {
    /// Default http(s) status/hangup callback URL; a number's `callback_url` overrides it.
    pub url: Option<String>,
    pub spool_dir: PathBuf,
    /// At least 1.
    pub max_attempts: u32,
    /// First retry delay; doubles per failed attempt, up to 5 minutes.
    pub retry_backoff: Duration,
    /// One JSON line per ended call; `None` → no CDR file.
    pub cdr_file: Option<PathBuf>,
    /// The status events calls send (a webhook answer's `callback_events` overrides it).
    pub events: EventSet,
    /// How often an answered call's running duration and talk are journaled (crash-safe
    /// records, `<spool_dir>/journal`); more than 0.
    pub checkpoint: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingConfig {
    pub enabled: bool,
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingConfig {
    /// Seconds billed at least once a call is answered (0 → none).
    pub minimum_s: u32,
    /// Billing granularity after the minimum; at least 1.
    pub increment_s: u32,
    /// After the minimum, bill only the seconds in which someone speaks.
    pub exclude_silence: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrunkConfig {
    /// Unique; letters, digits, `_`, `-`, `.`.
    pub name: String,
    /// Inbound sources belonging to this trunk; empty → matched by no source (outbound only).
    pub match_cidrs: Vec<IpNet>,
    /// Headers an inbound INVITE must carry with exactly these values (name, value).
    pub require_headers: Vec<(String, String)>,
    pub outbound: Option<Outbound>,
    pub transfer: Option<TransferConfig>,
    /// Overrides only: `None` fields inherit from the global policy.
    pub policy: PolicyConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// `host:port` (IPv6 as `[addr]:port`), validated.
    pub address: String,
    pub transport: Transport,
    /// Empty → no digest authentication.
    pub username: String,
    pub password_file: Option<PathBuf>,
    pub register: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferConfig {
    pub mode: TransferMode,
    /// Required (http/https) for `notify`; `None` otherwise unless given.
    pub url: Option<String>,
    /// Extra HTTP headers for the notification, in file order.
    pub headers: Vec<(String, String)>,
    /// JSON body template for `notify`; strings may hold placeholders such as `{crt}`.
    pub body: Option<TemplateValue>,
    /// How long to wait for the PBX's BYE after a `notify` before hanging up ourselves.
    pub await_bye: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    Refer,
    Bridge,
    Notify,
}

/// A JSON-shaped value written in TOML, tables kept in file order (PBX templates are easier to
/// compare with vendor docs that way). Floats are always finite.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<TemplateValue>),
    Object(Vec<(String, TemplateValue)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumberConfig {
    pub did: DidPattern,
    /// Static agent; `None` → the inbound webhook decides (then `webhook.url` is set).
    pub agent: Option<AgentConfig>,
    pub callback_url: Option<String>,
    /// Overrides only: `None` fields inherit from the trunk, then the global policy.
    pub policy: PolicyConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DidPattern {
    /// Normalised E.164, e.g. `+48123456789`.
    Exact(String),
    /// `"*"`: every DID not matched exactly by another number.
    Any,
}

impl DidPattern {
    pub fn matches(&self, did: &str) -> bool {
        match self {
            DidPattern::Exact(d) => d == did,
            DidPattern::Any => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// `ws://`, `wss://` or `builtin:echo`.
    pub url: String,
    pub dialect: Dialect,
    /// 8000 or 16000.
    pub sample_rate: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Twilio,
    Plivo,
    Raw,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// One of `trace`, `debug`, `info`, `warn`, `error` (lower-cased).
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}
