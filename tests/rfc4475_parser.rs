//! RFC 4475 torture messages replayed through the parser (as UDP datagrams) and the TCP
//! framer (at every split point). Endpoint decisions (416, 420, 415, 501, ...) are not the
//! parser's: here a message either parses, or fails with the status the conformance README
//! expects and a stateless response that itself parses.

use std::fs;
use std::path::PathBuf;

use trunkgate::core::sip::framing::{Frame, Framer, FramingErrorKind};
use trunkgate::core::sip::message::{HeaderName, Limits, Message, Method, ParseError, Scheme};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// Must parse.
    Valid,
    /// Must fail with this status and a response that parses.
    Fail(u16),
    /// 400 or drop: a response, when there is one, parses.
    FailOrDrop,
    /// Must fail with no status (an invalid response).
    Drop,
    /// The README accepts any final status: parse, or fail with 400 and a usable response.
    Any,
}

const TABLE: &[(&str, Want)] = &[
    ("wsinv.dat", Want::Valid),
    ("intmeth.dat", Want::Valid),
    ("esc01.dat", Want::Valid),
    ("escnull.dat", Want::Valid),
    ("esc02.dat", Want::Valid),
    ("lwsdisp.dat", Want::Valid),
    ("longreq.dat", Want::Valid),
    ("dblreq.dat", Want::Valid),
    ("semiuri.dat", Want::Valid),
    ("transports.dat", Want::Valid),
    ("mpart01.dat", Want::Valid),
    ("unreason.dat", Want::Valid),
    ("noreason.dat", Want::Valid),
    ("badinv01.dat", Want::Fail(400)),
    ("clerr.dat", Want::Fail(400)),
    ("ncl.dat", Want::Fail(400)),
    ("scalar02.dat", Want::Fail(400)),
    ("scalarlg.dat", Want::Drop),
    ("quotbal.dat", Want::Any),
    ("ltgtruri.dat", Want::Any),
    ("lwsruri.dat", Want::Any),
    ("lwsstart.dat", Want::Any),
    ("trws.dat", Want::Any),
    ("escruri.dat", Want::Any),
    ("baddate.dat", Want::Any),
    ("regbadct.dat", Want::Any),
    ("badaspec.dat", Want::Any),
    ("baddn.dat", Want::Any),
    ("badvers.dat", Want::Fail(505)),
    ("mismatch01.dat", Want::Fail(400)),
    ("mismatch02.dat", Want::Fail(400)),
    ("bigcode.dat", Want::Drop),
    ("badbranch.dat", Want::Valid),
    ("insuf.dat", Want::FailOrDrop),
    ("unkscm.dat", Want::Valid),
    ("novelsc.dat", Want::Valid),
    ("unksm2.dat", Want::Valid),
    ("bext01.dat", Want::Valid),
    ("invut.dat", Want::Valid),
    ("regaut01.dat", Want::Valid),
    ("multi01.dat", Want::Fail(400)),
    ("mcl01.dat", Want::Fail(400)),
    ("bcast.dat", Want::Valid),
    ("zeromf.dat", Want::Valid),
    ("cparam01.dat", Want::Valid),
    ("cparam02.dat", Want::Valid),
    ("regescrt.dat", Want::Valid),
    ("sdp01.dat", Want::Valid),
    ("inv2543.dat", Want::Valid),
    ("test.dat", Want::FailOrDrop),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/rfc4475")
}

/// The file as the README says to send it (baddn.dat gets its missing blank line).
fn load(name: &str) -> Vec<u8> {
    let mut bytes = fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    if name == "baddn.dat" {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    Message::parse(bytes, &Limits::default())
}

/// `"name": { ... "valid": true|false` from expectations.json, without a JSON dependency.
fn valid_in_json(json: &str, name: &str) -> bool {
    let at = json
        .find(&format!("\"{name}\""))
        .unwrap_or_else(|| panic!("{name} not in json"));
    let rest = json.get(at..).unwrap_or_default();
    let v = rest
        .find("\"valid\":")
        .unwrap_or_else(|| panic!("{name}: no valid key"));
    rest.get(v + 8..)
        .unwrap_or_default()
        .trim_start()
        .starts_with("true")
}

#[test]
fn table_matches_the_corpus() {
    let mut on_disk: Vec<String> = fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(listed.len(), 50);
    let json = fs::read_to_string(dir().join("expectations.json")).unwrap_or_default();
    for (name, want) in TABLE {
        assert_eq!(valid_in_json(&json, name), *want == Want::Valid, "{name}");
    }
}

fn check_response(name: &str, e: &ParseError, status: u16, required: bool) {
    assert_eq!(e.status(), Some(status), "{name}: {e}");
    match e.response("trunkgate-test") {
        Some(resp) => {
            let r = parse(&resp).unwrap_or_else(|err| {
                panic!(
                    "{name}: response does not parse: {err}\n{}",
                    String::from_utf8_lossy(&resp)
                )
            });
            assert_eq!(r.status(), Some(status), "{name}");
            assert!(r.to_tag().is_some(), "{name}: response without To tag");
            assert!(r.reason().is_some_and(|p| !p.is_empty()), "{name}");
        }
        None => assert!(!required, "{name}: no response built"),
    }
}

fn round_trip(name: &str, m: &Message) {
    let once = m.to_bytes();
    let again = parse(&once).unwrap_or_else(|e| panic!("{name}: reparse failed: {e}"));
    assert_eq!(again.to_bytes(), once, "{name}: unstable serialisation");
    assert_eq!(again.call_id(), m.call_id(), "{name}");
    assert_eq!(again.cseq(), m.cseq(), "{name}");
    assert_eq!(again.vias().count(), m.vias().count(), "{name}");
    assert_eq!(again.body(), m.body(), "{name}");
    assert_eq!(again.from_tag(), m.from_tag(), "{name}");
}

#[test]
fn every_file_meets_its_parser_expectation() {
    for (name, want) in TABLE {
        let bytes = load(name);
        let result = parse(&bytes);
        match (want, &result) {
            (Want::Valid, Ok(m)) | (Want::Any, Ok(m)) => round_trip(name, m),
            (Want::Fail(status), Err(e)) => check_response(name, e, *status, true),
            (Want::Any, Err(e)) => check_response(name, e, 400, true),
            (Want::FailOrDrop, Err(e)) => {
                if e.status().is_some() {
                    check_response(name, e, 400, false);
                }
            }
            (Want::Drop, Err(e)) => {
                assert_eq!((e.status(), e.response("x")), (None, None), "{name}");
            }
            (_, Ok(_)) => panic!("{name}: parsed, expected {want:?}"),
            (_, Err(e)) => panic!("{name}: {e} ({:?}), expected {want:?}", e.kind()),
        }
    }
}

fn ok(name: &str) -> Message {
    parse(&load(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn valid_messages_are_understood() {
    let m = ok("wsinv.dat");
    assert_eq!(m.vias().count(), 3);
    assert_eq!(
        (m.top_via().host, m.top_via().branch()),
        ("192.0.2.2", Some("390skdjuw"))
    );
    assert_eq!(
        m.vias().nth(1).map(|v| (v.transport, v.host)),
        Some(("TCP", "spindle.example.com"))
    );
    assert_eq!(
        m.vias().nth(2).and_then(|v| v.branch()),
        Some("z9hG4bK30239")
    );
    assert_eq!(m.to_tag(), Some("1918181833n"));
    assert_eq!(m.from_hdr().display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(m.from_tag(), Some("98asjd8"));
    assert_eq!((m.max_forwards(), m.cseq().seq), (Some(68), 9));
    assert_eq!(m.header(&HeaderName::Subject), Some(""));
    assert!(m
        .header_by_name("newfangledheader")
        .is_some_and(|v| v.ends_with("continued newfangled value")));
    let c = m.contact().unwrap_or_else(|| panic!("contact"));
    assert_eq!(c.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c.params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(c.params.get("q"), Some(Some("0.33")));
    assert_eq!(m.body().len(), 150);

    let m = ok("intmeth.dat");
    assert_eq!(
        m.method(),
        Some(&Method::Other(
            "!interesting-Method0123456789_*+`.%indeed'~".into()
        ))
    );
    assert!(m.header_by_name("extensionHeader-!.%*+_`'~").is_some());
    assert_eq!(
        m.to_hdr().display.as_deref(),
        Some("BEL:\x07 NUL:\0 DEL:\x7f")
    );

    let m = ok("esc02.dat");
    assert!(matches!(m.method(), Some(Method::Other(_))));
    assert_eq!(m.header_values(&HeaderName::Contact).count(), 2);
    assert_eq!(
        m.header_by_name("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );

    assert_eq!(ok("longreq.dat").vias().count(), 34);
    let transports: Vec<_> = ok("transports.dat")
        .vias()
        .map(|v| v.transport.to_owned())
        .collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    let m = ok("dblreq.dat");
    assert_eq!((m.method(), m.body()), (Some(&Method::Register), &b""[..]));
    let m = ok("mpart01.dat");
    assert!(m.body().len() == 553 && m.body().contains(&0));
    assert_eq!(ok("noreason.dat").reason(), Some(""));
    assert!(ok("unreason.dat")
        .reason()
        .is_some_and(|r| r.starts_with("= 2**3 * 5**2 ")));
    assert_eq!(
        ok("bcast.dat").vias().nth(1).map(|v| v.host),
        Some("255.255.255.255")
    );
    let m = ok("inv2543.dat");
    assert_eq!(
        (m.max_forwards(), m.from_tag(), m.body().len()),
        (None, None, 105)
    );
    assert_eq!(m.top_via().branch(), None);
    assert_eq!(ok("zeromf.dat").max_forwards(), Some(0));
    assert_eq!(ok("badbranch.dat").top_via().branch(), Some("z9hG4bK"));
    let m = ok("unkscm.dat");
    let uri = m.request_uri().unwrap_or_default();
    assert_eq!(
        trunkgate::core::sip::message::parse_uri(uri).map(|u| u.scheme),
        Ok(Scheme::Other)
    );
    let m = ok("unksm2.dat");
    assert_eq!(
        (m.to_hdr().uri.scheme_str, m.from_hdr().uri.scheme_str),
        ("isbn", "http")
    );
    assert_eq!(
        ok("cparam01.dat")
            .contact()
            .map(|c| c.params.contains("unknownparam")),
        Some(true)
    );
    assert_eq!(
        ok("cparam02.dat")
            .contact()
            .map(|c| c.uri.params.contains("unknownparam")),
        Some(true)
    );
    assert_eq!(
        ok("regescrt.dat").contact().and_then(|c| c.uri.headers),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    let m = ok("semiuri.dat");
    let uri = trunkgate::core::sip::message::parse_uri(m.request_uri().unwrap_or_default());
    assert_eq!(uri.map(|u| u.user), Ok(Some("user;par=u%40example.net")));
    let m = ok("escnull.dat");
    let users: Vec<_> = m
        .header_values(&HeaderName::Contact)
        .filter_map(|c| {
            trunkgate::core::sip::message::parse_name_addr(c)
                .ok()?
                .uri
                .user
        })
        .collect();
    assert_eq!(users, ["%00", "%00%00"]);
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Frame(Vec<u8>),
    KeepAlive,
    Error(FramingErrorKind),
}

fn framed(chunks: &[&[u8]]) -> Vec<Outcome> {
    let mut f = Framer::new(Limits::default().max_message);
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        loop {
            match f.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Message(m))) => out.push(Outcome::Frame(m)),
                Ok(Some(Frame::KeepAlive)) => out.push(Outcome::KeepAlive),
                Err(e) => {
                    out.push(Outcome::Error(e.kind().clone()));
                    return out;
                }
            }
        }
    }
    out
}

#[test]
fn every_file_through_the_framer_at_every_split_point() {
    for (name, want) in TABLE {
        // The stream sees the archive bytes as they are (baddn.dat never completes).
        let bytes = fs::read(dir().join(name)).unwrap_or_default();
        let whole = framed(&[&bytes]);
        let expected: Vec<Outcome> = match *name {
            "ncl.dat" => vec![Outcome::Error(FramingErrorKind::BadContentLength)],
            "mcl01.dat" => vec![Outcome::Error(FramingErrorKind::ConflictingContentLength)],
            // No Content-Length on a stream reads as no body; the SDP stays buffered.
            "inv2543.dat" => {
                let end = bytes
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(0, |p| p + 4);
                vec![Outcome::Frame(
                    bytes.get(..end).unwrap_or_default().to_vec(),
                )]
            }
            "clerr.dat" | "baddn.dat" => vec![],
            "dblreq.dat" => {
                // On a stream the trailing INVITE is framed by its own Content-Length (150,
                // five octets short of its SDP); those five octets ("C" CRLF CRLF) are then a
                // header section of their own, which the parser will reject.
                let end = bytes
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(0, |p| p + 4);
                let invite = bytes.get(end + 2..bytes.len() - 5).unwrap_or_default();
                assert!(invite.starts_with(b"INVITE "));
                vec![
                    Outcome::Frame(bytes.get(..end).unwrap_or_default().to_vec()),
                    Outcome::Frame(invite.to_vec()),
                    Outcome::Frame(bytes.get(bytes.len() - 5..).unwrap_or_default().to_vec()),
                ]
            }
            _ => vec![Outcome::Frame(bytes.clone())],
        };
        assert_eq!(whole, expected, "{name}");
        for i in 0..=bytes.len() {
            let (a, b) = bytes.split_at(i);
            assert_eq!(framed(&[a, b]), whole, "{name} split at {i}");
        }
        // dblreq's trailing octets are not the datagram's message: compare its first frame only.
        let compared = if *name == "dblreq.dat" {
            1
        } else {
            whole.len()
        };
        for o in whole.iter().take(compared) {
            if let Outcome::Frame(m) = o {
                let udp_ok = parse(&load(name)).is_ok();
                assert_eq!(parse(m).is_ok(), udp_ok, "{name}: TCP and UDP parse differ");
                assert!(udp_ok || *want != Want::Valid, "{name}");
            }
        }
    }
}

#[test]
fn mangled_files_never_panic() {
    let specials = [
        b'\r', b'\n', b' ', b':', b';', b',', b'"', b'<', b'\\', 0xff, 0,
    ];
    for (name, _) in TABLE {
        let bytes = load(name);
        for cut in 0..=bytes.len() {
            exercise(bytes.get(..cut).unwrap_or_default());
        }
        let mut copy = bytes.clone();
        for i in 0..copy.len() {
            let orig = copy.get(i).copied().unwrap_or_default();
            // Three substitutions per position, rotating so every special meets every column.
            for k in 0..3 {
                let s = specials
                    .get((i + k * 4) % specials.len())
                    .copied()
                    .unwrap_or_default();
                if let Some(b) = copy.get_mut(i) {
                    *b = s;
                }
                exercise(&copy);
            }
            if let Some(b) = copy.get_mut(i) {
                *b = orig;
            }
        }
    }
}

/// Runs every entry point; only a panic can fail this.
fn exercise(bytes: &[u8]) {
    let mut framer = Framer::new(4096);
    framer.push(bytes);
    while let Ok(Some(_)) = framer.next_frame() {}
    if let Err(e) = framer.next_frame() {
        if let Some(r) = e.response("x") {
            assert!(parse(&r).is_ok(), "framing error response must parse");
        }
    }
    match parse(bytes) {
        Ok(m) => {
            let _ = (m.top_via(), m.from_hdr(), m.to_hdr(), m.contact(), m.cseq());
            let _ = m.header_values(&HeaderName::Via).count();
            let again = parse(&m.to_bytes());
            assert!(
                again.is_ok(),
                "serialisation of a parsed message must parse"
            );
        }
        Err(e) => {
            if let Some(r) = e.response("x") {
                assert!(
                    parse(&r).is_ok(),
                    "error response must parse:\n{}",
                    String::from_utf8_lossy(&r)
                );
            }
        }
    }
}
