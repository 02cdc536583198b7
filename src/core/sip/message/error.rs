//! Parse failures and the stateless error response to a malformed request (RFC 3261 §8.2.6,
//! §8.2.7 stateless UAS, §21.4.1 400, §21.5.6 505): which failures get a response at all,
//! and a response built from the request's own Via/From/To/Call-ID/CSeq.
//! Must not: answer responses or garbage (those are dropped), or build anything that would
//! not parse back (unusable fields are repaired or the answer is withheld).

use std::fmt::Write as _;

use super::header::HeaderName;
use super::method::{parse_cseq, CSeqError};
use super::name_addr::parse_name_addr;
use super::params::{split_list, trim_lws, Split};
use super::via::parse_via;

/// What was wrong; the `Display` text is the reason phrase of the error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("Empty Message")]
    Empty,
    #[error("Not A SIP Message")]
    Garbage,
    #[error("Message Too Large")]
    TooLarge,
    #[error("Malformed Request-Line")]
    BadRequestLine,
    #[error("Malformed Request-URI")]
    BadRequestUri,
    #[error("Version Not Supported")]
    BadVersion,
    #[error("Malformed Status-Line")]
    BadStatusLine,
    #[error("Malformed Header Line")]
    BadHeaderLine,
    #[error("Too Many Headers")]
    TooManyHeaders,
    #[error("Header Too Long")]
    HeaderTooLong,
    #[error("Missing Empty Line After Headers")]
    NoHeaderEnd,
    #[error("Missing {0} Header")]
    MissingHeader(&'static str),
    #[error("Duplicate {0} Header")]
    DuplicateHeader(&'static str),
    #[error("Malformed {0} Header")]
    BadHeader(&'static str),
    #[error("CSeq Method Mismatch")]
    CSeqMethodMismatch,
    #[error("Conflicting Content-Length")]
    ConflictingContentLength,
    #[error("Missing Content-Length")]
    MissingContentLength,
    #[error("Body Shorter Than Content-Length")]
    BodyTruncated,
}

/// A message that did not parse. For requests it keeps copies of the headers a stateless
/// error response needs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    kind: ParseErrorKind,
    request: bool,
    reason: String,
    ctx: Option<Box<ErrorContext>>,
}

/// Raw header values of a malformed request (first occurrence; every Via).
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorContext {
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

impl ErrorContext {
    pub(crate) fn collect<'a>(headers: impl Iterator<Item = (HeaderName, &'a str)>) -> Self {
        let mut c = ErrorContext::default();
        for (name, value) in headers {
            let slot = match name {
                HeaderName::Via => {
                    c.vias.push(value.to_owned());
                    continue;
                }
                HeaderName::From => &mut c.from,
                HeaderName::To => &mut c.to,
                HeaderName::CallId => &mut c.call_id,
                HeaderName::CSeq => &mut c.cseq,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.to_owned());
        }
        c
    }
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, request: bool, ctx: Option<ErrorContext>) -> Self {
        ParseError {
            reason: kind.to_string(),
            kind,
            request,
            ctx: ctx.map(Box::new),
        }
    }

    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Whether the start line looked like a request.
    pub fn is_request(&self) -> bool {
        self.request
    }

    /// Human reason, usable as the reason phrase.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// 400, 505 (bad SIP version) or 513 (too large) for requests; `None` means drop
    /// silently (responses, empty input, garbage).
    pub fn status(&self) -> Option<u16> {
        if !self.request {
            return None;
        }
        match self.kind {
            ParseErrorKind::Empty | ParseErrorKind::Garbage => None,
            ParseErrorKind::BadVersion => Some(505),
            ParseErrorKind::TooLarge => Some(513),
            _ => Some(400),
        }
    }

    /// A complete stateless error response, or `None` when the request lacks what a
    /// response needs (a usable top Via, From, To, Call-ID and CSeq): then drop.
    pub fn response(&self, server: &str) -> Option<Vec<u8>> {
        let status = self.status()?;
        stateless_response(status, &self.reason, self.ctx.as_deref()?, server)
    }
}

fn stateless_response(
    status: u16,
    reason: &str,
    c: &ErrorContext,
    server: &str,
) -> Option<Vec<u8>> {
    let mut vias = Vec::new();
    for value in &c.vias {
        for element in split_list(value).filter(|e| !e.is_empty()) {
            match repaired_via(element) {
                Some(v) => vias.push(v),
                None if vias.is_empty() => return None,
                None => {}
            }
        }
    }
    let top = vias.first()?.clone();
    let from = c.from.as_deref().filter(|f| parse_name_addr(f).is_ok())?;
    let to = c.to.as_deref()?;
    let to_has_tag = parse_name_addr(to).ok()?.tag().is_some();
    let call_id = c.call_id.as_deref().filter(|c| !c.is_empty())?;
    let cseq = match parse_cseq(c.cseq.as_deref()?) {
        Ok(_) => c.cseq.clone()?,
        // The number cannot be echoed; clients match on branch and CSeq method anyway.
        Err((CSeqError::Overflow, method)) => format!("{} {method}", u32::MAX),
        Err((CSeqError::Malformed, _)) => return None,
    };
    let mut out = String::with_capacity(256);
    let _ = write!(out, "SIP/2.0 {status} {reason}\r\n");
    for v in &vias {
        let _ = write!(out, "Via: {v}\r\n");
    }
    let _ = write!(out, "From: {from}\r\nTo: {to}");
    if !to_has_tag {
        let _ = write!(
            out,
            ";tag={:016x}",
            stable_tag(&[call_id, from, &cseq, &top])
        );
    }
    let _ = write!(out, "\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n");
    if !server.is_empty() && !server.contains(['\r', '\n']) {
        let _ = write!(out, "Server: {server}\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// The Via element as written if valid, else with empty parameters dropped (RFC 4475
/// §3.1.2.1 `;;`), else `None`.
fn repaired_via(element: &str) -> Option<String> {
    if parse_via(element).is_ok() {
        return Some(element.to_owned());
    }
    let (sent, params) = element.split_once(';')?;
    let mut fixed = trim_lws(sent).to_owned();
    for p in Split::params(params).map(trim_lws) {
        if !p.is_empty() {
            fixed.push(';');
            fixed.push_str(p);
        }
    }
    parse_via(&fixed).is_ok().then_some(fixed)
}

/// FNV-1a: a retransmitted request gets the same To tag without any state (RFC 3261 §8.2.7).
fn stable_tag(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
