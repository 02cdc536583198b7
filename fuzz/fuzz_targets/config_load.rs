//! The configuration loader (TOML syntax, types, every validation rule) on arbitrary text:
//! an error list or a config, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = trunkgate::config::parse(text, "fuzz.toml");
    }
});
