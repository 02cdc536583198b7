//! The SIP message layer (RFC 3261 §7, §18.3, §20, §25; RFC 3581; RFC 4475), written from
//! scratch. A parsed [`Message`] owns one buffer and keeps header names and values as byte
//! spans into it; typed views (`Via`, `NameAddr`, `Uri`, `CSeq`) borrow from it.
//! Everything the accessors promise (Via, From, To, Call-ID, CSeq, limits, Content-Length)
//! is validated at parse time. Outgoing messages are built with [`OutMessage`].
//! Must not: do I/O, read clocks, or make endpoint decisions (416/420/415/501 belong to the
//! caller).

mod build;
mod class;
mod error;
mod header;
mod method;
mod name_addr;
mod params;
mod parse;
mod scan;
mod uri;
mod via;

#[cfg(test)]
mod tests;

pub use build::{reason_phrase, OutMessage};
pub use error::{ParseError, ParseErrorKind};
pub use header::HeaderName;
pub use method::{CSeq, Method};
pub use name_addr::{parse_name_addr, unquote, NameAddr};
pub use params::Params;
pub use uri::{parse_uri, unescape, Scheme, Uri, UriError};
pub use via::{parse_via, Via};

use params::{split_list, trim_lws};
use parse::text;
use scan::{Entry, Span};

/// Parser limits; a message beyond them is rejected before any value is interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Whole message, start line to end of body.
    pub max_message: usize,
    pub max_headers: usize,
    /// One header line including its folded continuations.
    pub max_header_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 * 1024,
            max_headers: 256,
            max_header_len: 8 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Start {
    Request { method: Method, uri: Span },
    Response { status: u16, reason: Span },
}

/// A parsed, validated SIP request or response.
#[derive(Debug, Clone)]
pub struct Message {
    buf: Vec<u8>,
    start: Start,
    headers: Vec<Entry>,
    body: Span,
    cseq: CSeq,
    call_id: Span,
    from: Span,
    to: Span,
    from_tag: Option<Span>,
    to_tag: Option<Span>,
    max_forwards: Option<u32>,
}

impl Message {
    /// Parses one UDP datagram or one framed TCP message (copies it once).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        if bytes.len() > limits.max_message {
            let head = bytes.get(..limits.max_message).unwrap_or(bytes);
            return Err(ParseError::from_head(head, ParseErrorKind::TooLarge));
        }
        parse::parse_owned(bytes.to_vec(), limits)
    }

    /// Like [`Message::parse`], reusing the caller's buffer.
    pub fn parse_owned(bytes: Vec<u8>, limits: &Limits) -> Result<Message, ParseError> {
        parse::parse_owned(bytes, limits)
    }

    fn text(&self, span: Span) -> &str {
        text(&self.buf, span)
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }

    /// As written; [`parse_uri`] succeeded on it at parse time.
    pub fn request_uri(&self) -> Option<&str> {
        match self.start {
            Start::Request { uri, .. } => Some(self.text(uri)),
            Start::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            Start::Response { status, .. } => Some(status),
            Start::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self.start {
            Start::Response { reason, .. } => Some(self.text(reason)),
            Start::Request { .. } => None,
        }
    }

    /// Every header line in order: (name, spelling, trimmed value). The spelling is the
    /// canonical long form for known headers and the name as written for `Other`.
    pub fn headers(&self) -> impl Iterator<Item = (&HeaderName, &str, &str)> + '_ {
        self.headers.iter().map(move |e| {
            let name = e.name.canonical().unwrap_or_else(|| self.text(e.name_span));
            (&e.name, name, self.text(e.value))
        })
    }

    /// First occurrence, whole value.
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|e| e.name == *name)
            .map(|e| self.text(e.value))
    }

    /// Case-insensitive lookup by name as text, compact forms and unknown headers included.
    pub fn header_by_name(&self, name: &str) -> Option<&str> {
        let known = HeaderName::parse(name);
        if known != HeaderName::Other {
            return self.header(&known);
        }
        self.headers
            .iter()
            .find(|e| {
                e.name == HeaderName::Other && self.text(e.name_span).eq_ignore_ascii_case(name)
            })
            .map(|e| self.text(e.value))
    }

    /// All values of a header across occurrences; list headers ([`HeaderName::is_list`]) are
    /// split on commas outside quotes and `<...>`. Empty elements are skipped.
    pub fn header_values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let name = *name;
        let list = name.is_list();
        self.headers
            .iter()
            .filter(move |e| e.name == name)
            .flat_map(move |e| {
                let v = self.text(e.value);
                let split = list.then(|| split_list(v));
                let whole = (!list).then(|| trim_lws(v));
                split.into_iter().flatten().chain(whole)
            })
            .filter(|v| !v.is_empty())
    }

    /// The body: exactly Content-Length octets when the header is present (extra datagram
    /// octets are ignored, RFC 3261 §18.3), else everything after the blank line.
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.body.range()).unwrap_or(&[])
    }

    pub fn call_id(&self) -> &str {
        self.text(self.call_id)
    }

    pub fn cseq(&self) -> CSeq {
        self.cseq.clone()
    }

    pub fn top_via(&self) -> Via<'_> {
        self.vias().next().unwrap_or(Via {
            transport: "",
            host: "",
            port: None,
            params: Params::default(),
        })
    }

    /// Every Via value in order, comma-separated values included.
    pub fn vias(&self) -> impl Iterator<Item = Via<'_>> + '_ {
        self.headers
            .iter()
            .filter(|e| e.name == HeaderName::Via)
            .flat_map(move |e| split_list(self.text(e.value)))
            .filter_map(|v| parse_via(v).ok())
    }

    pub fn from_hdr(&self) -> NameAddr<'_> {
        name_addr_or_empty(self.text(self.from))
    }

    pub fn to_hdr(&self) -> NameAddr<'_> {
        name_addr_or_empty(self.text(self.to))
    }

    pub fn from_tag(&self) -> Option<&str> {
        self.from_tag.map(|t| self.text(t))
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.to_tag.map(|t| self.text(t))
    }

    pub fn max_forwards(&self) -> Option<u32> {
        self.max_forwards
    }

    /// The first Contact value, if present and parseable (`*` gives `None`).
    pub fn contact(&self) -> Option<NameAddr<'_>> {
        parse_name_addr(self.header_values(&HeaderName::Contact).next()?).ok()
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header(&HeaderName::ContentType)
    }

    /// Canonical serialisation: long header names, unfolded and trimmed values, one
    /// Content-Length (the body length) after the other headers.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = self.body();
        let mut out = Vec::with_capacity(self.buf.len() + 32);
        match &self.start {
            Start::Request { method, uri } => {
                push_all(
                    &mut out,
                    &[method.as_str(), " ", self.text(*uri), " SIP/2.0\r\n"],
                );
            }
            Start::Response { status, reason } => {
                let status = status.to_string();
                push_all(
                    &mut out,
                    &["SIP/2.0 ", &status, " ", self.text(*reason), "\r\n"],
                );
            }
        }
        for (name, spelled, value) in self.headers() {
            if *name != HeaderName::ContentLength {
                push_all(&mut out, &[spelled, ": ", value, "\r\n"]);
            }
        }
        let len = body.len().to_string();
        push_all(&mut out, &["Content-Length: ", &len, "\r\n\r\n"]);
        out.extend_from_slice(body);
        out
    }
}

fn push_all(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

/// Validated at parse time, so the fallback is unreachable; it avoids a panic path.
fn name_addr_or_empty(s: &str) -> NameAddr<'_> {
    parse_name_addr(s).unwrap_or(NameAddr {
        display: None,
        uri: Uri {
            scheme: Scheme::Other,
            scheme_str: "",
            user: None,
            password: None,
            host: "",
            port: None,
            params: Params::default(),
            headers: None,
            raw: "",
        },
        params: Params::default(),
    })
}
