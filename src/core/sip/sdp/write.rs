//! `SessionDescription` → SDP text (RFC 8866 §5 field order: v o s c b t a, then per media
//! m c b a), CRLF line ends.
//!
//! Owns: the exact bytes trunkgate puts in SIP bodies. Printing then parsing yields an equal
//! value (attribute groups keep their internal order).
//! Must not: validate or fix up values — it prints what it is given.

use std::fmt::{self, Display, Formatter};

use super::{Connection, MediaDescription, Origin, RtpMap, SessionDescription};

impl Display for Connection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => {
                let kind = if ip.is_ipv6() { "IP6" } else { "IP4" };
                write!(f, "IN {kind} {ip}")
            }
            Self::Host { ipv6, name } => {
                let kind = if *ipv6 { "IP6" } else { "IP4" };
                write!(f, "IN {kind} {name}")
            }
        }
    }
}

impl Display for Origin {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.username, self.session_id, self.session_version, self.address
        )
    }
}

impl Display for RtpMap {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.pt, self.encoding, self.clock_rate)?;
        match self.channels {
            Some(ch) => write!(f, "/{ch}"),
            None => Ok(()),
        }
    }
}

fn attribute(f: &mut Formatter<'_>, name: &str, value: Option<&str>) -> fmt::Result {
    match value {
        Some(v) => write!(f, "a={name}:{v}\r\n"),
        None => write!(f, "a={name}\r\n"),
    }
}

impl Display for SessionDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\no={}\r\n", self.origin)?;
        let name = if self.session_name.is_empty() {
            "-"
        } else {
            &self.session_name
        };
        write!(f, "s={name}\r\n")?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        write!(f, "t={} {}\r\n", self.timing.0, self.timing.1)?;
        if let Some(d) = self.direction {
            attribute(f, d.as_str(), None)?;
        }
        for (name, value) in &self.attributes {
            attribute(f, name, value.as_deref())?;
        }
        for m in &self.media {
            write_media(f, m, self.direction.is_some())?;
        }
        Ok(())
    }
}

fn write_media(f: &mut Formatter<'_>, m: &MediaDescription, session_dir: bool) -> fmt::Result {
    write!(f, "m={} {}", m.media, m.port)?;
    if let Some(n) = m.port_count {
        write!(f, "/{n}")?;
    }
    write!(f, " {}", m.proto)?;
    for format in &m.formats {
        write!(f, " {format}")?;
    }
    f.write_str("\r\n")?;
    if let Some(c) = &m.connection {
        write!(f, "c={c}\r\n")?;
    }
    for b in &m.bandwidths {
        write!(f, "b={b}\r\n")?;
    }
    for r in &m.rtpmaps {
        write!(f, "a=rtpmap:{r}\r\n")?;
    }
    for (pt, params) in &m.fmtps {
        if params.is_empty() {
            write!(f, "a=fmtp:{pt}\r\n")?;
        } else {
            write!(f, "a=fmtp:{pt} {params}\r\n")?;
        }
    }
    if let Some(p) = m.ptime {
        write!(f, "a=ptime:{p}\r\n")?;
    }
    if let Some(p) = m.maxptime {
        write!(f, "a=maxptime:{p}\r\n")?;
    }
    // sendrecv is the default; it is only spelled out to override a session-level attribute.
    if session_dir || m.direction != super::Direction::SendRecv {
        attribute(f, m.direction.as_str(), None)?;
    }
    for c in &m.crypto {
        write!(f, "a=crypto:{c}\r\n")?;
    }
    for (name, value) in &m.other_attributes {
        attribute(f, name, value.as_deref())?;
    }
    Ok(())
}
