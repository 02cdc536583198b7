//! RTP fixed header parse and build (RFC 3550 §5.1, §5.3.1), RTCP demultiplexing (RFC 5761 §4),
//! and sequence tracking (`seq`, RFC 3550 §A.1).
//!
//! Owns: turning datagram bytes into a borrowed header + payload view and back.
//! Must not: allocate on parse, copy payloads, interpret payload contents (codecs, DTMF and SRTP
//! live elsewhere), or panic on any input — every length is checked.

mod seq;

pub use seq::{SeqStats, SeqStatus, SeqTracker};

/// Fixed RTP header length without CSRCs.
pub const HEADER_LEN: usize = 12;

/// The fields of the fixed header that a media path uses. CSRCs and header extensions are skipped
/// on parse and never written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// A parsed packet borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("datagram of {len} bytes is shorter than the {needed} bytes its header needs")]
    Truncated { len: usize, needed: usize },
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// A multiplexed RTCP packet (RFC 5761 §4); the media path ignores it.
    #[error("RTCP packet type {packet_type} on the RTP port")]
    Rtcp { packet_type: u8 },
    #[error("padding count {padding} exceeds the {available} payload bytes")]
    BadPadding { padding: u8, available: usize },
}

/// RFC 5761 §4: second bytes 192..=223 are RTCP packet types (SR 200 … XR 207 and the historic
/// 192-199); RTP must not use payload types 64-95, which is what these bytes would mean.
pub fn is_rtcp(second_byte: u8) -> bool {
    (192..=223).contains(&second_byte)
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses an RTP datagram: version 2, CSRCs and extension skipped, padding removed.
pub fn parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let truncated = |needed| RtpError::Truncated {
        len: buf.len(),
        needed,
    };
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Err(truncated(HEADER_LEN)),
    };
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    if is_rtcp(b1) {
        return Err(RtpError::Rtcp { packet_type: b1 });
    }
    let (Some(sequence), Some(timestamp), Some(ssrc)) = (be16(buf, 2), be32(buf, 4), be32(buf, 8))
    else {
        return Err(truncated(HEADER_LEN));
    };
    let mut offset = HEADER_LEN + 4 * usize::from(b0 & 0x0F);
    if buf.len() < offset {
        return Err(truncated(offset));
    }
    if b0 & 0x10 != 0 {
        // RFC 3550 §5.3.1: 16-bit profile id, 16-bit length in 32-bit words, then the words.
        let words = be16(buf, offset + 2).ok_or(truncated(offset + 4))?;
        offset += 4 + 4 * usize::from(words);
        if buf.len() < offset {
            return Err(truncated(offset));
        }
    }
    let mut end = buf.len();
    if b0 & 0x20 != 0 {
        let available = end - offset;
        // With no byte after the header, the last byte is header, not a padding count.
        let padding = match available {
            0 => 0,
            _ => buf.last().copied().unwrap_or(0),
        };
        if padding == 0 || usize::from(padding) > available {
            return Err(RtpError::BadPadding { padding, available });
        }
        end -= usize::from(padding);
    }
    let payload = buf.get(offset..end).ok_or(truncated(end))?;
    Ok(RtpPacket {
        header: RtpHeader {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7F,
            sequence,
            timestamp,
            ssrc,
        },
        payload,
    })
}

/// Appends a 12-byte header (V=2, no padding/extension/CSRC) and the payload to `out`.
/// Does not allocate when `out` already has the capacity. Payload types above 127 are masked.
pub fn write(header: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + payload.len());
    out.push(0x80);
    out.push((u8::from(header.marker) << 7) | (header.payload_type & 0x7F));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0xFFFE,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x0102_0304,
        }
    }

    #[test]
    fn write_then_parse_round_trips() {
        let mut out = Vec::with_capacity(200);
        let ptr = out.as_ptr();
        write(&header(), &[1, 2, 3], &mut out);
        assert_eq!(out.as_ptr(), ptr, "no reallocation with enough capacity");
        assert_eq!(&out[..4], &[0x80, 0x88, 0xFF, 0xFE]);
        let p = parse(&out).unwrap();
        assert_eq!(p.header, header());
        assert_eq!(p.payload, &[1, 2, 3]);
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        let mut b = vec![0x80 | 0x20 | 0x10 | 2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend_from_slice(&[9; 8]); // two CSRCs
        b.extend_from_slice(&[0xBE, 0xDE, 0, 1, 7, 7, 7, 7]); // extension, one word
        b.extend_from_slice(&[0xAA, 0xBB]); // payload
        b.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let p = parse(&b).unwrap();
        assert_eq!(p.payload, &[0xAA, 0xBB]);
        assert_eq!(p.header.sequence, 1);
        assert_eq!(p.header.timestamp, 2);
        assert_eq!(p.header.ssrc, 3);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut b = vec![0x80 | 0x10 | 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 4, 4, 4, 4];
        b.extend_from_slice(&[0, 0, 0, 2, 1, 1, 1, 1, 2, 2, 2, 2, 0x55]);
        assert_eq!(parse(&b).unwrap().payload, &[0x55]);
        for n in 0..b.len() - 1 {
            assert!(
                matches!(parse(&b[..n]), Err(RtpError::Truncated { .. })),
                "n={n}"
            );
        }
    }

    #[test]
    fn padding_larger_than_payload_is_rejected() {
        let mut b = vec![0xA0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3];
        assert!(parse(&b).is_ok());
        *b.last_mut().unwrap() = 4;
        assert_eq!(
            parse(&b),
            Err(RtpError::BadPadding {
                padding: 4,
                available: 3
            })
        );
        *b.last_mut().unwrap() = 0;
        assert!(matches!(parse(&b), Err(RtpError::BadPadding { .. })));
        // Padding bit with no payload byte at all.
        assert!(matches!(
            parse(&b[..12]),
            Err(RtpError::BadPadding { padding: 0, .. })
        ));
        // Padding that eats exactly the payload is legal.
        *b.last_mut().unwrap() = 3;
        assert_eq!(parse(&b).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn extension_length_overflow_is_truncated() {
        let mut b = vec![0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend_from_slice(&[0xBE, 0xDE, 0xFF, 0xFF, 1, 2, 3, 4]);
        assert_eq!(
            parse(&b),
            Err(RtpError::Truncated {
                len: 20,
                needed: 12 + 4 + 4 * 0xFFFF
            })
        );
    }

    #[test]
    fn csrc_count_beyond_datagram_is_truncated() {
        let b = [0x8F, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0];
        assert_eq!(
            parse(&b),
            Err(RtpError::Truncated {
                len: 16,
                needed: 72
            })
        );
    }

    #[test]
    fn rtcp_and_bad_versions_are_recognised() {
        for pt in [200u8, 201, 202, 203, 204, 205, 206, 207] {
            let b = [0x81, pt, 0, 7, 0, 0, 0, 0];
            assert_eq!(parse(&b), Err(RtpError::Rtcp { packet_type: pt }));
        }
        // PT 72 without the marker bit is plain (if unusual) RTP.
        let b = [0x80, 72, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        assert_eq!(parse(&b).unwrap().header.payload_type, 72);
        assert_eq!(parse(&[0x40, 0, 0, 0]), Err(RtpError::BadVersion(1)));
        assert!(matches!(parse(&[]), Err(RtpError::Truncated { .. })));
        assert!(matches!(parse(&[0x80]), Err(RtpError::Truncated { .. })));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut buf = [0u8; 64];
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let len = (s % 65) as usize;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (s >> (i % 8 * 8)) as u8 ^ i as u8;
            }
            buf[0] = 0x80 | (buf[0] & 0x3F);
            let _ = parse(&buf[..len]);
        }
    }
}
