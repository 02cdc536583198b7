//! Size limits: whole message, header count, header line length (folded lines included).

use super::{req, INVITE};
use crate::core::sip::message::{Limits, Message, ParseErrorKind};

fn with(limits: &Limits, s: &str) -> Result<Message, ParseErrorKind> {
    Message::parse(s.as_bytes(), limits).map_err(|e| e.kind().clone())
}

#[test]
fn message_size() {
    let exact = Limits {
        max_message: INVITE.len(),
        ..Limits::default()
    };
    assert!(with(&exact, INVITE).is_ok());
    let small = Limits {
        max_message: INVITE.len() - 1,
        ..Limits::default()
    };
    let e = Message::parse(INVITE.as_bytes(), &small).err();
    assert_eq!(
        e.as_ref().map(|e| e.kind()),
        Some(&ParseErrorKind::TooLarge)
    );
    assert_eq!(e.as_ref().and_then(|e| e.status()), Some(513));
    let resp = e.and_then(|e| e.response("s")).unwrap_or_default();
    assert!(resp.starts_with(b"SIP/2.0 513 Message Too Large\r\n"));
    let owned = Message::parse_owned(INVITE.as_bytes().to_vec(), &small).err();
    assert_eq!(
        owned.map(|e| e.kind().clone()),
        Some(ParseErrorKind::TooLarge)
    );
}

#[test]
fn header_count() {
    let msg = req(&"X-H: v\r\n".repeat(10));
    // 5 fixed headers + 10 extra + Content-Length.
    let fits = Limits {
        max_headers: 16,
        ..Limits::default()
    };
    assert!(with(&fits, &msg).is_ok());
    let tight = Limits {
        max_headers: 15,
        ..Limits::default()
    };
    assert_eq!(
        with(&tight, &msg).err(),
        Some(ParseErrorKind::TooManyHeaders)
    );
    let e = Message::parse(msg.as_bytes(), &tight).err();
    // Via/From/To/Call-ID/CSeq came first, so a 400 can still be built.
    assert!(e.and_then(|e| e.response("s")).is_some());
}

#[test]
fn header_length_counts_folded_lines() {
    let value = "a".repeat(100);
    let line = format!("X-Big: {value}\r\n");
    let fits = Limits {
        max_header_len: line.len() - 2,
        ..Limits::default()
    };
    assert!(with(&fits, &req(&line)).is_ok());
    let tight = Limits {
        max_header_len: line.len() - 3,
        ..Limits::default()
    };
    assert_eq!(
        with(&tight, &req(&line)).err(),
        Some(ParseErrorKind::HeaderTooLong)
    );
    let folded = format!("X-Big: {}\r\n {}\r\n", "a".repeat(60), "b".repeat(60));
    let l = Limits {
        max_header_len: 100,
        ..Limits::default()
    };
    assert_eq!(
        with(&l, &req(&folded)).err(),
        Some(ParseErrorKind::HeaderTooLong)
    );
}

#[test]
fn defaults() {
    let d = Limits::default();
    assert_eq!(
        (d.max_message, d.max_headers, d.max_header_len),
        (65536, 256, 8192)
    );
}
