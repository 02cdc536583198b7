//! Parse and print tests: RFC examples, tolerance, strictness, round trips, and a bounded
//! xorshift fuzz that must never panic and must round-trip whatever it accepts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::fixtures::{self, crlf};
use super::*;

fn ok(s: &str) -> SessionDescription {
    match parse(s) {
        Ok(sd) => sd,
        Err(e) => panic!("{e}\n{s}"),
    }
}

#[test]
fn rfc8866_example() {
    let sd = ok(fixtures::RFC8866_EXAMPLE);
    assert_eq!(sd.origin.username, "jdoe");
    assert_eq!(sd.origin.session_id, "2890844526");
    assert_eq!(sd.origin.session_version, "2890842807");
    assert_eq!(
        sd.origin.address,
        Connection::Ip(IpAddr::V4(Ipv4Addr::new(10, 47, 16, 5)))
    );
    assert_eq!(sd.session_name, "SDP Seminar");
    assert_eq!(
        sd.connection,
        Some(Connection::Ip(Ipv4Addr::new(224, 2, 17, 12).into()))
    );
    assert_eq!(sd.timing, (2873397496, 2873404696));
    assert_eq!(sd.direction, Some(Direction::RecvOnly));
    assert_eq!(sd.media.len(), 2);
    let (a, v) = (&sd.media[0], &sd.media[1]);
    assert_eq!(
        (a.media.as_str(), a.port, a.proto.as_str()),
        ("audio", 49170, "RTP/AVP")
    );
    assert_eq!(a.formats, ["0"]);
    assert_eq!(
        a.direction,
        Direction::RecvOnly,
        "inherited from the session"
    );
    assert_eq!(v.direction, Direction::RecvOnly);
    assert_eq!(
        v.rtpmaps,
        [RtpMap {
            pt: 99,
            encoding: "h263-1998".into(),
            clock_rate: 90000,
            channels: None
        }]
    );
}

#[test]
fn carrier_offer_fields() {
    let sd = ok(&crlf(fixtures::CARRIER_OFFER));
    let m = &sd.media[0];
    assert_eq!(m.formats, ["8", "0", "101", "13"]);
    assert_eq!(m.rtpmaps.len(), 4);
    assert_eq!(m.fmtp(101), Some("0-16"));
    assert_eq!(m.ptime, Some(20));
    assert_eq!(m.direction, Direction::SendRecv);
    assert_eq!(
        m.other_attributes,
        [(
            "rtcp".to_owned(),
            Some("23457 IN IP4 198.51.100.7".to_owned())
        )]
    );
    assert_eq!(Codec::for_pt(m, 8), Some(Codec::Pcma));
    assert_eq!(Codec::for_pt(m, 13), None);
}

#[test]
fn lf_and_crlf_parse_the_same() {
    for f in fixtures::ALL {
        assert_eq!(ok(f), ok(&crlf(f)));
    }
}

#[test]
fn ipv6_connection_and_host_names() {
    let sd = ok(fixtures::IPV6_OFFER);
    let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
    assert_eq!(sd.connection, Some(Connection::Ip(v6.into())));
    assert_eq!(sd.origin.address.ip(), Some(v6.into()));
    let sd = ok(fixtures::RFC3264_10_1_OFFER);
    assert_eq!(
        sd.connection,
        Some(Connection::Host {
            ipv6: false,
            name: "host.anywhere.com".into()
        })
    );
    assert_eq!(sd.connection.unwrap().media_ip(), None);
    assert_eq!(sd.session_name, "-", "empty s= reads as '-'");
}

#[test]
fn media_level_attributes_and_crypto() {
    let sd = ok(fixtures::SAVP_AND_AVP);
    assert_eq!(sd.media[0].proto, "RTP/SAVP");
    assert_eq!(sd.media[0].crypto.len(), 1);
    assert!(sd.media[0].crypto[0].starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert_eq!(
        sd.media[1].connection,
        Some(Connection::Ip(Ipv4Addr::new(198, 51, 100, 21).into()))
    );
}

#[test]
fn non_rtp_media_keeps_token_formats_and_attributes() {
    let sd = ok(fixtures::WITH_T38);
    let m = &sd.media[1];
    assert!(!m.is_rtp());
    assert_eq!(m.formats, ["t38"]);
    assert_eq!(m.other_attributes.len(), 2);
}

#[test]
fn tolerant_of_unknown_lines_blank_lines_and_trailing_space() {
    let text = "\nv=0 \no=- 1 2 IN IP4 192.0.2.1\ns=x\nz=2882844526 -1h\nk=prompt\n\n\
        t=0 0\nx=whatever\na=tool:foo bar\na=group:BUNDLE 0\nm=audio 1000/2 RTP/AVP 0\n\
        i=media title\na=mid:0\na=rtcp-mux\na=ptime:20.5\na=maxptime:40\na=SENDONLY\n\
        a=fmtp:0\na=\na=:x\n";
    let sd = ok(text);
    assert_eq!(
        sd.attributes,
        [
            ("tool".to_owned(), Some("foo bar".to_owned())),
            ("group".to_owned(), Some("BUNDLE 0".to_owned())),
        ]
    );
    let m = &sd.media[0];
    assert_eq!(m.port_count, Some(2));
    assert_eq!(m.maxptime, Some(40));
    assert_eq!(m.ptime, None);
    assert_eq!(m.direction, Direction::SendOnly);
    assert_eq!(m.fmtps, [(0, String::new())]);
    let names: Vec<&str> = m.other_attributes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["mid", "rtcp-mux", "ptime"]);
}

#[test]
fn missing_optional_lines_get_defaults() {
    let sd = ok("v=0\no=- 1 1 IN IP4 192.0.2.1\nm=audio 0 RTP/AVP\n");
    assert_eq!(sd.session_name, "-");
    assert_eq!(sd.timing, (0, 0));
    assert!(sd.media[0].formats.is_empty());
}

#[test]
fn strict_errors() {
    let o = "o=- 1 1 IN IP4 192.0.2.1\n";
    let cases: Vec<(String, SdpError)> = vec![
        (String::new(), SdpError::Empty),
        ("\r\n\n".into(), SdpError::Empty),
        (
            "o=- 1 1 IN IP4 1.2.3.4\nv=0\n".into(),
            SdpError::NoVersion { line: 1 },
        ),
        ("v=1\n".into(), SdpError::NoVersion { line: 1 }),
        ("v=0\ns=x\n".into(), SdpError::MissingOrigin),
        (
            "v=0\no=- 1 IN IP4 1.2.3.4\n".into(),
            SdpError::BadOrigin { line: 2 },
        ),
        (
            "v=0\no=- 1 1 IN IP9 1.2.3.4\n".into(),
            SdpError::BadOrigin { line: 2 },
        ),
        (
            format!("v=0\n{o}garbage\n"),
            SdpError::MalformedLine { line: 3 },
        ),
        (
            format!("v=0\n{o}A=x\n"),
            SdpError::MalformedLine { line: 3 },
        ),
        (
            format!("v=0\n{o}c=IN IP4 ::1\n"),
            SdpError::BadConnection { line: 3 },
        ),
        (
            format!("v=0\n{o}c=IN IP6 1.2.3.4\n"),
            SdpError::BadConnection { line: 3 },
        ),
        (
            format!("v=0\n{o}c=IN IP4 1.2.3.4 extra\n"),
            SdpError::BadConnection { line: 3 },
        ),
        (
            format!("v=0\n{o}c=ATM NSAP 1\n"),
            SdpError::BadConnection { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio 1000\n"),
            SdpError::BadMedia { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio 1000 RTP/AVP\n"),
            SdpError::BadMedia { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio 65536 RTP/AVP 0\n"),
            SdpError::BadPort { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio -1 RTP/AVP 0\n"),
            SdpError::BadPort { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio +5 RTP/AVP 0\n"),
            SdpError::BadPort { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio 5/0 RTP/AVP 0\n"),
            SdpError::BadPort { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio 5 RTP/AVP 128\n"),
            SdpError::BadPayloadType { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio 5 RTP/AVP 0 x\n"),
            SdpError::BadPayloadType { line: 3 },
        ),
        (
            format!("v=0\n{o}m=audio 5 RTP/AVP 0\na=rtpmap:200 X/8000\n"),
            SdpError::BadAttribute {
                line: 4,
                name: "rtpmap",
            },
        ),
        (
            format!("v=0\n{o}m=audio 5 RTP/AVP 0\na=rtpmap:0 PCMU\n"),
            SdpError::BadAttribute {
                line: 4,
                name: "rtpmap",
            },
        ),
        (
            format!("v=0\n{o}m=audio 5 RTP/AVP 0\na=rtpmap:0 PCMU/8000/1/2\n"),
            SdpError::BadAttribute {
                line: 4,
                name: "rtpmap",
            },
        ),
        (
            format!("v=0\n{o}m=audio 5 RTP/AVP 0\na=fmtp:x 0-15\n"),
            SdpError::BadAttribute {
                line: 4,
                name: "fmtp",
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(&text), Err(want), "{text:?}");
    }
}

#[test]
fn prints_crlf_in_rfc_field_order() {
    let sd = ok(fixtures::CARRIER_OFFER);
    let text = sd.to_string();
    let want = "v=0\r\n\
        o=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.7\r\n\
        s=FreeSWITCH\r\n\
        c=IN IP4 198.51.100.7\r\n\
        t=0 0\r\n\
        m=audio 23456 RTP/AVP 8 0 101 13\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=rtpmap:13 CN/8000\r\n\
        a=fmtp:101 0-16\r\n\
        a=ptime:20\r\n\
        a=rtcp:23457 IN IP4 198.51.100.7\r\n";
    assert_eq!(text, want);
    let sd = ok(fixtures::RFC8866_EXAMPLE);
    let text = sd.to_string();
    assert!(text.starts_with("v=0\r\no=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\ns=SDP Seminar\r\nc=IN IP4 224.2.17.12\r\nt=2873397496 2873404696\r\na=recvonly\r\nm=audio 49170 RTP/AVP 0\r\na=recvonly\r\n"));
}

#[test]
fn parse_print_parse_is_stable_for_fixtures() {
    for f in fixtures::ALL {
        let a = ok(f);
        let text = a.to_string();
        assert!(!text.contains("\n\n") && text.ends_with("\r\n"));
        assert_eq!(ok(&text), a, "{text}");
        assert_eq!(ok(&text).to_string(), text);
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Accepted input must print to text that parses back to the same value.
fn check_round_trip(text: &str) {
    if let Ok(sd) = parse(text) {
        let printed = sd.to_string();
        assert_eq!(parse(&printed).as_ref(), Ok(&sd), "{text:?}\n{printed:?}");
    }
}

#[test]
fn truncations_never_panic_and_round_trip() {
    for f in fixtures::ALL {
        let f = crlf(f);
        for (i, _) in f.char_indices() {
            check_round_trip(&f[..i]);
        }
    }
}

#[test]
fn mutations_and_random_bytes_never_panic() {
    const ALPHABET: &[u8] = b" :/=\r\n\t-0123456789aocmtsvIPN.\x00\xff";
    let mut rng = XorShift(0x853C_49E6_748F_EA9B);
    for _ in 0..6000 {
        let base = fixtures::ALL[rng.below(fixtures::ALL.len())];
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            let b = ALPHABET[rng.below(ALPHABET.len())];
            match rng.below(3) {
                0 => bytes[at] = b,
                1 => bytes.insert(at, b),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        check_round_trip(&String::from_utf8_lossy(&bytes));
    }
    for _ in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check_round_trip(&String::from_utf8_lossy(&bytes));
        let prefixed = format!(
            "v=0\no=- 1 1 IN IP4 1.2.3.4\n{}",
            String::from_utf8_lossy(&bytes)
        );
        check_round_trip(&prefixed);
    }
}

mod negotiate_cases;
mod srtp_cases;
