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

use super::policy::{OutboundPolicyConfig, PolicyConfig};
use super::secret::Secret;
use crate::core::hooks::callback::EventSet;
use crate::core::policy::OutboundTrunkLayer;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub api: ApiConfig,
    pub webhook: WebhookConfig,
    pub callbacks: CallbacksConfig,
    pub recording: RecordingConfig,
    pub transcription: TranscriptionConfig,
    /// `[smtp]`: where fraud-alert mail goes out.
    pub smtp: SmtpConfig,
    pub billing: BillingConfig,
    /// The global layer, with every field `Some` (defaults filled in).
    pub policy: PolicyConfig,
    /// `[outbound_policy]`: admission of the calls we place, every field `Some`.
    pub outbound_policy: OutboundPolicyConfig,
    pub trunks: Vec<TrunkConfig>,
    pub numbers: Vec<NumberConfig>,
    /// `[[user]]`s, in file order; passwords stay in their files: [`Config::read_users`].
    pub users: Vec<UserConfig>,
    pub log: LogConfig,
    pub agent: AgentSection,
}

impl Config {
    /// The outbound admission layers of the trunks that place calls, for
    /// `core::policy::OutboundPolicy::new(config.outbound_policy.clone(), layers)`.
    pub fn outbound_trunk_layers(&self) -> Vec<OutboundTrunkLayer> {
        self.trunks
            .iter()
            .filter(|t| t.outbound.is_some())
            .map(|t| OutboundTrunkLayer {
                name: t.name.clone(),
                policy: t.outbound_policy.clone(),
            })
            .collect()
    }
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
    /// Extra trust anchors (PEM) for TLS toward trunks, beside the system's roots.
    pub tls_ca_file: Option<PathBuf>,
    /// A TLS handshake on a listener not done within this is dropped.
    pub tls_handshake_timeout: Duration,
    /// Stream (TCP and TLS) connections one source may hold open at once; 0 → unlimited.
    pub max_connections_per_source: u32,
    /// What to advertise in Contact/Via/SDP; `None` → the socket's local address.
    pub public_address: Option<PublicAddress>,
    pub user_agent: String,
    pub max_message_size: usize,
    pub max_headers: usize,
    pub max_header_len: usize,
    /// RFC 4028 session interval we ask for (whole seconds, ≥ `min_se`).
    pub session_expires: Duration,
    /// RFC 4028 smallest session interval we accept (whole seconds, ≥ 1 s).
    pub min_se: Duration,
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
    /// SRTP for calls whose trunk or number sets none (`optional` by default).
    pub srtp: SrtpMode,
    /// SDES keys may travel in SIP over UDP/TCP (in clear). Off: `required` is refused where
    /// plain signalling can carry it, and `optional` encrypts only calls signalled over TLS.
    pub srtp_allow_plain_sip: bool,
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
    /// Reverse proxies whose `X-Forwarded-For` names the client (for the failed-auth limit
    /// and its log lines); empty → the peer address is the client.
    pub trusted_proxies: Vec<IpNet>,
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
    /// How long a recording is kept after its call ended; `None` → forever (`"0s"`/absent).
    pub retention: Option<Duration>,
}

/// `[transcription]`: speaker-labelled transcripts of recorded calls, each stereo channel
/// sent on its own to an OpenAI-compatible `/v1/audio/transcriptions` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionConfig {
    /// http(s) URL of the endpoint; `None` → no transcripts.
    pub url: Option<String>,
    /// The `model` form field (non-empty, no control characters).
    pub model: String,
    /// File holding the bearer key (read when the transcriber is built, never while parsing:
    /// [`super::read_secret_file`]); `None` → requests carry no `Authorization`.
    pub api_key_file: Option<PathBuf>,
    /// Longest one request (upload and answer) may take; more than 0.
    pub timeout: Duration,
}

impl TranscriptionConfig {
    pub fn is_enabled(&self) -> bool {
        self.url.is_some()
    }
}

/// `[smtp]`: the mail server fraud alerts (`fraud_alert.email`) are sent through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Host name or IP literal; `None` → no mail can be sent (no `fraud_alert.email` allowed).
    pub host: Option<String>,
    /// 587 by default (465 with `starttls = "tls"`).
    pub port: u16,
    pub starttls: SmtpTls,
    /// AUTH user; set exactly when `password_file` is (validated).
    pub username: Option<String>,
    /// File holding the AUTH password (read when the mailer is built, never while parsing:
    /// [`super::read_secret_file`]).
    pub password_file: Option<PathBuf>,
    /// The alerts' `From`; set whenever any `fraud_alert.email` is (validated).
    pub from: Option<MailFrom>,
    /// Longest one mail's delivery (connect to the server's answer to the message) may take;
    /// more than 0.
    pub timeout: Duration,
}

/// How the connection to `[smtp] host` is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; a server that does not offer it gets nothing.
    Required,
    /// TLS from the first byte (implicit TLS, "SMTPS", port 465).
    Tls,
    /// Plain SMTP, nothing encrypted (loopback and local relays only).
    Off,
}

/// A `From` mailbox: `"alerts@example.com"` or `"trunkgate <alerts@example.com>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    pub name: Option<String>,
    /// `local@domain`, checked like every `fraud_alert.email` address.
    pub address: String,
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
    /// Outbound admission overrides (set only with `outbound`): `None` fields inherit from
    /// `Config::outbound_policy`.
    pub outbound_policy: OutboundPolicyConfig,
    pub transfer: Option<TransferConfig>,
    /// Overrides only: `None` fields inherit from the global policy.
    pub policy: PolicyConfig,
    /// SRTP for inbound calls from this trunk; `None` → `rtp.srtp` (a number's wins).
    pub srtp: Option<SrtpMode>,
    /// Inbound calls from this trunk must come over TLS with a client certificate issued by
    /// this CA (PEM); `None` → no client certificate asked of it.
    pub tls_client_ca: Option<PathBuf>,
    /// With `tls_client_ca`: DNS names, one of which the client certificate must carry;
    /// empty → any certificate from the CA.
    pub tls_client_names: Vec<String>,
}

/// A `[[user]]`: a phone that registers with trunkgate's registrar (managers' desk phones,
/// for click-to-call). The password stays in its file: see [`UserConfig::read_password`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// Unique; letters, digits, `.`, `_`, `-`: the AOR user and the digest username.
    pub name: String,
    /// The digest password's file (read when the daemon asks, never while parsing).
    pub password_file: PathBuf,
    /// Sources it may register from; empty → any.
    pub allow_cidrs: Vec<IpNet>,
    /// Digest algorithms offered, in order (`"SHA-256"`, `"MD5"`); empty → both, SHA-256
    /// first. `["MD5"]` for phones that refuse a challenge naming an algorithm they lack.
    pub digest: Vec<String>,
}

/// A `[[user]]` with its password read ([`Config::read_users`]), ready to become a
/// `core::sip::registrar::User`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedUser {
    pub name: String,
    pub password: Secret,
    pub allow_cidrs: Vec<IpNet>,
    pub digest: Vec<String>,
}

/// How calls leave through a trunk (trunkgate as UAC). Secrets stay in their file: see
/// [`Outbound::read_credentials`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// Where requests go (unless `outbound_proxy`); a host name is resolved when dialling.
    pub address: HostPort,
    pub transport: Transport,
    /// With `transport = "tls"`: the trunk's certificate must name `address`'s host (on by
    /// default; off for peers addressed by IP whose certificate names a host, the chain is
    /// still verified).
    pub tls_check_hostname: bool,
    /// Every request goes to this proxy instead (RFC 3261 §8.1.2); `None` → to `address`.
    pub outbound_proxy: Option<HostPort>,
    /// The account: From/To user of REGISTER and Contact user; empty → none.
    pub username: String,
    /// The digest username; the same as `username` unless the file sets it.
    pub auth_username: String,
    /// The digest password's file; set only with a non-empty `auth_username` (validated).
    pub password_file: Option<PathBuf>,
    /// Host of our From URI; the `address` host unless set.
    pub from_domain: String,
    /// Which header carries the caller id the API asked for.
    pub caller_id: CallerId,
    /// Keep a REGISTER binding (needs `username`).
    pub register: bool,
    /// Expiry asked for in REGISTER; at least 60 s.
    pub register_expires: Duration,
    /// Always `Off` for now (validation refuses the others); the key is kept stable.
    pub srtp: SrtpMode,
}

/// A validated `host:port`: a DNS name, an IPv4 literal or a bracketed IPv6 literal, and a
/// non-zero port. `host` is kept as written (IPv6 with its brackets) so it drops straight
/// into a SIP URI; [`HostPort::ip`] gives the literal, if it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// The host as an IP address when it is a literal; `None` → a name to resolve.
    pub fn ip(&self) -> Option<IpAddr> {
        self.bare_host().parse().ok()
    }

    /// The host without an IPv6 literal's brackets (what a TLS certificate names).
    pub fn bare_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Where an outbound call's caller id goes: the From user, or also a P-Asserted-Identity
/// (RFC 3325) or Remote-Party-ID header, as the carrier wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerId {
    From,
    Pai,
    Rpid,
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
    /// SRTP for calls to this number; `None` → the trunk's, then `rtp.srtp`.
    pub srtp: Option<SrtpMode>,
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
