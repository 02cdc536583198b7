//! SDP text → `SessionDescription` (RFC 8866 §5, §9 grammar, audio subset).
//!
//! Owns: line splitting (CRLF or bare LF), per-line syntax, attribute classification.
//! Tolerant: blank lines, trailing whitespace, unknown line types and attributes, line order
//! within a section, session lines repeated inside media sections (ignored).
//! Strict: `v=0` first, `o=`/`c=`/`m=` syntax, ports, RTP payload types 0..=127, `rtpmap`/`fmtp`
//! syntax in RTP media. Must not panic or index unchecked on any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    is_rtp_proto, Connection, Direction, MediaDescription, Origin, RtpMap, SdpError,
    SessionDescription,
};

/// Parses an SDP body.
pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.is_empty());
    match lines.next() {
        None => return Err(SdpError::Empty),
        Some((_, "v=0")) => {}
        Some((line, _)) => return Err(SdpError::NoVersion { line }),
    }
    let mut b = Builder::default();
    for (line, content) in lines {
        let (kind, value) = match content.as_bytes() {
            [k, b'=', ..] if k.is_ascii_lowercase() => (*k, content.get(2..).unwrap_or("")),
            _ => return Err(SdpError::MalformedLine { line }),
        };
        b.line(line, kind, value)?;
    }
    b.finish()
}

#[derive(Default)]
struct Builder {
    origin: Option<Origin>,
    session_name: Option<String>,
    connection: Option<Connection>,
    bandwidths: Vec<String>,
    timing: Option<(u64, u64)>,
    direction: Option<Direction>,
    attributes: Vec<(String, Option<String>)>,
    /// Parsed media, each with the direction it declared itself (resolved in `finish`).
    media: Vec<(MediaDescription, Option<Direction>)>,
}

impl Builder {
    fn line(&mut self, line: usize, kind: u8, value: &str) -> Result<(), SdpError> {
        if kind == b'm' {
            self.media.push((media_line(line, value)?, None));
            return Ok(());
        }
        if let Some((m, dir)) = self.media.last_mut() {
            return media_level(m, dir, line, kind, value);
        }
        match kind {
            b'o' if self.origin.is_none() => self.origin = Some(origin(line, value)?),
            b's' if self.session_name.is_none() => self.session_name = Some(value.to_owned()),
            b'c' => {
                self.connection = Some(connection(value).ok_or(SdpError::BadConnection { line })?)
            }
            b'b' => self.bandwidths.push(value.to_owned()),
            b't' if self.timing.is_none() => self.timing = Some(timing(value)),
            b'a' => {
                if let Some((name, val)) = attribute(value) {
                    match Direction::from_attribute(name) {
                        Some(d) => self.direction = Some(d),
                        None => self
                            .attributes
                            .push((name.to_owned(), val.map(str::to_owned))),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<SessionDescription, SdpError> {
        let session_dir = self.direction;
        Ok(SessionDescription {
            origin: self.origin.ok_or(SdpError::MissingOrigin)?,
            session_name: self
                .session_name
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "-".to_owned()),
            connection: self.connection,
            bandwidths: self.bandwidths,
            timing: self.timing.unwrap_or((0, 0)),
            direction: session_dir,
            attributes: self.attributes,
            media: self
                .media
                .into_iter()
                .map(|(mut m, dir)| {
                    m.direction = dir.or(session_dir).unwrap_or_default();
                    m
                })
                .collect(),
        })
    }
}

fn media_level(
    m: &mut MediaDescription,
    dir: &mut Option<Direction>,
    line: usize,
    kind: u8,
    value: &str,
) -> Result<(), SdpError> {
    match kind {
        b'c' => m.connection = Some(connection(value).ok_or(SdpError::BadConnection { line })?),
        b'b' => m.bandwidths.push(value.to_owned()),
        b'a' => {
            if let Some((name, val)) = attribute(value) {
                media_attribute(m, dir, line, name, val)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn media_attribute(
    m: &mut MediaDescription,
    dir: &mut Option<Direction>,
    line: usize,
    name: &str,
    val: Option<&str>,
) -> Result<(), SdpError> {
    let rtp = m.is_rtp();
    let lower = name.to_ascii_lowercase();
    match (lower.as_str(), val) {
        ("rtpmap", Some(v)) if rtp => m.rtpmaps.push(rtpmap(v).ok_or(SdpError::BadAttribute {
            line,
            name: "rtpmap",
        })?),
        ("fmtp", Some(v)) if rtp => m
            .fmtps
            .push(fmtp(v).ok_or(SdpError::BadAttribute { line, name: "fmtp" })?),
        ("ptime", Some(v)) if number::<u32>(v).is_some() => m.ptime = number(v),
        ("maxptime", Some(v)) if number::<u32>(v).is_some() => m.maxptime = number(v),
        ("crypto", Some(v)) => m.crypto.push(v.to_owned()),
        _ => match Direction::from_attribute(name) {
            Some(d) => *dir = Some(d),
            None => m
                .other_attributes
                .push((name.to_owned(), val.map(str::to_owned))),
        },
    }
    Ok(())
}

/// `a=<name>[:<value>]`; an empty name makes the line meaningless, so it is skipped.
fn attribute(value: &str) -> Option<(&str, Option<&str>)> {
    let (name, val) = match value.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (value, None),
    };
    (!name.is_empty()).then_some((name, val))
}

/// A string of ASCII digits only (no sign, no spaces), as SDP numbers are.
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An RTP payload type: a number in 0..=127.
pub(super) fn payload_type(s: &str) -> Option<u8> {
    number::<u8>(s).filter(|pt| *pt <= 127)
}

/// `<nettype> <addrtype> <address>` as in `c=` and the tail of `o=`.
fn connection(value: &str) -> Option<Connection> {
    let mut it = value.split_ascii_whitespace();
    let (Some(net), Some(kind), Some(addr), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    address(net, kind, addr)
}

fn address(net: &str, kind: &str, addr: &str) -> Option<Connection> {
    if !net.eq_ignore_ascii_case("IN") {
        return None;
    }
    let host = addr.split('/').next().filter(|h| !h.is_empty())?;
    let ipv6 = if kind.eq_ignore_ascii_case("IP4") {
        false
    } else if kind.eq_ignore_ascii_case("IP6") {
        true
    } else {
        return None;
    };
    let literal = if ipv6 {
        host.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    };
    if let Some(ip) = literal {
        return Some(Connection::Ip(ip));
    }
    // A literal of the other family, or something that is no host name at all, is an error;
    // a name has a letter somewhere (top-level labels are never all-numeric).
    let is_name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && host.bytes().any(|b| b.is_ascii_alphabetic());
    is_name.then(|| Connection::Host {
        ipv6,
        name: host.to_owned(),
    })
}

fn origin(line: usize, value: &str) -> Result<Origin, SdpError> {
    let t: Vec<&str> = value.split_ascii_whitespace().collect();
    let &[user, id, version, net, kind, addr] = t.as_slice() else {
        return Err(SdpError::BadOrigin { line });
    };
    Ok(Origin {
        username: user.to_owned(),
        session_id: id.to_owned(),
        session_version: version.to_owned(),
        address: address(net, kind, addr).ok_or(SdpError::BadOrigin { line })?,
    })
}

/// `t=<start> <stop>`; unreadable values mean an unbounded session, which is what telephony uses.
fn timing(value: &str) -> (u64, u64) {
    let mut it = value.split_ascii_whitespace().map(number::<u64>);
    match (it.next(), it.next()) {
        (Some(Some(a)), Some(Some(b))) => (a, b),
        _ => (0, 0),
    }
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`
fn media_line(line: usize, value: &str) -> Result<MediaDescription, SdpError> {
    let mut it = value.split_ascii_whitespace();
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err(SdpError::BadMedia { line });
    };
    let formats: Vec<String> = it.map(str::to_owned).collect();
    let (port, count) = match port.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port, None),
    };
    let port: u16 = number(port).ok_or(SdpError::BadPort { line })?;
    let port_count = match count {
        Some(c) => Some(
            number::<u16>(c)
                .filter(|n| *n > 0)
                .ok_or(SdpError::BadPort { line })?,
        ),
        None => None,
    };
    // RFC 8866 requires a format; rejected (port 0) sections are forgiven for omitting it.
    if formats.is_empty() && port != 0 {
        return Err(SdpError::BadMedia { line });
    }
    if is_rtp_proto(proto) && formats.iter().any(|f| payload_type(f).is_none()) {
        return Err(SdpError::BadPayloadType { line });
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        connection: None,
        bandwidths: Vec::new(),
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        maxptime: None,
        direction: Direction::SendRecv,
        crypto: Vec::new(),
        other_attributes: Vec::new(),
    })
}

/// `<pt> <encoding>/<clock>[/<channels>]`
fn rtpmap(v: &str) -> Option<RtpMap> {
    let (pt, rest) = v.trim().split_once(|c: char| c.is_ascii_whitespace())?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().filter(|e| !e.is_empty())?;
    let clock_rate = number(parts.next()?)?;
    let channels = match parts.next() {
        Some(c) => Some(number(c)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(RtpMap {
        pt: payload_type(pt)?,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

/// `<pt> <parameters>`; parameters are kept verbatim (may be empty).
fn fmtp(v: &str) -> Option<(u8, String)> {
    let v = v.trim();
    let (pt, params) = match v.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((p, rest)) => (p, rest.trim()),
        None => (v, ""),
    };
    Some((payload_type(pt)?, params.to_owned()))
}
