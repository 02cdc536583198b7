//! How the echo agent answers (`--agent-chunk`, `--agent-burst`): what it received goes back
//! as received (one message per message), in chunks of a fixed length (as agent frameworks
//! send 100 ms chunks), or held until 2 s have come in and then sent at once, faster than real
//! time (as TTS does), in one message or in chunks back to back. The audio is stamped on the
//! way in and out ([`crate::marks`]) for the direction split of the round trip.

use base64::Engine as _;

use crate::marks::Audio;

/// A burst reply's length.
pub const BURST_MS: u32 = 2000;
/// The longest chunk `--agent-chunk` takes.
pub const MAX_CHUNK_MS: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reply {
    /// Chunk length, ms (0: as received).
    pub chunk_ms: u32,
    /// Hold [`BURST_MS`] and send it at once.
    pub burst: bool,
}

impl Reply {
    /// `--agent-chunk` must be whole 20 ms frames: the gateway's pacer pads a partial frame,
    /// which would shift every later frame against its mark.
    pub fn new(chunk_ms: Option<u32>, burst: bool) -> Result<Reply, String> {
        let chunk_ms = chunk_ms.unwrap_or(0);
        if chunk_ms != 0 && (chunk_ms % 20 != 0 || chunk_ms > MAX_CHUNK_MS) {
            return Err(format!(
                "--agent-chunk {chunk_ms}: a multiple of 20 ms, at most {MAX_CHUNK_MS}"
            ));
        }
        Ok(Reply { chunk_ms, burst })
    }

    pub fn is_plain(&self) -> bool {
        self.chunk_ms == 0 && !self.burst
    }

    pub fn describe(&self) -> String {
        match (self.chunk_ms, self.burst) {
            (0, false) => "echo as received".into(),
            (c, false) => format!("echo in {c} ms chunks"),
            (0, true) => format!("echo {BURST_MS} ms at once"),
            (c, true) => format!("echo {BURST_MS} ms at once, in {c} ms chunks"),
        }
    }

    /// The messages due out of `held` now (taken from it, in order): everything (as received),
    /// every whole chunk, or every whole burst (split into chunks, if chunked).
    pub fn take(&self, held: &mut Vec<u8>, audio: Audio) -> Vec<Vec<u8>> {
        let per_ms = audio.bytes_per_ms();
        let chunk = self.chunk_ms as usize * per_ms;
        let mut out = Vec::new();
        if self.burst {
            let burst = BURST_MS as usize * per_ms;
            while held.len() >= burst {
                let reply: Vec<u8> = held.drain(..burst).collect();
                if chunk == 0 {
                    out.push(reply);
                } else {
                    out.extend(reply.chunks(chunk).map(<[u8]>::to_vec));
                }
            }
        } else if chunk == 0 {
            if !held.is_empty() {
                out.push(std::mem::take(held));
            }
        } else {
            while held.len() >= chunk {
                out.push(held.drain(..chunk).collect());
            }
        }
        out
    }
}

/// A twilio message's audio: the μ-law of a `media` event (None for any other event; `start`
/// gives the streamSid). Media frames are the hot path: found by a string scan, not a JSON
/// tree (`payload` is base64: no escapes to handle).
pub fn twilio_audio(text: &str, stream_sid: &mut String) -> Option<Vec<u8>> {
    if text.contains("\"event\":\"media\"") {
        let payload = text.split("\"payload\":\"").nth(1)?.split('"').next()?;
        return base64::engine::general_purpose::STANDARD
            .decode(payload)
            .ok();
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v.get("event")?.as_str()? == "start" {
        *stream_sid = v.get("streamSid")?.as_str()?.to_string();
    }
    None
}

/// A twilio `media` message carrying `ulaw` to the gateway.
pub fn twilio_media(stream_sid: &str, ulaw: &[u8]) -> String {
    let payload = base64::engine::general_purpose::STANDARD.encode(ulaw);
    let sid = serde_json::Value::from(stream_sid);
    format!("{{\"event\":\"media\",\"streamSid\":{sid},\"media\":{{\"payload\":\"{payload}\"}}}}")
}
