//! SDP bodies shared by the parse and negotiation tests: examples written out after RFC 8866 §5,
//! RFC 3264 §10 and RFC 4317, plus carrier-style offers. LF line ends; tests add CRLF variants.

/// RFC 4566/8866 §5 example (multicast c= with TTL, session-level recvonly, i/u/e lines).
pub const RFC8866_EXAMPLE: &str = "v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
c=IN IP4 224.2.17.12/127
t=2873397496 2873404696
a=recvonly
m=audio 49170 RTP/AVP 0
m=video 51372 RTP/AVP 99
a=rtpmap:99 h263-1998/90000
";

/// RFC 3264 §10.1 offer: one audio and two video streams, FQDN connection address.
pub const RFC3264_10_1_OFFER: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 host.anywhere.com
s=
c=IN IP4 host.anywhere.com
t=0 0
m=audio 49170 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 51372 RTP/AVP 31
a=rtpmap:31 H261/90000
m=video 53000 RTP/AVP 32
a=rtpmap:32 MPV/90000
";

/// RFC 3264 §10.1 answer (Bob declines the first video stream).
pub const RFC3264_10_1_ANSWER: &str = "v=0
o=bob 2890844730 2890844730 IN IP4 host.example.com
s=
c=IN IP4 host.example.com
t=0 0
m=audio 49920 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 0 RTP/AVP 31
m=video 53000 RTP/AVP 32
a=rtpmap:32 MPV/90000
";

/// RFC 3264 §10.2 style: one of N codecs, offered inactive.
pub const RFC3264_10_2_OFFER: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 host.anywhere.com
s=
c=IN IP4 192.0.2.10
t=0 0
m=audio 62986 RTP/AVP 0 4 18
a=rtpmap:0 PCMU/8000
a=rtpmap:4 G723/8000
a=rtpmap:18 G729/8000
a=inactive
";

/// RFC 4317 §2.1 style audio and video offer with a dynamic iLBC payload.
pub const RFC4317_AUDIO_VIDEO: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=
c=IN IP4 192.0.2.101
t=0 0
m=audio 49170 RTP/AVP 0 8 97
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:97 iLBC/8000
m=video 51372 RTP/AVP 31 32
a=rtpmap:31 H261/90000
a=rtpmap:32 MPV/90000
";

/// RFC 4317 style audio offer with telephone-event on dynamic payload type 98 (0-15).
pub const RFC4317_TELEPHONE_EVENT: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=
c=IN IP4 192.0.2.101
t=0 0
m=audio 49170 RTP/AVP 0 97 98
a=rtpmap:0 PCMU/8000
a=rtpmap:97 iLBC/8000
a=rtpmap:98 telephone-event/8000
a=fmtp:98 0-15
";

/// RFC 3264 §8.4 / RFC 4317 hold: sendonly with an old-style 0.0.0.0 connection.
pub const HOLD_OFFER: &str = "v=0
o=alice 2890844526 2890844527 IN IP4 192.0.2.101
s=
c=IN IP4 0.0.0.0
t=0 0
m=audio 49170 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendonly
";

/// A carrier (FreeSWITCH-like) offer: PCMA first, telephone-event 101 with 0-16, CN, rtcp.
pub const CARRIER_OFFER: &str = "v=0
o=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.7
s=FreeSWITCH
c=IN IP4 198.51.100.7
t=0 0
m=audio 23456 RTP/AVP 8 0 101 13
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:13 CN/8000
a=ptime:20
a=sendrecv
a=rtcp:23457 IN IP4 198.51.100.7
";

/// PCMA only.
pub const PCMA_ONLY: &str = "v=0
o=- 42 42 IN IP4 203.0.113.5
s=-
c=IN IP4 203.0.113.5
t=0 0
m=audio 4000 RTP/AVP 8
";

/// IPv6 offer with telephone-event on 96 and PCMU on a dynamic payload type.
pub const IPV6_OFFER: &str = "v=0
o=- 1 1 IN IP6 2001:db8::7
s=-
c=IN IP6 2001:db8::7
t=0 0
m=audio 30000 RTP/AVP 97 96
a=rtpmap:97 pcmu/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-15
";

/// Best-effort SRTP: the same audio as RTP/SAVP (with SDES crypto) and as RTP/AVP.
pub const SAVP_AND_AVP: &str = "v=0
o=- 7 7 IN IP4 198.51.100.20
s=-
c=IN IP4 198.51.100.20
t=0 0
m=audio 40000 RTP/SAVP 0 101
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32
m=audio 40002 RTP/AVP 0 101
c=IN IP4 198.51.100.21
a=rtpmap:101 telephone-event/8000
";

/// A T.38 image stream next to audio (non-RTP proto, non-numeric format).
pub const WITH_T38: &str = "v=0
o=- 9 9 IN IP4 198.51.100.30
s=-
c=IN IP4 198.51.100.30
t=0 0
m=audio 5004 RTP/AVP 0
m=image 5006 udptl t38
a=T38FaxVersion:0
a=T38FaxRateManagement:transferredTCF
";

pub const ALL: &[&str] = &[
    RFC8866_EXAMPLE,
    RFC3264_10_1_OFFER,
    RFC3264_10_1_ANSWER,
    RFC3264_10_2_OFFER,
    RFC4317_AUDIO_VIDEO,
    RFC4317_TELEPHONE_EVENT,
    HOLD_OFFER,
    CARRIER_OFFER,
    PCMA_ONLY,
    IPV6_OFFER,
    SAVP_AND_AVP,
    WITH_T38,
];

pub fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}
