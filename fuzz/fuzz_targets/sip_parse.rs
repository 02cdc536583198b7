//! SIP parser: never panics; parse → serialise → reparse → serialise is stable; an error
//! response, when offered, is itself a parsable message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::core::sip::message::{Limits, Message};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match Message::parse(data, &limits) {
        Ok(msg) => {
            let once = msg.to_bytes();
            let again = Message::parse(&once, &limits).expect("serialised message reparses");
            assert_eq!(again.to_bytes(), once, "serialisation is stable");
        }
        Err(err) => {
            if let Some(resp) = err.response("fuzz") {
                Message::parse(&resp, &limits).expect("error response parses");
            }
        }
    }
});
