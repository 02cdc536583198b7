//! The `twilio` dialect: Twilio Media Streams, bidirectional (PROTOCOLS.md §2), so agents
//! written for Twilio work unchanged.
//!
//! Owns: message shapes and numbering. Numbers are JSON strings except
//! `mediaFormat.sampleRate`/`channels`; `sequenceNumber` counts every message after `connected`
//! from "1"; `chunk` counts media messages from "1"; `timestamp` is ms since `start`.
//! `start.customParameters` holds `did`, `crt` and the kept SIP headers, then the platform's
//! parameters (which win a name clash).
//! Audio is base64 μ-law at 8 kHz only. Agent → us: `media`, `mark`, `clear`, and trunkgate's
//! extensions `hangup`, `transfer`, `dtmf`. The agent's `streamSid` is not checked: one WS
//! carries one stream.
//! Must not: pace, resample or buffer audio.

use serde::Serialize;

use super::common::{
    b64_decode, b64_encode_into, call_facts, dtmf_digits, ignored, max_audio_bytes, parse_object,
    req_obj, req_str, to_json, transfer_target, ulaw_to_pcm, DialectError, Params,
};
use super::{AgentEvent, Dialect, DialectCodec, StreamMeta, WsIn, WsOut};

const RATE: u32 = 8_000;

pub struct TwilioCodec {
    meta: StreamMeta,
    seq: u64,
    chunk: u64,
    start_ms: Option<u64>,
    /// The streamSid as a JSON string literal (quoted, escaped), for the media hot path.
    sid_json: String,
    /// μ-law scratch for the media hot path.
    ulaw: Vec<u8>,
}

#[derive(Serialize)]
struct Connected {
    event: &'static str,
    protocol: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Start<'a> {
    event: &'static str,
    sequence_number: String,
    stream_sid: &'a str,
    start: StartBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartBody<'a> {
    account_sid: &'a str,
    stream_sid: &'a str,
    call_sid: &'a str,
    tracks: [&'static str; 1],
    custom_parameters: Params<'a, &'a str>,
    media_format: MediaFormat,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MediaFormat {
    encoding: &'static str,
    sample_rate: u32,
    channels: u32,
}

/// An agent's media message as the hot path reads it (other fields are ignored; strings are
/// borrowed unless they hold escapes).
#[derive(serde::Deserialize)]
struct MediaIn<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<MediaInBody<'a>>,
}

#[derive(serde::Deserialize)]
struct MediaInBody<'a> {
    #[serde(borrow)]
    payload: std::borrow::Cow<'a, str>,
}

/// What `audio` writes by hand (kept for the test that holds the two equal).
#[cfg(test)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Media<'a> {
    event: &'static str,
    sequence_number: String,
    stream_sid: &'a str,
    media: MediaBody,
}

#[cfg(test)]
#[derive(Serialize)]
struct MediaBody {
    track: &'static str,
    chunk: String,
    timestamp: String,
    payload: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dtmf<'a> {
    event: &'static str,
    stream_sid: &'a str,
    sequence_number: String,
    dtmf: DtmfBody,
}

#[derive(Serialize)]
struct DtmfBody {
    track: &'static str,
    digit: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Mark<'a> {
    event: &'static str,
    sequence_number: String,
    stream_sid: &'a str,
    mark: MarkBody<'a>,
}

#[derive(Serialize)]
struct MarkBody<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stop<'a> {
    event: &'static str,
    sequence_number: String,
    stream_sid: &'a str,
    stop: StopBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StopBody<'a> {
    account_sid: &'a str,
    call_sid: &'a str,
}

impl TwilioCodec {
    pub fn new(meta: StreamMeta) -> Self {
        TwilioCodec {
            sid_json: serde_json::to_string(&meta.stream_id).unwrap_or_else(|_| "\"\"".into()),
            meta,
            seq: 0,
            chunk: 0,
            start_ms: None,
            ulaw: Vec::with_capacity(160),
        }
    }

    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    /// Milliseconds since `start`; a message before `start` starts the clock.
    fn elapsed(&mut self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(*self.start_ms.get_or_insert(now_ms))
    }

    fn decode_text(&self, text: &str) -> Result<Vec<AgentEvent>, DialectError> {
        // The hot path (a media message every 20 ms per call) straight into a borrowed struct;
        // anything else, or anything off, goes through the general path and its errors.
        // (Objects only: serde's derived structs would also take a JSON array.)
        let fast = if text.trim_start().starts_with('{') {
            serde_json::from_str::<MediaIn<'_>>(text).ok()
        } else {
            None
        };
        if let Some(MediaIn {
            event,
            media: Some(MediaInBody { payload }),
        }) = fast
        {
            if event == "media" {
                let bytes = b64_decode(&payload, "media.payload", max_audio_bytes(RATE, 1))?;
                return Ok(vec![AgentEvent::Audio(ulaw_to_pcm(&bytes))]);
            }
        }
        let obj = parse_object(text)?;
        let event = req_str(&obj, "event", "event")?;
        let ev = match event {
            "media" => {
                let media = req_obj(&obj, "media", "media")?;
                let b64 = req_str(media, "payload", "media.payload")?;
                let bytes = b64_decode(b64, "media.payload", max_audio_bytes(RATE, 1))?;
                AgentEvent::Audio(ulaw_to_pcm(&bytes))
            }
            "mark" => {
                let mark = req_obj(&obj, "mark", "mark")?;
                AgentEvent::Mark(req_str(mark, "name", "mark.name")?.to_owned())
            }
            "clear" => AgentEvent::Clear,
            "hangup" => AgentEvent::Hangup,
            "transfer" => {
                let t = req_obj(&obj, "transfer", "transfer")?;
                transfer_target(req_str(t, "to", "transfer.to")?, "transfer.to")?
            }
            "dtmf" => {
                let d = req_obj(&obj, "dtmf", "dtmf")?;
                dtmf_digits(req_str(d, "digits", "dtmf.digits")?)?
            }
            other => return Ok(ignored(other)),
        };
        Ok(vec![ev])
    }
}

impl DialectCodec for TwilioCodec {
    fn dialect(&self) -> Dialect {
        Dialect::Twilio
    }

    fn sample_rate(&self) -> u32 {
        RATE
    }

    fn start(&mut self, now_ms: u64) -> Vec<WsOut> {
        self.start_ms = Some(now_ms);
        let connected = Connected {
            event: "connected",
            protocol: "Call",
            version: "1.0.0",
        };
        let sequence_number = self.next_seq();
        let m = &self.meta;
        // The call's facts first, so the platform's own parameters win a name clash.
        let mut params = call_facts(m);
        params.extend(
            m.custom_parameters
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let start = Start {
            event: "start",
            sequence_number,
            stream_sid: &m.stream_id,
            start: StartBody {
                account_sid: &m.account_id,
                stream_sid: &m.stream_id,
                call_sid: &m.call_id,
                tracks: ["inbound"],
                custom_parameters: Params(&params),
                media_format: MediaFormat {
                    encoding: "audio/x-mulaw",
                    sample_rate: RATE,
                    channels: 1,
                },
            },
        };
        vec![
            WsOut::Text(to_json(&connected)),
            WsOut::Text(to_json(&start)),
        ]
    }

    /// The hot path (one message per 20 ms per call), written straight into one string: the
    /// same JSON `Media` serialises to (a unit test holds them equal), without serde's
    /// per-character escaping of the payload or the intermediate strings.
    fn audio(&mut self, pcm: &[i16], now_ms: u64) -> WsOut {
        use std::fmt::Write as _;
        let timestamp = self.elapsed(now_ms);
        self.seq += 1;
        self.chunk += 1;
        self.ulaw.clear();
        self.ulaw.resize(pcm.len(), 0);
        crate::core::media::g711::encode_ulaw(pcm, &mut self.ulaw);
        let mut out = String::with_capacity(140 + self.sid_json.len() + pcm.len().div_ceil(3) * 4);
        let _ = write!(
            out,
            "{{\"event\":\"media\",\"sequenceNumber\":\"{}\",\"streamSid\":{},\"media\":{{\"track\":\"inbound\",\"chunk\":\"{}\",\"timestamp\":\"{}\",\"payload\":\"",
            self.seq, self.sid_json, self.chunk, timestamp
        );
        b64_encode_into(&self.ulaw, &mut out);
        out.push_str("\"}}");
        WsOut::Text(out)
    }

    fn dtmf(&mut self, digit: char, _duration_ms: u32, _now_ms: u64) -> WsOut {
        let sequence_number = self.next_seq();
        let msg = Dtmf {
            event: "dtmf",
            stream_sid: &self.meta.stream_id,
            sequence_number,
            dtmf: DtmfBody {
                track: "inbound_track",
                digit: digit.to_string(),
            },
        };
        WsOut::Text(to_json(&msg))
    }

    fn mark_played(&mut self, name: &str, _now_ms: u64) -> WsOut {
        let sequence_number = self.next_seq();
        let msg = Mark {
            event: "mark",
            sequence_number,
            stream_sid: &self.meta.stream_id,
            mark: MarkBody { name },
        };
        WsOut::Text(to_json(&msg))
    }

    fn cleared(&mut self, _now_ms: u64) -> Option<WsOut> {
        None
    }

    fn transfer(&mut self, to: &str, outcome: &str, _now_ms: u64) -> WsOut {
        let seq = self.next_seq();
        WsOut::Text(
            serde_json::json!({"event": "transfer", "sequenceNumber": seq,
                "streamSid": self.meta.stream_id, "transfer": {"to": to, "outcome": outcome}})
            .to_string(),
        )
    }

    fn stop(&mut self, _reason: &str, _now_ms: u64) -> Option<WsOut> {
        let sequence_number = self.next_seq();
        let m = &self.meta;
        let msg = Stop {
            event: "stop",
            sequence_number,
            stream_sid: &m.stream_id,
            stop: StopBody {
                account_sid: &m.account_id,
                call_sid: &m.call_id,
            },
        };
        Some(WsOut::Text(to_json(&msg)))
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
