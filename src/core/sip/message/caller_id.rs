//! The `"DID|CRT"` convention of From display names used by PBXs such as Ameyo
//! (PROTOCOLS.md §1): a phone number (normalised from the `00` international prefix to `+`)
//! and a correlation id, e.g. `"00919990152080|d444-69139d35-vce-daf-3883"`.
//! Must not: treat an ordinary display name as a number, or invent empty values.

/// Parts of a `DID|CRT` display name; absent or empty parts are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerId {
    pub did: Option<String>,
    pub crt: Option<String>,
}

/// Splits a (already unquoted) display name at the first `|`. Without a `|` the display is an
/// ordinary name and yields neither part.
pub fn caller_id(display: &str) -> CallerId {
    let Some((left, right)) = display.split_once('|') else {
        return CallerId::default();
    };
    let crt = right.trim();
    CallerId {
        did: phone_number(left.trim()),
        crt: (!crt.is_empty()).then(|| crt.to_owned()),
    }
}

/// Digits with an optional leading `+` or `00` (→ `+`); visual separators (space, `-`,
/// `.`, parentheses) are dropped; anything else (letters included) means not a number.
fn phone_number(s: &str) -> Option<String> {
    let (plus, rest) = match s.strip_prefix('+') {
        Some(r) => (true, r),
        None => match s.strip_prefix("00") {
            Some(r) if r.bytes().any(|b| b.is_ascii_digit()) => (true, r),
            _ => (false, s),
        },
    };
    let mut out = String::with_capacity(s.len() + 1);
    if plus {
        out.push('+');
    }
    for c in rest.chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    out.bytes().any(|b| b.is_ascii_digit()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(did: Option<&str>, crt: Option<&str>) -> CallerId {
        CallerId {
            did: did.map(str::to_owned),
            crt: crt.map(str::to_owned),
        }
    }

    #[test]
    fn ameyo_style() {
        assert_eq!(
            caller_id("00919990152080|d444-69139d35-vce-daf-3883"),
            cid(Some("+919990152080"), Some("d444-69139d35-vce-daf-3883"))
        );
        assert_eq!(caller_id("+48123|x"), cid(Some("+48123"), Some("x")));
        assert_eq!(
            caller_id(" 08035735900 | abc "),
            cid(Some("08035735900"), Some("abc"))
        );
        assert_eq!(
            caller_id("+1 (555) 123-4567|c"),
            cid(Some("+15551234567"), Some("c"))
        );
    }

    #[test]
    fn ordinary_and_partial() {
        assert_eq!(caller_id("Alice"), cid(None, None));
        assert_eq!(caller_id("+919990152080"), cid(None, None));
        assert_eq!(caller_id(""), cid(None, None));
        assert_eq!(caller_id("|"), cid(None, None));
        assert_eq!(caller_id("|crt-1"), cid(None, Some("crt-1")));
        assert_eq!(caller_id("0091999|"), cid(Some("+91999"), None));
        assert_eq!(caller_id("Alice|crt"), cid(None, Some("crt")));
        assert_eq!(caller_id("12a4|crt"), cid(None, Some("crt")));
        assert_eq!(caller_id("+|crt"), cid(None, Some("crt")));
        assert_eq!(caller_id("++1|crt"), cid(None, Some("crt")));
        assert_eq!(caller_id("00|crt"), cid(Some("00"), Some("crt")));
        assert_eq!(caller_id("1|a|b"), cid(Some("1"), Some("a|b")));
    }
}
