//! Offer/answer tests (RFC 3264 §6 rules, RFC 3264 §10 / RFC 4317 examples, hold, SRTP
//! declines, telephone-event intersection, our own offers and reading answers to them).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::core::sip::sdp::fixtures::{self, crlf};
use crate::core::sip::sdp::{
    accept_answer, answer, offer, parse, AnswerParams, Codec, Direction, Negotiated,
    NegotiationError, SessionDescription,
};

pub(super) fn params(prefs: &[Codec]) -> AnswerParams {
    AnswerParams {
        prefs: prefs.to_vec(),
        address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
        port: 10_000,
        ptime_ms: 20,
        session_id: 1,
        session_version: 1,
        user: "trunkgate".into(),
        srtp: Default::default(),
    }
}

const BOTH: &[Codec] = &[Codec::Pcmu, Codec::Pcma];

fn run(text: &str, prefs: &[Codec]) -> (Negotiated, SessionDescription) {
    let offer = parse(text).expect("fixture parses");
    let (n, a) = answer(&offer, &params(prefs)).expect("negotiates");
    // Every answer we produce has one m-line per offered one and survives a round trip.
    assert_eq!(a.media.len(), offer.media.len());
    for (o, m) in offer.media.iter().zip(&a.media) {
        assert_eq!(o.media, m.media);
        assert_eq!(o.proto, m.proto);
    }
    assert_eq!(parse(&a.to_string()).as_ref(), Ok(&a));
    (n, a)
}

fn sock(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn carrier_offer_answer_text() {
    let (n, a) = run(&crlf(fixtures::CARRIER_OFFER), BOTH);
    assert_eq!(
        n,
        Negotiated {
            codec: Codec::Pcmu,
            codec_pt: 0,
            dtmf_pt: Some(101),
            remote: sock("198.51.100.7:23456"),
            ptime_ms: 20,
            direction: Direction::SendRecv,
            audio_index: 0,
            srtp: None,
        }
    );
    assert_eq!(
        a.to_string(),
        "v=0\r\n\
         o=trunkgate 1 1 IN IP4 203.0.113.1\r\n\
         s=-\r\n\
         c=IN IP4 203.0.113.1\r\n\
         t=0 0\r\n\
         m=audio 10000 RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n"
    );
}

#[test]
fn our_preference_order_wins() {
    let (n, _) = run(fixtures::CARRIER_OFFER, &[Codec::Pcma, Codec::Pcmu]);
    assert_eq!((n.codec, n.codec_pt), (Codec::Pcma, 8));
    let (n, _) = run(fixtures::RFC4317_AUDIO_VIDEO, &[Codec::Pcma]);
    assert_eq!((n.codec, n.codec_pt), (Codec::Pcma, 8));
}

#[test]
fn pcma_only_offer() {
    let (n, a) = run(fixtures::PCMA_ONLY, BOTH);
    assert_eq!((n.codec, n.codec_pt, n.dtmf_pt), (Codec::Pcma, 8, None));
    assert_eq!(a.media[0].formats, ["8"]);
    assert_eq!(n.remote, sock("203.0.113.5:4000"));
    let offer = parse(fixtures::PCMA_ONLY).unwrap();
    assert_eq!(
        answer(&offer, &params(&[Codec::Pcmu])),
        Err(NegotiationError::NoCommonCodec)
    );
}

#[test]
fn rfc3264_10_1_rejects_video_in_order() {
    let (n, a) = run(fixtures::RFC3264_10_1_OFFER, BOTH);
    assert_eq!((n.codec, n.audio_index), (Codec::Pcmu, 0));
    assert_eq!(n.remote, None, "a host name is not resolved here");
    let ports: Vec<u16> = a.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [10_000, 0, 0]);
    assert_eq!(a.media[1].formats, ["31"]);
    assert_eq!(a.media[2].formats, ["32"]);
    assert!(a.media[1].rtpmaps.is_empty());
}

#[test]
fn rfc3264_answer_as_an_answer_to_our_offer() {
    let ours = parse(fixtures::RFC3264_10_1_OFFER).unwrap();
    let theirs = parse(fixtures::RFC3264_10_1_ANSWER).unwrap();
    let n = accept_answer(&ours, &theirs).unwrap();
    assert_eq!((n.codec, n.codec_pt, n.dtmf_pt), (Codec::Pcmu, 0, None));
    assert_eq!(n.remote, None);
    assert_eq!(n.audio_index, 0);
}

#[test]
fn inactive_offer_gets_inactive_answer() {
    let (n, a) = run(fixtures::RFC3264_10_2_OFFER, BOTH);
    assert_eq!(n.direction, Direction::Inactive);
    assert_eq!(a.media[0].direction, Direction::Inactive);
    assert!(a.to_string().contains("a=inactive\r\n"));
    assert_eq!(n.remote, sock("192.0.2.10:62986"));
}

#[test]
fn telephone_event_dynamic_pts_and_event_lists() {
    let (n, a) = run(fixtures::RFC4317_TELEPHONE_EVENT, BOTH);
    assert_eq!(n.dtmf_pt, Some(98));
    assert_eq!(a.media[0].formats, ["0", "98"]);
    assert_eq!(a.media[0].fmtp(98), Some("0-15"));

    let (n, a) = run(fixtures::IPV6_OFFER, BOTH);
    assert_eq!(
        (n.codec, n.codec_pt, n.dtmf_pt),
        (Codec::Pcmu, 97, Some(96))
    );
    assert_eq!(a.media[0].rtpmap(97).unwrap().encoding, "PCMU");

    let with_fmtp = |fmtp: &str| {
        format!(
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
             m=audio 7000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n{fmtp}"
        )
    };
    let events = |fmtp: &str| {
        let (n, a) = run(&with_fmtp(fmtp), BOTH);
        n.dtmf_pt
            .map(|pt| a.media[0].fmtp(pt).unwrap_or("").to_owned())
    };
    assert_eq!(events(""), Some("0-15".into()), "absent list means 0-15");
    assert_eq!(events("a=fmtp:101 0-16\n"), Some("0-16".into()));
    assert_eq!(events("a=fmtp:101 0-15,66,70\n"), Some("0-15".into()));
    assert_eq!(events("a=fmtp:101 0-11,16\n"), Some("0-11,16".into()));
    assert_eq!(events("a=fmtp:101 1,3,5\n"), Some("1,3,5".into()));
    assert_eq!(events("a=fmtp:101 nonsense\n"), Some("0-15".into()));
    assert_eq!(events("a=fmtp:101 66\n"), None, "no event in common");

    // telephone-event at another clock rate does not go with 8 kHz G.711.
    let wide = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
        m=audio 7000 RTP/AVP 0 102\na=rtpmap:102 telephone-event/48000\n";
    assert_eq!(run(wide, BOTH).0.dtmf_pt, None);
}

#[test]
fn ipv6_offer_and_ipv6_answer() {
    let offer = parse(fixtures::IPV6_OFFER).unwrap();
    let mut p = params(BOTH);
    p.address = "2001:db8::1".parse().unwrap();
    let (n, a) = answer(&offer, &p).unwrap();
    assert_eq!(n.remote, sock("[2001:db8::7]:30000"));
    let text = a.to_string();
    assert!(text.contains("o=trunkgate 1 1 IN IP6 2001:db8::1\r\n"));
    assert!(text.contains("c=IN IP6 2001:db8::1\r\n"));
}

#[test]
fn hold_offers() {
    let (n, a) = run(fixtures::HOLD_OFFER, BOTH);
    assert_eq!(n.remote, None, "c=0.0.0.0");
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(a.media[0].direction, Direction::RecvOnly);
    assert!(a.to_string().contains("a=recvonly\r\n"));

    // Session-level sendonly applies to the m-line; the address stays usable.
    let text = "v=0\no=- 1 2 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=sendonly\n\
        m=audio 7000 RTP/AVP 8\n";
    let (n, a) = run(text, BOTH);
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(n.remote, sock("192.0.2.1:7000"));
    assert_eq!(a.media[0].direction, Direction::RecvOnly);

    // recvonly offer → sendonly answer; IPv6 unspecified is hold as well.
    let text = "v=0\no=- 1 2 IN IP6 ::1\ns=-\nc=IN IP6 ::\nt=0 0\n\
        m=audio 7000 RTP/AVP 0\na=recvonly\n";
    let (n, a) = run(text, BOTH);
    assert_eq!(n.remote, None);
    assert_eq!(a.media[0].direction, Direction::SendOnly);
}

#[test]
fn media_level_connection_overrides_session_and_savp_is_declined() {
    let (n, a) = run(fixtures::SAVP_AND_AVP, BOTH);
    assert_eq!(n.audio_index, 1);
    assert_eq!(n.remote, sock("198.51.100.21:40002"));
    assert_eq!(a.media[0].port, 0);
    assert!(a.media[0].crypto.is_empty());
    assert_eq!(a.media[1].port, 10_000);

    let savp_only = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
        m=audio 7000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\n";
    let offer = parse(savp_only).unwrap();
    assert_eq!(
        answer(&offer, &params(BOTH)),
        Err(NegotiationError::SrtpOnly)
    );
}

#[test]
fn multiple_audio_lines_only_the_first_usable_is_taken() {
    let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
        m=audio 0 RTP/AVP 0\n\
        m=video 9000 RTP/AVP 96\na=rtpmap:96 H264/90000\n\
        m=audio 7000 RTP/AVP 18\n\
        m=audio 7002 RTP/AVP 8 0\n\
        m=audio 7004 RTP/AVP 0\n\
        m=image 7006 udptl t38\n";
    let (n, a) = run(text, BOTH);
    assert_eq!((n.audio_index, n.codec, n.codec_pt), (3, Codec::Pcmu, 0));
    let ports: Vec<u16> = a.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, 0, 0, 10_000, 0, 0]);
    assert_eq!(a.media[5].formats, ["t38"]);
}

#[test]
fn failures() {
    let no_common = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
        m=audio 7000 RTP/AVP 18 4 101\na=rtpmap:101 telephone-event/8000\n";
    let only_video = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=video 7000 RTP/AVP 31\n";
    let disabled_audio = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 0 RTP/AVP 0\n";
    let stereo_pcmu = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n\
        m=audio 7000 RTP/AVP 96\na=rtpmap:96 PCMU/8000/2\n";
    let no_media = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n";
    for (text, want) in [
        (no_common, NegotiationError::NoCommonCodec),
        (stereo_pcmu, NegotiationError::NoCommonCodec),
        (only_video, NegotiationError::NoAudio),
        (disabled_audio, NegotiationError::NoAudio),
        (no_media, NegotiationError::NoAudio),
    ] {
        let offer = parse(text).unwrap();
        assert_eq!(answer(&offer, &params(BOTH)), Err(want), "{text}");
    }
    let offer = parse(fixtures::CARRIER_OFFER).unwrap();
    assert_eq!(
        answer(&offer, &params(&[])),
        Err(NegotiationError::NoCommonCodec)
    );
}

#[test]
fn ptime_follows_the_offer_within_limits() {
    let with = |attrs: &str| {
        let text = format!(
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
             m=audio 7000 RTP/AVP 0\n{attrs}"
        );
        run(&text, BOTH).0.ptime_ms
    };
    assert_eq!(with(""), 20);
    assert_eq!(with("a=ptime:30\n"), 30);
    assert_eq!(with("a=ptime:25\n"), 20);
    assert_eq!(with("a=ptime:90\n"), 20);
    assert_eq!(with("a=ptime:40\na=maxptime:30\n"), 30);
    assert_eq!(with("a=maxptime:10\n"), 10);
}

#[test]
fn our_offer_and_reading_the_answer() {
    let ours = offer(&params(&[]));
    assert_eq!(
        ours.to_string(),
        "v=0\r\n\
         o=trunkgate 1 1 IN IP4 203.0.113.1\r\n\
         s=-\r\n\
         c=IN IP4 203.0.113.1\r\n\
         t=0 0\r\n\
         m=audio 10000 RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n"
    );
    let pcma_first = offer(&params(&[Codec::Pcma, Codec::Pcma]));
    assert_eq!(pcma_first.media[0].formats, ["8", "101"]);

    // The peer answers our offer by running our own answer logic with PCMA preferred.
    let mut peer = params(&[Codec::Pcma]);
    peer.address = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));
    peer.port = 20_000;
    peer.ptime_ms = 30;
    let (_, their_answer) = answer(&ours, &peer).unwrap();
    let n = accept_answer(&ours, &parse(&their_answer.to_string()).unwrap()).unwrap();
    assert_eq!(
        n,
        Negotiated {
            codec: Codec::Pcma,
            codec_pt: 8,
            dtmf_pt: Some(101),
            remote: sock("198.51.100.9:20000"),
            ptime_ms: 30,
            direction: Direction::SendRecv,
            audio_index: 0,
            srtp: None,
        }
    );

    // A rejected or mismatched answer.
    let mut rejected = their_answer.clone();
    rejected.media[0].port = 0;
    assert_eq!(
        accept_answer(&ours, &rejected),
        Err(NegotiationError::NoCommonCodec)
    );
    let mut extra = their_answer;
    extra.media.push(extra.media[0].clone());
    assert!(matches!(
        accept_answer(&ours, &extra),
        Err(NegotiationError::BadAnswer(_))
    ));
}

#[test]
fn odd_user_names_still_print_parseable_origins() {
    let mut p = params(BOTH);
    p.user = "trunk gate".into();
    assert_eq!(offer(&p).origin.username, "trunk-gate");
    p.user = "  ".into();
    let o = offer(&p);
    assert_eq!(o.origin.username, "-");
    assert_eq!(parse(&o.to_string()).as_ref(), Ok(&o));
}
