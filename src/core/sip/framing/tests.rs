//! Framer tests: split and coalesced messages, keep-alives, Content-Length errors, limits.

use super::{Frame, Framer, FramingError, FramingErrorKind};
use crate::core::sip::message::{Limits, Message};

fn msg(body: &str) -> String {
    format!(
        "MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n\
         To: <sip:b@x>\r\nCall-ID: f1\r\nCSeq: 1 MESSAGE\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Pushes each chunk and drains frames after every push.
fn run(chunks: &[&[u8]], max: usize) -> Result<Vec<Frame>, FramingError> {
    let mut f = Framer::new(max);
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        while let Some(frame) = f.next_frame()? {
            out.push(frame);
        }
    }
    Ok(out)
}

fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
    run(chunks, 65536).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_split_point_gives_the_same_frames() {
    let stream = format!(
        "\r\n{}\r\n\r\n{}{}",
        msg("hello"),
        msg(""),
        msg("a\r\n\r\nb")
    );
    let bytes = stream.as_bytes();
    let whole = frames(&[bytes]);
    assert_eq!(whole.len(), 4);
    assert_eq!(whole.get(1), Some(&Frame::KeepAlive));
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        assert_eq!(frames(&[a, b]), whole, "split at {i}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(frames(&singles), whole);
    for frame in &whole {
        if let Frame::Message(m) = frame {
            assert!(Message::parse(m, &Limits::default()).is_ok());
        }
    }
}

#[test]
fn coalesced_messages_and_exact_body() {
    let a = msg("x");
    let b = msg("yz");
    let got = frames(&[format!("{a}{b}").as_bytes()]);
    assert_eq!(
        got,
        [
            Frame::Message(a.into_bytes()),
            Frame::Message(b.into_bytes())
        ]
    );
}

#[test]
fn keep_alives_and_lone_crlfs() {
    assert_eq!(
        frames(&[b"\r\n\r\n\r\n\r\n"]),
        [Frame::KeepAlive, Frame::KeepAlive]
    );
    // A lone CRLF (a pong) is skipped once more data shows it is not a ping.
    let m = msg("");
    assert_eq!(
        frames(&[b"\r\n", m.as_bytes()]),
        [Frame::Message(m.clone().into_bytes())]
    );
    let mut f = Framer::new(1000);
    f.push(b"\r\n");
    assert_eq!(f.next_frame(), Ok(None));
    f.push(b"\r");
    assert_eq!(f.next_frame(), Ok(None));
    f.push(b"\n");
    assert_eq!(f.next_frame(), Ok(Some(Frame::KeepAlive)));
    assert_eq!(f.buffered(), 0);
}

#[test]
fn compact_and_folded_content_length_and_bare_lf() {
    let m = "OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/TCP h\nl :\n  3\n\nabcREST";
    let got = frames(&[m.as_bytes()]);
    assert_eq!(
        got,
        [Frame::Message(
            b"OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/TCP h\nl :\n  3\n\nabc".to_vec()
        )]
    );
    let same = msg("ab").replace("\r\n\r\nab", "\r\ncontent-LENGTH: 2\r\n\r\nab");
    assert_eq!(frames(&[same.as_bytes()]).len(), 1);
}

fn error_of(s: &str, max: usize) -> FramingError {
    match run(&[s.as_bytes()], max) {
        Ok(f) => panic!("framed {f:?}"),
        Err(e) => e,
    }
}

#[test]
fn missing_content_length_on_a_stream_means_no_body() {
    let m = msg("").replace("Content-Length: 0\r\n", "");
    let frames = run(&[m.as_bytes(), m.as_bytes()], 65536).expect("framed");
    assert_eq!(frames.len(), 2, "{frames:?}");
}

#[test]
fn content_length_errors_are_fatal() {
    let base = msg("");
    let cases = [
        (
            base.replace("Length: 0", "Length: -999"),
            FramingErrorKind::BadContentLength,
        ),
        (
            base.replace("Length: 0", "Length: 1 2"),
            FramingErrorKind::BadContentLength,
        ),
        (
            base.replace("Length: 0", "Length: "),
            FramingErrorKind::BadContentLength,
        ),
        (
            base.replace("Length: 0", "Length: 99999999999999999999999"),
            FramingErrorKind::BadContentLength,
        ),
        (
            base.replace("Length: 0\r\n", "Length: 13\r\nl: 5\r\n"),
            FramingErrorKind::ConflictingContentLength,
        ),
        (
            base.replace("Length: 0", "Length: 70000"),
            FramingErrorKind::TooLarge(65536),
        ),
    ];
    for (s, kind) in cases {
        let e = error_of(&s, 65536);
        assert_eq!(e.kind(), &kind, "{s}");
        let head = e.head().unwrap_or_default();
        assert!(head.ends_with(b"\r\n\r\n") && head.starts_with(b"MESSAGE "));
        let resp = e
            .response("tg")
            .unwrap_or_else(|| panic!("no 400 for {kind:?}"));
        let r = Message::parse(&resp, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
        let want = if matches!(kind, FramingErrorKind::TooLarge(_)) {
            513
        } else {
            400
        };
        assert_eq!(r.status(), Some(want));
        assert_eq!(r.call_id(), "f1");
    }
}

#[test]
fn poisoned_after_error() {
    let mut f = Framer::new(100);
    f.push(b"OPTIONS sip:x SIP/2.0\r\nl: x\r\n\r\n");
    let e = f.next_frame();
    assert!(e.is_err());
    f.push(msg("").as_bytes());
    assert_eq!(f.next_frame(), e);
}

#[test]
fn oversized_header_section_without_end() {
    let mut f = Framer::new(64);
    f.push(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nX: ");
    assert_eq!(f.next_frame(), Ok(None));
    f.push(&[b'a'; 64]);
    let e = f.next_frame().err();
    assert_eq!(
        e.as_ref().map(|e| e.kind()),
        Some(&FramingErrorKind::TooLarge(64))
    );
    assert_eq!(e.as_ref().and_then(|e| e.head()).map(<[u8]>::len), Some(64));
    // Exactly at the limit still frames.
    let m = msg("");
    assert_eq!(run(&[m.as_bytes()], m.len()).map(|f| f.len()), Ok(1));
    assert!(run(&[m.as_bytes()], m.len() - 1).is_err());
}

#[test]
fn waits_for_the_body() {
    let m = msg("0123456789");
    let (a, b) = m.as_bytes().split_at(m.len() - 3);
    let mut f = Framer::new(65536);
    f.push(a);
    assert_eq!(f.next_frame(), Ok(None));
    f.push(b);
    assert_eq!(
        f.next_frame(),
        Ok(Some(Frame::Message(m.clone().into_bytes())))
    );
    assert_eq!(f.next_frame(), Ok(None));
}
