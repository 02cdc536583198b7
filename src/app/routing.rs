//! Which agent answers a call: the `[[number]]` whose DID matches the dialled number
//! (Request-URI user, then To user, then the DID of a `"DID|CRT"` display name, E.164
//! normalised), else a catch-all `did = "*"`.

use crate::config::{Config, DidPattern, NumberConfig};
use crate::core::sip::endpoint::IncomingCall;

/// Normalises a dialled number to E.164: visual separators dropped, `00` becomes `+`, bare
/// digits get a `+`. Anything else (an extension with letters, an empty string) is `None`.
pub fn normalize_e164(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = if let Some(rest) = cleaned.strip_prefix('+') {
        rest
    } else if let Some(rest) = cleaned.strip_prefix("00") {
        rest
    } else {
        cleaned.as_str()
    };
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("+{digits}"))
}

/// The caller's number as E.164: the From user, else the DID of a `"DID|CRT"` display name.
pub fn caller_number(call: &IncomingCall) -> Option<String> {
    call.from_user
        .as_deref()
        .and_then(normalize_e164)
        .or_else(|| call.did.clone())
}

/// The dialled DID, as routing and admission both see it: the first candidate (Request-URI
/// user, To user, display-name DID; `;params` cut, E.164-normalised) that has its own
/// `[[number]]`, else the first that is a number at all.
pub fn dialled_did(config: &Config, call: &IncomingCall) -> Option<String> {
    let candidates = [
        call.request_user.as_deref(),
        call.to_user.as_deref(),
        call.did.as_deref(),
    ];
    let numbers: Vec<String> = candidates
        .into_iter()
        .flatten()
        .filter_map(|raw| normalize_e164(raw.split(';').next().unwrap_or(raw)))
        .collect();
    numbers
        .iter()
        .find(|e164| {
            config
                .numbers
                .iter()
                .any(|n| matches!(&n.did, DidPattern::Exact(d) if d == *e164))
        })
        .or(numbers.first())
        .cloned()
}

/// The `[[number]]` for a call: exact DID match, else the catch-all `did = "*"`.
pub fn find_number<'a>(config: &'a Config, call: &IncomingCall) -> Option<&'a NumberConfig> {
    let did = dialled_did(config, call);
    config
        .numbers
        .iter()
        .find(|n| matches!((&n.did, &did), (DidPattern::Exact(d), Some(x)) if d == x))
        .or_else(|| {
            config
                .numbers
                .iter()
                .find(|n| matches!(n.did, DidPattern::Any))
        })
}

#[cfg(test)]
mod tests {
    use super::normalize_e164;

    #[test]
    fn e164_normalisation() {
        assert_eq!(
            normalize_e164("+48 123-456-789").as_deref(),
            Some("+48123456789")
        );
        assert_eq!(
            normalize_e164("0048123456789").as_deref(),
            Some("+48123456789")
        );
        assert_eq!(
            normalize_e164("48123456789").as_deref(),
            Some("+48123456789")
        );
        assert_eq!(normalize_e164("echo"), None);
        assert_eq!(normalize_e164("+"), None);
        assert_eq!(normalize_e164("+1234567890123456"), None);
    }
}
