//! SRTP and SRTCP for one SIP leg (RFC 3711), keyed by SDES (RFC 4568): what we send is
//! protected with our key, what arrives is checked and decrypted with the peer's, with replay
//! protection (a 64-packet window per SSRC) both for RTP and RTCP. Built on `rtc-srtp` 0.21
//! with the ring provider (the maintained line; `webrtc-srtp` 0.17 panics on malformed input).
//!
//! Owns: the two contexts and the mapping from SDES suites to SRTP profiles. Must not: log or
//! print keys (`Debug` shows the suites only), read the clock or sockets, or panic on any
//! packet — malformed, truncated, forged or replayed input is an error the caller counts and
//! drops.

use bytes::BytesMut;
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use crate::core::sip::sdp::crypto::{Crypto, Suite};

/// Fresh key material for another SRTP stream of the same call (the bridged leg, a rekey
/// after the peer changed its key), derived with HKDF-SHA256 (RFC 5869) from the call's own
/// random material: one master key is never used for two streams or two contexts (a new
/// context restarts the rollover counter, so reusing the key would repeat keystream).
pub fn derive_key_material(material: &[u8; 32], label: &[u8]) -> [u8; 32] {
    struct Len32;
    impl ring::hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let mut out = [0u8; 32];
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"trunkgate sdes").extract(material);
    let info = [label];
    // Expanding to 32 bytes of SHA-256 output cannot fail (the limit is 255 * 32).
    if let Ok(okm) = prk.expand(&info, Len32) {
        let _ = okm.fill(&mut out);
    }
    out
}

/// Packets remembered per SSRC for replay protection.
const REPLAY_WINDOW: usize = 64;

/// The keyed contexts of one leg.
pub struct SrtpSession {
    tx: Context,
    rx: Context,
    suites: (Suite, Suite),
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("ours", &self.suites.0)
            .field("theirs", &self.suites.1)
            .finish()
    }
}

/// Why a session could not be keyed or a packet was refused. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("SRTP keys unusable: {0}")]
    Setup(String),
    #[error("SRTP packet refused: {0}")]
    Packet(String),
}

fn profile(suite: Suite) -> ProtectionProfile {
    match suite {
        Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    }
}

fn context(key: &Crypto) -> Result<Context, SrtpError> {
    let provider =
        rtc_srtp::crypto::default_provider().map_err(|e| SrtpError::Setup(e.to_string()))?;
    Context::new(
        key.master_key(),
        key.master_salt(),
        profile(key.suite),
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
        provider.crypto(),
    )
    .map_err(|e| SrtpError::Setup(e.to_string()))
}

impl SrtpSession {
    /// `ours`: the key we announced (protects what we send); `theirs`: the peer's.
    pub fn new(ours: &Crypto, theirs: &Crypto) -> Result<SrtpSession, SrtpError> {
        Ok(SrtpSession {
            tx: context(ours)?,
            rx: context(theirs)?,
            suites: (ours.suite, theirs.suite),
        })
    }

    /// An RTP packet to send, protected (the auth tag appended). Only the plain 12-byte
    /// header we build is accepted: rtc-srtp 0.21.1 panics (slice index) encrypting a packet
    /// whose CSRC count or extension claims more bytes than it holds (found by the
    /// `srtp_unprotect` fuzz target), so nothing else reaches it.
    pub fn protect_rtp(&mut self, plain: &[u8]) -> Result<BytesMut, SrtpError> {
        match plain.first() {
            Some(&b0) if plain.len() >= 12 && b0 >> 6 == 2 && b0 & 0x1f == 0 => {}
            _ => {
                return Err(SrtpError::Packet(
                    "not an RTP packet with a plain header".into(),
                ))
            }
        }
        self.tx
            .encrypt_rtp(plain)
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    /// An SRTP packet received: authenticated, not a replay, decrypted.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        // The crate checks lengths itself; a packet shorter than an RTP header is refused
        // here first so no parser sees it.
        if packet.len() < 12 {
            return Err(SrtpError::Packet("shorter than an RTP header".into()));
        }
        self.rx
            .decrypt_rtp(packet)
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    pub fn protect_rtcp(&mut self, plain: &[u8]) -> Result<BytesMut, SrtpError> {
        self.tx
            .encrypt_rtcp(plain)
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        if packet.len() < 8 {
            return Err(SrtpError::Packet("shorter than an RTCP header".into()));
        }
        self.rx
            .decrypt_rtcp(packet)
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(suite: Suite, fill: u8) -> Crypto {
        Crypto {
            tag: 1,
            suite,
            key_salt: (0..suite.key_len() + suite.salt_len())
                .map(|i| fill.wrapping_add(i as u8))
                .collect(),
        }
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// Two ends of one call: A's keys are B's "theirs" and the other way round.
    fn pair(suite: Suite) -> (SrtpSession, SrtpSession) {
        let (ka, kb) = (key(suite, 1), key(suite, 101));
        let a = SrtpSession::new(&ka, &kb).expect("a");
        let b = SrtpSession::new(&kb, &ka).expect("b");
        (a, b)
    }

    #[test]
    fn both_directions_round_trip_for_every_suite() {
        for (suite, tag) in [
            (Suite::AesCm128HmacSha1_80, 10),
            (Suite::AesCm128HmacSha1_32, 4),
            (Suite::AeadAes128Gcm, 16),
        ] {
            let (mut a, mut b) = pair(suite);
            for seq in 0..50u16 {
                let plain = rtp(seq, &[0x55; 160]);
                let wire = a.protect_rtp(&plain).expect("protect");
                assert_eq!(wire.len(), plain.len() + tag, "{suite:?}");
                assert_ne!(&wire[12..172], &plain[12..], "the payload is encrypted");
                assert_eq!(&b.unprotect_rtp(&wire).expect("unprotect")[..], &plain[..]);
                let back = b.protect_rtp(&plain).expect("protect back");
                assert_eq!(
                    &a.unprotect_rtp(&back).expect("unprotect back")[..],
                    &plain[..]
                );
            }
        }
    }

    #[test]
    fn forged_replayed_and_wrongly_keyed_packets_are_refused() {
        let (mut a, mut b) = pair(Suite::AesCm128HmacSha1_80);
        let wire = a.protect_rtp(&rtp(7, &[1; 160])).expect("protect");
        let mut forged = wire.to_vec();
        forged[20] ^= 1;
        assert!(
            b.unprotect_rtp(&forged).is_err(),
            "a flipped bit fails authentication"
        );
        assert!(b.unprotect_rtp(&wire).is_ok());
        assert!(b.unprotect_rtp(&wire).is_err(), "a replay is refused");
        // Our own packet does not authenticate with the peer's key.
        let (mut c, _) = pair(Suite::AesCm128HmacSha1_80);
        let own = c.protect_rtp(&rtp(8, &[1; 160])).expect("protect");
        assert!(c.unprotect_rtp(&own).is_err());
    }

    #[test]
    fn rtcp_round_trips() {
        let (mut a, mut b) = pair(Suite::AesCm128HmacSha1_80);
        // A receiver report with no blocks: V=2, PT=201, length 1, SSRC.
        let rr = [0x80, 201, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef];
        let wire = a.protect_rtcp(&rr).expect("protect");
        assert_eq!(&b.unprotect_rtcp(&wire).expect("unprotect")[..], &rr[..]);
        assert!(
            b.unprotect_rtcp(&wire).is_err(),
            "an SRTCP replay is refused"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let (_, mut b) = pair(Suite::AesCm128HmacSha1_80);
        let (_, mut g) = pair(Suite::AeadAes128Gcm);
        let mut rng = fastrand::Rng::with_seed(4568);
        for _ in 0..20_000 {
            let len = rng.usize(0..220);
            let mut p: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if len > 0 && rng.bool() {
                p[0] = 0x80 | (p[0] & 0x3f);
            }
            let _ = b.unprotect_rtp(&p);
            let _ = b.unprotect_rtcp(&p);
            let _ = g.unprotect_rtp(&p);
            let _ = g.unprotect_rtcp(&p);
        }
    }

    #[test]
    fn only_plain_headers_are_protected() {
        let (mut a, _) = pair(Suite::AesCm128HmacSha1_80);
        // The fuzz finding: a CSRC count and extension bit over 35 bytes.
        let found = [
            0x33, 0x09, 0x02, 0x30, 0x0d, 0x33, 0x09, 0x30, 0x34, 0x10, 0x0d, 0x00, 0x00, 0x02,
            0x00, 0x01, 0x00, 0x08, 0x00, 0x0a, 0x05, 0x09, 0x34, 0x00, 0x10, 0x00, 0x00, 0x01,
            0x00, 0x08, 0x02, 0x0a, 0x05, 0x08,
        ];
        assert!(a.protect_rtp(&found).is_err());
        let mut with_csrc = rtp(1, &[0; 160]);
        with_csrc[0] = 0x81;
        assert!(a.protect_rtp(&with_csrc).is_err());
        let mut with_ext = rtp(2, &[0; 160]);
        with_ext[0] = 0x90;
        assert!(a.protect_rtp(&with_ext).is_err());
        assert!(
            a.protect_rtp(&rtp(3, &[])).is_ok(),
            "an empty payload is fine"
        );
        assert!(a.protect_rtp(&[0x80; 11]).is_err());
    }

    #[test]
    fn debug_shows_no_key() {
        let (a, _) = pair(Suite::AesCm128HmacSha1_80);
        let text = format!("{a:?}");
        assert_eq!(
            text,
            "SrtpSession { ours: AesCm128HmacSha1_80, theirs: AesCm128HmacSha1_80 }"
        );
    }

    #[test]
    fn derived_key_material_is_new_per_label_and_repeatable() {
        let base = [7u8; 32];
        let bridged = derive_key_material(&base, b"bridged leg");
        let rekeyed = derive_key_material(&base, b"rekey");
        assert_ne!(bridged, base);
        assert_ne!(bridged, rekeyed);
        assert_ne!(bridged, [0u8; 32]);
        assert_eq!(bridged, derive_key_material(&base, b"bridged leg"));
        assert_ne!(derive_key_material(&[8u8; 32], b"rekey"), rekeyed);
    }
}
