//! `;name=value` parameter lists (RFC 3261 §19.1.1 uri-parameters, §20 generic-param) and the
//! comma splitting of list-valued headers (RFC 3261 §7.3.1), both zero-copy over `&str`.
//! Splitting respects quoted strings (with `\` escapes) and, for lists, `<...>`.
//! Must not: allocate, unescape `%HH`, or interpret parameter semantics.

use super::header::is_token_byte;

/// A raw parameter list such as `;a=b;c`, kept as written. Names compare case-insensitively;
/// names and values come back trimmed of LWS; a quoted value is returned with its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    pub fn new(raw: &'a str) -> Self {
        Params { raw }
    }

    /// The text as written, including the leading `;` when there is one.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// `None`: absent; `Some(None)`: present without a value; `Some(Some(v))`: `name=v`.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `(name, value)` pairs in order; empty elements (`;;`) are skipped.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let body = self.raw.trim_start();
        let body = body.strip_prefix(';').unwrap_or(body);
        Split::new(body, b';', false).filter_map(|piece| {
            let piece = trim_lws(piece);
            if piece.is_empty() {
                return None;
            }
            Some(match piece.split_once('=') {
                Some((n, v)) => (trim_lws(n), Some(trim_lws(v))),
                None => (piece, None),
            })
        })
    }

    /// Strict generic-param check used for Via (RFC 3261 §20.42): every element is
    /// `token [ EQUAL ( token / host / quoted-string ) ]`; an empty element is an error.
    pub(crate) fn is_strictly_valid(&self) -> bool {
        let body = trim_lws(self.raw);
        let Some(body) = body.strip_prefix(';') else {
            return body.is_empty();
        };
        Split::new(body, b';', false).all(|piece| {
            let piece = trim_lws(piece);
            let (name, value) = match piece.split_once('=') {
                Some((n, v)) => (trim_lws(n), Some(trim_lws(v))),
                None => (piece, None),
            };
            !name.is_empty() && name.bytes().all(is_token_byte) && value.is_none_or(valid_value)
        })
    }
}

fn valid_value(v: &str) -> bool {
    if v.starts_with('"') {
        return quoted_len(v.as_bytes()) == Some(v.len());
    }
    !v.is_empty()
        && v.bytes()
            .all(|b| is_token_byte(b) || matches!(b, b':' | b'[' | b']'))
}

/// Length of the quoted string at the start of `s` (including both quotes), if terminated.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while let Some(&b) = s.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Trims SP, HT and stray CR (line folding leaves only SP/HT behind).
#[inline]
pub(crate) fn trim_lws(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t' || c == '\r')
}

/// Splits `s` on `sep` outside quoted strings (and outside `<...>` when `angle` is set).
/// Yields every piece untrimmed, empty ones included, so callers can be strict or liberal.
pub(crate) struct Split<'a> {
    rest: Option<&'a str>,
    sep: u8,
    angle: bool,
}

impl<'a> Split<'a> {
    pub(crate) fn new(s: &'a str, sep: u8, angle: bool) -> Self {
        Split {
            rest: Some(s),
            sep,
            angle,
        }
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let bytes = s.as_bytes();
        let mut in_quote = false;
        let mut in_angle = false;
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if in_quote {
                match b {
                    b'\\' => i += 1,
                    b'"' => in_quote = false,
                    _ => {}
                }
            } else if b == b'"' {
                in_quote = true;
            } else if self.angle && b == b'<' {
                in_angle = true;
            } else if in_angle && b == b'>' {
                in_angle = false;
            } else if b == self.sep && !in_angle {
                // Separators are ASCII, so both slices fall on char boundaries.
                self.rest = s.get(i + 1..);
                return s.get(..i);
            }
            i += 1;
        }
        self.rest = None;
        Some(s)
    }
}

/// Comma-separated elements of a list header value, trimmed, empty ones included.
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    Split::new(s, b',', true).map(trim_lws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_is_case_insensitive_and_trims() {
        let p = Params::new(";  Branch  =  z9hG4bK1 ; rport;q=0.5;x=\"a;b\"");
        assert_eq!(p.get("branch"), Some(Some("z9hG4bK1")));
        assert_eq!(p.get("RPORT"), Some(None));
        assert_eq!(p.get("x"), Some(Some("\"a;b\"")));
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.iter().count(), 4);
        assert!(p.is_strictly_valid());
    }

    #[test]
    fn strict_rejects_empty_elements() {
        assert!(!Params::new(";;").is_strictly_valid());
        assert!(!Params::new(";a;").is_strictly_valid());
        assert!(!Params::new(";a=").is_strictly_valid());
        assert!(!Params::new(";=b").is_strictly_valid());
        assert!(!Params::new(";a=\"open").is_strictly_valid());
        assert!(Params::new("").is_strictly_valid());
        assert!(Params::new(";received=2001:db8::1").is_strictly_valid());
        assert!(!Params::new("junk").is_strictly_valid());
    }

    #[test]
    fn list_split_respects_quotes_and_angles() {
        let v: Vec<_> =
            split_list("\"a, b\" <sip:x@y;p=1,2>;q=1 , <sip:z@w>,, \"\\\",\"").collect();
        assert_eq!(
            v,
            ["\"a, b\" <sip:x@y;p=1,2>;q=1", "<sip:z@w>", "", "\"\\\",\""]
        );
        assert_eq!(split_list("").collect::<Vec<_>>(), [""]);
    }
}
