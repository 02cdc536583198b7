//! One Via value (RFC 3261 §20.42, §18.2.1; RFC 3581 rport): `SIP/2.0/UDP host[:port];params`
//! with LWS allowed around `/`, `:`, `;` and `=` (RFC 4475 §3.1.1.1). Strict about structure:
//! an empty parameter (`;;`) is an error (RFC 4475 §3.1.2.1).
//! Must not: split comma lists (the caller does), or check the protocol version.

use super::class::{find, is_token_byte};
use super::params::{trim_lws, Params};
use super::uri::{split_hostport, UriError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// As written (`UDP`, `tcp`, `SCTP`, ...).
    pub transport: &'a str,
    /// IPv6 references keep their brackets.
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }

    /// `Some(None)`: `;rport` without a value (RFC 3581 asks us to fill it in).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// Byte offset of the parameter list within the parsed text (where `;` starts).
    pub(crate) fn params_offset(&self, whole: &'a str) -> usize {
        whole.len() - self.params.raw().len()
    }
}

/// Parses one Via element (no commas).
pub fn parse_via(s: &str) -> Result<Via<'_>, UriError> {
    let s = trim_lws(s);
    let (_name, rest) = token(s).ok_or(UriError::BadProtocol)?;
    let rest = slash(rest)?;
    let (_version, rest) = token(rest).ok_or(UriError::BadProtocol)?;
    let rest = slash(rest)?;
    let (transport, rest) = token(rest).ok_or(UriError::BadProtocol)?;
    // sent-protocol LWS sent-by: at least one blank is required.
    let after = rest.trim_start_matches([' ', '\t']);
    if after.len() == rest.len() {
        return Err(UriError::BadProtocol);
    }
    let (sent_by, params) = match find(after, b';') {
        Some(i) => (after.get(..i).unwrap_or(""), after.get(i..).unwrap_or("")),
        None => (after, ""),
    };
    let (host, port) = sent_by_parts(trim_lws(sent_by))?;
    let params = Params::new(params);
    if !params.is_strictly_valid() {
        return Err(UriError::BadParam);
    }
    Ok(Via {
        transport,
        host,
        port,
        params,
    })
}

/// `host [ SWS ":" SWS port ]`.
fn sent_by_parts(s: &str) -> Result<(&str, Option<u16>), UriError> {
    if s.bytes().any(|b| b == b' ' || b == b'\t') {
        // LWS is only legal around the colon: "host : 5060".
        let (h, p) = match s.rfind(':') {
            Some(i)
                if !s.starts_with('[')
                    || s.get(..i).is_some_and(|h| h.ends_with([']', ' ', '\t'])) =>
            {
                (s.get(..i).unwrap_or(""), s.get(i + 1..).unwrap_or(""))
            }
            _ => return Err(UriError::BadHost),
        };
        let (h, p) = (trim_lws(h), trim_lws(p));
        if h.contains([' ', '\t']) || p.contains([' ', '\t']) {
            return Err(UriError::BadHost);
        }
        let (host, none) = split_hostport(h)?;
        if none.is_some() {
            return Err(UriError::BadHost);
        }
        let port = super::uri::parse_port(p).ok_or(UriError::BadPort)?;
        return Ok((host, Some(port)));
    }
    split_hostport(s)
}

fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.bytes().position(|b| !is_token_byte(b)).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s.get(..end)?, s.get(end..)?))
}

fn slash(s: &str) -> Result<&str, UriError> {
    s.trim_start_matches([' ', '\t'])
        .strip_prefix('/')
        .map(|r| r.trim_start_matches([' ', '\t']))
        .ok_or(UriError::BadProtocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(s: &str) -> Via<'_> {
        parse_via(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn plain_and_spaced() {
        let v = via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport");
        assert_eq!(
            (v.transport, v.host, v.port),
            ("UDP", "192.0.2.1", Some(5060))
        );
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.rport(), Some(None));
        let v = via("SIP  /   2.0   /UDP      192.0.2.2;branch=390skdjuw");
        assert_eq!((v.transport, v.host), ("UDP", "192.0.2.2"));
        let v = via("SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8");
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        let v = via("SIP/2.0/TCP host : 5061 ;received=10.0.0.1;rport=7");
        assert_eq!(
            (v.host, v.port, v.rport()),
            ("host", Some(5061), Some(Some(7)))
        );
        assert_eq!(v.received(), Some("10.0.0.1"));
    }

    #[test]
    fn ipv6() {
        let v = via("SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKx;received=2001:db8::1");
        assert_eq!((v.host, v.port), ("[2001:db8::9]", Some(5070)));
        assert_eq!(v.received(), Some("2001:db8::1"));
        let v = via("SIP/2.0/UDP [::1] : 5070");
        assert_eq!((v.host, v.port), ("[::1]", Some(5070)));
        assert_eq!(via("SIP/2.0/TLS [::1]").port, None);
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            ";",
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP host;",
            "SIP/2.0/UDP host;branch=",
            "SIP/2.0 host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ho st",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP a b:5060",
        ] {
            assert!(parse_via(bad).is_err(), "{bad:?}");
        }
    }
}
