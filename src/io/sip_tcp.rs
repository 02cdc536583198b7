//! SIP over TCP (RFC 3261 §18.3): accept loop, per-connection framing by Content-Length,
//! CRLF keep-alives (RFC 5626 §4.4.1), and a writer task per connection so responses reuse
//! the connection the request came on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::TransportEvent;
use crate::core::sip::framing::{Frame, Framer};
use crate::core::sip::message::{Limits, Message};
use crate::core::{Flow, Transport};

/// A connection with a partial message and no progress for this long is closed.
const STALL_TIMEOUT: Duration = Duration::from_secs(32);
/// An idle connection (no bytes at all) is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// A connection toward a trunk that is not up after this long is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Opens a connection toward `remote` for requests we originate (INVITEs to a trunk) and
/// returns its id and writer at once: messages sent before the connection is up wait in the
/// channel. What arrives on it, and its close (also when connecting fails), is reported like
/// an accepted connection's.
pub fn dial(
    remote: SocketAddr,
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) -> (u64, mpsc::Sender<Vec<u8>>) {
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tx.clone();
    tokio::spawn(async move {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                serve(stream, remote, id, (writer, rx), limits, events).await;
            }
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "tcp connect failed");
                let _ = events.send(TransportEvent::ConnClosed { id }).await;
            }
            Err(_) => {
                tracing::debug!(%remote, "tcp connect timed out");
                let _ = events.send(TransportEvent::ConnClosed { id }).await;
            }
        }
    });
    (id, tx)
}

pub async fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, remote, limits.clone(), events.clone()));
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
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let channel = mpsc::channel::<Vec<u8>>(64);
    serve(stream, remote, id, channel, limits, events).await;
}

async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    id: u64,
    (tx, mut rx): (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>),
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) {
    let Ok(local) = stream.local_addr() else {
        let _ = events.send(TransportEvent::ConnClosed { id }).await;
        return;
    };
    let (mut rd, mut wr) = stream.into_split();
    if events
        .send(TransportEvent::ConnOpened { id, tx: tx.clone() })
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let flow = Flow {
        transport: Transport::Tcp,
        local,
        remote,
        conn: Some(id),
    };
    read_loop(&mut rd, flow, &limits, &events, &tx).await;
    drop(tx);
    let _ = events.send(TransportEvent::ConnClosed { id }).await;
    let _ = writer.await;
}

async fn read_loop(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
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
                    tracing::debug!(remote = %flow.remote, "tcp framing error, closing");
                    return;
                }
            }
        }
        partial = framer.buffered() > 0;
    }
}
