//! The `plivo` dialect: Plivo Audio Streams, bidirectional (PROTOCOLS.md §2; Vobiz speaks the
//! same), so agents written for Plivo work unchanged.
//!
//! Owns: message shapes and numbering. No `connected`; `sequenceNumber` and `chunk` are JSON
//! numbers from 1; media `timestamp` is the wall clock in epoch ms as a string; audio is base64
//! `audio/x-l16` (little-endian, 8 or 16 kHz) or `audio/x-mulaw` (8 kHz). `start` always carries
//! `extra_headers`: the answer's extraHeaders, else the custom parameters as `k=v,k=v`, then
//! `did`, `crt` and the kept SIP headers appended (a name the platform already set is not
//! repeated; a pair the `k=v,k=v` form cannot carry — a `,`, or `=` in the name — is left out).
//! Agent → us: `playAudio`, `checkpoint`, `clearAudio`, `sendDTMF`, plus trunkgate's `hangup`
//! and `transfer` extensions in the twilio shapes. A `playAudio` at another rate than the
//! stream's is [`AgentEvent::AudioAt`]. End of stream is the WS close: no `stop` message.
//! Must not: pace, resample or buffer audio.

use serde::Serialize;
use serde_json::Value;

use super::common::{
    b64_decode, b64_encode, bad, call_facts, clip, dtmf_digits, ignored, l16le_to_pcm,
    max_audio_bytes, normalise_rate, parse_object, pcm_to_l16le, pcm_to_ulaw, req_obj, req_str,
    to_json, transfer_target, ulaw_to_pcm, DialectError, Obj,
};
use super::{AgentEvent, AudioEncoding, Dialect, DialectCodec, StreamMeta, WsIn, WsOut};

const L16: &str = "audio/x-l16";
const MULAW: &str = "audio/x-mulaw";

pub struct PlivoCodec {
    meta: StreamMeta,
    rate: u32,
    seq: u64,
    chunk: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Start<'a> {
    event: &'static str,
    sequence_number: u64,
    start: StartBody<'a>,
    #[serde(rename = "extra_headers")]
    extra_headers: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartBody<'a> {
    call_id: &'a str,
    stream_id: &'a str,
    account_id: &'a str,
    tracks: [&'static str; 1],
    media_format: MediaFormat,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormat {
    encoding: &'static str,
    sample_rate: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Media<'a> {
    event: &'static str,
    sequence_number: u64,
    stream_id: &'a str,
    media: MediaBody,
}

#[derive(Serialize)]
struct MediaBody {
    track: &'static str,
    timestamp: String,
    chunk: u64,
    payload: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dtmf<'a> {
    event: &'static str,
    sequence_number: u64,
    stream_id: &'a str,
    dtmf: DtmfBody,
}

#[derive(Serialize)]
struct DtmfBody {
    track: &'static str,
    digit: String,
    timestamp: String,
}

/// `playedStream` (with `name`) and `clearedAudio` (without).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notice<'a> {
    event: &'static str,
    sequence_number: u64,
    stream_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl PlivoCodec {
    pub fn new(meta: StreamMeta) -> Self {
        let rate = match meta.encoding {
            AudioEncoding::Mulaw => 8_000,
            AudioEncoding::L16 => normalise_rate(meta.sample_rate),
        };
        PlivoCodec {
            meta,
            rate,
            seq: 0,
            chunk: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn extra_headers(&self) -> String {
        let mut out = match &self.meta.extra_headers {
            Some(h) => h.clone(),
            None => {
                let pairs: Vec<String> = self
                    .meta
                    .custom_parameters
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                pairs.join(",")
            }
        };
        let platform: Vec<String> = out
            .split(',')
            .map(|p| p.split('=').next().unwrap_or(p).trim().to_owned())
            .collect();
        let facts: Vec<(&str, &str)> = call_facts(&self.meta)
            .into_iter()
            .filter(|(k, v)| !k.is_empty() && !k.contains([',', '=']) && !v.contains(','))
            .filter(|(k, _)| !platform.iter().any(|p| p == k))
            .collect();
        for (i, (k, v)) in facts.iter().enumerate() {
            // A repeated header keeps its last value, as in the other dialects.
            if facts
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .any(|(k2, _)| k2 == k)
            {
                continue;
            }
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }

    fn notice(&mut self, event: &'static str, name: Option<&str>) -> WsOut {
        let sequence_number = self.next_seq();
        let msg = Notice {
            event,
            sequence_number,
            stream_id: &self.meta.stream_id,
            name,
        };
        WsOut::Text(to_json(&msg))
    }

    fn decode_text(&self, text: &str) -> Result<Vec<AgentEvent>, DialectError> {
        let obj = parse_object(text)?;
        let event = req_str(&obj, "event", "event")?;
        let ev = match event {
            "playAudio" => self.play_audio(req_obj(&obj, "media", "media")?)?,
            "checkpoint" => AgentEvent::Mark(req_str(&obj, "name", "name")?.to_owned()),
            "clearAudio" => AgentEvent::Clear,
            "sendDTMF" => dtmf_digits(req_str(&obj, "dtmf", "dtmf")?)?,
            "hangup" => AgentEvent::Hangup,
            "transfer" => {
                let t = req_obj(&obj, "transfer", "transfer")?;
                transfer_target(req_str(t, "to", "transfer.to")?, "transfer.to")?
            }
            other => return Ok(ignored(other)),
        };
        Ok(vec![ev])
    }

    fn play_audio(&self, media: &Obj) -> Result<AgentEvent, DialectError> {
        let content_type = req_str(media, "contentType", "media.contentType")?;
        // Tolerate `audio/x-l16;rate=16000`, the XML attribute's spelling, here too.
        let mut parts = content_type.split(';');
        let base = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let param_rate = parts
            .filter_map(|p| p.trim().strip_prefix("rate="))
            .find_map(|r| r.trim().parse::<u32>().ok());
        let rate = match media.get("sampleRate") {
            None | Some(Value::Null) => param_rate,
            Some(Value::Number(n)) => Some(
                n.as_u64()
                    .and_then(|r| u32::try_from(r).ok())
                    .ok_or_else(|| bad("media.sampleRate", "not a sample rate"))?,
            ),
            Some(Value::String(s)) => Some(
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| bad("media.sampleRate", "not a sample rate"))?,
            ),
            Some(_) => return Err(bad("media.sampleRate", "not a number")),
        };
        let unsupported = |rate: u32| DialectError::UnsupportedFormat {
            content_type: clip(content_type),
            sample_rate: rate,
        };
        let payload = req_str(media, "payload", "media.payload")?;
        let (pcm, rate) = match base.as_str() {
            L16 => {
                let rate = rate.unwrap_or(self.rate);
                if rate != 8_000 && rate != 16_000 {
                    return Err(unsupported(rate));
                }
                let bytes = b64_decode(payload, "media.payload", max_audio_bytes(rate, 2))?;
                (l16le_to_pcm(&bytes)?, rate)
            }
            MULAW => {
                let rate = rate.unwrap_or(8_000);
                if rate != 8_000 {
                    return Err(unsupported(rate));
                }
                let bytes = b64_decode(payload, "media.payload", max_audio_bytes(rate, 1))?;
                (ulaw_to_pcm(&bytes), rate)
            }
            _ => return Err(unsupported(rate.unwrap_or(0))),
        };
        Ok(if rate == self.rate {
            AgentEvent::Audio(pcm)
        } else {
            AgentEvent::AudioAt { pcm, rate }
        })
    }
}

impl DialectCodec for PlivoCodec {
    fn dialect(&self) -> Dialect {
        Dialect::Plivo
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn start(&mut self, _now_ms: u64) -> Vec<WsOut> {
        let sequence_number = self.next_seq();
        let encoding = match self.meta.encoding {
            AudioEncoding::L16 => L16,
            AudioEncoding::Mulaw => MULAW,
        };
        let m = &self.meta;
        let msg = Start {
            event: "start",
            sequence_number,
            start: StartBody {
                call_id: &m.call_id,
                stream_id: &m.stream_id,
                account_id: &m.account_id,
                tracks: ["inbound"],
                media_format: MediaFormat {
                    encoding,
                    sample_rate: self.rate,
                },
            },
            extra_headers: self.extra_headers(),
        };
        vec![WsOut::Text(to_json(&msg))]
    }

    fn audio(&mut self, pcm: &[i16], now_ms: u64) -> WsOut {
        let sequence_number = self.next_seq();
        self.chunk += 1;
        let bytes = match self.meta.encoding {
            AudioEncoding::L16 => pcm_to_l16le(pcm),
            AudioEncoding::Mulaw => pcm_to_ulaw(pcm),
        };
        let msg = Media {
            event: "media",
            sequence_number,
            stream_id: &self.meta.stream_id,
            media: MediaBody {
                track: "inbound",
                timestamp: now_ms.to_string(),
                chunk: self.chunk,
                payload: b64_encode(&bytes),
            },
        };
        WsOut::Text(to_json(&msg))
    }

    fn dtmf(&mut self, digit: char, _duration_ms: u32, now_ms: u64) -> WsOut {
        let sequence_number = self.next_seq();
        let msg = Dtmf {
            event: "dtmf",
            sequence_number,
            stream_id: &self.meta.stream_id,
            dtmf: DtmfBody {
                track: "inbound",
                digit: digit.to_string(),
                timestamp: now_ms.to_string(),
            },
        };
        WsOut::Text(to_json(&msg))
    }

    fn mark_played(&mut self, name: &str, _now_ms: u64) -> WsOut {
        self.notice("playedStream", Some(name))
    }

    fn cleared(&mut self, _now_ms: u64) -> Option<WsOut> {
        Some(self.notice("clearedAudio", None))
    }

    fn stop(&mut self, _reason: &str, _now_ms: u64) -> Option<WsOut> {
        None
    }

    fn transfer(&mut self, to: &str, outcome: &str, _now_ms: u64) -> WsOut {
        let seq = self.next_seq();
        WsOut::Text(
            serde_json::json!({"event": "transfer", "sequenceNumber": seq,
                "streamId": self.meta.stream_id, "transfer": {"to": to, "outcome": outcome}})
            .to_string(),
        )
    }

    fn decode(&mut self, msg: WsIn<'_>) -> Result<Vec<AgentEvent>, DialectError> {
        match msg {
            WsIn::Text(text) => self.decode_text(text),
            WsIn::Binary(b) => Err(DialectError::UnexpectedBinary(b.len())),
        }
    }
}

#[cfg(test)]
mod tests;
