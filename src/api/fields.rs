//! The values both ways of placing a call take (`POST /v1/calls` and the Twilio-compatible
//! create): destinations, caller ids, URLs, agent URLs and the `Idempotency-Key` header.
//! Every check returns what is wrong as text, without the field name (the caller adds it).
//!
//! Owns: the syntax of those values (E.164 through the one normaliser in `core::number`, SIP
//! URIs through the SIP parser). Must not: know HTTP bodies, status codes or error shapes.

use axum::http::HeaderMap;

use crate::app::control::Destination;
use crate::core::number::{E164, MAX_DIGITS};
use crate::core::sip::message::{parse_uri, Scheme};

/// Fewest digits of a dialled E.164 number (country code included): the shortest numbers in
/// service (e.g. Niue, +683 and 4 digits) have 7.
pub(crate) const MIN_DIAL_DIGITS: usize = 7;
/// Longest SIP URI or URL accepted.
pub(crate) const MAX_URI: usize = 256;
pub(crate) const MAX_URL: usize = 2048;
/// Longest caller id that is not a number (a SIP user part).
pub(crate) const MAX_CALLER_ID: usize = 64;
/// `Idempotency-Key`: 1 to this many visible ASCII characters.
pub(crate) const MAX_KEY: usize = 255;

/// `to`: an E.164 number (normalised) or a `sip:`/`sips:` URI (as given).
pub(crate) fn destination(text: &str) -> Result<Destination, String> {
    if has_scheme(text, "sip:") || has_scheme(text, "sips:") {
        return sip_uri(text).map(Destination::Uri);
    }
    dial_number(text).map(Destination::E164)
}

/// `bridge_from`: a destination, or `user:NAME` (a `[[user]]`'s registered phone).
pub(crate) fn phone_or_destination(text: &str) -> Result<Destination, String> {
    let Some(name) = text.strip_prefix("user:") else {
        return destination(text);
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if name.is_empty() || name.len() > 64 || !name.bytes().all(plain) {
        return Err(format!(
            "{:?}: a user name is 1 to 64 of A-Z a-z 0-9 . _ -",
            shorten(text)
        ));
    }
    Ok(Destination::User(name.to_string()))
}

fn dial_number(text: &str) -> Result<String, String> {
    let shown = shorten(text);
    if text.len() > 64 {
        return Err(format!("{shown:?} is too long for a phone number"));
    }
    let Some(number) = E164::parse(text) else {
        let digits = text.bytes().filter(u8::is_ascii_digit).count();
        return Err(if digits > MAX_DIGITS && text.bytes().all(number_char) {
            format!("{shown:?} has more than {MAX_DIGITS} digits (E.164's most)")
        } else {
            format!("{shown:?} is neither an E.164 number (+ and digits) nor a sip:/sips: URI")
        });
    };
    let digits = number.as_str().len().saturating_sub(1);
    if digits < MIN_DIAL_DIGITS {
        return Err(format!(
            "{shown:?} has {digits} digits; a number to dial has at least {MIN_DIAL_DIGITS}"
        ));
    }
    Ok(number.to_string())
}

fn number_char(b: u8) -> bool {
    b.is_ascii_digit() || b" +-.()/".contains(&b)
}

/// A `sip:`/`sips:` URI with a host, no URI headers (`?…` would add headers to the INVITE),
/// no password, and nothing that could break a SIP header line.
fn sip_uri(text: &str) -> Result<String, String> {
    let shown = shorten(text);
    if text.len() > MAX_URI {
        return Err(format!("{shown:?} is longer than {MAX_URI} characters"));
    }
    if text
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b"<>\"".contains(&b))
    {
        return Err(format!(
            "{shown:?} contains a space, a control character, a quote, < or >"
        ));
    }
    let uri = parse_uri(text).map_err(|e| format!("{shown:?} is not a SIP URI: {e}"))?;
    if !matches!(uri.scheme, Scheme::Sip | Scheme::Sips) {
        return Err(format!("{shown:?} is not a sip: or sips: URI"));
    }
    if uri.host.is_empty() {
        return Err(format!("{shown:?} has no host"));
    }
    if uri.headers.is_some() {
        return Err(format!(
            "{shown:?} has URI headers (?…), which are not allowed"
        ));
    }
    if uri.password.is_some() {
        return Err(format!("{shown:?} has a password, which is not allowed"));
    }
    Ok(text.to_string())
}

/// `from`: an E.164 number (normalised) or a SIP user part of safe characters
/// (RFC 3261 unreserved and `+`), e.g. `anonymous`.
pub(crate) fn caller_id(text: &str) -> Result<String, String> {
    if let Some(number) = E164::parse(text) {
        return Ok(number.to_string());
    }
    let shown = shorten(text);
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()+".contains(c);
    if text.is_empty() || text.len() > MAX_CALLER_ID || !text.chars().all(safe) {
        return Err(format!(
            "{shown:?} is neither an E.164 number nor a user name of 1 to {MAX_CALLER_ID} \
             letters, digits and -_.!~*'()+"
        ));
    }
    Ok(text.to_string())
}

/// `http://` or `https://` with a host.
pub(crate) fn http_url(text: &str) -> Result<String, String> {
    url(text, &["http://", "https://"])
}

/// The agent of `websocket_url`: `ws://`/`wss://`, or the built-in `builtin:echo` (with the
/// config's `?answer_delay_ms=N` option).
pub(crate) fn agent_url(text: &str) -> Result<String, String> {
    if let Some(rest) = text.strip_prefix("builtin:") {
        let ok = match rest.split_once('?') {
            None => rest == "echo",
            Some((name, opt)) => {
                name == "echo"
                    && opt
                        .strip_prefix("answer_delay_ms=")
                        .is_some_and(|ms| ms.parse::<u32>().is_ok())
            }
        };
        return match ok {
            true => Ok(text.to_string()),
            false => Err(format!(
                "{:?} is not a built-in agent (known: builtin:echo)",
                shorten(text)
            )),
        };
    }
    url(text, &["ws://", "wss://"])
}

fn url(text: &str, schemes: &[&str]) -> Result<String, String> {
    let shown = shorten(text);
    let Some(rest) = schemes
        .iter()
        .find(|s| has_scheme(text, s))
        .and_then(|s| text.get(s.len()..))
    else {
        return Err(format!(
            "{shown:?} is not a URL starting with {}",
            schemes.join(" or ")
        ));
    };
    if text.len() > MAX_URL {
        return Err(format!("{shown:?} is longer than {MAX_URL} characters"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{shown:?} contains whitespace or control characters"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 reference: `[::1]` or `[::1]:8080`.
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => (
                addr,
                rest.strip_prefix(':')
                    .or(Some(rest).filter(|r| !r.is_empty())),
            ),
            None => return Err(format!("{shown:?} has an unterminated IPv6 address")),
        },
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!("{shown:?} has an invalid port"));
    }
    if host.is_empty() {
        return Err(format!("{shown:?} has no host"));
    }
    Ok(text.to_string())
}

/// The `Idempotency-Key` header: absent, or one value of 1 to [`MAX_KEY`] visible ASCII
/// characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, String> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("given more than once".into());
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(format!(
            "must be 1 to {MAX_KEY} visible ASCII characters (no spaces)"
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

fn has_scheme(text: &str, scheme: &str) -> bool {
    text.get(..scheme.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
}

/// At most 80 characters of a rejected value, for error messages.
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", text.get(..i).unwrap_or_default()),
        None => text.to_string(),
    }
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
