//! The SIP endpoint fed arbitrary datagrams and timer ticks: never panics, and every output
//! it transmits is a parsable SIP message.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use trunkgate::core::sip::endpoint::{Endpoint, Input, Output, Settings};
use trunkgate::core::sip::message::{Limits, Message};
use trunkgate::core::{Flow, Transport};

fuzz_target!(|data: &[u8]| {
    let mut ep = Endpoint::new(Settings::default(), 1);
    let flow = Flow {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: "127.0.0.1:5070".parse().unwrap(),
        conn: None,
    };
    let mut now = Instant::now();
    // Datagrams separated by a 0xFF 0xFE marker; each one also advances time.
    for chunk in data.split(|&b| b == 0xFE) {
        ep.handle(now, Input::Received { flow, bytes: chunk.to_vec() });
        now += Duration::from_millis(700);
        ep.handle_timeout(now);
        while let Some(out) = ep.poll_output() {
            if let Output::Transmit { bytes, .. } = out {
                if bytes != b"\r\n" {
                    Message::parse(&bytes, &Limits::default()).expect("we only send valid SIP");
                }
            }
        }
    }
});
