//! TCP framing: any split of a byte stream yields the same frames (or the same error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::core::sip::framing::{Frame, Framer};

fn frames(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut f = Framer::new(64 * 1024);
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        loop {
            match f.next_frame() {
                Ok(Some(Frame::Message(m))) => out.push(m),
                Ok(Some(Frame::KeepAlive)) => out.push(b"<ka>".to_vec()),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // The first byte picks split points; the rest is the stream.
    let step = usize::from(data[0]).max(1);
    let stream = &data[1..];
    let whole = frames(&[stream]);
    let pieces: Vec<&[u8]> = stream.chunks(step).collect();
    let split = frames(&pieces);
    assert_eq!(whole, split, "framing depends on how the stream was split");
});
