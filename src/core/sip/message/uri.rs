//! URIs (RFC 3261 §19.1, §25.1 SIP-URI/SIPS-URI/absoluteURI; RFC 3966 tel:): zero-copy
//! split into scheme, userinfo, host (IPv6 references keep `[..]`), port, `;params` and
//! `?headers`. `%HH` escapes stay as written in the spans; [`unescape`] decodes on demand.
//! Unknown schemes are accepted as opaque text (RFC 4475 §3.3.2: the endpoint answers 416).
//! Must not: allocate while parsing, resolve hosts, or compare URIs.

use std::borrow::Cow;

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
    if s.is_empty() {
        return Err(UriError::Empty);
    }
    if s.bytes()
        .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"'))
    {
        return Err(UriError::BadChar);
    }
    let (scheme_str, rest) = s.split_once(':').ok_or(UriError::BadScheme)?;
    if !valid_scheme(scheme_str) {
        return Err(UriError::BadScheme);
    }
    let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
        Scheme::Sip
    } else if scheme_str.eq_ignore_ascii_case("sips") {
        Scheme::Sips
    } else if scheme_str.eq_ignore_ascii_case("tel") {
        Scheme::Tel
    } else {
        Scheme::Other
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
        Scheme::Sip | Scheme::Sips => sip_parts(rest, &mut uri)?,
        Scheme::Tel => {
            let (number, params) = match rest.find(';') {
                Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
                None => (rest, ""),
            };
            if number.is_empty() {
                return Err(UriError::BadNumber);
            }
            uri.user = Some(number);
            uri.params = Params::new(params);
        }
        Scheme::Other => {
            if rest.is_empty() {
                return Err(UriError::Empty);
            }
        }
    }
    Ok(uri)
}

fn valid_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn sip_parts<'a>(rest: &'a str, uri: &mut Uri<'a>) -> Result<(), UriError> {
    // '@' may only appear (unescaped) between userinfo and host, so the first one splits them;
    // the user part itself may hold ';', '?' and ':' (RFC 4475 §3.1.1.2, §3.1.1.9).
    let hostpart = match rest.split_once('@') {
        Some((userinfo, hostpart)) => {
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    uri.user = Some(user);
                    uri.password = Some(password);
                }
                None => uri.user = Some(userinfo),
            }
            hostpart
        }
        None => rest,
    };
    let (hostport, after) = match hostpart.find([';', '?']) {
        Some(i) => (
            hostpart.get(..i).unwrap_or(""),
            hostpart.get(i..).unwrap_or(""),
        ),
        None => (hostpart, ""),
    };
    let (host, port) = split_hostport(hostport)?;
    uri.host = host;
    uri.port = port;
    let (params, headers) = match after.split_once('?') {
        Some((p, h)) => (p, Some(h)),
        None => (after, None),
    };
    uri.params = Params::new(params);
    uri.headers = headers;
    Ok(())
}

/// Splits `host[:port]` (host may be an IPv6 reference) and validates both.
pub(crate) fn split_hostport(s: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(UriError::BadHost)?;
        let host = s.get(..=end).ok_or(UriError::BadHost)?;
        let rest = s.get(end + 1..).unwrap_or("");
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(UriError::BadHost),
        };
        (host, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
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
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
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
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
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
