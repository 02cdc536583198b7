//! `;name=value` parameter lists (RFC 3261 §19.1.1 uri-parameters, §20 generic-param) and the
//! comma splitting of list-valued headers (RFC 3261 §7.3.1), both zero-copy over `&str`.
//! Splitting respects quoted strings (with `\` escapes) and, for lists, `<...>`.
//! Must not: allocate, unescape `%HH`, or interpret parameter semantics.

use super::class::{find, find_class, find_either, is_token_byte, LIST_STOP, PARAM_STOP};

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
        Split::params(body).filter_map(|piece| {
            let piece = trim_lws(piece);
            if piece.is_empty() {
                return None;
            }
            Some(match find(piece, b'=') {
                Some(eq) => (
                    trim_lws(piece.get(..eq).unwrap_or("")),
                    Some(trim_lws(piece.get(eq + 1..).unwrap_or(""))),
                ),
                None => (piece, None),
            })
        })
    }

    /// Strict generic-param check used for Via (RFC 3261 §20.42): every element is
    /// `token [ EQUAL ( token / host / quoted-string ) ]`; an empty element is an error.
    pub(crate) fn is_strictly_valid(&self) -> bool {
        let b = trim_lws(self.raw).as_bytes();
        let lws = |i: &mut usize| {
            while matches!(b.get(*i), Some(b' ' | b'\t' | b'\r')) {
                *i += 1;
            }
        };
        match b.first() {
            None => return true,
            Some(b';') => {}
            Some(_) => return false,
        }
        let mut i = 1;
        loop {
            lws(&mut i);
            let name = i;
            while b.get(i).is_some_and(|&c| is_token_byte(c)) {
                i += 1;
            }
            if i == name {
                return false;
            }
            lws(&mut i);
            if b.get(i) == Some(&b'=') {
                i += 1;
                lws(&mut i);
                if b.get(i) == Some(&b'"') {
                    match b.get(i..).and_then(quoted_len) {
                        Some(n) => i += n,
                        None => return false,
                    }
                } else {
                    let value = i;
                    while b
                        .get(i)
                        .is_some_and(|&c| is_token_byte(c) || matches!(c, b':' | b'[' | b']'))
                    {
                        i += 1;
                    }
                    if i == value {
                        return false;
                    }
                }
                lws(&mut i);
            }
            match b.get(i) {
                None => return true,
                Some(b';') => i += 1,
                Some(_) => return false,
            }
        }
    }
}

/// Length of the quoted string at the start of `s` (including both quotes), if terminated.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    loop {
        let at = find_either(s, i, b'"', b'\\')?;
        match s.get(at) {
            Some(b'"') => return Some(at + 1),
            _ => i = at + 2,
        }
    }
}

/// Trims SP, HT and stray CR (line folding leaves only SP/HT behind).
#[inline]
pub(crate) fn trim_lws(s: &str) -> &str {
    let lws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let b = s.as_bytes();
    let Some(start) = b.iter().position(|c| !lws(c)) else {
        return "";
    };
    let end = b.iter().rposition(|c| !lws(c)).map_or(start, |e| e + 1);
    // Both ends sit next to ASCII bytes, so they are char boundaries.
    s.get(start..end).unwrap_or("")
}

/// Splits on `;` outside quoted strings, or on `,` outside quoted strings and `<...>`.
/// Yields every piece untrimmed, empty ones included, so callers can be strict or liberal.
pub(crate) struct Split<'a> {
    rest: Option<&'a str>,
    stop: &'static [bool; 256],
}

impl<'a> Split<'a> {
    /// Parameter pieces (`;`).
    pub(crate) fn params(s: &'a str) -> Self {
        Split {
            rest: Some(s),
            stop: &PARAM_STOP,
        }
    }

    /// List elements (`,`).
    pub(crate) fn list(s: &'a str) -> Self {
        Split {
            rest: Some(s),
            stop: &LIST_STOP,
        }
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let bytes = s.as_bytes();
        let mut i = 0;
        while let Some(at) = find_class(bytes, i, self.stop) {
            match bytes.get(at) {
                Some(b'"') => match bytes.get(at..).and_then(quoted_len) {
                    Some(n) => i = at + n,
                    None => break,
                },
                Some(b'<') => match bytes
                    .get(at..)
                    .and_then(|r| r.iter().position(|&b| b == b'>'))
                {
                    Some(n) => i = at + n + 1,
                    None => break,
                },
                _ => {
                    // Separators are ASCII, so both slices fall on char boundaries.
                    self.rest = s.get(at + 1..);
                    return s.get(..at);
                }
            }
        }
        self.rest = None;
        Some(s)
    }
}

/// Comma-separated elements of a list header value, trimmed, empty ones included.
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    Split::list(s).map(trim_lws)
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
