//! Outgoing messages (RFC 3261 §8.2.6.2 response construction, §18.2.1 received, RFC 3581
//! rport, §21 reason phrases). Owned strings, simple and explicit; serialisation always writes
//! Content-Length and never lets a value break a line.
//! Must not: choose tags, branches or routes (the caller's transaction/dialog layer does).

use std::net::{IpAddr, SocketAddr};

use super::header::HeaderName;
use super::method::Method;
use super::params::split_list;
use super::via::parse_via;
use super::Message;

#[derive(Debug, Clone, PartialEq, Eq)]
enum OutStart {
    Request { method: Method, uri: String },
    Response { status: u16, reason: String },
}

/// A message to send: start line, ordered headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    start: OutStart,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl OutMessage {
    pub fn request(method: Method, uri: &str) -> Self {
        OutMessage {
            start: OutStart::Request {
                method,
                uri: uri.to_owned(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `None` reason → the standard phrase.
    pub fn response(status: u16, reason: Option<&str>) -> Self {
        OutMessage {
            start: OutStart::Response {
                status,
                reason: reason.unwrap_or(reason_phrase(status)).to_owned(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` (RFC 3261 §8.2.6.2): every Via in order, From, To (with `to_tag`
    /// added when To has no tag yet), Call-ID and CSeq, copied as received.
    pub fn response_to(
        req: &Message,
        status: u16,
        reason: Option<&str>,
        to_tag: Option<&str>,
    ) -> Self {
        let mut out = OutMessage::response(status, reason);
        for v in req.header_values_raw(HeaderName::Via) {
            out.add_header("Via", v);
        }
        out.add_header("From", req.header(&HeaderName::From).unwrap_or(""));
        let mut to = req.header(&HeaderName::To).unwrap_or("").to_owned();
        if let (Some(tag), None) = (to_tag, req.to_tag()) {
            to.push_str(";tag=");
            to.push_str(tag);
        }
        out.add_header("To", to);
        out.add_header("Call-ID", req.call_id());
        out.add_header("CSeq", req.header(&HeaderName::CSeq).unwrap_or(""));
        out
    }

    /// RFC 3261 §18.2.1 / RFC 3581 §4 on the top Via value: add `received=<src ip>` when the
    /// sent-by host is not that address or `rport` is present, and fill an empty `rport`
    /// with the source port.
    pub fn stamp_top_via(&mut self, src: SocketAddr) {
        let Some((_, value)) = self
            .headers
            .iter_mut()
            .find(|(n, _)| HeaderName::parse(n) == HeaderName::Via)
        else {
            return;
        };
        let Some(first) = split_list(value).next() else {
            return;
        };
        let Ok(via) = parse_via(first) else {
            return;
        };
        let host = via.host.trim_start_matches('[').trim_end_matches(']');
        let same_host = host.parse::<IpAddr>().is_ok_and(|ip| ip == src.ip());
        let rport = via.rport();
        if same_host && rport.is_none() {
            return;
        }
        let sent = first
            .get(..via.params_offset(first))
            .unwrap_or(first)
            .trim_end();
        let mut stamped = sent.to_owned();
        for (name, val) in via.params.iter() {
            if name.eq_ignore_ascii_case("received") {
                continue;
            }
            stamped.push(';');
            stamped.push_str(name);
            if name.eq_ignore_ascii_case("rport") && val.is_none() {
                stamped.push_str(&format!("={}", src.port()));
            } else if let Some(v) = val {
                stamped.push('=');
                stamped.push_str(v);
            }
        }
        stamped.push_str(&format!(";received={}", src.ip()));
        let rest_start = value.find(first).map_or(value.len(), |i| i + first.len());
        let rest = value.get(rest_start..).unwrap_or("").to_owned();
        *value = stamped + &rest;
    }

    pub fn add_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_owned(), value.into()));
    }

    /// Replaces every header of that name (compact forms included) with one value, kept at
    /// the position of the first one.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let pos = self.headers.iter().position(|(n, _)| same_name(n, name));
        self.remove_header(name);
        let at = pos.unwrap_or(self.headers.len()).min(self.headers.len());
        self.headers.insert(at, (name.to_owned(), value.into()));
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !same_name(n, name));
    }

    /// First value of a header, for inspection before sending.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| same_name(n, name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.set_header("Content-Type", content_type);
        self.body = body;
    }

    /// Serialises; Content-Length is always written (any set by hand is replaced), and CR/LF
    /// inside names or values become spaces so no header can be injected.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        match &self.start {
            OutStart::Request { method, uri } => {
                push_clean(&mut out, method.as_str());
                out.push(b' ');
                push_clean(&mut out, uri);
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            OutStart::Response { status, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {status} ").as_bytes());
                push_clean(&mut out, reason);
                out.extend_from_slice(b"\r\n");
            }
        }
        for (n, v) in &self.headers {
            if HeaderName::parse(n) == HeaderName::ContentLength {
                continue;
            }
            push_clean(&mut out, n);
            out.extend_from_slice(b": ");
            push_clean(&mut out, v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

impl Message {
    /// Each occurrence of a header, whole (not comma-split).
    pub fn header_values_raw(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.headers()
            .filter(move |(n, _, _)| **n == name)
            .map(|(_, _, v)| v)
    }
}

fn same_name(a: &str, b: &str) -> bool {
    let (ha, hb) = (HeaderName::parse(a), HeaderName::parse(b));
    if ha == HeaderName::Other || hb == HeaderName::Other {
        a.eq_ignore_ascii_case(b)
    } else {
        ha == hb
    }
}

fn push_clean(out: &mut Vec<u8>, s: &str) {
    out.extend(
        s.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// Standard reason phrases (RFC 3261 §21 and later RFCs); a class name for other codes.
pub fn reason_phrase(status: u16) -> &'static str {
    known_phrase(status).unwrap_or(match status {
        100..=199 => "Provisional",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        600..=699 => "Global Failure",
        _ => "Unknown",
    })
}

fn known_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity-Info",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        555 => "Push Notification Service Not Supported",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        608 => "Rejected",
        _ => return None,
    })
}
