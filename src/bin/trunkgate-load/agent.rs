//! The load tool's echo agent: a WebSocket server that sends every audio frame straight back
//! (raw: binary PCM16; twilio: the media payload re-sent as an outbound media message).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Default)]
pub struct AgentStats {
    pub connections: AtomicU64,
    pub frames: AtomicU64,
}

/// Binds the agent on `addr`'s IP (port 0) and serves until the process ends.
pub async fn serve(
    addr: SocketAddr,
    dialect: &str,
    stats: Arc<AgentStats>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?;
    let local = listener.local_addr()?;
    let twilio = dialect.eq_ignore_ascii_case("twilio");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let stats = stats.clone();
            tokio::spawn(async move {
                // Small read buffer: tungstenite zero-fills it before every read.
                let config = WebSocketConfig::default()
                    .read_buffer_size(4096)
                    .write_buffer_size(0);
                let accepted =
                    tokio_tungstenite::accept_async_with_config(stream, Some(config)).await;
                let Ok(ws) = accepted else {
                    return;
                };
                stats.connections.fetch_add(1, Ordering::Relaxed);
                let (mut tx, mut rx) = ws.split();
                let mut stream_sid = String::new();
                while let Some(Ok(msg)) = rx.next().await {
                    let reply = match msg {
                        Message::Binary(b) if !twilio => Some(Message::Binary(b)),
                        Message::Text(t) if twilio => echo_twilio(t.as_str(), &mut stream_sid)
                            .map(|s| Message::Text(s.into())),
                        Message::Close(_) => break,
                        _ => None,
                    };
                    if let Some(r) = reply {
                        stats.frames.fetch_add(1, Ordering::Relaxed);
                        if tx.send(r).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    Ok(local)
}

/// Twilio media in → the same payload out; `start` gives the streamSid. Media frames are the
/// hot path of a load run, so they are echoed with a string scan instead of a JSON tree
/// (`payload` is base64: no escapes to handle); other events are parsed properly.
fn echo_twilio(text: &str, stream_sid: &mut String) -> Option<String> {
    if text.contains("\"event\":\"media\"") {
        let payload = text.split("\"payload\":\"").nth(1)?.split('"').next()?;
        return Some(format!(
            "{{\"event\":\"media\",\"streamSid\":\"{stream_sid}\",\"media\":{{\"payload\":\"{payload}\"}}}}"
        ));
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v.get("event")?.as_str()? == "start" {
        *stream_sid = v.get("streamSid")?.as_str()?.to_string();
    }
    None
}
