//! Every dialect's agent-message decoder on arbitrary text and binary frames: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::core::agent::{codec, AudioEncoding, Dialect, StreamMeta, WsIn};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the stream format, so the 8/16 kHz and μ-law paths all get fuzzed.
    let Some((&sel, msg)) = data.split_first() else { return };
    let meta = StreamMeta {
        sample_rate: if sel & 1 == 0 { 8_000 } else { 16_000 },
        encoding: if sel & 2 == 0 { AudioEncoding::L16 } else { AudioEncoding::Mulaw },
        ..StreamMeta::default()
    };
    for dialect in [Dialect::Twilio, Dialect::Plivo, Dialect::Raw] {
        let mut c = codec(dialect, meta.clone());
        let _ = c.decode(WsIn::Binary(msg));
        if let Ok(text) = std::str::from_utf8(msg) {
            let _ = c.decode(WsIn::Text(text));
        }
    }
});
