//! Validation of mail: the `[smtp]` section, the addresses of every `fraud_alert.email`, and
//! the cross-section rule that an address needs `[smtp] host` and `from` to be mailed at.
//!
//! Owns the section's defaults (they must match `etc/trunkgate.toml`), the one syntax check of
//! an e-mail address (a plain `local@domain`, a subset of what the mailer accepts) and of a
//! `From` mailbox. Must not read the password file (it is read when the mailer is built:
//! [`super::secret`]) or know how mail is sent.

use std::net::IpAddr;
use std::time::Duration;

use super::de::Sp;
use super::error::Problems;
use super::schema::{RawPolicy, RawSmtp, StrOrList};
use super::types::{MailFrom, SmtpConfig, SmtpTls};
use super::validate::{
    duration, has_control, index, is_host_name, optional_path, optional_text, span_of, RawConfig,
};

const DEFAULT_PORT: u16 = 587;
const DEFAULT_TLS_PORT: u16 = 465;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `[smtp]`; absent keys get their defaults, `""` means "none".
pub(crate) fn smtp(ctx: &mut Problems<'_>, raw: Option<&RawSmtp>) -> SmtpConfig {
    let default = RawSmtp::default();
    let raw = raw.unwrap_or(&default);
    let starttls = raw.starttls.unwrap_or(SmtpTls::Required);
    let host = optional_text(&raw.host, None).and_then(|h| match check_host(h) {
        Ok(()) => Some(h.to_string()),
        Err(msg) => {
            ctx.push("smtp.host", &span_of(&raw.host), msg);
            None
        }
    });
    let port = match &raw.port {
        None if starttls == SmtpTls::Tls => DEFAULT_TLS_PORT,
        None => DEFAULT_PORT,
        Some(sp) if sp.value == 0 => {
            ctx.push("smtp.port", &sp.span, "must be from 1 to 65535");
            DEFAULT_PORT
        }
        Some(sp) => sp.value,
    };
    let username = optional_text(&raw.username, None).and_then(|u| {
        if has_control(u) || u.contains(char::is_whitespace) {
            let msg = "must not contain whitespace or control characters";
            ctx.push("smtp.username", &span_of(&raw.username), msg);
            None
        } else {
            Some(u.to_string())
        }
    });
    let password_file = optional_path(&raw.password_file, None);
    let user_given = has_text(&raw.username);
    if user_given && password_file.is_none() {
        let msg = "needs smtp.password_file (the password to log in with)";
        ctx.push("smtp.username", &span_of(&raw.username), msg);
    }
    if password_file.is_some() && !user_given {
        let msg = "needs smtp.username (who to log in as)";
        ctx.push("smtp.password_file", &span_of(&raw.password_file), msg);
    }
    if let (Some(h), Some(_), SmtpTls::Off) = (&host, &password_file, starttls) {
        if !is_loopback(h) {
            let msg = format!(
                "with starttls = \"off\" the password would cross the network to {h} \
                 unencrypted; use starttls = \"required\" or \"tls\" (plain SMTP with a \
                 password is allowed to a loopback host only)"
            );
            ctx.push("smtp.password_file", &span_of(&raw.password_file), msg);
        }
    }
    let from = raw
        .from
        .as_ref()
        .filter(|sp| !sp.value.is_empty())
        .and_then(|sp| match parse_from(&sp.value) {
            Ok(f) => Some(f),
            Err(msg) => {
                ctx.push("smtp.from", &sp.span, msg);
                None
            }
        });
    let timeout = duration(ctx, "smtp.timeout", &raw.timeout, DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        ctx.push(
            "smtp.timeout",
            &span_of(&raw.timeout),
            "must be more than 0s",
        );
    }
    SmtpConfig {
        host,
        port,
        starttls,
        username,
        password_file,
        from,
        timeout,
    }
}

fn has_text(raw: &Option<Sp<String>>) -> bool {
    raw.as_ref().is_some_and(|sp| !sp.value.is_empty())
}

/// A `fraud_alert.email` value: one address or a list; `""` and `[]` → none. Each bad address
/// is reported at `path` (a single string) or `path[i]`.
pub(crate) fn recipients(ctx: &mut Problems<'_>, path: &str, raw: &Sp<StrOrList>) -> Vec<String> {
    match &raw.value {
        StrOrList::One(s) if s.is_empty() => Vec::new(),
        StrOrList::One(s) => match check_address(s) {
            Ok(()) => vec![s.clone()],
            Err(msg) => {
                ctx.push(path, &raw.span, msg);
                Vec::new()
            }
        },
        StrOrList::Many(items) => {
            let mut out: Vec<String> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match check_address(&item.value) {
                    Err(msg) => ctx.push(index(path, i), &item.span, msg),
                    Ok(()) if out.iter().any(|a| a.eq_ignore_ascii_case(&item.value)) => {
                        let msg = format!("{:?} is listed twice", item.value);
                        ctx.push(index(path, i), &item.span, msg);
                    }
                    Ok(()) => out.push(item.value.clone()),
                }
            }
            out
        }
    }
}

/// Whether a `fraud_alert.email` value names anyone (before its addresses are checked).
pub(crate) fn names_anyone(raw: &Sp<StrOrList>) -> bool {
    match &raw.value {
        StrOrList::One(s) => !s.is_empty(),
        StrOrList::Many(items) => !items.is_empty(),
    }
}

/// Every layer's `fraud_alert.email` needs `[smtp] host` and `from`; reported at the email
/// key of each layer that names anyone. Skipped when `[smtp]` itself could not be read.
pub(crate) fn check_mail_needs(ctx: &mut Problems<'_>, smtp: &SmtpConfig, raw: &RawConfig) {
    if raw.smtp.is_none() {
        return;
    }
    let mut layers: Vec<(String, Option<&RawPolicy>)> =
        vec![("policy".into(), raw.policy.as_ref())];
    for (i, t) in &raw.trunks {
        layers.push((format!("trunk[{i}].policy"), t.policy.as_ref()));
    }
    for (i, n) in &raw.numbers {
        layers.push((format!("number[{i}].policy"), n.policy.as_ref()));
    }
    // A key that is set but invalid has its own problem; only what is absent is reported here.
    let smtp_raw = raw.smtp.as_ref();
    let absent: Vec<&str> = [
        (
            "smtp.host",
            smtp.host.is_none() && !smtp_raw.is_some_and(|s| has_text(&s.host)),
        ),
        (
            "smtp.from",
            smtp.from.is_none() && !smtp_raw.is_some_and(|s| has_text(&s.from)),
        ),
    ]
    .into_iter()
    .filter_map(|(k, absent)| absent.then_some(k))
    .collect();
    if absent.is_empty() {
        return;
    }
    let msg = format!("mailing the alert needs {} to be set", absent.join(" and "));
    for (prefix, layer) in layers {
        let email = layer
            .and_then(|p| p.fraud_alert.as_ref())
            .and_then(|fa| fa.value.email.as_ref())
            .filter(|e| names_anyone(e));
        if let Some(email) = email {
            ctx.push(
                format!("{prefix}.fraud_alert.email"),
                &email.span,
                msg.clone(),
            );
        }
    }
}

/// A plain `local@domain` address: the local part dot-separated atoms of RFC 5322 `atext`, the
/// domain a DNS host name or a bracketed IP literal; 254 characters at most.
pub(crate) fn check_address(text: &str) -> Result<(), String> {
    let bad = || format!("{text:?} is not an e-mail address (write e.g. \"ops@example.com\")");
    if text.len() > 254 {
        return Err(format!("{text:?} is longer than 254 characters"));
    }
    let (local, domain) = text.rsplit_once('@').ok_or_else(bad)?;
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(atext));
    let domain_ok = match domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        Some(ip) => ip.parse::<IpAddr>().is_ok(),
        None => is_host_name(domain),
    };
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `"alerts@example.com"`, `"trunkgate <alerts@example.com>"` or `"\"NOC, trunkgate\"
/// <alerts@example.com>"`.
pub(crate) fn parse_from(text: &str) -> Result<MailFrom, String> {
    let shape = || {
        format!(
            "{text:?} is not a sender (write e.g. \"alerts@example.com\" or \
             \"trunkgate <alerts@example.com>\")"
        )
    };
    let Some(open) = text.find('<') else {
        check_address(text.trim()).map_err(|_| shape())?;
        return Ok(MailFrom {
            name: None,
            address: text.trim().to_string(),
        });
    };
    let (name, rest) = text.split_at(open);
    let address = rest
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .ok_or_else(shape)?;
    check_address(address).map_err(|_| shape())?;
    let name = name.trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    if has_control(name) || name.contains(['"', '<', '>', '\\']) {
        return Err(shape());
    }
    Ok(MailFrom {
        name: (!name.is_empty()).then(|| name.to_string()),
        address: address.to_string(),
    })
}

/// A host name or an IP literal, without a port.
fn check_host(text: &str) -> Result<(), String> {
    if text.parse::<IpAddr>().is_ok() || is_host_name(text) {
        return Ok(());
    }
    if text.contains(':') && text.rsplit_once(':').is_some_and(|(h, _)| is_host_name(h)) {
        return Err(format!("{text:?}: write the port in smtp.port"));
    }
    Err(format!("{text:?} is not a host name or IP address"))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
