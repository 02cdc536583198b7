//! URIs (RFC 3261 §19.1, §25.1 SIP-URI/SIPS-URI/absoluteURI; RFC 3966 tel:): zero-copy
//! split into scheme, userinfo, host (IPv6 references keep `[..]`), port, `;params` and
//! `?headers`. `%HH` escapes stay as written in the spans; [`unescape`] decodes on demand.
//! Unknown schemes are accepted as opaque text (RFC 4475 §3.3.2: the endpoint answers 416).
//! Must not: allocate while parsing, resolve hosts, or compare URIs.

use std::borrow::Cow;

use super::class::{find_class, HOST, URI_STOP};
use super::params::Params;

/// Why a URI, name-addr or Via value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("empty value")]
    Empty,
    #[error("missing or invalid URI scheme")]
    BadScheme,
    #[error("whitespace or delimiter inside a URI")]
    BadChar,
    #[error("invalid host")]
    BadHost,
    #[error("invalid port")]
    BadPort,
    #[error("empty telephone number")]
    BadNumber,
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("missing '>'")]
    MissingRAquot,
    #[error("unexpected text after the address")]
    TrailingGarbage,
    #[error("invalid sent-protocol")]
    BadProtocol,
    #[error("invalid parameter")]
    BadParam,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Any other scheme; its text is in [`Uri::scheme_str`].
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: Scheme,
    /// The scheme as written (without the colon).
    pub scheme_str: &'a str,
    /// SIP/SIPS user part; for `tel:` the number (global or local, with visual separators).
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    /// Empty for `tel:` and for other schemes.
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Params<'a>,
    /// The text after `?`, undecoded.
    pub headers: Option<&'a str>,
    /// The whole URI as given.
    pub raw: &'a str,
}

/// Parses a URI with no surrounding whitespace or angle brackets.
pub fn parse_uri(s: &str) -> Result<Uri<'_>, UriError> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err(UriError::Empty);
    }
    let colon = scheme_end(bytes).ok_or(UriError::BadScheme)?;
    let scheme_str = s.get(..colon).ok_or(UriError::BadScheme)?;
    let rest = s.get(colon + 1..).unwrap_or("");
    // One pass: reject blanks and delimiters, remember the first '@'.
    let mut at = None;
    let mut from = 0;
    while let Some(i) = find_class(rest.as_bytes(), from, &URI_STOP) {
        if rest.as_bytes().get(i) != Some(&b'@') {
            return Err(UriError::BadChar);
        }
        at = at.or(Some(i));
        from = i + 1;
    }
    let scheme = match scheme_str.len() {
        3 if scheme_str.eq_ignore_ascii_case("sip") => Scheme::Sip,
        4 if scheme_str.eq_ignore_ascii_case("sips") => Scheme::Sips,
        3 if scheme_str.eq_ignore_ascii_case("tel") => Scheme::Tel,
        _ => Scheme::Other,
    };
    let mut uri = Uri {
        scheme,
        scheme_str,
        user: None,
        password: None,
        host: "",
        port: None,
        params: Params::default(),
        headers: None,
        raw: s,
    };
    match scheme {
        Scheme::Sip | Scheme::Sips => sip_parts(rest, at, &mut uri)?,
        Scheme::Tel => {
            let (number, params) = split_at_byte(rest, |b| b == b';');
            if number.is_empty() {
                return Err(UriError::BadNumber);
            }
            uri.user = Some(number);
            uri.params = Params::new(params);
        }
        Scheme::Other if rest.is_empty() => return Err(UriError::Empty),
        Scheme::Other => {}
    }
    Ok(uri)
}

/// Index of the ':' ending a valid scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn scheme_end(b: &[u8]) -> Option<usize> {
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    for (i, &c) in b.iter().enumerate() {
        if c == b':' {
            return Some(i);
        }
        if !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')) {
            return None;
        }
    }
    None
}

/// Splits before the first byte matching `stop` (ASCII), or returns `(s, "")`.
fn split_at_byte(s: &str, stop: impl Fn(u8) -> bool) -> (&str, &str) {
    match s.as_bytes().iter().position(|&b| stop(b)) {
        Some(i) => (s.get(..i).unwrap_or(""), s.get(i..).unwrap_or("")),
        None => (s, ""),
    }
}

/// `at`: position of the first '@' in `rest`. It can only appear (unescaped) between
/// userinfo and host, so it splits them; the user part itself may hold ';', '?' and ':'
/// (RFC 4475 §3.1.1.2, §3.1.1.9).
fn sip_parts<'a>(rest: &'a str, at: Option<usize>, uri: &mut Uri<'a>) -> Result<(), UriError> {
    let hostpart = match at {
        Some(at) => {
            let userinfo = rest.get(..at).unwrap_or("");
            let (user, password) = split_at_byte(userinfo, |b| b == b':');
            uri.user = Some(user);
            uri.password = password.get(1..);
            rest.get(at + 1..).unwrap_or("")
        }
        None => rest,
    };
    let (hostport, after) = split_at_byte(hostpart, |b| b == b';' || b == b'?');
    let (host, port) = split_hostport(hostport)?;
    uri.host = host;
    uri.port = port;
    let (params, headers) = split_at_byte(after, |b| b == b'?');
    uri.params = Params::new(params);
    uri.headers = headers.get(1..);
    Ok(())
}

/// Splits `host[:port]` (host may be an IPv6 reference) and validates both.
pub(crate) fn split_hostport(s: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let (host, rest) = split_at_byte(s, |b| b == b']');
        let host = s
            .get(..host.len() + 1)
            .filter(|_| !rest.is_empty())
            .ok_or(UriError::BadHost)?;
        let rest = rest.get(1..).unwrap_or("");
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(UriError::BadHost),
        };
        (host, port)
    } else {
        let (h, p) = split_at_byte(s, |b| b == b':');
        (h, p.get(1..))
    };
    if !valid_host(host) {
        return Err(UriError::BadHost);
    }
    let port = match port {
        Some(p) => Some(parse_port(p).ok_or(UriError::BadPort)?),
        None => None,
    };
    Ok((host, port))
}

pub(crate) fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 {
        return None;
    }
    let n = p.bytes().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })?;
    u16::try_from(n).ok()
}

/// Hostname, IPv4 address or bracketed IPv6 reference. Underscores are tolerated because
/// real deployments use them in host names.
pub(crate) fn valid_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return false;
        };
        return inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !h.is_empty() && h.bytes().all(|b| HOST[usize::from(b)])
}

/// Decodes `%HH` escapes; malformed escapes are kept literally, invalid UTF-8 is replaced.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                // Two hex digits fit in a byte.
                out.push(((hi << 4) | lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = parse_uri("sip:alice:pw@[2001:db8::1]:5070;transport=tcp;lr?Subject=hi")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("pw"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params.get("transport"), Some(Some("tcp")));
        assert_eq!(u.params.get("lr"), Some(None));
        assert_eq!(u.headers, Some("Subject=hi"));
    }

    #[test]
    fn host_only_and_sips() {
        let u = parse_uri("SIPS:example.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!((u.user, u.host, u.port), (None, "example.com", None));
        let u = parse_uri("sip:[::1]").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.host, "[::1]");
    }

    #[test]
    fn user_part_with_semicolons_and_escapes() {
        let u =
            parse_uri("sip:user;par=u%40example.net@example.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        assert_eq!(
            unescape(u.user.unwrap_or_default()),
            "user;par=u@example.net"
        );
        assert_eq!(unescape("null-%00-null"), "null-\0-null");
        assert_eq!(unescape("100%"), "100%");
        assert_eq!(unescape("%zz%4"), "%zz%4");
        assert_eq!(unescape("%ff"), "\u{fffd}");
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user, Some("+1-201-555-0123"));
        assert_eq!(u.host, "");
        assert_eq!(u.params.get("phone-context"), Some(Some("example.com")));
        assert_eq!(parse_uri("tel:"), Err(UriError::BadNumber));
        let u = parse_uri("soap.beep://192.0.2.103:3002").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((u.scheme, u.scheme_str), (Scheme::Other, "soap.beep"));
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "",
            "<sip:a@b>",
            "sip:a@b; lr",
            "sip:",
            "sip:a@",
            "sip:host:99999",
            "sip:host:",
            "sip:[::1",
            "sip:[::1]x",
            "sip:ho st",
            "1sip:x",
            "nocolon",
            "x:",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
    }
}
