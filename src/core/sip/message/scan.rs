//! Header-section scanning (RFC 3261 §7, §7.3.1): splits the start line and header lines of a
//! message buffer into byte spans, unfolding continuation lines IN PLACE (CR LF SP → three
//! spaces, so spans stay valid), accepting bare LF line ends, and enforcing the header limits.
//! Must not: interpret header values, or allocate per header.

use super::class::{find_byte, TOKEN};
use super::header::HeaderName;
use super::{Limits, ParseErrorKind};

/// A byte range of the message buffer. u32 keeps header entries small; messages are capped
/// well below 4 GiB by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        // The caller guarantees buffer lengths fit in u32.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub name: HeaderName,
    pub name_span: Span,
    pub value: Span,
}

pub(crate) struct Head {
    pub start_line: Span,
    pub entries: Vec<Entry>,
    /// First body byte when the blank line was found; where scanning stopped otherwise.
    pub body_start: usize,
    /// The first problem met while splitting; scanning goes on past a malformed line so that
    /// a stateless 400 can still copy Via/From/To/Call-ID/CSeq.
    pub error: Option<ParseErrorKind>,
}

/// Splits `buf[from..]` (which starts at the start line) into lines.
pub(crate) fn split_head(buf: &mut [u8], from: usize, limits: &Limits) -> Head {
    let len = buf.len();
    let mut head = Head {
        start_line: Span::default(),
        entries: Vec::with_capacity(20),
        body_start: len,
        error: None,
    };
    let Some(nl) = find_byte(buf, from, b'\n') else {
        head.start_line = Span::new(from, strip_cr(buf, from, len));
        head.error = Some(ParseErrorKind::NoHeaderEnd);
        return head;
    };
    head.start_line = Span::new(from, strip_cr(buf, from, nl));
    let mut pos = nl + 1;
    let mut lines = 0usize;
    loop {
        match buf.get(pos) {
            None => {
                head.error.get_or_insert(ParseErrorKind::NoHeaderEnd);
                return head;
            }
            Some(b'\n') => {
                head.body_start = pos + 1;
                return head;
            }
            Some(b'\r') if buf.get(pos + 1) == Some(&b'\n') => {
                head.body_start = pos + 2;
                return head;
            }
            Some(_) => {}
        }
        let (line_end, next) = logical_line(buf, pos);
        lines += 1;
        let too_long = line_end - pos > limits.max_header_len;
        if too_long || lines > limits.max_headers {
            head.error = Some(if too_long {
                ParseErrorKind::HeaderTooLong
            } else {
                ParseErrorKind::TooManyHeaders
            });
            head.body_start = pos;
            return head;
        }
        match header_line(buf, pos, line_end) {
            Some(e) => head.entries.push(e),
            None => {
                head.error.get_or_insert(ParseErrorKind::BadHeaderLine);
            }
        }
        pos = next;
    }
}

/// Finds the end of the header line starting at `pos`, unfolding continuations in place.
/// Returns (end of content, start of next line).
fn logical_line(buf: &mut [u8], pos: usize) -> (usize, usize) {
    let len = buf.len();
    let mut scan = pos;
    loop {
        let Some(nl) = find_byte(buf, scan, b'\n') else {
            return (strip_cr(buf, scan, len), len);
        };
        let end = strip_cr(buf, scan, nl);
        if matches!(buf.get(nl + 1), Some(b' ' | b'\t')) {
            if let Some(fold) = buf.get_mut(end..=nl) {
                fold.fill(b' ');
            }
            scan = nl + 1;
            continue;
        }
        return (end, nl + 1);
    }
}

/// `end` moved back over one CR, never before `start`.
fn strip_cr(buf: &[u8], start: usize, end: usize) -> usize {
    if end > start && buf.get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    }
}

/// `token *(SP/HT) ":" value`, value trimmed of LWS.
fn header_line(buf: &[u8], start: usize, end: usize) -> Option<Entry> {
    let line = buf.get(start..end)?;
    let name_len = line
        .iter()
        .position(|&b| !TOKEN[usize::from(b)])
        .unwrap_or(line.len());
    if name_len == 0 {
        return None;
    }
    let mut i = name_len;
    while matches!(line.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    if line.get(i) != Some(&b':') {
        return None;
    }
    let (vs, ve) = trim_span(line, i + 1, line.len());
    Some(Entry {
        name: HeaderName::from_bytes(line.get(..name_len)?),
        name_span: Span::new(start, start + name_len),
        value: Span::new(start + vs, start + ve),
    })
}

fn trim_span(line: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    let lws = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t' | b'\r'));
    while s < e && lws(line.get(s)) {
        s += 1;
    }
    while e > s && lws(line.get(e - 1)) {
        e -= 1;
    }
    (s, e)
}

/// Replaces each byte of an invalid UTF-8 sequence with `?` so the header section can be
/// read as text; same length, so every span stays valid.
pub(crate) fn sanitize_utf8(bytes: &mut [u8]) {
    let mut pos = 0;
    while let Some(rest) = bytes.get(pos..) {
        match std::str::from_utf8(rest) {
            Ok(_) => return,
            Err(e) => {
                let bad = pos + e.valid_up_to();
                let n = e.error_len().unwrap_or(rest.len() - e.valid_up_to());
                if let Some(s) = bytes.get_mut(bad..bad + n) {
                    s.fill(b'?');
                }
                pos = bad + n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_valid_text() {
        let mut b = b"a\xffb\xe2\x82c\xc3\xa9".to_vec();
        sanitize_utf8(&mut b);
        assert_eq!(std::str::from_utf8(&b).ok(), Some("a?b??cé"));
        let mut b = b"ok\xe2".to_vec();
        sanitize_utf8(&mut b);
        assert_eq!(b, b"ok?");
    }

    #[test]
    fn unfolds_in_place_with_crlf_and_bare_lf() {
        let mut buf = b"X\r\nA: 1\r\n 2\n\t3\r\nB:\r\n\r\nbody".to_vec();
        let h = split_head(&mut buf, 0, &Limits::default());
        assert!(h.error.is_none());
        assert_eq!(h.entries.len(), 2);
        let v = |i: usize| {
            h.entries
                .get(i)
                .and_then(|e| buf.get(e.value.range()))
                .unwrap_or_default()
        };
        assert_eq!(v(0), b"1   2 \t3");
        assert_eq!(v(1), b"");
        assert_eq!(buf.get(h.body_start..), Some(&b"body"[..]));
    }
}
