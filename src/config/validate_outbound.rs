//! Validation of what placing calls needs: a trunk's `outbound = { ... }` (trunkgate as UAC)
//! and the outbound admission layers (`[outbound_policy]`, a trunk's `outbound_policy`).
//!
//! Owns the outbound keys' defaults (they must match `etc/trunkgate.toml`), `host:port`
//! syntax (SRTP over plain SIP is `validate_srtp`'s). Must not
//! read the password file (it is read when the trunk is used: [`super::secret`]) nor merge
//! policy layers (`OutboundPolicyConfig::merged` does).

use std::time::Duration;

use super::error::Problems;
use super::policy::OutboundPolicyConfig;
use super::schema::{Opt, RawOutbound, RawOutboundPolicy};
use super::tree::Span;
use super::types::{CallerId, HostPort, Outbound, SrtpMode, Transport};
use super::validate::{
    duration, is_host_name, key, list, optional_path, parse_prefix, span_of, values,
};
use super::validate_routes::hours_key;

const DEFAULT_REGISTER_EXPIRES: Duration = Duration::from_secs(600);
/// Below this carriers answer 423 anyway and refreshes would flood them.
const MIN_REGISTER_EXPIRES: Duration = Duration::from_secs(60);

pub(crate) fn outbound(ctx: &mut Problems<'_>, path: &str, raw: &RawOutbound) -> Outbound {
    let address = parse_host_port(&raw.address.value)
        .map_err(|msg| ctx.push(key(path, "address"), &raw.address.span, msg))
        .unwrap_or_else(|()| HostPort {
            host: String::new(),
            port: 5060,
        });
    let transport = match &raw.transport {
        None => Transport::Udp,
        Some(sp) => sp.value,
    };
    let outbound_proxy = optional_host_port(ctx, &key(path, "outbound_proxy"), &raw.outbound_proxy);
    let text = |raw: &Opt<String>| raw.as_ref().map(|sp| sp.value.clone()).unwrap_or_default();
    let username = text(&raw.username);
    let auth_username = match text(&raw.auth_username) {
        a if a.is_empty() => username.clone(),
        a => a,
    };
    // Both go into quoted header parameters (digest `username="…"`); checked as written, so
    // an inherited auth_username is not reported twice.
    for (name, raw) in [
        ("username", &raw.username),
        ("auth_username", &raw.auth_username),
    ] {
        if let Some(sp) = raw
            .as_ref()
            .filter(|sp| sp.value.chars().any(|c| c.is_control() || c == '"'))
        {
            let msg = "must not contain control characters or '\"'";
            ctx.push(key(path, name), &sp.span, msg);
        }
    }
    let here = |raw_span: Span| raw_span.or(raw.address.span.clone());
    let register = raw.register.unwrap_or(false);
    if register && username.is_empty() {
        ctx.push(
            key(path, "username"),
            &here(span_of(&raw.username)),
            "register = true needs a username",
        );
    }
    let password_file = optional_path(&raw.password_file, None);
    if password_file.is_some() && auth_username.is_empty() {
        ctx.push(
            key(path, "password_file"),
            &span_of(&raw.password_file),
            "a password needs a username (or auth_username) to authenticate as",
        );
    }
    let from_domain = match raw.from_domain.as_ref().filter(|sp| !sp.value.is_empty()) {
        None => address.host.clone(),
        Some(sp) => {
            if !is_host(&sp.value) {
                let msg = format!("{:?} is not a host name or IP address", sp.value);
                ctx.push(key(path, "from_domain"), &sp.span, msg);
            }
            sp.value.clone()
        }
    };
    let register_expires = duration(
        ctx,
        &key(path, "register_expires"),
        &raw.register_expires,
        DEFAULT_REGISTER_EXPIRES,
    );
    if register_expires < MIN_REGISTER_EXPIRES {
        ctx.push(
            key(path, "register_expires"),
            &span_of(&raw.register_expires),
            "must be at least 60s",
        );
    }
    let srtp = raw.srtp.as_ref().map_or(SrtpMode::Off, |sp| sp.value);
    Outbound {
        address,
        transport,
        outbound_proxy,
        username,
        auth_username,
        password_file,
        from_domain,
        caller_id: raw.caller_id.unwrap_or(CallerId::From),
        register,
        register_expires,
        srtp,
        tls_check_hostname: raw.tls_check_hostname.unwrap_or(true),
    }
}

/// One outbound admission layer; absent keys stay `None` (the global layer gets the defaults
/// when it is merged over `OutboundPolicyConfig::defaults`).
pub(crate) fn outbound_policy(
    ctx: &mut Problems<'_>,
    prefix: &str,
    raw: Option<&RawOutboundPolicy>,
) -> OutboundPolicyConfig {
    let Some(raw) = raw else {
        return OutboundPolicyConfig::default();
    };
    let prefixes = |ctx: &mut Problems<'_>, name: &str, l| {
        list(ctx, &key(prefix, name), l, parse_prefix).map(values)
    };
    OutboundPolicyConfig {
        max_concurrent: raw.max_concurrent,
        calls_per_second: raw.calls_per_second,
        allowed_prefixes: prefixes(ctx, "allowed_prefixes", &raw.allowed_prefixes),
        blocked_prefixes: prefixes(ctx, "blocked_prefixes", &raw.blocked_prefixes),
        hours: hours_key(ctx, &key(prefix, "hours"), &raw.hours),
    }
}

/// A `host:port` key where `""` means "none".
fn optional_host_port(ctx: &mut Problems<'_>, path: &str, raw: &Opt<String>) -> Option<HostPort> {
    let sp = raw.as_ref().filter(|sp| !sp.value.is_empty())?;
    parse_host_port(&sp.value)
        .map_err(|msg| ctx.push(path, &sp.span, msg))
        .ok()
}

/// `host:port` with a host name, IPv4 literal or bracketed IPv6 literal, and a non-zero port.
pub(crate) fn parse_host_port(text: &str) -> Result<HostPort, String> {
    let hint = || format!("{text:?} is not host:port (write e.g. \"sip.carrier.example:5060\")");
    let (host, port) = text.rsplit_once(':').ok_or_else(hint)?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(hint)?;
    if !is_host(host) {
        return Err(hint());
    }
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

/// A host as it appears in a SIP URI: name, IPv4 literal, or `[IPv6]`.
fn is_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<std::net::Ipv4Addr>().is_ok() || is_host_name(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        let ok = |s: &str| parse_host_port(s).map(|h| (h.host, h.port));
        assert_eq!(
            ok("sip.carrier.example:5060"),
            Ok(("sip.carrier.example".into(), 5060))
        );
        assert_eq!(ok("192.0.2.1:5060"), Ok(("192.0.2.1".into(), 5060)));
        assert_eq!(ok("[2001:db8::1]:5061"), Ok(("[2001:db8::1]".into(), 5061)));
        let v6 = parse_host_port("[2001:db8::1]:5061")
            .ok()
            .and_then(|h| h.ip());
        assert_eq!(v6, "2001:db8::1".parse().ok());
        for bad in [
            "sip.carrier.example",
            ":5060",
            "host:0",
            "host:99999",
            "2001:db8::1:5060",
            "a b:5060",
            "[2001:db8::1]",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad:?} accepted");
        }
    }
}
