//! The raw TOML schema: serde types mirroring `etc/trunkgate.toml` key for key.
//!
//! Owns key names and TOML types only. Every struct denies unknown keys and every key is
//! optional here unless nothing sensible can stand in for it (a trunk's `name`, a number's
//! `did`); defaults and meaning are applied by `validate*.rs`. Values that get checked later
//! are wrapped in `Sp` so problems can name their line. Must not hold logic.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::de::Sp;
use super::policy::RejectAction;
use super::types::{
    CallerId, Dialect, LogFormat, OnDisconnect, SmtpTls, SrtpMode, TemplateValue, TransferMode,
    Transport, WebhookFormat,
};

pub(crate) type Opt<T> = Option<Sp<T>>;
pub(crate) type StrList = Sp<Vec<Sp<String>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSip {
    pub listen_udp: Option<StrList>,
    pub listen_tcp: Option<StrList>,
    pub listen_tls: Option<StrList>,
    pub tls: Opt<RawTls>,
    pub public_address: Opt<String>,
    pub user_agent: Opt<String>,
    pub max_message_size: Opt<IntOrStr>,
    pub max_headers: Opt<u32>,
    pub max_header_len: Opt<IntOrStr>,
    pub session_expires: Opt<IntOrStr>,
    pub min_se: Opt<IntOrStr>,
    pub max_connections_per_source: Opt<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTls {
    pub cert_file: Opt<String>,
    pub key_file: Opt<String>,
    pub ca_file: Opt<String>,
    pub handshake_timeout: Opt<IntOrStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRtp {
    pub bind: Opt<String>,
    pub port_min: Opt<u16>,
    pub port_max: Opt<u16>,
    pub ptime_ms: Opt<u32>,
    pub rtp_timeout: Opt<IntOrStr>,
    pub srtp: Opt<SrtpMode>,
    pub srtp_allow_plain_sip: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawApi {
    pub listen: Opt<String>,
    pub token_file: Opt<String>,
    pub twilio_compat: Option<bool>,
    pub account_sid: Opt<String>,
    pub call_retention: Opt<IntOrStr>,
    pub trusted_proxies: Option<StrList>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawWebhook {
    pub url: Opt<String>,
    pub timeout: Opt<IntOrStr>,
    pub format: Option<WebhookFormat>,
    pub secret_file: Opt<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCallbacks {
    pub url: Opt<String>,
    pub spool_dir: Opt<String>,
    pub max_attempts: Opt<u32>,
    pub retry_backoff: Opt<IntOrStr>,
    pub cdr_file: Opt<String>,
    pub events: Option<StrList>,
    pub checkpoint: Opt<IntOrStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAgentSection {
    pub connect_timeout: Opt<IntOrStr>,
    pub on_disconnect: Option<OnDisconnect>,
    pub extra_ca_file: Opt<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRecording {
    pub enabled: Option<bool>,
    pub dir: Opt<String>,
    pub retention: Opt<IntOrStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTranscription {
    pub url: Opt<String>,
    pub model: Opt<String>,
    pub api_key_file: Opt<String>,
    pub timeout: Opt<IntOrStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawBilling {
    pub minimum_s: Option<u32>,
    pub increment_s: Opt<u32>,
    pub exclude_silence: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawPolicy {
    pub allow_cidrs: Option<StrList>,
    pub allowed_prefixes: Option<StrList>,
    pub blocked_prefixes: Option<StrList>,
    pub max_concurrent: Option<u32>,
    pub max_calls_per_hour: Option<u32>,
    pub max_calls_per_day: Option<u32>,
    pub hours: Opt<String>,
    pub max_call_duration: Opt<IntOrStr>,
    pub daily_minutes_cap: Option<u32>,
    pub fraud_alert: Opt<RawFraudAlert>,
    pub flood_per_source: Opt<RawFlood>,
    pub reject_action: Option<RejectAction>,
    pub user_agent_blocklist: Option<StrList>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawFraudAlert {
    pub calls: Option<u32>,
    pub within: Opt<IntOrStr>,
    pub url: Opt<String>,
    pub email: Opt<StrOrList>,
}

/// `[smtp]`: the mail server fraud alerts are sent through.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSmtp {
    pub host: Opt<String>,
    pub port: Opt<u16>,
    pub starttls: Option<SmtpTls>,
    pub username: Opt<String>,
    pub password_file: Opt<String>,
    pub from: Opt<String>,
    pub timeout: Opt<IntOrStr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawFlood {
    pub burst: Option<u32>,
    pub per_second: Opt<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrunk {
    pub name: Sp<String>,
    #[serde(default)]
    pub match_cidrs: Option<StrList>,
    #[serde(default)]
    pub require_headers: Opt<Pairs>,
    #[serde(default)]
    pub outbound: Opt<RawOutbound>,
    #[serde(default)]
    pub outbound_policy: Opt<RawOutboundPolicy>,
    #[serde(default)]
    pub transfer: Opt<RawTransfer>,
    #[serde(default)]
    pub policy: Option<RawPolicy>,
    #[serde(default)]
    pub srtp: Opt<SrtpMode>,
    #[serde(default)]
    pub tls_client_ca: Opt<String>,
    #[serde(default)]
    pub tls_client_names: Option<StrList>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutbound {
    pub address: Sp<String>,
    #[serde(default)]
    pub transport: Opt<Transport>,
    #[serde(default)]
    pub outbound_proxy: Opt<String>,
    #[serde(default)]
    pub username: Opt<String>,
    #[serde(default)]
    pub auth_username: Opt<String>,
    #[serde(default)]
    pub password_file: Opt<String>,
    #[serde(default)]
    pub from_domain: Opt<String>,
    #[serde(default)]
    pub caller_id: Option<CallerId>,
    #[serde(default)]
    pub register: Option<bool>,
    #[serde(default)]
    pub register_expires: Opt<IntOrStr>,
    #[serde(default)]
    pub srtp: Opt<SrtpMode>,
    #[serde(default)]
    pub tls_check_hostname: Option<bool>,
}

/// `[outbound_policy]` and a trunk's `outbound_policy = { ... }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawOutboundPolicy {
    pub max_concurrent: Option<u32>,
    pub calls_per_second: Option<u32>,
    pub allowed_prefixes: Option<StrList>,
    pub blocked_prefixes: Option<StrList>,
    pub hours: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransfer {
    pub mode: Sp<TransferMode>,
    #[serde(default)]
    pub url: Opt<String>,
    #[serde(default)]
    pub headers: Opt<Pairs>,
    #[serde(default)]
    pub body: Option<TemplateValue>,
    #[serde(default)]
    pub await_bye: Opt<IntOrStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNumber {
    pub did: Sp<String>,
    #[serde(default)]
    pub agent: Opt<RawAgent>,
    #[serde(default)]
    pub callback_url: Opt<String>,
    #[serde(default)]
    pub policy: Option<RawPolicy>,
    #[serde(default)]
    pub srtp: Opt<SrtpMode>,
}

/// A `[[user]]`: a phone that registers with trunkgate's registrar.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUser {
    pub name: Sp<String>,
    pub password_file: Sp<String>,
    #[serde(default)]
    pub allow_cidrs: Option<StrList>,
    #[serde(default)]
    pub digest: Option<StrList>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub url: Sp<String>,
    #[serde(default)]
    pub dialect: Option<Dialect>,
    #[serde(default)]
    pub sample_rate: Opt<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLog {
    pub level: Opt<String>,
    pub format: Option<LogFormat>,
}

/// Durations and sizes: a string with a unit, or a bare integer (valid for sizes only; for a
/// duration it earns a "needs a unit" message instead of a type error).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IntOrStr {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string such as \"30s\" or \"64KiB\"")
            }
            fn visit_i64<E>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string, or an array of strings (`email = "a@b"` or `email = ["a@b", "c@d"]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StrOrList {
    One(String),
    Many(Vec<Sp<String>>),
}

impl<'de> Deserialize<'de> for StrOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E>(self, v: &str) -> Result<StrOrList, E> {
                Ok(StrOrList::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrOrList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(StrOrList::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// A table of string values kept in file order (HTTP/SIP header maps).
#[derive(Debug, Default)]
pub(crate) struct Pairs(pub Vec<(String, Sp<String>)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of header names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for TemplateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TemplateVisitor(PhantomData))
    }
}

struct TemplateVisitor<'de>(PhantomData<&'de ()>);

impl<'de> Visitor<'de> for TemplateVisitor<'de> {
    type Value = TemplateValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-compatible value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<TemplateValue, E> {
        Ok(TemplateValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<TemplateValue, E> {
        Ok(TemplateValue::Int(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<TemplateValue, E> {
        if v.is_finite() {
            Ok(TemplateValue::Float(v))
        } else {
            Err(E::custom(format!("{v} cannot be sent as JSON")))
        }
    }
    fn visit_str<E>(self, v: &str) -> Result<TemplateValue, E> {
        Ok(TemplateValue::Str(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TemplateValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(TemplateValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TemplateValue, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            entries.push((k, v));
        }
        Ok(TemplateValue::Object(entries))
    }
}
