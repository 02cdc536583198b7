//! A call's link to a WebSocket agent: the dialect codec, the socket (owned by the call task:
//! reads are a branch of the media loop, writes never wait), resampling between 8 kHz and the
//! agent's rate, and re-chunking caller audio into 20 ms frames.
//!
//! Writes go straight into tungstenite (no writer task, no channel, no lock per frame): a
//! frame is written to the socket at once when it has room, else kept in tungstenite's buffer
//! and flushed by the next write or tick. An agent that stops reading fills that buffer; past
//! [`MAX_BACKLOG`] its frames are dropped and counted, so it can never stall the caller's RTP.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::Ctx;
use crate::core::agent::{self, AgentEvent, Dialect, DialectCodec, StreamMeta, WsIn, WsOut};
use crate::core::media::rechunk::Rechunker;
use crate::core::media::resample::{resampler, Resample, Resampler};
use crate::io::agent_ws::{self, AgentStream, ConnectError};

/// Frames that could not be written at once (the agent is not reading) beyond which new
/// frames are dropped.
const MAX_BACKLOG: usize = 256;

/// Where and how to reach an agent.
#[derive(Debug, Clone)]
pub struct WsTarget {
    pub url: String,
    pub dialect: Dialect,
    pub meta: StreamMeta,
}

pub struct WsAgent {
    pub codec: Box<dyn DialectCodec>,
    ws: AgentStream,
    /// Frames accepted by tungstenite but not yet confirmed written (reset by a flush).
    backlog: usize,
    closed: bool,
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

fn to_message(m: WsOut) -> Message {
    match m {
        WsOut::Text(t) => Message::Text(t.into()),
        WsOut::Binary(b) => Message::Binary(b.into()),
    }
}

impl WsAgent {
    /// Connects; the opening messages are sent by [`WsAgent::start`].
    pub async fn connect(
        target: &WsTarget,
        ctx: &Arc<Ctx>,
        deadline: Duration,
    ) -> Result<WsAgent, ConnectError> {
        let ws = agent_ws::connect(&target.url, &[], ctx.tls.clone(), deadline).await?;
        let codec = agent::codec(target.dialect, target.meta.clone());
        let rate = codec.sample_rate();
        Ok(WsAgent {
            up: resampler(8000, rate).unwrap_or(Resampler::Passthrough),
            down: resampler(rate, 8000).unwrap_or(Resampler::Passthrough),
            other_down: None,
            chunker: Rechunker::twenty_ms(rate),
            scratch: Vec::with_capacity(640),
            codec,
            ws,
            backlog: 0,
            closed: false,
            ctx: ctx.clone(),
        })
    }

    pub fn start(&mut self) {
        for m in self.codec.start(now_ms()) {
            self.send(m);
        }
    }

    /// Hands one frame to the socket without waiting.
    pub fn send(&mut self, m: WsOut) {
        write_now(
            &mut self.ws,
            &mut self.backlog,
            self.closed,
            &self.ctx,
            to_message(m),
        );
    }

    /// Pushes out frames an earlier write could not finish; called once per media tick.
    pub fn flush(&mut self) {
        if self.backlog > 0 && !self.closed {
            if let Some(Ok(())) = self.ws.flush().now_or_never() {
                self.backlog = 0;
            }
        }
    }

    /// The next message from the agent (a branch of the media loop's select).
    pub async fn next(&mut self) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.ws.next().await
    }

    /// One 20 ms frame of caller audio at 8 kHz.
    pub fn caller_audio(&mut self, pcm8k: &[i16]) {
        self.scratch.clear();
        self.up.process(pcm8k, &mut self.scratch);
        let WsAgent {
            chunker,
            codec,
            scratch,
            ws,
            backlog,
            closed,
            ctx,
            ..
        } = self;
        let now = now_ms();
        chunker.push(scratch, |frame| {
            let msg = to_message(codec.audio(frame, now));
            write_now(ws, backlog, *closed, ctx, msg);
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
            Message::Close(_) => {
                self.closed = true;
                return None;
            }
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

    /// Sends the closing messages and closes the socket in the background (bounded), so the
    /// call's end is never held up by a slow agent.
    pub fn stop(mut self, reason: &str) {
        if let Some(m) = self.codec.stop(reason, now_ms()) {
            self.send(m);
        }
        let mut ws = self.ws;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        });
    }
}

/// Writes `msg` without waiting: into the socket if it has room, else into tungstenite's
/// buffer (flushed later); dropped and counted when the agent has stopped reading.
fn write_now(ws: &mut AgentStream, backlog: &mut usize, closed: bool, ctx: &Ctx, msg: Message) {
    if closed || *backlog >= MAX_BACKLOG {
        ctx.stats
            .agent_dropped_frames
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    match ws.feed(msg).now_or_never() {
        Some(Ok(())) => {
            // `feed` wrote the frame through (write buffer size 0) or buffered the rest.
            match ws.flush().now_or_never() {
                Some(Ok(())) => *backlog = 0,
                Some(Err(_)) => {}
                None => *backlog += 1,
            }
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "agent write failed");
            ctx.stats
                .agent_dropped_frames
                .fetch_add(1, Ordering::Relaxed);
        }
        None => {
            *backlog += 1;
            ctx.stats
                .agent_dropped_frames
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
