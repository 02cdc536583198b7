//! SDP: never panics; parse → to_string → parse → to_string is stable; answering any parsed
//! offer never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::core::sip::sdp::{self, AnswerParams, Codec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sd) = sdp::parse(text) else { return };
    let once = sd.to_string();
    let again = sdp::parse(&once).expect("serialised SDP reparses");
    assert_eq!(again.to_string(), once);
    let params = AnswerParams {
        prefs: vec![Codec::Pcmu, Codec::Pcma],
        address: "127.0.0.1".parse().unwrap(),
        port: 20000,
        ptime_ms: 20,
        session_id: 1,
        session_version: 1,
        user: "fuzz".into(),
    };
    if let Ok((_, answer)) = sdp::answer(&sd, &params) {
        sdp::parse(&answer.to_string()).expect("answer parses");
    }
});
