//! The agent WebSocket client: `ws://` and `wss://` (rustls), with a connect deadline.
//! Only moves frames; the dialect decides what they mean.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// A connected agent stream over plain TCP or TLS.
pub type AgentStream = WebSocketStream<MaybeTls>;

pub use stream::MaybeTls;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad agent URL {0:?}")]
    BadUrl(String),
    #[error("agent connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("agent TCP connect failed: {0}")]
    Tcp(std::io::Error),
    #[error("agent TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("agent WebSocket handshake failed: {0}")]
    Handshake(String),
}

/// Largest frame we accept from an agent (a few seconds of 16 kHz audio in base64 is far less).
const MAX_FRAME: usize = 1 << 20;

pub async fn connect(
    url: &str,
    headers: &[(String, String)],
    tls: Arc<rustls::ClientConfig>,
    deadline: Duration,
) -> Result<AgentStream, ConnectError> {
    tokio::time::timeout(deadline, connect_inner(url, headers, tls))
        .await
        .map_err(|_| ConnectError::Timeout(deadline))?
}

async fn connect_inner(
    url: &str,
    headers: &[(String, String)],
    tls: Arc<rustls::ClientConfig>,
) -> Result<AgentStream, ConnectError> {
    let (secure, rest) = if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else {
        return Err(ConnectError::BadUrl(url.to_string()));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = split_host_port(authority, if secure { 443 } else { 80 })
        .ok_or_else(|| ConnectError::BadUrl(url.to_string()))?;
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            name.parse::<tokio_tungstenite::tungstenite::http::HeaderName>(),
            value.parse::<tokio_tungstenite::tungstenite::http::HeaderValue>(),
        ) {
            request.headers_mut().insert(n, v);
        }
    }
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(ConnectError::Tcp)?;
    let _ = tcp.set_nodelay(true);
    let stream = if secure {
        let name = ServerName::try_from(host.clone())
            .map_err(|_| ConnectError::BadUrl(url.to_string()))?;
        let tls = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(ConnectError::Tls)?;
        MaybeTls::Tls(Box::new(tls))
    } else {
        MaybeTls::Plain(tcp)
    };
    // tungstenite's default 128 KiB read and write buffers per socket dominate a call's memory
    // at scale, and it zero-fills the free part of the read buffer before every read attempt,
    // also one that finds nothing (the call's select polls the stream on every wake-up: ~4.5
    // reads per agent frame). 1 KiB holds a 20 ms frame of every dialect (twilio ~330 B, raw
    // 16 kHz 640 B); larger messages take more reads. 4 KiB → 1 KiB cut the gateway's
    // instruction count per bridged call by ~12 % (callgrind, 20 calls).
    let config = WebSocketConfig::default()
        .max_frame_size(Some(MAX_FRAME))
        .max_message_size(Some(MAX_FRAME))
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_FRAME);
    let (ws, _resp) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    Ok(ws)
}

/// `host:port`, `[v6]:port`, or a bare host with the default port.
fn split_host_port(authority: &str, default: u16) -> Option<(String, u16)> {
    let authority = authority.rsplit('@').next()?;
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None if !authority.is_empty() => Some((authority.to_string(), default)),
        None => None,
    }
}

/// Plain TCP or TLS, as one AsyncRead + AsyncWrite type.
pub mod stream {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;

    pub enum MaybeTls {
        Plain(TcpStream),
        Tls(Box<TlsStream<TcpStream>>),
    }

    impl AsyncRead for MaybeTls {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
                MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            }
        }
    }

    impl AsyncWrite for MaybeTls {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            match self.get_mut() {
                MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
                MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            }
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
                MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            }
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            match self.get_mut() {
                MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
                MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("a.example:9000", 443),
            Some(("a.example".into(), 9000))
        );
        assert_eq!(
            split_host_port("a.example", 443),
            Some(("a.example".into(), 443))
        );
        assert_eq!(
            split_host_port("[::1]:8080", 80),
            Some(("::1".into(), 8080))
        );
        assert_eq!(split_host_port("[::1]", 80), Some(("::1".into(), 80)));
        assert_eq!(split_host_port("u:p@h:1", 80), Some(("h".into(), 1)));
        assert_eq!(split_host_port(":1", 80), None);
        assert_eq!(split_host_port("h:x", 80), None);
    }
}
