//! The agent side of the three dialects (PROTOCOLS.md §2), written from the spec alone so it
//! checks trunkgate's dialect codecs instead of sharing their mistakes: decoding and
//! validating what trunkgate sends (numbering, formats, frame sizes) and encoding what an
//! agent sends (audio in any chunk size, marks, clear, DTMF, hangup).
//! Must not: use trunkgate's dialect codecs (only its G.711 tables), or panic on any message:
//! everything unexpected is reported as a spec violation for the test to assert on.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use trunkgate::core::media::g711;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Twilio,
    Plivo,
    Raw,
}

/// What the start message said about the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub stream_id: String,
    pub rate: u32,
    pub mulaw: bool,
}

/// One message from trunkgate, decoded.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// Twilio's `connected`.
    Hello(Value),
    Start(Value, StreamInfo),
    Audio(Vec<i16>),
    Dtmf(char),
    /// A mark played out: twilio/raw `mark`, plivo `playedStream`.
    Marked(String),
    /// plivo `clearedAudio`, raw `cleared`.
    Cleared,
    Stop(Value),
    Other(Value),
}

/// Decodes and checks one stream's messages in order.
pub struct Checker {
    dialect: Dialect,
    info: Option<StreamInfo>,
    messages: usize,
    last_seq: Option<u64>,
    last_chunk: Option<u64>,
    last_ts: Option<u64>,
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn n(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

fn digit_of(text: Option<&str>) -> Option<char> {
    let mut chars = text?.chars();
    let d = chars.next()?;
    (chars.next().is_none() && "0123456789*#ABCD".contains(d)).then_some(d)
}

fn l16_le(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn mulaw(bytes: &[u8]) -> Vec<i16> {
    let mut pcm = vec![0i16; bytes.len()];
    g711::decode_ulaw(bytes, &mut pcm);
    pcm
}

impl Checker {
    pub fn new(dialect: Dialect) -> Self {
        Checker {
            dialect,
            info: None,
            messages: 0,
            last_seq: None,
            last_chunk: None,
            last_ts: None,
        }
    }

    pub fn info(&self) -> Option<&StreamInfo> {
        self.info.as_ref()
    }

    /// Decodes `msg`; spec violations are appended to `problems` (the message may still be
    /// usable, e.g. a media frame with a sequence gap).
    pub fn decode(&mut self, msg: &Message, problems: &mut Vec<String>) -> Option<Incoming> {
        self.messages += 1;
        match msg {
            Message::Text(t) => match serde_json::from_str::<Value>(t.as_str()) {
                Ok(v) if v.is_object() => self.text(v, problems),
                _ => {
                    problems.push(format!("text frame is not a JSON object: {t}"));
                    None
                }
            },
            Message::Binary(b) => self.binary(b, problems),
            _ => None,
        }
    }

    fn frame_bytes(&self) -> usize {
        match &self.info {
            Some(i) if i.mulaw => (i.rate / 50) as usize,
            Some(i) => (i.rate / 50) as usize * 2,
            None => 0,
        }
    }

    fn binary(&mut self, b: &[u8], problems: &mut Vec<String>) -> Option<Incoming> {
        if self.dialect != Dialect::Raw {
            problems.push(format!("binary frame in {:?}", self.dialect));
            return None;
        }
        if self.info.is_none() {
            problems.push("raw audio before start".into());
            return None;
        }
        if b.len() != self.frame_bytes() {
            problems.push(format!(
                "raw frame of {} bytes, want {} (20 ms)",
                b.len(),
                self.frame_bytes()
            ));
        }
        Some(Incoming::Audio(l16_le(b)))
    }

    /// Twilio numbers are strings, plivo's are JSON numbers; both count from 1 at `start`.
    fn check_seq(&mut self, v: &Value, problems: &mut Vec<String>) {
        let seq = match self.dialect {
            Dialect::Twilio => s(v, &["sequenceNumber"]).and_then(|x| x.parse().ok()),
            Dialect::Plivo => n(v, &["sequenceNumber"]),
            Dialect::Raw => return,
        };
        let want = self.last_seq.map_or(1, |l| l + 1);
        if seq != Some(want) {
            problems.push(format!("sequenceNumber {seq:?}, want {want}: {v}"));
        }
        self.last_seq = seq.or(Some(want));
    }

    fn text(&mut self, v: Value, problems: &mut Vec<String>) -> Option<Incoming> {
        match self.dialect {
            Dialect::Twilio => self.twilio(v, problems),
            Dialect::Plivo => self.plivo(v, problems),
            Dialect::Raw => self.raw(v, problems),
        }
    }

    fn twilio(&mut self, v: Value, problems: &mut Vec<String>) -> Option<Incoming> {
        let event = s(&v, &["event"]).unwrap_or_default().to_owned();
        if event == "connected" {
            if self.messages != 1 || s(&v, &["protocol"]) != Some("Call") {
                problems.push(format!("connected must come first, protocol Call: {v}"));
            }
            return Some(Incoming::Hello(v));
        }
        self.check_seq(&v, problems);
        if let Some(info) = &self.info {
            if s(&v, &["streamSid"]) != Some(info.stream_id.as_str()) {
                problems.push(format!("streamSid missing or changed: {v}"));
            }
        }
        match event.as_str() {
            "start" => {
                let sid = s(&v, &["streamSid"]).unwrap_or_default();
                let fmt = &v["start"]["mediaFormat"];
                let ok = !sid.is_empty()
                    && s(&v, &["start", "streamSid"]) == Some(sid)
                    && s(fmt, &["encoding"]) == Some("audio/x-mulaw")
                    && n(fmt, &["sampleRate"]) == Some(8000)
                    && n(fmt, &["channels"]) == Some(1)
                    && s(&v, &["start", "callSid"]).is_some();
                if !ok {
                    problems.push(format!("twilio start malformed: {v}"));
                }
                let info = StreamInfo {
                    stream_id: sid.to_owned(),
                    rate: 8000,
                    mulaw: true,
                };
                self.info = Some(info.clone());
                Some(Incoming::Start(v, info))
            }
            "media" => {
                let chunk = s(&v, &["media", "chunk"]).and_then(|c| c.parse().ok());
                self.check_chunk(chunk, &v, problems);
                let ts = s(&v, &["media", "timestamp"]).and_then(|t| t.parse::<u64>().ok());
                self.check_ts(ts, &v, problems);
                if s(&v, &["media", "track"]) != Some("inbound") {
                    problems.push(format!("media track not inbound: {v}"));
                }
                self.payload(s(&v, &["media", "payload"]), true, problems)
            }
            "dtmf" => self.dtmf(s(&v, &["dtmf", "digit"]), &v, problems),
            "mark" => match s(&v, &["mark", "name"]) {
                Some(name) => Some(Incoming::Marked(name.to_owned())),
                None => {
                    problems.push(format!("mark without name: {v}"));
                    None
                }
            },
            "stop" => Some(Incoming::Stop(v)),
            _ => Some(Incoming::Other(v)),
        }
    }

    fn plivo(&mut self, v: Value, problems: &mut Vec<String>) -> Option<Incoming> {
        self.check_seq(&v, problems);
        let event = s(&v, &["event"]).unwrap_or_default().to_owned();
        if let Some(info) = &self.info {
            if s(&v, &["streamId"]) != Some(info.stream_id.as_str()) {
                problems.push(format!("streamId missing or changed: {v}"));
            }
        }
        match event.as_str() {
            "start" => {
                let fmt = &v["start"]["mediaFormat"];
                let encoding = s(fmt, &["encoding"]).unwrap_or_default();
                let rate = n(fmt, &["sampleRate"]).unwrap_or(0) as u32;
                let mulaw = encoding == "audio/x-mulaw";
                let sid = s(&v, &["start", "streamId"]).unwrap_or_default();
                let ok = !sid.is_empty()
                    && s(&v, &["start", "callId"]).is_some()
                    && v.get("extra_headers").is_some_and(Value::is_string)
                    && matches!(
                        (encoding, rate),
                        ("audio/x-l16", 8000 | 16000) | ("audio/x-mulaw", 8000)
                    );
                if !ok {
                    problems.push(format!("plivo start malformed: {v}"));
                }
                let info = StreamInfo {
                    stream_id: sid.to_owned(),
                    rate,
                    mulaw,
                };
                self.info = Some(info.clone());
                Some(Incoming::Start(v, info))
            }
            "media" => {
                self.check_chunk(n(&v, &["media", "chunk"]), &v, problems);
                // Epoch milliseconds as a string: after 2020, and never going backwards.
                let ts = s(&v, &["media", "timestamp"]).and_then(|t| t.parse::<u64>().ok());
                if ts.is_none_or(|t| t < 1_577_836_800_000) {
                    problems.push(format!("plivo media timestamp not epoch ms: {v}"));
                }
                self.check_ts(ts, &v, problems);
                let mulaw = self.info.as_ref().is_some_and(|i| i.mulaw);
                self.payload(s(&v, &["media", "payload"]), mulaw, problems)
            }
            "dtmf" => self.dtmf(s(&v, &["dtmf", "digit"]), &v, problems),
            "playedStream" => match s(&v, &["name"]) {
                Some(name) => Some(Incoming::Marked(name.to_owned())),
                None => {
                    problems.push(format!("playedStream without name: {v}"));
                    None
                }
            },
            "clearedAudio" => Some(Incoming::Cleared),
            _ => Some(Incoming::Other(v)),
        }
    }

    fn raw(&mut self, v: Value, problems: &mut Vec<String>) -> Option<Incoming> {
        let kind = s(&v, &["type"]).unwrap_or_default().to_owned();
        match kind.as_str() {
            "start" => {
                let rate = n(&v, &["audio", "sample_rate"]).unwrap_or(0) as u32;
                let ok = s(&v, &["audio", "encoding"]) == Some("pcm16")
                    && n(&v, &["audio", "frame_ms"]) == Some(20)
                    && matches!(rate, 8000 | 16000)
                    && s(&v, &["call_id"]).is_some();
                if !ok {
                    problems.push(format!("raw start malformed: {v}"));
                }
                let info = StreamInfo {
                    stream_id: s(&v, &["stream_id"]).unwrap_or_default().to_owned(),
                    rate,
                    mulaw: false,
                };
                self.info = Some(info.clone());
                Some(Incoming::Start(v, info))
            }
            "dtmf" => {
                if n(&v, &["duration_ms"]).is_none() {
                    problems.push(format!("raw dtmf without duration_ms: {v}"));
                }
                self.dtmf(s(&v, &["digit"]), &v, problems)
            }
            "mark" => match s(&v, &["name"]) {
                Some(name) => Some(Incoming::Marked(name.to_owned())),
                None => {
                    problems.push(format!("mark without name: {v}"));
                    None
                }
            },
            "cleared" => Some(Incoming::Cleared),
            "stop" => Some(Incoming::Stop(v)),
            _ => Some(Incoming::Other(v)),
        }
    }

    fn check_chunk(&mut self, chunk: Option<u64>, v: &Value, problems: &mut Vec<String>) {
        let want = self.last_chunk.map_or(1, |c| c + 1);
        if chunk != Some(want) {
            problems.push(format!("chunk {chunk:?}, want {want}: {v}"));
        }
        self.last_chunk = chunk.or(Some(want));
    }

    fn check_ts(&mut self, ts: Option<u64>, v: &Value, problems: &mut Vec<String>) {
        match (ts, self.last_ts) {
            (None, _) => problems.push(format!("media timestamp missing: {v}")),
            (Some(t), Some(last)) if t < last => {
                problems.push(format!("media timestamp went back: {v}"))
            }
            _ => {}
        }
        self.last_ts = ts.or(self.last_ts);
    }

    fn payload(
        &mut self,
        b64: Option<&str>,
        mulaw_payload: bool,
        problems: &mut Vec<String>,
    ) -> Option<Incoming> {
        if self.info.is_none() {
            problems.push("media before start".into());
            return None;
        }
        let Some(bytes) = b64.and_then(|p| B64.decode(p).ok()) else {
            problems.push("media payload missing or not base64".into());
            return None;
        };
        if bytes.len() != self.frame_bytes() {
            problems.push(format!(
                "media payload of {} bytes, want {} (20 ms)",
                bytes.len(),
                self.frame_bytes()
            ));
        }
        Some(Incoming::Audio(if mulaw_payload {
            mulaw(&bytes)
        } else {
            l16_le(&bytes)
        }))
    }

    fn dtmf(&self, digit: Option<&str>, v: &Value, problems: &mut Vec<String>) -> Option<Incoming> {
        match digit_of(digit) {
            Some(d) => Some(Incoming::Dtmf(d)),
            None => {
                problems.push(format!("dtmf without a digit: {v}"));
                None
            }
        }
    }
}

fn text(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

/// `ms` of a `freq` Hz sine at the stream's rate and format, cut into `chunk_ms` pieces (any
/// size: trunkgate must re-chunk), as agent → trunkgate messages.
pub fn tone(
    dialect: Dialect,
    info: &StreamInfo,
    freq: f32,
    ms: u32,
    chunk_ms: u32,
) -> Vec<Message> {
    let rate = info.rate.max(8000);
    let total = (rate as usize) * ms as usize / 1000;
    let pcm: Vec<i16> = (0..total)
        .map(|i| {
            let phase = 2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32;
            (phase.sin() * 8000.0) as i16
        })
        .collect();
    let per_chunk = ((rate as usize) * chunk_ms.max(1) as usize / 1000).max(1);
    pcm.chunks(per_chunk)
        .map(|chunk| audio(dialect, info, chunk))
        .collect()
}

fn audio(dialect: Dialect, info: &StreamInfo, pcm: &[i16]) -> Message {
    let le: Vec<u8> = pcm.iter().flat_map(|x| x.to_le_bytes()).collect();
    let ulaw = || {
        let mut out = vec![0u8; pcm.len()];
        g711::encode_ulaw(pcm, &mut out);
        B64.encode(out)
    };
    match dialect {
        Dialect::Twilio => text(json!({"event":"media","streamSid":info.stream_id,
            "media":{"payload":ulaw()}})),
        Dialect::Plivo if info.mulaw => text(json!({"event":"playAudio",
            "media":{"contentType":"audio/x-mulaw","sampleRate":8000,"payload":ulaw()}})),
        Dialect::Plivo => text(json!({"event":"playAudio",
            "media":{"contentType":"audio/x-l16","sampleRate":info.rate,"payload":B64.encode(le)}})),
        Dialect::Raw => Message::Binary(le.into()),
    }
}

pub fn mark(dialect: Dialect, info: &StreamInfo, name: &str) -> Message {
    match dialect {
        Dialect::Twilio => {
            text(json!({"event":"mark","streamSid":info.stream_id,"mark":{"name":name}}))
        }
        Dialect::Plivo => text(json!({"event":"checkpoint","streamId":info.stream_id,"name":name})),
        Dialect::Raw => text(json!({"type":"mark","name":name})),
    }
}

pub fn clear(dialect: Dialect, info: &StreamInfo) -> Message {
    match dialect {
        Dialect::Twilio => text(json!({"event":"clear","streamSid":info.stream_id})),
        Dialect::Plivo => text(json!({"event":"clearAudio","streamId":info.stream_id})),
        Dialect::Raw => text(json!({"type":"clear"})),
    }
}

pub fn dtmf(dialect: Dialect, digits: &str) -> Message {
    match dialect {
        Dialect::Twilio => text(json!({"event":"dtmf","dtmf":{"digits":digits}})),
        Dialect::Plivo => text(json!({"event":"sendDTMF","dtmf":digits})),
        Dialect::Raw => text(json!({"type":"dtmf","digits":digits})),
    }
}

/// trunkgate's hangup extension: the twilio shape (also accepted on plivo streams), raw `type`.
pub fn transfer(dialect: Dialect, to: &str) -> Message {
    match dialect {
        Dialect::Twilio | Dialect::Plivo => text(json!({"event":"transfer","transfer":{"to": to}})),
        Dialect::Raw => text(json!({"type":"transfer","to": to})),
    }
}

pub fn hangup(dialect: Dialect) -> Message {
    match dialect {
        Dialect::Twilio | Dialect::Plivo => text(json!({"event":"hangup"})),
        Dialect::Raw => text(json!({"type":"hangup"})),
    }
}
