//! RTP parsing and the RFC 4733 receiver on arbitrary packets: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::core::media::dtmf::DtmfReceiver;
use trunkgate::core::media::rtp;

fuzz_target!(|data: &[u8]| {
    let mut rx = DtmfReceiver::new(8000);
    for chunk in data.chunks(24) {
        if let Ok(pkt) = rtp::parse(chunk) {
            let _ = rx.on_packet(pkt.header.timestamp, pkt.payload);
        }
    }
});
