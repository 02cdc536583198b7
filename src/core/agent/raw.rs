//! The `raw` dialect, trunkgate's own (PROTOCOLS.md §2): binary frames are PCM16 little-endian
//! mono at the stream rate both ways; text frames are JSON objects with a `type`.
//!
//! Owns: → agent `start` (call metadata, absent parts as absent keys, the kept SIP headers as
//! the object `headers` (always present, a repeated name keeps its last value), and
//! `audio {encoding: "pcm16", sample_rate, frame_ms: 20}`), `dtmf {digit, duration_ms}`,
//! `mark {name}`, `cleared` (an addition to PROTOCOLS.md: says a `clear` was carried out) and
//! `stop {reason}`; ← agent binary audio, `mark`, `clear`, `hangup`, `transfer {to}`,
//! `dtmf {digits}`.
//! Must not: pace, resample or buffer audio.

use serde::Serialize;

use super::common::{
    dtmf_digits, ignored, l16le_to_pcm, max_audio_bytes, normalise_rate, parse_object,
    pcm_to_l16le, req_str, to_json, transfer_target, DialectError, Params,
};
use super::{AgentEvent, Dialect, DialectCodec, StreamMeta, WsIn, WsOut};

pub struct RawCodec {
    meta: StreamMeta,
    rate: u32,
}

#[derive(Serialize)]
struct Start<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    call_id: &'a str,
    stream_id: &'a str,
    account_id: &'a str,
    direction: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    did: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crt: Option<&'a str>,
    custom_parameters: Params<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_headers: Option<&'a str>,
    headers: Params<'a>,
    audio: Audio,
}

#[derive(Serialize)]
struct Audio {
    encoding: &'static str,
    sample_rate: u32,
    frame_ms: u32,
}

#[derive(Serialize)]
struct Dtmf {
    #[serde(rename = "type")]
    kind: &'static str,
    digit: String,
    duration_ms: u32,
}

#[derive(Serialize)]
struct Named<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl RawCodec {
    pub fn new(meta: StreamMeta) -> Self {
        let rate = normalise_rate(meta.sample_rate);
        RawCodec { meta, rate }
    }

    fn decode_text(&self, text: &str) -> Result<Vec<AgentEvent>, DialectError> {
        let obj = parse_object(text)?;
        let kind = req_str(&obj, "type", "type")?;
        let ev = match kind {
            "mark" => AgentEvent::Mark(req_str(&obj, "name", "name")?.to_owned()),
            "clear" => AgentEvent::Clear,
            "hangup" => AgentEvent::Hangup,
            "transfer" => transfer_target(req_str(&obj, "to", "to")?, "to")?,
            "dtmf" => dtmf_digits(req_str(&obj, "digits", "digits")?)?,
            other => return Ok(ignored(other)),
        };
        Ok(vec![ev])
    }

    fn decode_binary(&self, bytes: &[u8]) -> Result<Vec<AgentEvent>, DialectError> {
        if bytes.is_empty() {
            return Err(DialectError::EmptyAudio);
        }
        let max = max_audio_bytes(self.rate, 2);
        if bytes.len() > max {
            return Err(DialectError::PayloadTooLarge {
                bytes: bytes.len(),
                max,
            });
        }
        Ok(vec![AgentEvent::Audio(l16le_to_pcm(bytes)?)])
    }
}

fn named<'a>(kind: &'static str, name: Option<&'a str>, reason: Option<&'a str>) -> WsOut {
    WsOut::Text(to_json(&Named { kind, name, reason }))
}

impl DialectCodec for RawCodec {
    fn dialect(&self) -> Dialect {
        Dialect::Raw
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn start(&mut self, _now_ms: u64) -> Vec<WsOut> {
        let m = &self.meta;
        let msg = Start {
            kind: "start",
            call_id: &m.call_id,
            stream_id: &m.stream_id,
            account_id: &m.account_id,
            direction: &m.direction,
            from: m.from.as_deref(),
            to: m.to.as_deref(),
            did: m.did.as_deref(),
            crt: m.crt.as_deref(),
            custom_parameters: Params(&m.custom_parameters),
            extra_headers: m.extra_headers.as_deref(),
            headers: Params(&m.headers),
            audio: Audio {
                encoding: "pcm16",
                sample_rate: self.rate,
                frame_ms: 20,
            },
        };
        vec![WsOut::Text(to_json(&msg))]
    }

    fn audio(&mut self, pcm: &[i16], _now_ms: u64) -> WsOut {
        WsOut::Binary(pcm_to_l16le(pcm))
    }

    fn dtmf(&mut self, digit: char, duration_ms: u32, _now_ms: u64) -> WsOut {
        WsOut::Text(to_json(&Dtmf {
            kind: "dtmf",
            digit: digit.to_string(),
            duration_ms,
        }))
    }

    fn mark_played(&mut self, name: &str, _now_ms: u64) -> WsOut {
        named("mark", Some(name), None)
    }

    fn cleared(&mut self, _now_ms: u64) -> Option<WsOut> {
        Some(named("cleared", None, None))
    }

    fn stop(&mut self, reason: &str, _now_ms: u64) -> Option<WsOut> {
        Some(named("stop", None, Some(reason)))
    }

    fn transfer(&mut self, to: &str, outcome: &str, _now_ms: u64) -> WsOut {
        WsOut::Text(
            serde_json::json!({"type": "transfer", "to": to, "outcome": outcome}).to_string(),
        )
    }

    fn decode(&mut self, msg: WsIn<'_>) -> Result<Vec<AgentEvent>, DialectError> {
        match msg {
            WsIn::Text(text) => self.decode_text(text),
            WsIn::Binary(bytes) => self.decode_binary(bytes),
        }
    }
}

#[cfg(test)]
mod tests;
