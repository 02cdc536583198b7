//! Whole-message parsing (RFC 3261 §7.1 Request-Line, §7.2 Status-Line, §7.4.1 and §18.3
//! Content-Length on datagrams, §8.1.1 mandatory headers, §20.16 CSeq, §20.22 Max-Forwards)
//! and the parse-time validation that lets `Message` accessors return plain values.
//! Liberal per RFC 4475: extra SP in the Request-Line (§3.1.2.9) and trailing SP (§3.1.2.10).
//! Must not: decide endpoint policy (unknown schemes, methods, extensions are accepted).

use super::class::is_token;
use super::error::{ErrorContext, ParseError, ParseErrorKind};
use super::header::HeaderName;
use super::method::{parse_cseq, parse_u32, CSeq, Method};
use super::name_addr::parse_name_addr;
use super::params::split_list;
use super::scan::{sanitize_utf8, split_head, Entry, Head, Span};
use super::uri::parse_uri;
use super::via::parse_via;
use super::{Limits, Message, Start};

type Kind = ParseErrorKind;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Request,
    Response,
    Garbage,
}

pub(super) fn parse_owned(mut buf: Vec<u8>, limits: &Limits) -> Result<Message, ParseError> {
    let max = limits.max_message.min(u32::MAX as usize);
    if buf.len() > max {
        return Err(ParseError::from_head(
            buf.get(..max).unwrap_or(&[]),
            Kind::TooLarge,
        ));
    }
    let Some(from) = buf.iter().position(|&b| b != b'\r' && b != b'\n') else {
        return Err(ParseError::new(Kind::Empty, false, None));
    };
    let head = split_head(&mut buf, from, limits);
    if let Some(h) = buf.get_mut(from..head.body_start) {
        sanitize_utf8(h);
    }
    // Sanitised above, and the bytes before `from` are CR/LF: one validation for all spans.
    let head_text = buf
        .get(..head.body_start)
        .and_then(|h| std::str::from_utf8(h).ok())
        .unwrap_or("");
    let shape = shape(span_text(head_text, head.start_line));
    let result = match shape {
        Shape::Garbage => Err(Kind::Garbage),
        _ => analyze(head_text, buf.len(), &head, shape),
    };
    match result {
        Ok(parsed) => {
            let body_end = parsed.body.end as usize;
            buf.truncate(body_end);
            Ok(Message {
                buf,
                start: parsed.start,
                headers: head.entries,
                body: parsed.body,
                cseq: parsed.cseq,
                call_id: parsed.call_id,
                from: parsed.from,
                to: parsed.to,
                from_tag: parsed.from_tag,
                to_tag: parsed.to_tag,
                max_forwards: parsed.max_forwards,
            })
        }
        Err(kind) => {
            let request = shape == Shape::Request;
            let ctx = request.then(|| context(&buf, &head.entries));
            Err(ParseError::new(kind, request, ctx))
        }
    }
}

impl ParseError {
    /// An error for a header section that was rejected elsewhere (e.g. by the TCP framer),
    /// keeping what [`ParseError::response`] needs.
    pub fn from_head(head: &[u8], kind: ParseErrorKind) -> ParseError {
        let mut buf = head
            .get(..head.len().min(u32::MAX as usize))
            .unwrap_or(&[])
            .to_vec();
        let Some(from) = buf.iter().position(|&b| b != b'\r' && b != b'\n') else {
            return ParseError::new(kind, false, None);
        };
        let generous = Limits {
            max_message: usize::MAX,
            max_headers: 4096,
            max_header_len: usize::MAX,
        };
        let h = split_head(&mut buf, from, &generous);
        if let Some(s) = buf.get_mut(from..h.body_start) {
            sanitize_utf8(s);
        }
        let request = shape(text(&buf, h.start_line)) == Shape::Request;
        let ctx = request.then(|| context(&buf, &h.entries));
        ParseError::new(kind, request, ctx)
    }
}

fn context(buf: &[u8], entries: &[Entry]) -> ErrorContext {
    ErrorContext::collect(entries.iter().map(|e| (e.name, text(buf, e.value))))
}

fn span_text(head: &str, span: Span) -> &str {
    head.get(span.range()).unwrap_or("")
}

pub(super) fn text(buf: &[u8], span: Span) -> &str {
    buf.get(span.range())
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

fn shape(line: &str) -> Shape {
    let is_sip = line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"));
    if is_sip {
        return Shape::Response;
    }
    match line.split_once(' ') {
        Some((method, _)) if is_token(method) => Shape::Request,
        _ => Shape::Garbage,
    }
}

struct Parsed {
    start: Start,
    body: Span,
    cseq: CSeq,
    call_id: Span,
    from: Span,
    to: Span,
    from_tag: Option<Span>,
    to_tag: Option<Span>,
    max_forwards: Option<u32>,
}

/// `buf`: the header section as text; `total`: the whole buffer's length.
fn analyze(buf: &str, total: usize, head: &Head, shape: Shape) -> Result<Parsed, Kind> {
    let text = span_text;
    let line_span = head.start_line;
    let line = text(buf, line_span);
    let base = line_span.start as usize;
    let start = if shape == Shape::Request {
        request_line(line, base)?
    } else {
        status_line(line, base)?
    };
    if let Some(e) = &head.error {
        return Err(e.clone());
    }
    let f = find_headers(buf, &head.entries)?;
    let need = |slot: Option<Span>, name: &'static str| slot.ok_or(Kind::MissingHeader(name));
    if !f.via {
        return Err(Kind::MissingHeader("Via"));
    }
    let from = need(f.from, "From")?;
    let to = need(f.to, "To")?;
    let call_id = need(f.call_id, "Call-ID")?;
    let cseq_span = need(f.cseq, "CSeq")?;
    if call_id.start == call_id.end {
        return Err(Kind::BadHeader("Call-ID"));
    }
    let (seq, cseq_method) =
        parse_cseq(text(buf, cseq_span)).map_err(|_| Kind::BadHeader("CSeq"))?;
    let cseq_method = match &start {
        Start::Request { method, .. } if method.as_str() != cseq_method => {
            return Err(Kind::CSeqMethodMismatch)
        }
        Start::Request { method, .. } => method.clone(),
        Start::Response { .. } => Method::from_token(cseq_method),
    };
    // Tags are kept as spans: dialog matching asks for them on every message.
    let tag_span = |t: &str| {
        let start = offset_in(buf, t);
        Span::new(start, start + t.len())
    };
    let from_tag = parse_name_addr(text(buf, from))
        .map_err(|_| Kind::BadHeader("From"))?
        .tag()
        .map(tag_span);
    let to_tag = parse_name_addr(text(buf, to))
        .map_err(|_| Kind::BadHeader("To"))?
        .tag()
        .map(tag_span);
    let max_forwards = match f.max_forwards {
        Some(s) => Some(
            parse_u32(text(buf, s))
                .filter(|&n| n <= 255)
                .ok_or(Kind::BadHeader("Max-Forwards"))?,
        ),
        None => None,
    };
    let available = total.saturating_sub(head.body_start);
    let body_len = match f.content_length {
        Some(s) => {
            let n = parse_length(text(buf, s)).ok_or(Kind::BadHeader("Content-Length"))?;
            if n > available {
                return Err(Kind::BodyTruncated);
            }
            n
        }
        None => available,
    };
    Ok(Parsed {
        start,
        body: Span::new(head.body_start, head.body_start + body_len),
        cseq: CSeq {
            seq,
            method: cseq_method,
        },
        call_id,
        from,
        to,
        from_tag,
        to_tag,
        max_forwards,
    })
}

fn request_line(line: &str, base: usize) -> Result<Start, Kind> {
    let line = line.trim_end_matches([' ', '\t']);
    let (method, rest) = line.split_once(' ').ok_or(Kind::BadRequestLine)?;
    let (uri, version) = rest.rsplit_once(' ').ok_or(Kind::BadRequestLine)?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        let sip = version
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"));
        return Err(if sip {
            Kind::BadVersion
        } else {
            Kind::BadRequestLine
        });
    }
    let uri = uri.trim_matches(' ');
    if uri.is_empty() {
        return Err(Kind::BadRequestLine);
    }
    parse_uri(uri).map_err(|_| Kind::BadRequestUri)?;
    let uri_start = base + offset_in(line, uri);
    Ok(Start::Request {
        method: Method::from_token(method),
        uri: Span::new(uri_start, uri_start + uri.len()),
    })
}

fn status_line(line: &str, base: usize) -> Result<Start, Kind> {
    let (version, rest) = line.split_once(' ').ok_or(Kind::BadStatusLine)?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Kind::BadVersion);
    }
    let rest = rest.trim_start_matches(' ');
    let code = rest.get(..3).ok_or(Kind::BadStatusLine)?;
    let after = rest.get(3..).unwrap_or("");
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(after.is_empty() || after.starts_with(' ')) {
        return Err(Kind::BadStatusLine);
    }
    let status = parse_u32(code)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (100..=699).contains(c))
        .ok_or(Kind::BadStatusLine)?;
    let reason = after.get(1..).unwrap_or("").trim_end_matches([' ', '\t']);
    let reason_start = base + offset_in(line, reason);
    Ok(Start::Response {
        status,
        reason: Span::new(reason_start, reason_start + reason.len()),
    })
}

/// Byte offset of `sub` within `whole` (`sub` must be a subslice of it).
fn offset_in(whole: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

#[derive(Default)]
struct Found {
    via: bool,
    from: Option<Span>,
    to: Option<Span>,
    call_id: Option<Span>,
    cseq: Option<Span>,
    max_forwards: Option<Span>,
    content_length: Option<Span>,
    content_type: Option<Span>,
}

fn find_headers(buf: &str, entries: &[Entry]) -> Result<Found, Kind> {
    let text = span_text;
    let mut f = Found::default();
    for e in entries {
        let slot = match e.name {
            HeaderName::Via => {
                f.via = true;
                for element in split_list(text(buf, e.value)) {
                    parse_via(element).map_err(|_| Kind::BadHeader("Via"))?;
                }
                continue;
            }
            HeaderName::From => &mut f.from,
            HeaderName::To => &mut f.to,
            HeaderName::CallId => &mut f.call_id,
            HeaderName::CSeq => &mut f.cseq,
            HeaderName::MaxForwards => &mut f.max_forwards,
            HeaderName::ContentLength => &mut f.content_length,
            HeaderName::ContentType => &mut f.content_type,
            _ => continue,
        };
        if let Some(first) = *slot {
            if e.name == HeaderName::ContentLength
                && parse_length(text(buf, first)) != parse_length(text(buf, e.value))
            {
                return Err(Kind::ConflictingContentLength);
            }
            return Err(Kind::DuplicateHeader(e.name.single_valued().unwrap_or("")));
        }
        *slot = Some(e.value);
    }
    Ok(f)
}

/// Content-Length digits (leading zeros allowed); `None` for anything else or on overflow.
pub(crate) fn parse_length(v: &str) -> Option<usize> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.bytes().try_fold(0usize, |n, b| {
        n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
    })
}
