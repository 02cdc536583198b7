//! The webhook answer parser on arbitrary bodies under each content type: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::core::hooks::answer::parse_answer;

const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/json"),
    Some("text/xml; charset=utf-8"),
    Some("application/xml"),
    Some("text/plain"),
];

fuzz_target!(|data: &[u8]| {
    for ct in CONTENT_TYPES {
        let _ = parse_answer(ct, data);
    }
});
