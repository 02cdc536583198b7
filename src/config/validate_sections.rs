//! Validation of the flat sections: `[sip]`, `[rtp]`, `[api]`, `[webhook]`, `[callbacks]`,
//! `[recording]`, `[billing]`, `[log]`, and the RTP-range vs. listener check.
//!
//! Owns each section's defaults (they must match `etc/trunkgate.toml`, which a test parses and
//! compares with an empty file) and per-key rules. Must not look at routes or policy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::error::Problems;
use super::schema::{
    RawAgentSection, RawApi, RawBilling, RawCallbacks, RawLog, RawRecording, RawRtp, RawSip,
    RawWebhook, StrList,
};
use super::tree::Span;
use super::types::{
    AgentSection, ApiConfig, BillingConfig, CallbacksConfig, LogConfig, LogFormat, OnDisconnect,
    PublicAddress, RecordingConfig, RtpConfig, SipConfig, SrtpMode, TlsFiles, WebhookConfig,
    WebhookFormat,
};
use super::validate::{
    duration, has_control, http_url, is_host_name, list, optional_path, optional_text, parse_cidr,
    parse_socket, size, span_of, values, Listener,
};
use crate::core::hooks::callback::{CallbackEvent, EventSet};

const DEFAULT_SIP_LISTEN: &str = "0.0.0.0:5060";
const MIN_MESSAGE_SIZE: usize = 1 << 10;
const MAX_MESSAGE_SIZE: usize = 16 << 20;
const PTIMES: [u32; 4] = [10, 20, 30, 40];
const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
const LOG_LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

pub(crate) fn sip(ctx: &mut Problems<'_>, raw: Option<&RawSip>) -> (SipConfig, Vec<Listener>) {
    let default = RawSip::default();
    let raw = raw.unwrap_or(&default);
    let mut listeners = Vec::new();
    let listen_udp = listen(
        ctx,
        "sip.listen_udp",
        &raw.listen_udp,
        &[DEFAULT_SIP_LISTEN],
        &mut listeners,
    );
    let listen_tcp = listen(
        ctx,
        "sip.listen_tcp",
        &raw.listen_tcp,
        &[DEFAULT_SIP_LISTEN],
        &mut listeners,
    );
    let listen_tls = listen(ctx, "sip.listen_tls", &raw.listen_tls, &[], &mut listeners);

    let tls = raw.tls.as_ref().and_then(|sp| {
        let cert = optional_path(&sp.value.cert_file, None);
        let key = optional_path(&sp.value.key_file, None);
        match (cert, key) {
            (Some(cert_file), Some(key_file)) => Some(TlsFiles {
                cert_file,
                key_file,
            }),
            (None, None) => None,
            _ => {
                ctx.push(
                    "sip.tls",
                    &sp.span,
                    "cert_file and key_file must be set together",
                );
                None
            }
        }
    });
    let tls_ca_file = raw
        .tls
        .as_ref()
        .and_then(|sp| optional_path(&sp.value.ca_file, None));
    let no_timeout = None;
    let raw_timeout = raw
        .tls
        .as_ref()
        .map_or(&no_timeout, |sp| &sp.value.handshake_timeout);
    let tls_handshake_timeout = duration(
        ctx,
        "sip.tls.handshake_timeout",
        raw_timeout,
        Duration::from_secs(10),
    );
    if tls_handshake_timeout.is_zero() || tls_handshake_timeout > Duration::from_secs(60) {
        let msg = "must be more than 0s and at most 60s";
        ctx.push("sip.tls.handshake_timeout", &span_of(raw_timeout), msg);
    }
    if !listen_tls.is_empty() && tls.is_none() {
        let span = raw.listen_tls.as_ref().and_then(|l| l.span.clone());
        ctx.push(
            "sip.listen_tls",
            &span,
            "TLS listeners need sip.tls.cert_file and sip.tls.key_file",
        );
    }

    let public_address = raw.public_address.as_ref().and_then(|sp| {
        let text = sp.value.as_str();
        let parsed = match text.parse::<IpAddr>() {
            _ if text.is_empty() => return None,
            Ok(ip) if ip.is_unspecified() => Err(format!(
                "{text:?} cannot be advertised: it is not a routable address"
            )),
            Ok(ip) => Ok(PublicAddress::Ip(ip)),
            Err(_) if is_host_name(text) => Ok(PublicAddress::Host(text.to_string())),
            Err(_) => Err(format!("{text:?} is neither an IP address nor a host name")),
        };
        parsed
            .map_err(|msg| ctx.push("sip.public_address", &sp.span, msg))
            .ok()
    });

    let user_agent = match &raw.user_agent {
        None => "trunkgate".to_string(),
        Some(sp) if has_control(&sp.value) => {
            ctx.push(
                "sip.user_agent",
                &sp.span,
                "must not contain control characters",
            );
            String::new()
        }
        Some(sp) => sp.value.clone(),
    };

    let max_message_size = size(ctx, "sip.max_message_size", &raw.max_message_size, 64 << 10);
    if !(MIN_MESSAGE_SIZE..=MAX_MESSAGE_SIZE).contains(&max_message_size) {
        let msg = format!("{max_message_size} bytes is outside 1KiB..16MiB");
        ctx.push("sip.max_message_size", &span_of(&raw.max_message_size), msg);
    }
    let max_headers = raw.max_headers.as_ref().map_or(100, |sp| sp.value);
    if max_headers < 16 {
        ctx.push(
            "sip.max_headers",
            &span_of(&raw.max_headers),
            format!(
                "{max_headers} is too few: a normal INVITE has about 10 headers; use at least 16"
            ),
        );
    }
    // The default shrinks with a small max_message_size; an explicit value must fit in it.
    let max_header_len = size(
        ctx,
        "sip.max_header_len",
        &raw.max_header_len,
        (8 << 10).min(max_message_size),
    );
    if raw.max_header_len.is_some() && (max_header_len < 256 || max_header_len > max_message_size) {
        let msg = format!("{max_header_len} bytes must be at least 256 and at most sip.max_message_size ({max_message_size})");
        ctx.push("sip.max_header_len", &span_of(&raw.max_header_len), msg);
    }

    let (session_expires, min_se) = session_timer(ctx, raw);
    let config = SipConfig {
        session_expires,
        min_se,
        listen_udp,
        listen_tcp,
        listen_tls,
        tls,
        tls_ca_file,
        tls_handshake_timeout,
        max_connections_per_source: raw
            .max_connections_per_source
            .as_ref()
            .map_or(64, |sp| sp.value),
        public_address,
        user_agent,
        max_message_size,
        max_headers: max_headers as usize,
        max_header_len,
    };
    (config, listeners)
}

/// `sip.session_expires` and `sip.min_se` (RFC 4028): whole seconds, at least 1 s, the
/// interval not below the minimum. Values under 90 s are for tests; real peers refuse them.
fn session_timer(ctx: &mut Problems<'_>, raw: &RawSip) -> (Duration, Duration) {
    let mut secs = |path: &str, value: &super::schema::Opt<_>, default: u64| {
        let d = duration(ctx, path, value, Duration::from_secs(default));
        let whole = d.subsec_nanos() == 0 && d.as_secs() >= 1 && d.as_secs() <= u64::from(u32::MAX);
        if !whole {
            let msg = "must be a whole number of seconds, at least 1s";
            ctx.push(path, &span_of(value), msg);
            return Duration::from_secs(default);
        }
        d
    };
    let session_expires = secs("sip.session_expires", &raw.session_expires, 1800);
    let min_se = secs("sip.min_se", &raw.min_se, 90);
    if min_se > session_expires {
        let (min, se) = (min_se.as_secs(), session_expires.as_secs());
        if raw.min_se.is_some() {
            let msg = format!("{min}s is above sip.session_expires ({se}s)");
            ctx.push("sip.min_se", &span_of(&raw.min_se), msg);
        } else {
            let msg = format!("{se}s is below sip.min_se ({min}s)");
            ctx.push("sip.session_expires", &span_of(&raw.session_expires), msg);
        }
    }
    (session_expires, min_se)
}

fn listen(
    ctx: &mut Problems<'_>,
    path: &str,
    raw: &Option<StrList>,
    default: &[&str],
    listeners: &mut Vec<Listener>,
) -> Vec<SocketAddr> {
    let Some(parsed) = list(ctx, path, raw, parse_socket) else {
        let addrs: Vec<SocketAddr> = default.iter().filter_map(|d| d.parse().ok()).collect();
        for (i, addr) in addrs.iter().enumerate() {
            listeners.push(Listener {
                path: format!("{path}[{i}]"),
                span: None,
                addr: *addr,
            });
        }
        return addrs;
    };
    let mut addrs = Vec::new();
    for (i, (addr, item)) in parsed.into_iter().enumerate() {
        if addrs.contains(&addr) {
            ctx.push(
                format!("{path}[{i}]"),
                &item.span,
                format!("{addr} is listed twice"),
            );
            continue;
        }
        listeners.push(Listener {
            path: format!("{path}[{i}]"),
            span: item.span.clone(),
            addr,
        });
        addrs.push(addr);
    }
    addrs
}

pub(crate) fn rtp(ctx: &mut Problems<'_>, raw: Option<&RawRtp>) -> (RtpConfig, Span) {
    let default = RawRtp::default();
    let raw = raw.unwrap_or(&default);
    let bind = match &raw.bind {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(sp) => sp.value.parse().unwrap_or_else(|_| {
            ctx.push(
                "rtp.bind",
                &sp.span,
                format!("{:?} is not an IP address", sp.value),
            );
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }),
    };
    let port_min = raw.port_min.as_ref().map_or(10000, |sp| sp.value);
    let port_max = raw.port_max.as_ref().map_or(20000, |sp| sp.value);
    if port_min == 0 {
        ctx.push("rtp.port_min", &span_of(&raw.port_min), "must not be 0");
    } else if port_min % 2 == 1 {
        let msg = format!("{port_min} is odd; RTP uses even ports (RTCP takes the odd one above)");
        ctx.push("rtp.port_min", &span_of(&raw.port_min), msg);
    }
    if port_max <= port_min {
        let span = span_of(&raw.port_max).or_else(|| span_of(&raw.port_min));
        let msg = format!("{port_max} must be greater than rtp.port_min ({port_min})");
        ctx.push("rtp.port_max", &span, msg);
    }
    let ptime_ms = raw.ptime_ms.as_ref().map_or(20, |sp| sp.value);
    if !PTIMES.contains(&ptime_ms) {
        ctx.push(
            "rtp.ptime_ms",
            &span_of(&raw.ptime_ms),
            format!("{ptime_ms} is not one of 10, 20, 30, 40"),
        );
    }
    let rtp_timeout = duration(
        ctx,
        "rtp.rtp_timeout",
        &raw.rtp_timeout,
        Duration::from_secs(30),
    );
    if rtp_timeout.is_zero() {
        ctx.push(
            "rtp.rtp_timeout",
            &span_of(&raw.rtp_timeout),
            "must be more than 0s",
        );
    }
    let config = RtpConfig {
        bind,
        port_min,
        port_max,
        ptime_ms,
        rtp_timeout,
        srtp: raw.srtp.as_ref().map_or(SrtpMode::Optional, |sp| sp.value),
        srtp_allow_plain_sip: raw.srtp_allow_plain_sip.unwrap_or(false),
    };
    (
        config,
        span_of(&raw.port_min).or_else(|| span_of(&raw.port_max)),
    )
}

/// The RTP range must not contain a port the daemon already listens on at an address the RTP
/// sockets also bind (a wildcard overlaps everything of its family; `::` also takes IPv4).
pub(crate) fn check_rtp_overlap(
    ctx: &mut Problems<'_>,
    rtp: &RtpConfig,
    rtp_span: &Span,
    listeners: &[Listener],
) {
    for l in listeners {
        let port = l.addr.port();
        if port < rtp.port_min || port > rtp.port_max || !ips_overlap(rtp.bind, l.addr.ip()) {
            continue;
        }
        let range = format!("{}-{} on {}", rtp.port_min, rtp.port_max, rtp.bind);
        if l.span.is_some() {
            ctx.push(
                &l.path,
                &l.span,
                format!("{} is inside the RTP port range {range}", l.addr),
            );
        } else {
            let msg = format!(
                "the RTP port range {range} contains {} (default of {})",
                l.addr, l.path
            );
            ctx.push("rtp.port_min", rtp_span, msg);
        }
    }
}

fn ips_overlap(a: IpAddr, b: IpAddr) -> bool {
    let covers =
        |wild: IpAddr, other: IpAddr| wild.is_unspecified() && (wild.is_ipv6() || other.is_ipv4());
    a == b || covers(a, b) || covers(b, a)
}

pub(crate) fn api(ctx: &mut Problems<'_>, raw: Option<&RawApi>) -> (ApiConfig, Option<Listener>) {
    let default = RawApi::default();
    let raw = raw.unwrap_or(&default);
    let span = span_of(&raw.listen);
    let listen = optional_text(&raw.listen, Some("127.0.0.1:8080")).and_then(|text| {
        parse_socket(text)
            .map_err(|msg| ctx.push("api.listen", &span, msg))
            .ok()
    });
    let listener = listen.map(|addr| Listener {
        path: "api.listen".to_string(),
        span,
        addr,
    });
    let sid_span = span_of(&raw.account_sid);
    let account_sid = match &raw.account_sid {
        Some(sp) if is_account_sid(&sp.value) => sp.value.clone(),
        Some(sp) => {
            let msg = format!(
                "{:?} is not a Twilio AccountSid (\"AC\" and 32 hex digits)",
                sp.value
            );
            ctx.push("api.account_sid", &sid_span, msg);
            DEFAULT_ACCOUNT_SID.to_string()
        }
        None => DEFAULT_ACCOUNT_SID.to_string(),
    };
    let config = ApiConfig {
        listen,
        token_file: optional_path(&raw.token_file, Some("/etc/trunkgate/api.token")),
        twilio_compat: raw.twilio_compat.unwrap_or(false),
        account_sid,
        call_retention: duration(
            ctx,
            "api.call_retention",
            &raw.call_retention,
            Duration::from_secs(3600),
        ),
        trusted_proxies: list(ctx, "api.trusted_proxies", &raw.trusted_proxies, parse_cidr)
            .map(values)
            .unwrap_or_default(),
    };
    (config, listener)
}

/// Twilio's AccountSid shape: `AC` and 32 hex digits.
fn is_account_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn webhook(ctx: &mut Problems<'_>, raw: Option<&RawWebhook>) -> WebhookConfig {
    let default = RawWebhook::default();
    let raw = raw.unwrap_or(&default);
    let timeout = duration(ctx, "webhook.timeout", &raw.timeout, Duration::from_secs(3));
    if timeout.is_zero() {
        ctx.push(
            "webhook.timeout",
            &span_of(&raw.timeout),
            "must be more than 0s",
        );
    }
    WebhookConfig {
        url: http_url(ctx, "webhook.url", &raw.url),
        timeout,
        format: raw.format.unwrap_or(WebhookFormat::Json),
        secret_file: optional_path(&raw.secret_file, None),
    }
}

pub(crate) fn callbacks(ctx: &mut Problems<'_>, raw: Option<&RawCallbacks>) -> CallbacksConfig {
    let default = RawCallbacks::default();
    let raw = raw.unwrap_or(&default);
    let max_attempts = raw.max_attempts.as_ref().map_or(20, |sp| sp.value);
    if max_attempts == 0 {
        ctx.push(
            "callbacks.max_attempts",
            &span_of(&raw.max_attempts),
            "must be at least 1",
        );
    }
    let retry_backoff = duration(
        ctx,
        "callbacks.retry_backoff",
        &raw.retry_backoff,
        Duration::from_secs(1),
    );
    if retry_backoff.is_zero() {
        ctx.push(
            "callbacks.retry_backoff",
            &span_of(&raw.retry_backoff),
            "must be more than 0s",
        );
    }
    let checkpoint = duration(
        ctx,
        "callbacks.checkpoint",
        &raw.checkpoint,
        Duration::from_secs(5),
    );
    if checkpoint.is_zero() {
        ctx.push(
            "callbacks.checkpoint",
            &span_of(&raw.checkpoint),
            "must be more than 0s",
        );
    }
    let events = match list(ctx, "callbacks.events", &raw.events, |name| {
        CallbackEvent::from_name(name)
            .filter(|_| !name.starts_with("call."))
            .ok_or_else(|| format!("{name:?} is not one of {}", CallbackEvent::NAMES))
    }) {
        Some(items) => values(items).into_iter().collect(),
        None => EventSet::COMPLETED,
    };
    CallbacksConfig {
        events,
        checkpoint,
        url: http_url(ctx, "callbacks.url", &raw.url),
        spool_dir: required_dir(
            ctx,
            "callbacks.spool_dir",
            &raw.spool_dir,
            "/var/lib/trunkgate/spool",
        ),
        max_attempts,
        retry_backoff,
        cdr_file: optional_path(&raw.cdr_file, Some("/var/lib/trunkgate/cdr.jsonl")),
    }
}

pub(crate) fn agent(ctx: &mut Problems<'_>, raw: Option<&RawAgentSection>) -> AgentSection {
    let default = RawAgentSection::default();
    let raw = raw.unwrap_or(&default);
    let connect_timeout = duration(
        ctx,
        "agent.connect_timeout",
        &raw.connect_timeout,
        Duration::from_secs(5),
    );
    if connect_timeout.is_zero() {
        ctx.push(
            "agent.connect_timeout",
            &span_of(&raw.connect_timeout),
            "must be more than 0s",
        );
    }
    AgentSection {
        connect_timeout,
        on_disconnect: raw.on_disconnect.unwrap_or(OnDisconnect::Hangup),
        extra_ca_file: optional_path(&raw.extra_ca_file, None),
    }
}

pub(crate) fn recording(ctx: &mut Problems<'_>, raw: Option<&RawRecording>) -> RecordingConfig {
    let default = RawRecording::default();
    let raw = raw.unwrap_or(&default);
    RecordingConfig {
        enabled: raw.enabled.unwrap_or(false),
        dir: required_dir(
            ctx,
            "recording.dir",
            &raw.dir,
            "/var/lib/trunkgate/recordings",
        ),
        retention: Some(duration(
            ctx,
            "recording.retention",
            &raw.retention,
            Duration::ZERO,
        ))
        .filter(|d| !d.is_zero()),
    }
}

fn required_dir(
    ctx: &mut Problems<'_>,
    path: &str,
    raw: &super::schema::Opt<String>,
    default: &str,
) -> std::path::PathBuf {
    optional_path(raw, Some(default)).unwrap_or_else(|| {
        ctx.push(path, &span_of(raw), "must not be empty");
        default.into()
    })
}

pub(crate) fn billing(ctx: &mut Problems<'_>, raw: Option<&RawBilling>) -> BillingConfig {
    let default = RawBilling::default();
    let raw = raw.unwrap_or(&default);
    let increment_s = raw.increment_s.as_ref().map_or(1, |sp| sp.value);
    if increment_s == 0 {
        ctx.push(
            "billing.increment_s",
            &span_of(&raw.increment_s),
            "must be at least 1",
        );
    }
    BillingConfig {
        minimum_s: raw.minimum_s.unwrap_or(60),
        increment_s,
        exclude_silence: raw.exclude_silence.unwrap_or(false),
    }
}

pub(crate) fn log(ctx: &mut Problems<'_>, raw: Option<&RawLog>) -> LogConfig {
    let default = RawLog::default();
    let raw = raw.unwrap_or(&default);
    let level = match &raw.level {
        None => "info".to_string(),
        Some(sp) => {
            let lower = sp.value.to_ascii_lowercase();
            if !LOG_LEVELS.contains(&lower.as_str()) {
                let names: Vec<String> = LOG_LEVELS.iter().map(|l| format!("{l:?}")).collect();
                let msg = format!("{:?} is not one of {}", sp.value, names.join(", "));
                ctx.push("log.level", &sp.span, msg);
            }
            lower
        }
    };
    LogConfig {
        level,
        format: raw.format.unwrap_or(LogFormat::Json),
    }
}
