//! Validation of routing and admission settings: policy layers (`[policy]`, `trunk.policy`,
//! `number.policy`), `[[trunk]]` and `[[number]]` (a trunk's `outbound` and
//! `outbound_policy` keys: `validate_outbound.rs`).
//!
//! Owns per-layer policy rules (CIDRs, E.164 prefixes, hours with a real zone, fraud alert needs
//! a URL or an address, checked by `validate_smtp.rs`), trunk/number uniqueness,
//! header-injection checks and agent/transfer rules. Must not merge layers (a layer keeps
//! `None` for "inherit"; `PolicyConfig::merged` does the rest).

use std::path::Path;
use std::time::Duration;

use super::de::{render_path, Seg};
use super::error::Problems;
use super::policy::{Flood, FraudAlert, Hours, OutboundPolicyConfig, PolicyConfig};
use super::schema::{Opt, Pairs, RawAgent, RawNumber, RawPolicy, RawTransfer, RawTrunk};
use super::types::{
    AgentConfig, Dialect, DidPattern, NumberConfig, TransferConfig, TransferMode, TrunkConfig,
};
use super::validate::{
    check_url, duration, has_control, http_url, is_token, key, list, parse_cidr, parse_prefix,
    span_of, values,
};
use super::validate_outbound::{outbound, outbound_policy};
use crate::core::number::E164;

const ZONEINFO: &str = "/usr/share/zoneinfo";
const BUILTIN_AGENTS: &[&str] = &["builtin:echo"];

/// One policy layer; absent keys stay `None`.
pub(crate) fn policy(
    ctx: &mut Problems<'_>,
    prefix: &str,
    raw: Option<&RawPolicy>,
) -> PolicyConfig {
    let Some(raw) = raw else {
        return PolicyConfig::default();
    };
    let hours = hours_key(ctx, &key(prefix, "hours"), &raw.hours);
    let max_call_duration = raw.max_call_duration.as_ref().map(|_| {
        duration(
            ctx,
            &key(prefix, "max_call_duration"),
            &raw.max_call_duration,
            Duration::ZERO,
        )
    });
    let user_agent_blocklist = list(
        ctx,
        &key(prefix, "user_agent_blocklist"),
        &raw.user_agent_blocklist,
        |s| {
            if s.is_empty() {
                Err("an empty entry would match every user agent".to_string())
            } else {
                Ok(s.to_string())
            }
        },
    );
    PolicyConfig {
        allow_cidrs: list(
            ctx,
            &key(prefix, "allow_cidrs"),
            &raw.allow_cidrs,
            parse_cidr,
        )
        .map(values),
        allowed_prefixes: list(
            ctx,
            &key(prefix, "allowed_prefixes"),
            &raw.allowed_prefixes,
            parse_prefix,
        )
        .map(values),
        blocked_prefixes: list(
            ctx,
            &key(prefix, "blocked_prefixes"),
            &raw.blocked_prefixes,
            parse_prefix,
        )
        .map(values),
        max_concurrent: raw.max_concurrent,
        max_calls_per_hour: raw.max_calls_per_hour,
        max_calls_per_day: raw.max_calls_per_day,
        hours,
        max_call_duration,
        daily_minutes_cap: raw.daily_minutes_cap,
        fraud_alert: fraud_alert(ctx, prefix, raw),
        flood_per_source: raw.flood_per_source.as_ref().map(|sp| {
            let flood = Flood {
                burst: sp.value.burst.unwrap_or(50),
                per_second: sp.value.per_second.as_ref().map_or(20, |p| p.value),
            };
            if flood.burst > 0 && flood.per_second == 0 {
                let span = span_of(&sp.value.per_second).or(sp.span.clone());
                ctx.push(
                    key(prefix, "flood_per_source.per_second"),
                    &span,
                    "must be at least 1 (set burst = 0 to turn the limit off)",
                );
            }
            flood
        }),
        reject_action: raw.reject_action,
        user_agent_blocklist: user_agent_blocklist.map(values),
    }
}

fn fraud_alert(ctx: &mut Problems<'_>, prefix: &str, raw: &RawPolicy) -> Option<FraudAlert> {
    let sp = raw.fraud_alert.as_ref()?;
    let path = key(prefix, "fraud_alert");
    let alert = FraudAlert {
        calls: sp.value.calls.unwrap_or(0),
        within: duration(
            ctx,
            &key(&path, "within"),
            &sp.value.within,
            Duration::from_secs(300),
        ),
        url: http_url(ctx, &key(&path, "url"), &sp.value.url),
        email: sp.value.email.as_ref().map_or_else(Vec::new, |e| {
            super::validate_smtp::recipients(ctx, &key(&path, "email"), e)
        }),
    };
    let url_given = sp.value.url.as_ref().is_some_and(|u| !u.value.is_empty());
    let email_given = (sp.value.email.as_ref()).is_some_and(super::validate_smtp::names_anyone);
    if alert.calls > 0 && !url_given && !email_given {
        let msg = format!(
            "calls = {} needs a url or an email to send the alert to",
            alert.calls
        );
        ctx.push(&path, &sp.span, msg);
    }
    if alert.calls > 0 && alert.within.is_zero() {
        ctx.push(
            key(&path, "within"),
            &span_of(&sp.value.within).or(sp.span.clone()),
            "must be more than 0s",
        );
    }
    Some(alert)
}

/// An `hours` key (inbound and outbound layers): absent → inherit, `""` → 24/7.
pub(crate) fn hours_key(
    ctx: &mut Problems<'_>,
    path: &str,
    raw: &Opt<String>,
) -> Option<Option<Hours>> {
    raw.as_ref().map(|sp| {
        if sp.value.is_empty() {
            return None;
        }
        parse_hours(&sp.value, Path::new(ZONEINFO))
            .map_err(|msg| ctx.push(path, &sp.span, msg))
            .ok()
    })
}

/// `"HH:MM-HH:MM Area/City"`; the zone must exist under `zoneinfo` when that directory does.
pub(crate) fn parse_hours(text: &str, zoneinfo: &Path) -> Result<Hours, String> {
    let shape = || {
        format!("{text:?} is not \"HH:MM-HH:MM Area/City\" (e.g. \"08:00-20:00 Europe/Warsaw\")")
    };
    let (range, tz) = text.split_once(' ').ok_or_else(shape)?;
    let (start, end) = range.split_once('-').ok_or_else(shape)?;
    let start_min = hhmm(start, false).ok_or_else(shape)?;
    let end_min = hhmm(end, true).ok_or_else(shape)?;
    if start_min == end_min || (start_min == 0 && end_min == 1440) {
        return Err(format!("{text:?} covers the whole day; use \"\" for 24/7"));
    }
    let tz_ok = !tz.is_empty()
        && !tz.starts_with('/')
        && tz
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && tz
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
    if !tz_ok {
        return Err(format!(
            "{tz:?} is not a time zone name such as \"Europe/Warsaw\""
        ));
    }
    if zoneinfo.is_dir() && !zoneinfo.join(tz).is_file() {
        return Err(format!(
            "unknown time zone {tz:?} (not in {})",
            zoneinfo.display()
        ));
    }
    Ok(Hours {
        start_min,
        end_min,
        tz: tz.to_string(),
    })
}

/// Minutes since midnight for `HH:MM`; `24:00` only where `allow_24` (an end time).
fn hhmm(text: &str, allow_24: bool) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if allow_24 => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

pub(crate) fn trunks(ctx: &mut Problems<'_>, raw: &[(usize, RawTrunk)]) -> Vec<TrunkConfig> {
    let mut out: Vec<(usize, TrunkConfig)> = Vec::new();
    for (i, t) in raw {
        let prefix = format!("trunk[{i}]");
        let name = &t.name.value;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !name_ok {
            let msg = format!("{name:?} is not a trunk name (1-64 letters, digits, '_', '-', '.')");
            ctx.push(key(&prefix, "name"), &t.name.span, msg);
        } else if let Some((j, _)) = out.iter().find(|(_, o)| &o.name == name) {
            ctx.push(
                key(&prefix, "name"),
                &t.name.span,
                format!("{name:?} is already the name of trunk[{j}]"),
            );
        }
        let trunk = TrunkConfig {
            name: name.clone(),
            match_cidrs: list(
                ctx,
                &key(&prefix, "match_cidrs"),
                &t.match_cidrs,
                parse_cidr,
            )
            .map(values)
            .unwrap_or_default(),
            require_headers: headers(ctx, &key(&prefix, "require_headers"), &t.require_headers),
            outbound: t
                .outbound
                .as_ref()
                .map(|sp| outbound(ctx, &key(&prefix, "outbound"), &sp.value)),
            outbound_policy: trunk_outbound_policy(ctx, &prefix, t),
            transfer: t
                .transfer
                .as_ref()
                .map(|sp| transfer(ctx, &key(&prefix, "transfer"), &sp.value, &sp.span)),
            policy: policy(ctx, &key(&prefix, "policy"), t.policy.as_ref()),
            srtp: t.srtp.as_ref().map(|sp| sp.value),
            tls_client_ca: None,
            tls_client_names: Vec::new(),
        };
        let trunk = client_cert(ctx, &prefix, t, trunk);
        out.push((*i, trunk));
    }
    out.into_iter().map(|(_, t)| t).collect()
}

/// A trunk asking for client certificates needs a TLS listener to ask on.
pub(crate) fn check_client_ca_needs_tls(
    ctx: &mut Problems<'_>,
    sip: &super::types::SipConfig,
    raw: &[(usize, RawTrunk)],
) {
    if !sip.listen_tls.is_empty() && sip.tls.is_some() {
        return;
    }
    for (i, t) in raw {
        if let Some(ca) = t.tls_client_ca.as_ref().filter(|c| !c.value.is_empty()) {
            ctx.push(
                format!("trunk[{i}].tls_client_ca"),
                &ca.span,
                "client certificates are asked on TLS: set sip.listen_tls and [sip.tls]",
            );
        }
    }
}

/// `tls_client_ca` (a non-empty path; read by `--check-config`) and `tls_client_names` (DNS
/// names, only with a CA).
fn client_cert(
    ctx: &mut Problems<'_>,
    prefix: &str,
    t: &RawTrunk,
    mut trunk: TrunkConfig,
) -> TrunkConfig {
    if let Some(ca) = &t.tls_client_ca {
        match ca.value.is_empty() {
            true => ctx.push(
                key(prefix, "tls_client_ca"),
                &ca.span,
                "must name a CA file (PEM); leave the key out for no client certificates",
            ),
            false => trunk.tls_client_ca = Some(ca.value.clone().into()),
        }
    }
    let dns = |n: &str| -> Result<String, String> {
        match super::validate::is_host_name(n) {
            true => Ok(n.to_ascii_lowercase()),
            false => Err(format!("{n:?} is not a DNS name")),
        }
    };
    trunk.tls_client_names = list(
        ctx,
        &key(prefix, "tls_client_names"),
        &t.tls_client_names,
        dns,
    )
    .map(values)
    .unwrap_or_default();
    if let (Some(names), None) = (&t.tls_client_names, &t.tls_client_ca) {
        ctx.push(
            key(prefix, "tls_client_names"),
            &names.span,
            "only with tls_client_ca (the CA that issued those certificates)",
        );
    }
    trunk
}

/// A trunk's outbound admission overrides; meaningless (so refused) without `outbound`.
fn trunk_outbound_policy(
    ctx: &mut Problems<'_>,
    prefix: &str,
    t: &RawTrunk,
) -> OutboundPolicyConfig {
    let path = key(prefix, "outbound_policy");
    let Some(sp) = &t.outbound_policy else {
        return OutboundPolicyConfig::default();
    };
    if t.outbound.is_none() {
        let msg = "this trunk has no outbound, so it places no calls to admit";
        ctx.push(&path, &sp.span, msg);
    }
    outbound_policy(ctx, &path, Some(&sp.value))
}

/// Header tables: names must be tokens, values must not break the header line.
fn headers(ctx: &mut Problems<'_>, path: &str, raw: &Opt<Pairs>) -> Vec<(String, String)> {
    let Some(sp) = raw else { return Vec::new() };
    let mut out = Vec::new();
    for (name, value) in &sp.value.0 {
        let at = render_path(path, &[Seg::Key(name.clone())]);
        if !is_token(name) {
            ctx.push(
                &at,
                &value.span,
                format!("{name:?} is not a valid header name"),
            );
        } else if has_control(&value.value) {
            ctx.push(
                &at,
                &value.span,
                "header values must not contain line breaks or control characters",
            );
        } else {
            out.push((name.clone(), value.value.clone()));
        }
    }
    out
}

fn transfer(
    ctx: &mut Problems<'_>,
    path: &str,
    raw: &RawTransfer,
    span: &super::tree::Span,
) -> TransferConfig {
    let url = http_url(ctx, &key(path, "url"), &raw.url);
    let url_given = raw.url.as_ref().is_some_and(|u| !u.value.is_empty());
    if raw.mode.value == TransferMode::Notify && !url_given {
        let span = span_of(&raw.url).or(raw.mode.span.clone()).or(span.clone());
        ctx.push(
            key(path, "url"),
            &span,
            "mode \"notify\" needs the PBX notification url",
        );
    }
    TransferConfig {
        mode: raw.mode.value,
        url,
        headers: headers(ctx, &key(path, "headers"), &raw.headers),
        body: raw.body.clone(),
        await_bye: duration(
            ctx,
            &key(path, "await_bye"),
            &raw.await_bye,
            Duration::from_secs(30),
        ),
    }
}

pub(crate) fn numbers(
    ctx: &mut Problems<'_>,
    raw: &[(usize, RawNumber)],
    webhook_available: bool,
) -> Vec<NumberConfig> {
    let mut out: Vec<(usize, NumberConfig)> = Vec::new();
    for (i, n) in raw {
        let prefix = format!("number[{i}]");
        let did = match n.did.value.as_str() {
            "*" => Some(DidPattern::Any),
            text => text
                .parse::<E164>()
                .map(|n| DidPattern::Exact(n.to_string()))
                .map_err(|msg| {
                    ctx.push(
                        key(&prefix, "did"),
                        &n.did.span,
                        format!("{msg}; use \"*\" for any DID"),
                    )
                })
                .ok(),
        };
        if let Some(did) = &did {
            if let Some((j, _)) = out.iter().find(|(_, o)| &o.did == did) {
                let msg = format!("{:?} is already routed by number[{j}]", n.did.value);
                ctx.push(key(&prefix, "did"), &n.did.span, msg);
            }
        }
        let agent = n
            .agent
            .as_ref()
            .map(|sp| agent(ctx, &key(&prefix, "agent"), &sp.value));
        if agent.is_none() && !webhook_available {
            let msg = "has no agent and webhook.url is empty: its calls could not be answered";
            ctx.push(&prefix, &n.did.span, msg);
        }
        let number = NumberConfig {
            did: did.unwrap_or(DidPattern::Any),
            agent,
            callback_url: http_url(ctx, &key(&prefix, "callback_url"), &n.callback_url),
            policy: policy(ctx, &key(&prefix, "policy"), n.policy.as_ref()),
            srtp: n.srtp.as_ref().map(|sp| sp.value),
        };
        out.push((*i, number));
    }
    out.into_iter().map(|(_, n)| n).collect()
}

fn agent(ctx: &mut Problems<'_>, path: &str, raw: &RawAgent) -> AgentConfig {
    let url = &raw.url.value;
    if url.starts_with("builtin:") {
        // Options follow a `?`: `builtin:echo?answer_delay_ms=2000` rings before answering.
        let (name, query) = url.split_once('?').unwrap_or((url, ""));
        if !BUILTIN_AGENTS.contains(&name) {
            let msg = format!(
                "{url:?} is not a built-in agent (known: {})",
                BUILTIN_AGENTS.join(", ")
            );
            ctx.push(key(path, "url"), &raw.url.span, msg);
        } else if let Some(bad) = query.split('&').filter(|kv| !kv.is_empty()).find(|kv| {
            !matches!(kv.split_once('='), Some(("answer_delay_ms", v)) if v.parse::<u32>().is_ok())
        }) {
            let msg = format!("{url:?}: unknown option {bad:?} (known: answer_delay_ms=<ms>)");
            ctx.push(key(path, "url"), &raw.url.span, msg);
        }
    } else if let Err(msg) = check_url(url, &["ws://", "wss://"]) {
        ctx.push(key(path, "url"), &raw.url.span, msg);
    }
    let dialect = raw.dialect.unwrap_or(Dialect::Twilio);
    let sample_rate = raw.sample_rate.as_ref().map_or(8000, |sp| sp.value);
    let rate_span = span_of(&raw.sample_rate);
    if sample_rate != 8000 && sample_rate != 16000 {
        ctx.push(
            key(path, "sample_rate"),
            &rate_span,
            format!("{sample_rate} is not 8000 or 16000"),
        );
    } else if dialect == Dialect::Twilio && sample_rate != 8000 {
        ctx.push(
            key(path, "sample_rate"),
            &rate_span,
            "the twilio dialect carries 8000 Hz mu-law only",
        );
    }
    AgentConfig {
        url: url.clone(),
        dialect,
        sample_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_syntax() {
        let none = Path::new("/nonexistent-zoneinfo");
        let h = parse_hours("22:00-06:30 Europe/Warsaw", none);
        assert_eq!(
            h,
            Ok(Hours {
                start_min: 1320,
                end_min: 390,
                tz: "Europe/Warsaw".into()
            })
        );
        assert_eq!(
            parse_hours("08:00-24:00 UTC", none).map(|h| h.end_min),
            Ok(1440)
        );
        for bad in [
            "8-20 UTC",
            "08:00-20:00",
            "08:00-20:00 ",
            "24:00-08:00 UTC",
            "08:60-09:00 UTC",
            "08:00-20:00 ../etc/passwd",
            "08:00-20:00 /etc/x",
        ] {
            assert!(parse_hours(bad, none).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_hours("08:00-08:00 UTC", none),
            Err("\"08:00-08:00 UTC\" covers the whole day; use \"\" for 24/7".to_string())
        );
    }
}
