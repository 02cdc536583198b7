//! The trunk's SIP transport: one UDP socket, or one TCP listener (plain or TLS) whose
//! connections are framed by Content-Length (the scripted UA's `take_frame`). Every message read is handed to the
//! trunk's dispatcher with the [`Peer`] it came from; answers and the trunk's own in-dialog
//! requests go back through [`Wire::send`] to that peer (the same TCP connection).
//! Must not: talk to anything but loopback, grow a buffer without bound, or panic on what a
//! peer sends (garbage is dropped; an oversized TCP frame closes the connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::super::ua::{take_frame, Msg};
use super::Transport;

/// Largest TCP buffer a connection may hold before it is closed.
const MAX_TCP_BUFFER: usize = 256 * 1024;
/// Most TCP connections the trunk keeps (each gateway usually opens one).
const MAX_TCP_CONNS: usize = 64;

/// Where a message came from, and where its answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Udp(SocketAddr),
    /// A TCP connection (its id) and the remote address.
    Tcp(u64, SocketAddr),
}

impl Peer {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Peer::Udp(a) | Peer::Tcp(_, a) => *a,
        }
    }
}

/// What the wire hands the dispatcher.
pub struct Incoming {
    pub msg: Msg,
    pub peer: Peer,
}

type Conns = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>>>;
/// The SNI of each TLS connection accepted.
pub type ServerNames = Arc<Mutex<Vec<Option<String>>>>;

/// The sending half, cloned into every call task.
#[derive(Clone)]
pub struct Wire {
    udp: Option<Arc<UdpSocket>>,
    conns: Conns,
    pub local: SocketAddr,
    pub transport: Transport,
    pub server_names: ServerNames,
}

impl Wire {
    /// Sends `bytes` to `peer`; false when it could not (closed TCP connection, not loopback).
    pub async fn send(&self, peer: Peer, bytes: &[u8]) -> bool {
        if !peer.addr().ip().is_loopback() {
            return false;
        }
        match (peer, &self.udp) {
            (Peer::Udp(addr), Some(sock)) => sock.send_to(bytes, addr).await.is_ok(),
            (Peer::Tcp(id, _), _) => {
                let tx = self.conns.lock().ok().and_then(|c| c.get(&id).cloned());
                tx.is_some_and(|tx| tx.send(bytes.to_vec()).is_ok())
            }
            (Peer::Udp(_), None) => false,
        }
    }
}

/// Binds on 127.0.0.1:0 and starts reading; the tasks end when the handles are aborted.
/// `Transport::Tls` needs `tls` (the server's certificate).
pub async fn bind(
    transport: Transport,
    tls: Option<Arc<rustls::ServerConfig>>,
    to_dispatch: mpsc::UnboundedSender<Incoming>,
) -> (Wire, Vec<JoinHandle<()>>) {
    let conns: Conns = Arc::default();
    let server_names = ServerNames::default();
    match transport {
        Transport::Udp => {
            let sock = Arc::new(
                UdpSocket::bind("127.0.0.1:0")
                    .await
                    .expect("bind trunk udp"),
            );
            let local = sock.local_addr().expect("trunk udp addr");
            let task = tokio::spawn(read_udp(sock.clone(), to_dispatch));
            let wire = Wire {
                udp: Some(sock),
                conns,
                local,
                transport,
                server_names,
            };
            (wire, vec![task])
        }
        Transport::Tcp | Transport::Tls => {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind trunk tcp");
            let local = listener.local_addr().expect("trunk tcp addr");
            let tls = match transport {
                Transport::Tls => Some(tokio_rustls::TlsAcceptor::from(
                    tls.expect("a TLS trunk needs a certificate"),
                )),
                _ => None,
            };
            let task = tokio::spawn(accept(
                listener,
                tls,
                server_names.clone(),
                conns.clone(),
                to_dispatch,
            ));
            let wire = Wire {
                udp: None,
                conns,
                local,
                transport,
                server_names,
            };
            (wire, vec![task])
        }
    }
}

async fn read_udp(sock: Arc<UdpSocket>, to_dispatch: mpsc::UnboundedSender<Incoming>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            return;
        };
        let Some(bytes) = buf.get(..n) else { continue };
        // A keep-alive (CRLF) or garbage parses to nothing and is dropped.
        if let Some(msg) = Msg::parse(&String::from_utf8_lossy(bytes)) {
            if to_dispatch
                .send(Incoming {
                    msg,
                    peer: Peer::Udp(from),
                })
                .is_err()
            {
                return;
            }
        }
    }
}

async fn accept(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    server_names: ServerNames,
    conns: Conns,
    to_dispatch: mpsc::UnboundedSender<Incoming>,
) {
    let mut next_id = 0u64;
    // Connection tasks live in this set so they end with the accept task.
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            return;
        };
        if !from.ip().is_loopback() {
            continue;
        }
        while tasks.try_join_next().is_some() {}
        if tasks.len() >= MAX_TCP_CONNS {
            continue;
        }
        next_id += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut c) = conns.lock() {
            c.insert(next_id, tx);
        }
        let (id, conns, to_dispatch) = (next_id, conns.clone(), to_dispatch.clone());
        match &tls {
            None => {
                tasks.spawn(connection(id, stream, from, rx, conns, to_dispatch));
            }
            Some(acceptor) => {
                let (acceptor, names) = (acceptor.clone(), server_names.clone());
                tasks.spawn(async move {
                    let handshake = acceptor.accept(stream);
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await
                    else {
                        if let Ok(mut c) = conns.lock() {
                            c.remove(&id);
                        }
                        return;
                    };
                    let sni = stream.get_ref().1.server_name().map(str::to_owned);
                    if let Ok(mut n) = names.lock() {
                        n.push(sni);
                    }
                    connection(id, stream, from, rx, conns, to_dispatch).await;
                });
            }
        }
    }
}

async fn connection(
    id: u64,
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    from: SocketAddr,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    conns: Conns,
    to_dispatch: mpsc::UnboundedSender<Incoming>,
) {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 16384];
    loop {
        tokio::select! {
            r = stream.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                pending.extend_from_slice(buf.get(..n).unwrap_or_default());
                // Each turn takes at least one frame off or stops: bounded by the buffer.
                while let Some(msg) = take_frame(&mut pending) {
                    let _ = to_dispatch.send(Incoming { msg, peer: Peer::Tcp(id, from) });
                }
                if pending.len() > MAX_TCP_BUFFER {
                    break;
                }
            }
            bytes = out.recv() => {
                let Some(bytes) = bytes else { break };
                // TLS buffers what is written until flushed.
                if stream.write_all(&bytes).await.is_err() || stream.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    if let Ok(mut c) = conns.lock() {
        c.remove(&id);
    }
}
