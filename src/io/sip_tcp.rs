//! SIP over TCP (RFC 3261 §18.3): accept loop, per-connection framing by Content-Length,
//! CRLF keep-alives (RFC 5626 §4.4.1), and a writer task per connection so responses reuse
//! the connection the request came on. [`serve`] is generic over the stream, so TLS
//! connections ([`super::sip_tls`]) are framed and written by the same code.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::conn_limit::ConnLimits;
use super::TransportEvent;
use crate::core::sip::framing::{Frame, Framer};
use crate::core::sip::message::{Limits, Message};
use crate::core::{Flow, Transport};

/// A connection with a partial message and no progress for this long is closed.
const STALL_TIMEOUT: Duration = Duration::from_secs(32);
/// An idle connection (no bytes at all) is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// A connection toward a trunk that is not up after this long is given up.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A new stream connection's id (TCP and TLS share the sequence).
pub(super) fn next_conn_id() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

/// Opens a connection toward `remote` for requests we originate (INVITEs to a trunk) and
/// returns its id and writer at once: messages sent before the connection is up wait in the
/// channel. What arrives on it, and its close (also when connecting fails), is reported like
/// an accepted connection's.
pub fn dial(
    remote: SocketAddr,
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) -> (u64, mpsc::Sender<Vec<u8>>) {
    let connect = async move {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr()?;
        Ok((stream, local))
    };
    spawn_dial(remote, Transport::Tcp, connect, limits, events)
}

/// The shared half of `dial` here and in `sip_tls`: a new connection id and writer returned
/// at once, `connect` (the stream and our local address) run in a task, then served; a
/// failure is reported as the connection's close.
pub(super) fn spawn_dial<S, F>(
    remote: SocketAddr,
    transport: Transport,
    connect: F,
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) -> (u64, mpsc::Sender<Vec<u8>>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
    F: std::future::Future<Output = std::io::Result<(S, SocketAddr)>> + Send + 'static,
{
    let id = next_conn_id();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tx.clone();
    tokio::spawn(async move {
        match connect.await {
            Ok((stream, local)) => {
                let flow = Flow {
                    transport,
                    local,
                    remote,
                    conn: Some(id),
                };
                serve(stream, flow, (writer, rx), limits, events, None).await;
            }
            Err(e) => {
                let t = transport.via_token();
                tracing::debug!(%remote, transport = t, error = %e, "connect failed");
                let _ = events.send(TransportEvent::ConnClosed { id }).await;
            }
        }
    });
    (id, tx)
}

/// Accepts connections until the endpoint is gone. A source that already holds its
/// maximum of connections ([`ConnLimits`]) has the new one closed at once.
pub async fn accept_loop(
    listener: TcpListener,
    guard: std::sync::Arc<ConnLimits>,
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let Some(slot) = guard.admit(remote.ip()) else {
                    tracing::debug!(%remote, "tcp connection over the per-source limit, closed");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (limits, events) = (limits.clone(), events.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    connection(stream, remote, limits, events).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if events.is_closed() {
            return;
        }
    }
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let id = next_conn_id();
    let flow = Flow {
        transport: Transport::Tcp,
        local,
        remote,
        conn: Some(id),
    };
    serve(
        stream,
        flow,
        mpsc::channel::<Vec<u8>>(64),
        limits,
        events,
        None,
    )
    .await;
}

/// Serves one connection (`flow.conn` is its id) until either side closes it: announces it
/// with its writer, frames what arrives, writes what is queued, reports the close.
pub(super) async fn serve<S>(
    stream: S,
    flow: Flow,
    (tx, mut rx): (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>),
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
    peer: Option<super::client_cert::PeerCerts>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Some(id) = flow.conn else {
        return;
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let opened = TransportEvent::ConnOpened {
        id,
        tx: tx.clone(),
        peer,
    };
    if events.send(opened).await.is_err() {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            // A TLS stream holds records until flushed; for TCP the flush is free.
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    read_loop(&mut rd, flow, &limits, &events, &tx).await;
    drop(tx);
    let _ = events.send(TransportEvent::ConnClosed { id }).await;
    let _ = writer.await;
}

async fn read_loop(
    rd: &mut (impl AsyncRead + Unpin),
    flow: Flow,
    limits: &Limits,
    events: &mpsc::Sender<TransportEvent>,
    tx: &mpsc::Sender<Vec<u8>>,
) {
    let mut framer = Framer::new(limits.max_message);
    let mut buf = vec![0u8; 16 * 1024];
    let mut partial = false;
    loop {
        let wait = if partial { STALL_TIMEOUT } else { IDLE_TIMEOUT };
        let n = match tokio::time::timeout(wait, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::KeepAlive)) => {
                    let _ = tx.send(b"\r\n".to_vec()).await;
                }
                Ok(Some(Frame::Message(bytes))) => {
                    let ev = TransportEvent::Received { flow, bytes };
                    if events.send(ev).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    // The stream cannot be re-synchronised: answer 400 if we can, then close.
                    if let Some(head) = err.head() {
                        if let Err(pe) = Message::parse(head, limits) {
                            if let Some(resp) = pe.response("trunkgate") {
                                let _ = tx.send(resp).await;
                            }
                        }
                    }
                    tracing::debug!(remote = %flow.remote, transport = flow.transport.via_token(), "stream framing error, closing");
                    return;
                }
            }
        }
        partial = framer.buffered() > 0;
    }
}
