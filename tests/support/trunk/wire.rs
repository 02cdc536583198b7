//! The trunk's SIP transport: one UDP socket, or one TCP listener whose connections are framed
//! by Content-Length (the scripted UA's `take_frame`). Every message read is handed to the
//! trunk's dispatcher with the [`Peer`] it came from; answers and the trunk's own in-dialog
//! requests go back through [`Wire::send`] to that peer (the same TCP connection).
//! Must not: talk to anything but loopback, grow a buffer without bound, or panic on what a
//! peer sends (garbage is dropped; an oversized TCP frame closes the connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
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

/// The sending half, cloned into every call task.
#[derive(Clone)]
pub struct Wire {
    udp: Option<Arc<UdpSocket>>,
    conns: Conns,
    pub local: SocketAddr,
    pub transport: Transport,
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
pub async fn bind(
    transport: Transport,
    to_dispatch: mpsc::UnboundedSender<Incoming>,
) -> (Wire, Vec<JoinHandle<()>>) {
    let conns: Conns = Arc::default();
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
            };
            (wire, vec![task])
        }
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind trunk tcp");
            let local = listener.local_addr().expect("trunk tcp addr");
            let task = tokio::spawn(accept(listener, conns.clone(), to_dispatch));
            let wire = Wire {
                udp: None,
                conns,
                local,
                transport,
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

async fn accept(listener: TcpListener, conns: Conns, to_dispatch: mpsc::UnboundedSender<Incoming>) {
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
        tasks.spawn(connection(
            next_id,
            stream,
            from,
            rx,
            conns.clone(),
            to_dispatch.clone(),
        ));
    }
}

async fn connection(
    id: u64,
    mut stream: TcpStream,
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
                if stream.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        }
    }
    if let Ok(mut c) = conns.lock() {
        c.remove(&id);
    }
}
