//! Agents as the media path sees them: PCM in, PCM out, DTMF in, control events out.
//!
//! Owns: the agent WebSocket dialects of PROTOCOLS.md §2 (`twilio`, `plivo`, `raw`) behind one
//! trait, [`DialectCodec`], which turns call-side happenings into WebSocket messages and agent
//! messages into [`AgentEvent`]s; `echo` is the built-in demo agent.
//! Must not: open sockets, pace audio, resample, or read a clock (every call takes `now_ms`,
//! the shell's wall clock as Unix milliseconds). Untrusted agent input never panics: it is an
//! [`AgentEvent`], an [`AgentEvent::Ignored`] (unknown event, log and count it) or a
//! [`DialectError`] (malformed; count it, the call goes on).

mod common;
pub mod echo;
pub mod plivo;
pub mod raw;
pub mod twilio;

#[cfg(test)]
mod tests;

pub use common::{DialectError, MAX_AGENT_AUDIO_MS};

/// The wire format spoken to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Twilio,
    Plivo,
    Raw,
}

impl Dialect {
    /// The config/webhook token (`"twilio"`, `"plivo"`, `"raw"`), case-insensitive.
    pub fn parse(token: &str) -> Option<Self> {
        let t = token.trim();
        [Dialect::Twilio, Dialect::Plivo, Dialect::Raw]
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(t))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Twilio => "twilio",
            Dialect::Plivo => "plivo",
            Dialect::Raw => "raw",
        }
    }
}

/// How audio is carried inside a dialect that offers a choice (only plivo does: twilio is
/// always μ-law, raw always PCM16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AudioEncoding {
    /// Linear 16-bit PCM (`audio/x-l16`), little-endian on the wire.
    #[default]
    L16,
    /// G.711 μ-law (`audio/x-mulaw`), 8 kHz only.
    Mulaw,
}

/// What the agent is told about the call in its start message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamMeta {
    pub call_id: String,
    pub stream_id: String,
    pub account_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub did: Option<String>,
    pub crt: Option<String>,
    /// `"inbound"` or `"outbound"`.
    pub direction: String,
    /// The platform's parameters (webhook `<Parameter>`s / JSON `parameters`).
    pub custom_parameters: Vec<(String, String)>,
    /// The platform's Plivo `extraHeaders` (`"a=1,b=2"`).
    pub extra_headers: Option<String>,
    /// The SIP extension headers (`X-...`) the call kept, as received, e.g. `X-Workspace-ID`.
    /// With `did` and `crt` they reach the agent in every dialect's start message: twilio
    /// `customParameters` (the platform's parameters win a name clash), plivo `extra_headers`
    /// (appended), raw `headers`.
    pub headers: Vec<(String, String)>,
    /// Requested rate, 8000 or 16000; the codec may pin it (see [`DialectCodec::sample_rate`]).
    pub sample_rate: u32,
    /// Requested encoding; only plivo honours it.
    pub encoding: AudioEncoding,
}

/// One WebSocket message to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsOut {
    Text(String),
    Binary(Vec<u8>),
}

/// One WebSocket message from the agent, borrowed from the shell's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsIn<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// What an agent message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// PCM16 mono at the codec's `sample_rate()`, any length (the pacer re-chunks it).
    Audio(Vec<i16>),
    /// PCM16 mono at another rate than the stream's (plivo lets an agent send 16 kHz L16 on an
    /// 8 kHz stream and vice versa); the caller resamples to `sample_rate()`.
    AudioAt {
        pcm: Vec<i16>,
        rate: u32,
    },
    /// Answer with `mark_played(name)` once all audio queued before it has left as RTP.
    Mark(String),
    /// Drop all queued audio now; pending marks are answered at once.
    Clear,
    Hangup,
    Transfer {
        to: String,
    },
    /// Digits to send to the caller, validated: `0-9 * # A-D`, upper case.
    Dtmf {
        digits: String,
    },
    /// A well-formed message with an event this dialect does not use (name truncated to 64
    /// bytes): log and count it, never end the call for it.
    Ignored(String),
}

/// One agent stream's wire format. Messages to the agent are numbered by the codec, so all of
/// them for one stream must go through the same instance, in the order they are sent.
pub trait DialectCodec: Send {
    fn dialect(&self) -> Dialect;
    /// The rate of the PCM given to `audio` and returned in [`AgentEvent::Audio`]; twilio and
    /// plivo μ-law pin it to 8000 whatever [`StreamMeta::sample_rate`] asked for.
    fn sample_rate(&self) -> u32;
    /// The opening messages: twilio `connected` + `start`; plivo `start`; raw `start`.
    fn start(&mut self, now_ms: u64) -> Vec<WsOut>;
    /// One frame of caller audio at `sample_rate()` as a media message.
    fn audio(&mut self, pcm: &[i16], now_ms: u64) -> WsOut;
    /// A caller DTMF digit (RFC 4733 end of event).
    fn dtmf(&mut self, digit: char, duration_ms: u32, now_ms: u64) -> WsOut;
    /// The agent's mark `name` has played out: twilio `mark`, plivo `playedStream`, raw `mark`.
    fn mark_played(&mut self, name: &str, now_ms: u64) -> WsOut;
    /// After a `Clear` has been carried out: plivo `clearedAudio`, raw `cleared`, twilio none
    /// (its agents learn it from the pending marks, which the caller echoes separately).
    fn cleared(&mut self, now_ms: u64) -> Option<WsOut>;
    /// How a transfer the agent (or the API) asked for is going (PROTOCOLS §2):
    /// `outcome` is `trying`, `succeeded` or `failed`.
    fn transfer(&mut self, to: &str, outcome: &str, now_ms: u64) -> WsOut;
    /// The stream ends: twilio and raw send `stop`; plivo has none (the WS close says it).
    fn stop(&mut self, reason: &str, now_ms: u64) -> Option<WsOut>;
    /// One agent message.
    fn decode(&mut self, msg: WsIn<'_>) -> Result<Vec<AgentEvent>, DialectError>;
}

/// A codec for `dialect`, numbering from the first message.
pub fn codec(dialect: Dialect, meta: StreamMeta) -> Box<dyn DialectCodec> {
    match dialect {
        Dialect::Twilio => Box::new(twilio::TwilioCodec::new(meta)),
        Dialect::Plivo => Box::new(plivo::PlivoCodec::new(meta)),
        Dialect::Raw => Box::new(raw::RawCodec::new(meta)),
    }
}
