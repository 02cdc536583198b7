//! SRTP/SRTCP unprotect (replay window, auth tag, decryption) and the SDES `a=crypto` parser
//! on arbitrary bytes: an error or a packet, never a panic. The first byte picks the suite;
//! the input is also tried as an attribute value, and a protected copy of it must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::core::media::srtp::SrtpSession;
use trunkgate::core::sip::sdp::crypto::{Crypto, Suite};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, packet)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(packet) {
        let _ = Crypto::parse(text);
        let _ = trunkgate::core::sip::sdp::crypto::choose(text.lines());
    }
    let suite = Suite::ALL[usize::from(pick) % Suite::ALL.len()];
    let key = |fill: u8| Crypto {
        tag: 1,
        suite,
        key_salt: vec![fill; suite.key_len() + suite.salt_len()],
    };
    let (Ok(mut a), Ok(mut b)) = (
        SrtpSession::new(&key(1), &key(2)),
        SrtpSession::new(&key(2), &key(1)),
    ) else {
        return;
    };
    let _ = b.unprotect_rtp(packet);
    let _ = b.unprotect_rtcp(packet);
    if let Ok(wire) = a.protect_rtp(packet) {
        if let Ok(plain) = b.unprotect_rtp(&wire) {
            assert_eq!(&plain[..], packet);
        }
    }
});
