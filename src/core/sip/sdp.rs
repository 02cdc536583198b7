//! SDP (RFC 8866, formerly RFC 4566) for the audio subset a media gateway needs, and the offer/
//! answer model (RFC 3264) for G.711 + telephone-event (RFC 4733).
//!
//! Owns: the typed session description, `parse` (tolerant of LF-only line ends, unknown lines and
//! attributes; strict on `v=0` first, `o=`, `c=`, `m=` syntax, ports and RTP payload types),
//! printing (`Display`, CRLF, RFC field order), and `answer`/`offer`/`accept_answer`.
//! Must not: resolve host names, allocate ports, or touch SIP messages — callers pass the
//! addresses and ports to advertise and map errors to SIP status codes (488).
//!
//! Submodules: `parse` (text → types), `write` (types → text), `negotiate` (RFC 3264),
//! `crypto` (SDES `a=crypto` keys, RFC 4568).

use std::net::IpAddr;

pub mod crypto;
mod negotiate;
mod parse;
mod write;

pub use negotiate::{
    accept_answer, answer, offer, AnswerParams, Negotiated, NegotiationError, SrtpKeys, SrtpParams,
    SrtpUse,
};
pub use parse::parse;

/// A whole session description. Lines trunkgate has no use for (`i=`, `u=`, `e=`, `p=`, `z=`,
/// `k=`, `r=`) are dropped on parse; `b=` and all attributes are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// `s=`; an absent or empty name reads as "-", the placeholder RFC 8866 §5.3 suggests.
    pub session_name: String,
    pub connection: Option<Connection>,
    /// Raw `b=` values, e.g. "AS:64".
    pub bandwidths: Vec<String>,
    /// `t=` start and stop (NTP seconds; 0 0 for an unbounded session).
    pub timing: (u64, u64),
    /// A session-level direction attribute; media without their own inherit it (RFC 3264 §5.1).
    pub direction: Option<Direction>,
    /// Other session-level attributes in order: (name, value after the first ':').
    pub attributes: Vec<(String, Option<String>)>,
    pub media: Vec<MediaDescription>,
}

/// The `o=` line. Id and version are kept as text: RFC 8866 allows any digit string, and
/// re-INVITE handling only compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: String,
    pub address: Connection,
}

/// The network part of `c=` and `o=` (always `IN`). A multicast `/ttl[/count]` suffix is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Ip(IpAddr),
    /// A host name (allowed by RFC 8866 §5.7); unusable as a media address without DNS.
    Host {
        ipv6: bool,
        name: String,
    },
}

impl Connection {
    /// The address if it is a literal, unspecified (hold) or not.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(ip) => Some(*ip),
            Self::Host { .. } => None,
        }
    }

    /// A literal address that media may be sent to: not 0.0.0.0 / :: (RFC 3264 §8.4 hold).
    pub fn media_ip(&self) -> Option<IpAddr> {
        self.ip().filter(|ip| !ip.is_unspecified())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// "audio", "video", "image", "application", …
    pub media: String,
    /// 0 means the stream is rejected or disabled (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The `/<number of ports>` suffix of `m=`, if any.
    pub port_count: Option<u16>,
    /// "RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF", "udptl", …
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub bandwidths: Vec<String>,
    pub rtpmaps: Vec<RtpMap>,
    /// (payload type, parameters) of each `a=fmtp`.
    pub fmtps: Vec<(u8, String)>,
    pub ptime: Option<u32>,
    pub maxptime: Option<u32>,
    /// Effective direction: this section's attribute, else the session's, else sendrecv.
    pub direction: Direction,
    /// Raw `a=crypto` values (RFC 4568), kept for SDES-SRTP.
    pub crypto: Vec<String>,
    pub other_attributes: Vec<(String, Option<String>)>,
}

impl MediaDescription {
    /// True when the transport is an RTP profile, whose formats are payload types.
    pub fn is_rtp(&self) -> bool {
        is_rtp_proto(&self.proto)
    }

    /// The `a=rtpmap` for a payload type.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|r| r.pt == pt)
    }

    /// The `a=fmtp` parameters for a payload type.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, v)| v.as_str())
    }

    /// Formats that are valid payload types, in offer order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| parse::payload_type(f))
    }
}

pub(crate) fn is_rtp_proto(proto: &str) -> bool {
    proto
        .split('/')
        .any(|part| part.eq_ignore_ascii_case("RTP"))
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// Media direction attributes (RFC 3264 §5.1, §6.1), as declared by the side that wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    pub fn from_attribute(name: &str) -> Option<Self> {
        [
            Self::SendRecv,
            Self::SendOnly,
            Self::RecvOnly,
            Self::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }

    /// The answer to an offered direction (RFC 3264 §6.1) when we can both send and receive.
    pub fn reverse(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            d => d,
        }
    }

    /// The side that declared this direction will send media.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// The side that declared this direction wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

/// The audio codecs trunkgate transcodes (RFC 3551 §4.5.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub const CLOCK_RATE: u32 = 8000;

    pub fn static_pt(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    pub fn encoding(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }

    pub fn from_static_pt(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Self::Pcmu),
            8 => Some(Self::Pcma),
            _ => None,
        }
    }

    /// Recognises "PCMU/8000" and "PCMA/8000" (mono) under any payload type.
    pub fn from_rtpmap(map: &RtpMap) -> Option<Self> {
        if map.clock_rate != Self::CLOCK_RATE || !matches!(map.channels, None | Some(1)) {
            return None;
        }
        [Self::Pcmu, Self::Pcma]
            .into_iter()
            .find(|c| c.encoding().eq_ignore_ascii_case(&map.encoding))
    }

    /// What a payload type means in a media section: its rtpmap if present, else the static
    /// assignment.
    pub fn for_pt(media: &MediaDescription, pt: u8) -> Option<Self> {
        match media.rtpmap(pt) {
            Some(map) => Self::from_rtpmap(map),
            None => Self::from_static_pt(pt),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("empty SDP body")]
    Empty,
    #[error("line {line}: SDP must start with v=0")]
    NoVersion { line: usize },
    #[error("line {line}: not a <type>=<value> line")]
    MalformedLine { line: usize },
    #[error("no o= line")]
    MissingOrigin,
    #[error("line {line}: malformed o= line")]
    BadOrigin { line: usize },
    #[error("line {line}: malformed c= line")]
    BadConnection { line: usize },
    #[error("line {line}: malformed m= line")]
    BadMedia { line: usize },
    #[error("line {line}: port is not a number in 0..=65535")]
    BadPort { line: usize },
    #[error("line {line}: RTP payload type is not a number in 0..=127")]
    BadPayloadType { line: usize },
    #[error("line {line}: malformed a={name}")]
    BadAttribute { line: usize, name: &'static str },
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
