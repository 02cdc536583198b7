//! Raw schema → validated `Config`: splits the document into independently deserialized units
//! (each section, each `[[trunk]]`, each `[[number]]`), then validates meaning and cross-section
//! rules, collecting every problem with its key path and line.
//!
//! Owns the top-level key list, cross-section checks (RTP range vs. listeners, routes without an
//! agent) and the shared value checkers. Per-section rules live in `validate_sections.rs`
//! (`[transcription]`: `validate_transcription.rs`, `[smtp]` and alert addresses:
//! `validate_smtp.rs`),
//! policy/trunk/number rules in `validate_routes.rs`. Must not do I/O, except that the hours
//! check looks for a zone file under /usr/share/zoneinfo.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::de::DeserializeOwned;

use super::de::{deserialize_collecting, render_path, Sp};
use super::error::Problems;
use super::policy::{E164Prefix, OutboundPolicyConfig, PolicyConfig};
use super::schema::{
    IntOrStr, Opt, RawAgentSection, RawApi, RawBilling, RawCallbacks, RawLog, RawNumber,
    RawOutboundPolicy, RawPolicy, RawRecording, RawRtp, RawSip, RawSmtp, RawTranscription,
    RawTrunk, RawUser, RawWebhook, StrList,
};
use super::tree::{Entry, Located, Node, Span};
use super::types::Config;
use super::units::{parse_duration, parse_size, size_from_int};
use super::{
    validate_outbound as outbound, validate_routes as routes, validate_sections as sections,
    validate_smtp as smtp, validate_transcription as transcription, validate_users as users,
};

const SECTIONS: &[&str] = &[
    "sip",
    "rtp",
    "api",
    "webhook",
    "callbacks",
    "recording",
    "transcription",
    "smtp",
    "billing",
    "policy",
    "outbound_policy",
    "trunk",
    "number",
    "user",
    "log",
    "agent",
];

/// Every section as deserialized; `None` when a section could not be read at all (its problems
/// are already recorded, and cross-section checks involving it are skipped).
#[derive(Default)]
pub(crate) struct RawConfig {
    pub sip: Option<RawSip>,
    pub rtp: Option<RawRtp>,
    pub api: Option<RawApi>,
    pub webhook: Option<RawWebhook>,
    pub callbacks: Option<RawCallbacks>,
    pub recording: Option<RawRecording>,
    pub transcription: Option<RawTranscription>,
    pub smtp: Option<RawSmtp>,
    pub billing: Option<RawBilling>,
    pub policy: Option<RawPolicy>,
    pub outbound_policy: Option<RawOutboundPolicy>,
    /// `(index in the file, trunk)`; unreadable elements are left out.
    pub trunks: Vec<(usize, RawTrunk)>,
    pub numbers: Vec<(usize, RawNumber)>,
    pub users: Vec<(usize, RawUser)>,
    pub log: Option<RawLog>,
    pub agent: Option<RawAgentSection>,
}

/// Deserializes each top-level unit on its own so one bad section does not hide the others.
pub(crate) fn read_sections(root: &[Entry], ctx: &mut Problems<'_>) -> RawConfig {
    let mut raw = RawConfig {
        sip: Some(RawSip::default()),
        rtp: Some(RawRtp::default()),
        api: Some(RawApi::default()),
        webhook: Some(RawWebhook::default()),
        callbacks: Some(RawCallbacks::default()),
        recording: Some(RawRecording::default()),
        transcription: Some(RawTranscription::default()),
        smtp: Some(RawSmtp::default()),
        billing: Some(RawBilling::default()),
        policy: Some(RawPolicy::default()),
        outbound_policy: Some(RawOutboundPolicy::default()),
        log: Some(RawLog::default()),
        agent: Some(RawAgentSection::default()),
        ..RawConfig::default()
    };
    for (key, node) in root {
        let name = key.value.as_str();
        match name {
            "sip" => raw.sip = unit(ctx, name, node),
            "rtp" => raw.rtp = unit(ctx, name, node),
            "api" => raw.api = unit(ctx, name, node),
            "webhook" => raw.webhook = unit(ctx, name, node),
            "callbacks" => raw.callbacks = unit(ctx, name, node),
            "recording" => raw.recording = unit(ctx, name, node),
            "transcription" => raw.transcription = unit(ctx, name, node),
            "smtp" => raw.smtp = unit(ctx, name, node),
            "billing" => raw.billing = unit(ctx, name, node),
            "policy" => raw.policy = unit(ctx, name, node),
            "outbound_policy" => raw.outbound_policy = unit(ctx, name, node),
            "log" => raw.log = unit(ctx, name, node),
            "agent" => raw.agent = unit(ctx, name, node),
            "trunk" => raw.trunks = array_of_tables(ctx, name, node),
            "number" => raw.numbers = array_of_tables(ctx, name, node),
            "user" => raw.users = array_of_tables(ctx, name, node),
            _ => ctx.push(
                render_path("", &[super::de::Seg::Key(name.to_string())]),
                &key.span,
                format!("unknown key; expected one of: {}", SECTIONS.join(", ")),
            ),
        }
    }
    raw
}

fn unit<T: DeserializeOwned>(
    ctx: &mut Problems<'_>,
    prefix: &str,
    node: &Located<Node>,
) -> Option<T> {
    let mut found = Vec::new();
    let value = deserialize_collecting(node, &mut found);
    for p in found {
        ctx.push(render_path(prefix, &p.path), &p.span, p.msg);
    }
    value
}

fn array_of_tables<T: DeserializeOwned>(
    ctx: &mut Problems<'_>,
    name: &str,
    node: &Located<Node>,
) -> Vec<(usize, T)> {
    let Node::Array(items) = &node.value else {
        ctx.push(
            name,
            &node.span,
            format!(
                "expected an array of tables ([[{name}]]), found {}",
                node.value.kind()
            ),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| unit(ctx, &format!("{name}[{i}]"), item).map(|t| (i, t)))
        .collect()
}

/// Builds the validated config; problems are pushed into `ctx` and the result is only
/// meaningful when none were.
pub(crate) fn build(raw: RawConfig, ctx: &mut Problems<'_>) -> Config {
    let (sip, sip_listeners) = sections::sip(ctx, raw.sip.as_ref());
    let (rtp, rtp_span) = sections::rtp(ctx, raw.rtp.as_ref());
    let (api, api_listener) = sections::api(ctx, raw.api.as_ref());
    let webhook = sections::webhook(ctx, raw.webhook.as_ref());
    let callbacks = sections::callbacks(ctx, raw.callbacks.as_ref());
    let recording = sections::recording(ctx, raw.recording.as_ref());
    let transcription = transcription::transcription(ctx, raw.transcription.as_ref());
    let smtp = smtp::smtp(ctx, raw.smtp.as_ref());
    let billing = sections::billing(ctx, raw.billing.as_ref());
    let log = sections::log(ctx, raw.log.as_ref());
    let agent = sections::agent(ctx, raw.agent.as_ref());
    let global = routes::policy(ctx, "policy", raw.policy.as_ref());
    let outbound_global =
        outbound::outbound_policy(ctx, "outbound_policy", raw.outbound_policy.as_ref());
    let trunks = routes::trunks(ctx, &raw.trunks);
    let numbers = routes::numbers(
        ctx,
        &raw.numbers,
        raw.webhook.is_none() || webhook.url.is_some(),
    );
    let users = users::users(ctx, &raw.users);

    smtp::check_mail_needs(ctx, &smtp, &raw);
    routes::check_client_ca_needs_tls(ctx, &sip, &raw.trunks);
    super::validate_srtp::check(
        ctx,
        &sip,
        raw.rtp.as_ref(),
        &raw.trunks,
        &trunks,
        &raw.numbers,
    );
    if raw.rtp.is_some() {
        let mut listeners = api_listener.into_iter().collect::<Vec<_>>();
        if raw.sip.is_some() {
            listeners.extend(sip_listeners);
        }
        sections::check_rtp_overlap(ctx, &rtp, &rtp_span, &listeners);
    }

    Config {
        sip,
        rtp,
        api,
        webhook,
        callbacks,
        recording,
        transcription,
        smtp,
        billing,
        policy: PolicyConfig::defaults().merged(&global),
        outbound_policy: OutboundPolicyConfig::defaults().merged(&outbound_global),
        trunks,
        numbers,
        users,
        log,
        agent,
    }
}

/// A socket the daemon will listen on, remembered for the RTP-range check.
pub(crate) struct Listener {
    pub path: String,
    pub span: Span,
    pub addr: SocketAddr,
}

pub(crate) fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A string key where `""` means "off": absent → `default`, `""` → `None`.
pub(crate) fn optional_text<'r>(raw: &'r Opt<String>, default: Option<&'r str>) -> Option<&'r str> {
    match raw {
        None => default,
        Some(sp) if sp.value.is_empty() => None,
        Some(sp) => Some(sp.value.as_str()),
    }
}

pub(crate) fn optional_path(raw: &Opt<String>, default: Option<&str>) -> Option<PathBuf> {
    optional_text(raw, default).map(PathBuf::from)
}

pub(crate) fn span_of<T>(raw: &Opt<T>) -> Span {
    raw.as_ref().and_then(|sp| sp.span.clone())
}

pub(crate) fn duration(
    ctx: &mut Problems<'_>,
    path: &str,
    raw: &Opt<IntOrStr>,
    default: Duration,
) -> Duration {
    let Some(sp) = raw else { return default };
    let parsed = match &sp.value {
        IntOrStr::Str(s) => parse_duration(s),
        IntOrStr::Int(n) => Err(format!(
            "{n} has no unit; write e.g. \"{n}s\" (units: ms, s, m, h)"
        )),
    };
    parsed.unwrap_or_else(|msg| {
        ctx.push(path, &sp.span, msg);
        default
    })
}

pub(crate) fn size(
    ctx: &mut Problems<'_>,
    path: &str,
    raw: &Opt<IntOrStr>,
    default: usize,
) -> usize {
    let Some(sp) = raw else { return default };
    let parsed = match &sp.value {
        IntOrStr::Str(s) => parse_size(s),
        IntOrStr::Int(n) => size_from_int(*n),
    };
    parsed.unwrap_or_else(|msg| {
        ctx.push(path, &sp.span, msg);
        default
    })
}

/// Validates each element of a string list with `parse`, reporting `path[i]` per bad element.
pub(crate) fn list<'r, T>(
    ctx: &mut Problems<'_>,
    path: &str,
    raw: &'r Option<StrList>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<Vec<(T, &'r Sp<String>)>> {
    let raw = raw.as_ref()?;
    let mut out = Vec::new();
    for (i, item) in raw.value.iter().enumerate() {
        match parse(&item.value) {
            Ok(v) => out.push((v, item)),
            Err(msg) => ctx.push(index(path, i), &item.span, msg),
        }
    }
    Some(out)
}

/// Drops the source locations `list` returns alongside values.
pub(crate) fn values<T, U>(items: Vec<(T, U)>) -> Vec<T> {
    items.into_iter().map(|(v, _)| v).collect()
}

pub(crate) fn parse_cidr(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{text:?} is not a CIDR"))
}

pub(crate) fn parse_prefix(text: &str) -> Result<E164Prefix, String> {
    E164Prefix::parse(text)
}

pub(crate) fn parse_socket(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a socket address (write e.g. \"0.0.0.0:5060\")"))
}

/// `http://` or `https://` with a non-empty host and no whitespace.
pub(crate) fn check_http_url(text: &str) -> Result<(), String> {
    check_url(text, &["http://", "https://"])
}

pub(crate) fn check_url(text: &str, schemes: &[&str]) -> Result<(), String> {
    let Some(rest) = schemes.iter().find_map(|s| text.strip_prefix(s)) else {
        return Err(format!(
            "{text:?} is not a URL starting with {}",
            schemes.join(" or ")
        ));
    };
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{text:?} contains whitespace"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    Ok(())
}

/// A URL key where `""` means "none".
pub(crate) fn http_url(ctx: &mut Problems<'_>, path: &str, raw: &Opt<String>) -> Option<String> {
    let sp = raw.as_ref()?;
    if sp.value.is_empty() {
        return None;
    }
    match check_http_url(&sp.value) {
        Ok(()) => Some(sp.value.clone()),
        Err(msg) => {
            ctx.push(path, &sp.span, msg);
            None
        }
    }
}

/// A DNS host name (RFC 1123 labels); IP literals are checked by the caller first.
pub(crate) fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Characters allowed in a SIP/HTTP header name (RFC 3261 `token`).
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// A header value must not smuggle a line break (header injection) or other control bytes.
pub(crate) fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\t')
}
