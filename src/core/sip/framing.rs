//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3, §7.5; RFC 5626 §4.4.1 keep-alives):
//! cuts a byte stream into whole messages by the header section's end and Content-Length,
//! which is mandatory on streams. Lone CRLFs between messages are skipped; a double CRLF is a
//! keep-alive ping. Any framing error is fatal for the connection.
//! Must not: parse beyond what framing needs (that is `message`), or touch sockets.

use super::message::{ParseError, ParseErrorKind};

/// What the stream yielded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A `"\r\n\r\n"` ping; the caller answers `"\r\n"`.
    KeepAlive,
    /// One complete message: start line, headers, blank line and exactly Content-Length octets.
    Message(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingErrorKind {
    #[error("missing Content-Length on a stream")]
    MissingContentLength,
    #[error("malformed Content-Length")]
    BadContentLength,
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
}

/// The connection must be closed; [`FramingError::head`] gives the header bytes so a 400 can
/// be attempted first (see [`FramingError::response`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct FramingError {
    kind: FramingErrorKind,
    head: Option<Vec<u8>>,
}

impl FramingError {
    pub fn kind(&self) -> &FramingErrorKind {
        &self.kind
    }

    pub fn head(&self) -> Option<&[u8]> {
        self.head.as_deref()
    }

    /// A stateless error response to the offending request, if one can be built.
    pub fn response(&self, server: &str) -> Option<Vec<u8>> {
        let kind = match self.kind {
            FramingErrorKind::MissingContentLength => ParseErrorKind::MissingContentLength,
            FramingErrorKind::BadContentLength => ParseErrorKind::BadHeader("Content-Length"),
            FramingErrorKind::ConflictingContentLength => ParseErrorKind::ConflictingContentLength,
            FramingErrorKind::TooLarge(_) => ParseErrorKind::TooLarge,
        };
        ParseError::from_head(self.head()?, kind).response(server)
    }
}

/// Accumulates stream bytes and yields frames.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    pos: usize,
    /// Where the search for the header end resumes (absolute index into `buf`).
    scanned: usize,
    max_message: usize,
    failed: Option<FramingError>,
}

impl Framer {
    pub fn new(max_message: usize) -> Self {
        Framer {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            max_message,
            failed: None,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos.min(self.buf.len())
    }

    /// Call until `Ok(None)`. After an error every call returns that error again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.frame();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
            self.pos = 0;
        }
        self.compact();
        result
    }

    fn frame(&mut self) -> Result<Option<Frame>, FramingError> {
        loop {
            let data = self.buf.get(self.pos..).unwrap_or(&[]);
            match data {
                [] => return Ok(None),
                [b'\r', b'\n', b'\r', b'\n', ..] => {
                    self.consume(4);
                    return Ok(Some(Frame::KeepAlive));
                }
                // Could still become a keep-alive: wait.
                [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                [b'\r', b'\n', ..] => self.consume(2),
                [b'\r' | b'\n', ..] => self.consume(1),
                _ => break,
            }
        }
        let Some(head_len) = self.header_end() else {
            let pending = self.buffered();
            if pending > self.max_message {
                let head = self
                    .buf
                    .get(self.pos..self.pos.saturating_add(self.max_message));
                return Err(self.error(FramingErrorKind::TooLarge(self.max_message), head));
            }
            return Ok(None);
        };
        let head = self
            .buf
            .get(self.pos..self.pos.saturating_add(head_len))
            .unwrap_or(&[]);
        let body_len = match content_length(head) {
            Ok(n) => n,
            Err(kind) => return Err(self.error(kind, Some(head))),
        };
        let total = head_len.saturating_add(body_len);
        if total > self.max_message {
            return Err(self.error(FramingErrorKind::TooLarge(self.max_message), Some(head)));
        }
        let Some(msg) = self.buf.get(self.pos..self.pos.saturating_add(total)) else {
            return Ok(None);
        };
        let msg = msg.to_vec();
        self.consume(total);
        Ok(Some(Frame::Message(msg)))
    }

    fn error(&self, kind: FramingErrorKind, head: Option<&[u8]>) -> FramingError {
        FramingError {
            kind,
            head: head.map(<[u8]>::to_vec),
        }
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        self.scanned = self.pos;
    }

    /// Drops consumed bytes once they dominate the buffer, keeping pushes amortised O(1).
    fn compact(&mut self) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.scanned -= self.pos.min(self.scanned);
            self.pos = 0;
        }
    }

    /// Length of the header section including the blank line (CRLF CRLF or bare LF LF).
    fn header_end(&mut self) -> Option<usize> {
        // Resume a few bytes back so a terminator split across pushes is found.
        let from = self.scanned.saturating_sub(3).max(self.pos);
        let data = self.buf.get(from..).unwrap_or(&[]);
        let mut i = 0;
        while let Some(off) = data
            .get(i..)
            .and_then(|d| d.iter().position(|&b| b == b'\n'))
        {
            let nl = i + off;
            match (data.get(nl + 1), data.get(nl + 2)) {
                (Some(b'\n'), _) => return Some(from + nl + 2 - self.pos),
                (Some(b'\r'), Some(b'\n')) => return Some(from + nl + 3 - self.pos),
                (Some(b'\r'), None) | (None, _) => break,
                _ => i = nl + 1,
            }
        }
        self.scanned = self.buf.len();
        None
    }
}

/// The Content-Length of a header section (long or compact name, any case, LWS before the
/// colon, folded lines joined). Identical repeats are tolerated here; the parser rejects them.
///
/// RFC 3261 §20.14 makes Content-Length mandatory on streams, but a missing one is read as 0
/// (RFC 4475 §3.4.1 asks RFC 2543-era peers to be accepted, and body-less ACK/BYE from sloppy
/// stacks are common); a body sent anyway then fails to parse as the next message.
fn content_length(head: &[u8]) -> Result<usize, FramingErrorKind> {
    let mut found: Option<usize> = None;
    let mut lines = head.split(|&b| b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        let mut value = Vec::new();
        let Some(v) = cl_value(line) else {
            continue;
        };
        value.extend_from_slice(v);
        while let Some(cont) = lines.next_if(|l| matches!(l.first(), Some(b' ' | b'\t'))) {
            value.push(b' ');
            value.extend_from_slice(cont);
        }
        let n = std::str::from_utf8(&value)
            .ok()
            .map(|v| v.trim_matches([' ', '\t', '\r']))
            .and_then(parse_digits)
            .ok_or(FramingErrorKind::BadContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(FramingErrorKind::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found.unwrap_or(0))
}

/// The value part of a `Content-Length`/`l` header line, or `None` for other lines.
fn cl_value(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line.get(..colon)?;
    let name = name
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .and_then(|end| name.get(..=end))?;
    let is_cl = name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l");
    is_cl.then(|| line.get(colon + 1..).unwrap_or(&[]))
}

fn parse_digits(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0usize, |n, b| {
        n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests;
