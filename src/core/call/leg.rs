//! The legs of a call as values: the caller's SIP leg (its media lives in [`super::media`]),
//! and the leg that answers it — a WebSocket agent (dialect codec, resamplers between 8 kHz
//! and the agent's rate, 20 ms re-chunking) or the built-in echo.
//!
//! Must not: own sockets. The driver owns the agent's WebSocket and the RTP socket; a leg
//! only turns happenings into messages and back.

use crate::core::agent::echo::EchoAgent;
use crate::core::agent::{self, AudioEncoding, Dialect, DialectCodec, StreamMeta, WsOut};
use crate::core::media::rechunk::Rechunker;
use crate::core::media::resample::{resampler, Resample, Resampler};

/// Names a leg in the machine's inputs and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegId(pub u8);

/// The caller's SIP leg (UAS for an inbound call).
pub const CALLER: LegId = LegId(0);
/// The leg that answers the caller: an agent or the echo.
pub const ANSWERER: LegId = LegId(1);

/// Where and how to reach a WebSocket agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTarget {
    pub url: String,
    pub dialect: Dialect,
    /// 8000 or 16000 (the codec may pin it).
    pub sample_rate: u32,
    pub encoding: AudioEncoding,
    /// The webhook's `<Parameter>`s / `parameters` (twilio `customParameters`).
    pub parameters: Vec<(String, String)>,
    /// Plivo's `extraHeaders`.
    pub extra_headers: Option<String>,
}

/// Who answers the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Answerer {
    /// The built-in echo; rings for `answer_delay` first when set.
    Echo {
        answer_delay: Option<std::time::Duration>,
    },
    Agent(AgentTarget),
}

/// Where the agent leg's WebSocket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsState {
    Connecting,
    Up,
    /// Closed by either side; nothing more is sent.
    Closed,
}

/// A WebSocket agent leg: the dialect codec and the audio conversions around it.
pub struct AgentLeg {
    pub target: AgentTarget,
    pub meta: StreamMeta,
    pub codec: Box<dyn DialectCodec>,
    pub state: WsState,
    /// Reconnected once already after a drop.
    pub reconnected: bool,
    up: Resampler,
    down: Resampler,
    other_down: Option<(u32, Resampler)>,
    chunker: Rechunker,
    scratch: Vec<i16>,
}

impl AgentLeg {
    pub fn new(target: AgentTarget, meta: StreamMeta) -> Self {
        let codec = agent::codec(target.dialect, meta.clone());
        let rate = codec.sample_rate();
        AgentLeg {
            up: resampler(8000, rate).unwrap_or(Resampler::Passthrough),
            down: resampler(rate, 8000).unwrap_or(Resampler::Passthrough),
            other_down: None,
            chunker: Rechunker::twenty_ms(rate),
            scratch: Vec::with_capacity(640),
            target,
            meta,
            codec,
            state: WsState::Connecting,
            reconnected: false,
        }
    }

    /// A fresh stream after a reconnect: numbering and conversions start over.
    pub fn restart(&mut self) {
        let reconnected = self.reconnected;
        *self = AgentLeg::new(self.target.clone(), self.meta.clone());
        self.reconnected = reconnected;
    }

    /// One 20 ms frame of caller audio at 8 kHz, as media messages for the agent.
    pub fn caller_audio(&mut self, pcm8k: &[i16], now_ms: u64, mut send: impl FnMut(WsOut)) {
        self.scratch.clear();
        self.up.process(pcm8k, &mut self.scratch);
        let AgentLeg {
            chunker,
            codec,
            scratch,
            ..
        } = self;
        chunker.push(scratch, |frame| send(codec.audio(frame, now_ms)));
    }

    /// Agent audio at `rate` (`None`: the stream's rate) converted to 8 kHz into `out`;
    /// false when the rate cannot be converted (counted as a frame error).
    pub fn agent_audio_8k(&mut self, pcm: &[i16], rate: Option<u32>, out: &mut Vec<i16>) -> bool {
        match rate {
            None => self.down.process(pcm, out),
            Some(r) if r == self.codec.sample_rate() => self.down.process(pcm, out),
            Some(r) => {
                if self.other_down.as_ref().is_none_or(|(rate, _)| *rate != r) {
                    self.other_down = resampler(r, 8000).map(|rs| (r, rs));
                }
                match &mut self.other_down {
                    Some((_, rs)) => rs.process(pcm, out),
                    None => return false,
                }
            }
        }
        true
    }
}

/// The answering leg once chosen.
pub enum AnswerLeg {
    /// Not chosen yet (routing, or the call ended before).
    None,
    Echo(EchoAgent),
    Agent(Box<AgentLeg>),
}
