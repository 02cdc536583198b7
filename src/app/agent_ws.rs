//! A call's link to a WebSocket agent: the dialect codec, a writer task (so a slow agent never
//! stalls the RTP pacing), resampling between 8 kHz and the agent's rate, and re-chunking
//! caller audio into 20 ms frames.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::Ctx;
use crate::core::agent::{self, AgentEvent, Dialect, DialectCodec, StreamMeta, WsIn, WsOut};
use crate::core::media::rechunk::Rechunker;
use crate::core::media::resample::{resampler, Resample, Resampler};
use crate::io::agent_ws::{self, AgentStream, ConnectError};

/// Frames waiting for the agent's socket; beyond this the agent is not keeping up and frames
/// are dropped (and counted) rather than delaying the call.
const WRITE_QUEUE: usize = 512;

/// Where and how to reach an agent.
#[derive(Debug, Clone)]
pub struct WsTarget {
    pub url: String,
    pub dialect: Dialect,
    pub meta: StreamMeta,
}

pub struct WsAgent {
    pub codec: Box<dyn DialectCodec>,
    tx: mpsc::Sender<Message>,
    pub rx: SplitStream<AgentStream>,
    up: Resampler,
    down: Resampler,
    other_down: Option<(u32, Resampler)>,
    chunker: Rechunker,
    scratch: Vec<i16>,
    ctx: Arc<Ctx>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl WsAgent {
    /// Connects and starts the writer; the opening messages are sent by [`WsAgent::start`].
    pub async fn connect(
        target: &WsTarget,
        ctx: &Arc<Ctx>,
        deadline: Duration,
    ) -> Result<WsAgent, ConnectError> {
        let ws = agent_ws::connect(&target.url, &[], ctx.tls.clone(), deadline).await?;
        let (mut sink, rx) = ws.split();
        let (tx, mut wrx) = mpsc::channel::<Message>(WRITE_QUEUE);
        tokio::spawn(async move {
            while let Some(m) = wrx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let codec = agent::codec(target.dialect, target.meta.clone());
        let rate = codec.sample_rate();
        Ok(WsAgent {
            up: resampler(8000, rate).unwrap_or(Resampler::Passthrough),
            down: resampler(rate, 8000).unwrap_or(Resampler::Passthrough),
            other_down: None,
            chunker: Rechunker::twenty_ms(rate),
            scratch: Vec::with_capacity(640),
            codec,
            tx,
            rx,
            ctx: ctx.clone(),
        })
    }

    pub fn start(&mut self) {
        for m in self.codec.start(now_ms()) {
            self.send(m);
        }
    }

    pub fn send(&self, m: WsOut) {
        if self.tx.try_send(to_message(m)).is_err() {
            self.ctx
                .stats
                .agent_dropped_frames
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One 20 ms frame of caller audio at 8 kHz.
    pub fn caller_audio(&mut self, pcm8k: &[i16]) {
        self.scratch.clear();
        self.up.process(pcm8k, &mut self.scratch);
        let WsAgent {
            chunker,
            codec,
            scratch,
            tx,
            ctx,
            ..
        } = self;
        let now = now_ms();
        chunker.push(scratch, |frame| {
            if tx.try_send(to_message(codec.audio(frame, now))).is_err() {
                ctx.stats
                    .agent_dropped_frames
                    .fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// Agent audio at `rate` converted to 8 kHz, appended to `out`.
    pub fn agent_audio_8k(&mut self, pcm: &[i16], rate: Option<u32>, out: &mut Vec<i16>) {
        match rate {
            None => self.down.process(pcm, out),
            Some(r) if r == self.codec.sample_rate() => self.down.process(pcm, out),
            Some(r) => {
                if self.other_down.as_ref().is_none_or(|(rate, _)| *rate != r) {
                    self.other_down = resampler(r, 8000).map(|rs| (r, rs));
                }
                match &mut self.other_down {
                    Some((_, rs)) => rs.process(pcm, out),
                    None => {
                        self.ctx
                            .stats
                            .agent_frame_errors
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Decodes one WebSocket message; `None` when the stream ended (close, error).
    pub fn decode(&mut self, msg: Message) -> Option<Vec<AgentEvent>> {
        let decoded = match &msg {
            Message::Text(t) => self.codec.decode(WsIn::Text(t.as_str())),
            Message::Binary(b) => self.codec.decode(WsIn::Binary(b)),
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Some(Vec::new()),
        };
        match decoded {
            Ok(events) => Some(events),
            Err(e) => {
                self.ctx
                    .stats
                    .agent_frame_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "malformed agent message ignored");
                Some(Vec::new())
            }
        }
    }

    /// Sends the closing message and lets the writer close the socket.
    pub fn stop(self, reason: &str) {
        let mut codec = self.codec;
        if let Some(m) = codec.stop(reason, now_ms()) {
            let _ = self.tx.try_send(to_message(m));
        }
        let _ = self.tx.try_send(Message::Close(None));
    }
}

fn to_message(m: WsOut) -> Message {
    match m {
        WsOut::Text(t) => Message::Text(t.into()),
        WsOut::Binary(b) => Message::Binary(b.into()),
    }
}
