//! Start lines, header sections, validation and error responses.

use super::{fail, parse, req, INVITE};
use crate::core::sip::message::{HeaderName, Limits, Message, Method, ParseErrorKind};

#[test]
fn typical_invite_accessors() {
    let m = parse(INVITE);
    assert!(m.is_request());
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(
        m.request_uri(),
        Some("sip:+918035735900@gw.example.com:5060;user=phone")
    );
    assert_eq!(m.call_id(), "3c2a5b8e1f4d7a9c@198.51.100.7");
    assert_eq!((m.cseq().seq, m.cseq().method), (102, Method::Invite));
    assert_eq!(m.max_forwards(), Some(70));
    assert_eq!(m.from_tag(), Some("as6d2f1a2b"));
    assert_eq!(m.to_tag(), None);
    assert_eq!(m.content_type(), Some("application/sdp"));
    assert_eq!(
        m.header_by_name("x-workspace-id"),
        Some("2b37ba17-4c1e-4f5a-9d2e-8f1b6c3a7e90")
    );
    assert_eq!(m.header_by_name("user-agent"), Some("Ameyo-PBX 4.2"));
    let allow: Vec<_> = m.header_values(&HeaderName::Allow).collect();
    assert_eq!(allow.len(), 8);
    assert_eq!(allow.first(), Some(&"INVITE"));
    let v = m.top_via();
    assert_eq!(
        (v.transport, v.host, v.port),
        ("UDP", "198.51.100.7", Some(5060))
    );
    assert_eq!(v.rport(), Some(None));
    let c = m.contact().unwrap_or_else(|| panic!("contact"));
    assert_eq!(c.uri.params.get("transport"), Some(Some("udp")));
    assert!(m.body().starts_with(b"v=0\r\n"));
    assert_eq!(m.status(), None);
    assert_eq!(m.reason(), None);
}

#[test]
fn compact_forms_and_case() {
    let m = parse(
        "MESSAGE sip:b@x SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\nf: <sip:a@x>;tag=9\r\n\
         T : sip:b@x\r\ni:abc\r\nCSEQ: 4 MESSAGE\r\nc: text/plain\r\nk: path\r\nm: <sip:a@h>\r\n\
         l: 2\r\ns: hi\r\ne: gzip\r\no: dialog\r\nr: <sip:c@x>\r\nb: <sip:d@x>\r\nu: talk\r\n\
         x: 1800\r\n\r\nok",
    );
    assert_eq!(m.call_id(), "abc");
    assert_eq!(m.to_hdr().uri.user, Some("b"));
    assert_eq!(m.from_tag(), Some("9"));
    assert_eq!(m.content_type(), Some("text/plain"));
    assert_eq!(m.header(&HeaderName::Supported), Some("path"));
    assert_eq!(m.header(&HeaderName::Subject), Some("hi"));
    assert_eq!(m.header(&HeaderName::ContentEncoding), Some("gzip"));
    assert_eq!(m.header(&HeaderName::Event), Some("dialog"));
    assert_eq!(m.header(&HeaderName::ReferTo), Some("<sip:c@x>"));
    assert_eq!(m.header(&HeaderName::ReferredBy), Some("<sip:d@x>"));
    assert_eq!(m.header(&HeaderName::AllowEvents), Some("talk"));
    assert_eq!(m.header(&HeaderName::SessionExpires), Some("1800"));
    assert_eq!(m.header_by_name("Content-Length"), Some("2"));
    assert_eq!(m.body(), b"ok");
    let out = String::from_utf8(m.to_bytes()).unwrap_or_default();
    assert!(
        out.contains("\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"),
        "{out}"
    );
    assert!(out.contains("\r\nTo: sip:b@x\r\n") && out.contains("\r\nSession-Expires: 1800\r\n"));
    assert!(out.ends_with("\r\nContent-Length: 2\r\n\r\nok"));
}

#[test]
fn folding_is_unfolded_in_place() {
    let m = parse(&req(
        "Subject: first\r\n  second\r\n\tthird\r\nX-Long:\r\n value\r\n",
    ));
    assert_eq!(
        m.header(&HeaderName::Subject),
        Some("first    second  \tthird")
    );
    assert_eq!(m.header_by_name("x-long"), Some("value"));
    let round = String::from_utf8(m.to_bytes()).unwrap_or_default();
    assert!(round.contains("Subject: first    second  \tthird\r\n"));
}

#[test]
fn bare_lf_line_ends() {
    let s = req("X-A: 1\r\n").replace("\r\n", "\n");
    let m = parse(&s);
    assert_eq!(m.header_by_name("X-A"), Some("1"));
    assert_eq!(m.call_id(), "c1@192.0.2.1");
    let m = parse(&req("X-A: 1\n folded\r\n"));
    assert_eq!(m.header_by_name("x-a"), Some("1  folded"));
}

#[test]
fn multi_value_via_keeps_all_values() {
    let m = parse(&req("Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK2, SIP/2.0/UDP [2001:db8::5]:5070;branch=z9hG4bK3;received=2001:db8::1\r\n"));
    let vias: Vec<_> = m.vias().collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias.get(1).map(|v| v.host), Some("a.example.com"));
    assert_eq!(
        vias.get(2).map(|v| (v.host, v.port)),
        Some(("[2001:db8::5]", Some(5070)))
    );
    assert_eq!(vias.get(2).and_then(|v| v.received()), Some("2001:db8::1"));
    assert_eq!(m.top_via().branch(), Some("z9hG4bK776"));
    assert_eq!(m.header_values(&HeaderName::Via).count(), 3);
}

#[test]
fn quoted_display_names_and_ipv6_uri() {
    let s = req("").replace(
        "From: <sip:alice@example.com>;tag=1",
        r#"From: "A \"B\" C" <sip:alice@[2001:db8::7]:5062;transport=tcp>;tag=1"#,
    );
    let m = parse(&s);
    let f = m.from_hdr();
    assert_eq!(f.display.as_deref(), Some(r#"A "B" C"#));
    assert_eq!((f.uri.host, f.uri.port), ("[2001:db8::7]", Some(5062)));
    assert_eq!(f.tag(), Some("1"));
}

#[test]
fn unknown_headers_are_kept_in_order() {
    let m = parse(&req("X-One: 1\r\nX-Two: a, \"b,c\", <d,e>\r\nX-One: 2\r\n"));
    let names: Vec<_> = m.headers().map(|(_, n, _)| n).collect();
    assert_eq!(names.get(5..8), Some(&["X-One", "X-Two", "X-One"][..]));
    assert_eq!(m.header_by_name("X-ONE"), Some("1"));
    assert_eq!(m.header_by_name("x-three"), None);
    let two: Vec<_> = m.header_values(&HeaderName::Other).collect();
    assert_eq!(two, ["1", "a", "\"b,c\"", "<d,e>", "2"]);
}

#[test]
fn responses() {
    let m = parse("SIP/2.0 180 Ringing Now\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: r\r\nCSeq: 7 INVITE\r\n\r\n");
    assert!(!m.is_request());
    assert_eq!((m.status(), m.reason()), (Some(180), Some("Ringing Now")));
    assert_eq!(m.cseq().method, Method::Invite);
    assert_eq!(m.to_tag(), Some("2"));
    let m = parse("SIP/2.0 100\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>\r\nTo: <sip:b@x>\r\nCall-ID: r\r\nCSeq: 7 INVITE\r\n\r\n");
    assert_eq!(m.reason(), Some(""));
    for bad in [
        "SIP/2.0 99 x",
        "SIP/2.0 700 x",
        "SIP/2.0 1000 x",
        "SIP/2.0 20x OK",
        "SIP/3.0 200 OK",
        "SIP/2.0",
    ] {
        let e = fail(&format!("{bad}\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>\r\nTo: <sip:b@x>\r\nCall-ID: r\r\nCSeq: 7 INVITE\r\n\r\n"));
        assert_eq!((e.status(), e.response("tg")), (None, None), "{bad}");
    }
}

#[test]
fn datagram_content_length_rules() {
    let base = req("").replace("Content-Length: 0\r\n", "");
    let m = parse(&format!("{base}hello"));
    assert_eq!(m.body(), b"hello");
    let with_cl = base.replace("\r\n\r\n", "\r\nContent-Length: 3\r\n\r\n");
    let m = parse(&format!("{with_cl}hello"));
    assert_eq!(m.body(), b"hel");
    assert!(m.to_bytes().ends_with(b"Content-Length: 3\r\n\r\nhel"));
    let e = fail(&with_cl.replace("Length: 3", "Length: 30"));
    assert_eq!(
        (e.kind(), e.status()),
        (&ParseErrorKind::BodyTruncated, Some(400))
    );
    let e = fail(&with_cl.replace("Length: 3", "Length: -3"));
    assert_eq!(e.kind(), &ParseErrorKind::BadHeader("Content-Length"));
    let e = fail(&req("l: 5\r\n"));
    assert_eq!(e.kind(), &ParseErrorKind::ConflictingContentLength);
    let e = fail(&req("Content-Length: 0\r\n"));
    assert_eq!(e.kind(), &ParseErrorKind::DuplicateHeader("Content-Length"));
}

#[test]
fn validation_errors_are_400_with_a_response() {
    let cases = [
        (
            req("").replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"),
            ParseErrorKind::CSeqMethodMismatch,
        ),
        (
            req("").replace("CSeq: 1 OPTIONS", "CSeq: 4294967296 OPTIONS"),
            ParseErrorKind::BadHeader("CSeq"),
        ),
        (
            req("Max-Forwards: 256\r\n"),
            ParseErrorKind::BadHeader("Max-Forwards"),
        ),
        (
            req("Call-ID: again\r\n"),
            ParseErrorKind::DuplicateHeader("Call-ID"),
        ),
        (
            req("t: <sip:x@y>\r\n"),
            ParseErrorKind::DuplicateHeader("To"),
        ),
        (
            req("Via: SIP/2.0/UDP h;;\r\n"),
            ParseErrorKind::BadHeader("Via"),
        ),
        (
            req("Via: SIP/2.0/UDP h,\r\n"),
            ParseErrorKind::BadHeader("Via"),
        ),
        (req("Via:\r\n"), ParseErrorKind::BadHeader("Via")),
        (req("No colon here\r\n"), ParseErrorKind::BadHeaderLine),
        (
            req("").replace("sip:bob@example.com SIP", "<sip:bob@example.com> SIP"),
            ParseErrorKind::BadRequestUri,
        ),
        (
            req("").replace(" SIP/2.0\r\n", "\r\n"),
            ParseErrorKind::BadRequestLine,
        ),
    ];
    for (msg, kind) in cases {
        let e = fail(&msg);
        assert_eq!(e.kind(), &kind, "{msg}");
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.reason(), kind.to_string());
        let resp = e
            .response("trunkgate")
            .unwrap_or_else(|| panic!("no response for {kind:?}"));
        let r = Message::parse(&resp, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.status(), r.reason()),
            (Some(400), Some(kind.to_string().as_str()))
        );
        assert_eq!(r.call_id(), "c1@192.0.2.1");
        assert_eq!(r.top_via().branch(), Some("z9hG4bK776"));
        assert!(r.to_tag().is_some());
        assert_eq!(r.header(&HeaderName::Server), Some("trunkgate"));
    }
}

#[test]
fn unanswerable_400s_give_no_response() {
    let cases = [
        (
            req("").replace(
                "From: <sip:alice@example.com>",
                "From: <sip:alice@example.com",
            ),
            ParseErrorKind::BadHeader("From"),
        ),
        (
            req("").replace("Call-ID: c1@192.0.2.1\r\n", ""),
            ParseErrorKind::MissingHeader("Call-ID"),
        ),
        (
            req("").replace("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776\r\n", ""),
            ParseErrorKind::MissingHeader("Via"),
        ),
    ];
    for (msg, kind) in cases {
        let e = fail(&msg);
        assert_eq!((e.kind(), e.status()), (&kind, Some(400)));
        assert_eq!(e.response("s"), None, "{kind:?}");
    }
}

#[test]
fn error_response_is_stateless_and_keeps_an_existing_to_tag() {
    let msg = req("").replace("CSeq: 1 OPTIONS", "CSeq: 1 INFO");
    let a = fail(&msg).response("").unwrap_or_default();
    let b = fail(&msg).response("").unwrap_or_default();
    assert_eq!(a, b);
    assert!(!String::from_utf8_lossy(&a).contains("Server:"));
    let tagged = msg.replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=keep",
    );
    let r = fail(&tagged).response("x").unwrap_or_default();
    let r = Message::parse(&r, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.to_tag(), Some("keep"));
}

#[test]
fn version_and_garbage() {
    let e = fail(&req("").replace(" SIP/2.0\r\n", " SIP/3.0\r\n"));
    assert_eq!(
        (e.kind(), e.status()),
        (&ParseErrorKind::BadVersion, Some(505))
    );
    let r = e.response("s").unwrap_or_default();
    assert!(r.starts_with(b"SIP/2.0 505 Version Not Supported\r\n"));
    for junk in [
        "",
        "\r\n\r\n",
        "hello",
        "\0\x01\x02 stun",
        "GET\r\n\r\n",
        "INVITE",
    ] {
        let e = fail(junk);
        assert_eq!((e.status(), e.response("s")), (None, None), "{junk:?}");
    }
    let e = fail("OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n");
    assert_eq!(
        (e.kind(), e.status()),
        (&ParseErrorKind::NoHeaderEnd, Some(400))
    );
    assert_eq!(e.response("s"), None);
}

#[test]
fn liberal_request_line_and_invalid_utf8() {
    let m = parse(&req("").replace(
        "OPTIONS sip:bob@example.com SIP/2.0",
        "OPTIONS  sip:bob@example.com   SIP/2.0  ",
    ));
    assert_eq!(m.request_uri(), Some("sip:bob@example.com"));
    let mut bytes = req("Subject: caf\u{e9}\r\n").into_bytes();
    if let Some(p) = bytes.windows(2).position(|w| w == [0xc3, 0xa9]) {
        bytes.remove(p + 1);
    }
    let m = Message::parse(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.header(&HeaderName::Subject), Some("caf?"));
}

#[test]
fn round_trip_is_stable() {
    for s in [INVITE.to_owned(), req("Subject: a\r\n b\r\nX: ;;,\r\n")] {
        let once = parse(&s).to_bytes();
        let twice = Message::parse(&once, &Limits::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .to_bytes();
        assert_eq!(once, twice);
    }
}
