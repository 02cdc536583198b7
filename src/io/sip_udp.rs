//! SIP over UDP (RFC 3261 §18): one receive loop per listening socket.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::TransportEvent;
use crate::core::{Flow, Transport};

/// Our address toward `remote` for a socket bound to `bound`: `bound` itself unless it is
/// the unspecified address, else the kernel's route choice (a connected probe socket; nothing
/// is sent).
pub fn local_ip_toward(bound: std::net::IpAddr, remote: SocketAddr) -> std::net::IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    let probe = std::net::UdpSocket::bind(SocketAddr::new(bound, 0)).and_then(|s| {
        s.connect(remote)?;
        s.local_addr()
    });
    probe.map_or(bound, |a| a.ip())
}

/// Binds a UDP listener with generous socket buffers (bursts of INVITEs and retransmissions).
pub async fn bind(addr: SocketAddr) -> std::io::Result<Arc<UdpSocket>> {
    let sock = UdpSocket::bind(addr).await?;
    Ok(Arc::new(sock))
}

/// Receives datagrams until the events channel closes. Datagrams larger than `max` are
/// truncated by the kernel and then fail to parse, which is the right outcome.
pub async fn recv_loop(sock: Arc<UdpSocket>, max: usize, events: mpsc::Sender<TransportEvent>) {
    let Ok(local) = sock.local_addr() else { return };
    let mut buf = vec![0u8; max.max(1500) + 1];
    loop {
        let (n, remote) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable surfaces as ECONNREFUSED on Linux; it is not fatal.
                tracing::debug!(error = %e, "udp recv error");
                continue;
            }
        };
        if n == 0 || n > max {
            continue;
        }
        let flow = Flow {
            transport: Transport::Udp,
            local,
            remote,
            conn: None,
        };
        let ev = TransportEvent::Received {
            flow,
            bytes: buf[..n].to_vec(),
        };
        if events.send(ev).await.is_err() {
            return;
        }
    }
}
