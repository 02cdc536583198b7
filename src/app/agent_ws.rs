//! A call's agent WebSocket as the driver holds it: the socket (reads are a branch of the
//! call's select, writes never wait). What goes over it is the call machine's business
//! (`core::call`); this only moves frames.
//!
//! Writes go straight into tungstenite (no writer task, no channel, no lock per frame): a
//! frame is written to the socket at once when it has room, else kept in tungstenite's buffer
//! and flushed by the next write or tick. An agent that stops reading fills that buffer; past
//! [`MAX_BACKLOG`] its frames are dropped and counted, so it can never stall the caller's RTP.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::Ctx;
use crate::core::agent::WsOut;
use crate::io::agent_ws::AgentStream;

/// Frames that could not be written at once (the agent is not reading) beyond which new
/// frames are dropped.
const MAX_BACKLOG: usize = 256;

pub struct WsConn {
    ws: AgentStream,
    /// Frames accepted by tungstenite but not yet confirmed written (reset by a flush).
    backlog: usize,
    closed: bool,
}

fn to_message(m: WsOut) -> Message {
    match m {
        WsOut::Text(t) => Message::Text(t.into()),
        WsOut::Binary(b) => Message::Binary(b.into()),
    }
}

impl WsConn {
    pub fn new(ws: AgentStream) -> Self {
        WsConn {
            ws,
            backlog: 0,
            closed: false,
        }
    }

    /// Writes `msg` without waiting: into the socket if it has room, else into tungstenite's
    /// buffer (flushed later); dropped and counted when the agent has stopped reading.
    pub fn send(&mut self, msg: WsOut, ctx: &Ctx) {
        let dropped = || {
            ctx.stats
                .agent_dropped_frames
                .fetch_add(1, Ordering::Relaxed);
        };
        if self.closed || self.backlog >= MAX_BACKLOG {
            return dropped();
        }
        match self.ws.feed(to_message(msg)).now_or_never() {
            Some(Ok(())) => {
                // `feed` wrote the frame through (write buffer size 0) or buffered the rest.
                match self.ws.flush().now_or_never() {
                    Some(Ok(())) => self.backlog = 0,
                    Some(Err(_)) => {}
                    None => self.backlog += 1,
                }
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "agent write failed");
                dropped();
            }
            None => {
                self.backlog += 1;
                dropped();
            }
        }
    }

    /// Pushes out frames an earlier write could not finish; called once per media tick.
    pub fn flush(&mut self) {
        if self.backlog > 0 && !self.closed {
            if let Some(Ok(())) = self.ws.flush().now_or_never() {
                self.backlog = 0;
            }
        }
    }

    /// The next message from the agent.
    pub async fn next(&mut self) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.ws.next().await
    }

    /// The agent closed its side.
    pub fn mark_closed(&mut self) {
        self.closed = true;
    }

    /// Closes the socket in the background (bounded), so the call's end is never held up by
    /// a slow agent.
    pub fn close(self) {
        let mut ws = self.ws;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        });
    }
}
