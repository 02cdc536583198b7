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

pub fn find_number<'a>(config: &'a Config, call: &IncomingCall) -> Option<&'a NumberConfig> {
    let candidates = [
        call.request_user.as_deref(),
        call.to_user.as_deref(),
        call.did.as_deref(),
    ];
    for raw in candidates.into_iter().flatten() {
        // The user part may carry ;params (RFC 4475 semiuri) or %-escapes; match the number.
        let user = raw.split(';').next().unwrap_or(raw);
        if let Some(e164) = normalize_e164(user) {
            if let Some(n) = config
                .numbers
                .iter()
                .find(|n| matches!(&n.did, DidPattern::Exact(d) if *d == e164))
            {
                return Some(n);
            }
        }
    }
    config
        .numbers
        .iter()
        .find(|n| matches!(n.did, DidPattern::Any))
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
