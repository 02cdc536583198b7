//! Phone numbers, one rule for all of trunkgate: the E.164 normaliser (routing, admission, config
//! validation, webhook and agent metadata all use it) and the `"DID|CRT"` From display-name
//! convention of PBXs such as Ameyo (PROTOCOLS.md §1).
//!
//! # The E.164 rule ([`E164::parse`], [`normalise_e164`])
//!
//! 1. A telephone-subscriber's `;params` are cut (`+4812;phone-context=x` → `+4812`,
//!    RFC 3966 §3), surrounding whitespace trimmed.
//! 2. Visual separators are dropped wherever they are: space, `-`, `.`, `(`, `)` (RFC 3966
//!    §5.1.1) and `/`.
//! 3. What is left is `+` then digits, `00` then digits (`00` → `+`), or bare digits (which get
//!    a `+`: carriers and PBXs often send `48123…` for `+48123…`).
//! 4. 1 to 15 digits (ITU-T E.164 §6.1); anything else (letters, a second `+`, non-ASCII
//!    digits, nothing) is not a number: `None`.
//!
//! Where the five former copies disagreed, this is the choice and why:
//! * bare digits get `+` (routing's rule, which admission and routing already applied in
//!   practice): policy's "bare digits are absent" made admission and routing see different
//!   numbers for the same INVITE; the `DID|CRT` parsers kept bare digits bare, so the webhook's
//!   `did` differed from the DID the call was routed by;
//! * 15 digits at most (not the webhook parser's 3 to 20): E.164's own limit, and what config
//!   validation always required;
//! * config validation uses the same rule (it used to refuse separators and bare digits), so a
//!   configured DID or prefix and the number of a call are normalised alike by construction;
//! * `/` and `;params` are handled everywhere (before, only by admission).
//!
//! # `"DID|CRT"` ([`did_crt`])
//!
//! The (already unquoted) display name split at the first `|`: a DID, normalised by the rule
//! above, and a correlation id, e.g. `"00919990152080|d444-69139d35-vce-daf-3883"`. Without a
//! `|` the display is an ordinary name and yields neither part (a display name that is just
//! the caller's own number must not become a dialled DID). Absent, empty or unusable parts are
//! `None`: a left side that is not a number gives no DID, a CRT holding control characters is
//! dropped (it reaches logs, JSON and form bodies).
//!
//! Must not: guess national formats, know SIP, config or policy types, allocate in
//! [`E164::parse`] (admission runs it for every INVITE).

use std::fmt;
use std::str::FromStr;

/// Most digits an E.164 number has (ITU-T E.164 §6.1).
pub const MAX_DIGITS: usize = 15;

/// A normalised E.164 number, `+` and 1 to 15 digits, on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct E164 {
    len: u8,
    buf: [u8; MAX_DIGITS + 1],
}

impl E164 {
    /// The number `raw` denotes by the rule of this module, or `None`.
    pub fn parse(raw: &str) -> Option<E164> {
        let text = raw.split(';').next().unwrap_or("").trim();
        // The significant characters: an optional leading '+', then digits. Room for "00" and
        // one digit too many is enough to tell every case apart.
        let mut plus = false;
        let mut digits = [0u8; MAX_DIGITS + 2];
        let mut n = 0usize;
        for b in text.bytes() {
            match b {
                b' ' | b'-' | b'.' | b'(' | b')' | b'/' => {}
                b'+' if !plus && n == 0 => plus = true,
                b'0'..=b'9' => {
                    *digits.get_mut(n)? = b;
                    n += 1;
                }
                _ => return None,
            }
        }
        let digits = digits.get(..n)?;
        let digits = match digits {
            [b'0', b'0', rest @ ..] if !plus => rest,
            all => all,
        };
        if digits.is_empty() || digits.len() > MAX_DIGITS {
            return None;
        }
        let mut out = E164 {
            len: 1,
            buf: [0; MAX_DIGITS + 1],
        };
        out.buf[0] = b'+';
        out.buf.get_mut(1..=digits.len())?.copy_from_slice(digits);
        out.len = u8::try_from(digits.len() + 1).ok()?;
        Some(out)
    }

    /// `+` and the digits.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        // Only ASCII '+' and digits are ever written.
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not a phone number by the rule of this module (for config validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not E.164: write 1 to 15 digits, optionally after \"+\" or \"00\" \
     (separators \" -.()/\" are allowed)"
)]
pub struct NotE164(pub String);

impl FromStr for E164 {
    type Err = NotE164;

    fn from_str(text: &str) -> Result<E164, NotE164> {
        E164::parse(text).ok_or_else(|| NotE164(text.to_owned()))
    }
}

/// `"0048 12-345"` → `Some("+4812345")`; `None` for anything that is not a phone number.
pub fn normalise_e164(raw: &str) -> Option<String> {
    E164::parse(raw).map(|n| n.as_str().to_owned())
}

/// The parts of a `"DID|CRT"` display name; absent or unusable parts are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DidCrt {
    /// Normalised by [`normalise_e164`].
    pub did: Option<String>,
    pub crt: Option<String>,
}

/// Splits an (already unquoted) From display name at the first `|`; see the module doc.
pub fn did_crt(display: &str) -> DidCrt {
    let Some((left, right)) = display.split_once('|') else {
        return DidCrt::default();
    };
    let crt = right.trim();
    let usable = !crt.is_empty() && !crt.chars().any(char::is_control);
    DidCrt {
        did: normalise_e164(left),
        crt: usable.then(|| crt.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of the five former normalisers, one table, with this module's answers.
    #[test]
    fn e164_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("+48123456789", Some("+48123456789")),
            ("+48 123-456-789", Some("+48123456789")),
            ("0048123456789", Some("+48123456789")),
            ("00919990152080", Some("+919990152080")),
            ("48123456789", Some("+48123456789")),
            ("08035735900", Some("+08035735900")),
            (" +1 (212) 555-0100 ", Some("+12125550100")),
            ("+1 (555) 123-4567", Some("+15551234567")),
            ("+48.12.34", Some("+481234")),
            ("030/1234", Some("+0301234")),
            ("+4812;phone-context=example.com", Some("+4812")),
            ("+1", Some("+1")),
            ("0048", Some("+48")),
            ("+123456789012345", Some("+123456789012345")),
            ("00123456789012345", Some("+123456789012345")),
            ("123456789012345", Some("+123456789012345")),
            ("+1234567890123456", None),
            ("1234567890123456", None),
            ("+123456789012345678901", None),
            ("echo", None),
            ("anonymous", None),
            ("Alice", None),
            ("", None),
            ("+", None),
            ("00", None),
            ("00+91", None),
            ("++48", None),
            ("+48+1", None),
            ("+48a1", None),
            ("12a4", None),
            ("+４８", None),
            ("4\u{0}8", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalise_e164(input).as_deref(), *want, "{input:?}");
            let parsed: Result<E164, NotE164> = input.parse();
            assert_eq!(parsed.is_ok(), want.is_some(), "{input:?}");
        }
        assert_eq!(
            "48x".parse::<E164>().map_err(|e| e.to_string()),
            Err(
                "\"48x\" is not E.164: write 1 to 15 digits, optionally after \"+\" or \"00\" \
                 (separators \" -.()/\" are allowed)"
                    .to_string()
            )
        );
        let n = E164::parse("0048 123").map(|n| (n.to_string(), format!("{n:?}")));
        assert_eq!(n, Some(("+48123".into(), "+48123".into())));
    }

    /// The cases of the two former `DID|CRT` parsers, one table.
    #[test]
    fn did_crt_table() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                "00919990152080|d444-69139d35-vce-daf-3883",
                Some("+919990152080"),
                Some("d444-69139d35-vce-daf-3883"),
            ),
            (
                "+919990152080|d444-69139d35-vce-daf-3883",
                Some("+919990152080"),
                Some("d444-69139d35-vce-daf-3883"),
            ),
            ("+48123|x", Some("+48123"), Some("x")),
            (" 08035735900 | abc ", Some("+08035735900"), Some("abc")),
            ("+1 (555) 123-4567|c", Some("+15551234567"), Some("c")),
            ("+919990152080|", Some("+919990152080"), None),
            ("0091999|", Some("+91999"), None),
            ("|crt-1", None, Some("crt-1")),
            ("1|a|b", Some("+1"), Some("a|b")),
            ("Alice|crt", None, Some("crt")),
            ("12a4|crt", None, Some("crt")),
            ("+|crt", None, Some("crt")),
            ("++1|crt", None, Some("crt")),
            ("00|crt", None, Some("crt")),
            ("+48|a\u{7}b", Some("+48"), None),
            ("+48|a\r\nX-Evil: 1", Some("+48"), None),
            ("|", None, None),
            ("", None, None),
            ("Alice", None, None),
            ("John Smith", None, None),
            ("+919990152080", None, None),
            ("08035735900", None, None),
        ];
        for (display, did, crt) in cases {
            let want = DidCrt {
                did: did.map(str::to_owned),
                crt: crt.map(str::to_owned),
            };
            assert_eq!(did_crt(display), want, "{display:?}");
        }
    }
}
