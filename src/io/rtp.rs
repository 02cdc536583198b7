//! RTP sockets and the port pool they come from (`[rtp] port_min..=port_max`, even ports;
//! the odd port above is left for RTCP, which we don't send).
//!
//! A [`PortLease`] returns its port to the pool when dropped, so a call's port comes back on
//! every path out of the call task, panics included.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

#[derive(Debug)]
struct PoolInner {
    free: VecDeque<u16>,
    in_use: usize,
}

/// Even RTP ports, handed out round-robin so a port is not reused right after a call ends
/// (late packets of the old call would land in the new one).
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<PoolInner>>,
}

impl PortPool {
    pub fn new(min: u16, max: u16) -> Self {
        let start = min + (min % 2);
        let free = (start..=max).step_by(2).collect();
        PortPool {
            inner: Arc::new(Mutex::new(PoolInner { free, in_use: 0 })),
        }
    }

    /// Ports currently leased.
    pub fn in_use(&self) -> usize {
        self.inner.lock().map(|p| p.in_use).unwrap_or(0)
    }

    pub fn available(&self) -> usize {
        self.inner.lock().map(|p| p.free.len()).unwrap_or(0)
    }

    fn take(&self) -> Option<u16> {
        let mut p = self.inner.lock().ok()?;
        let port = p.free.pop_front()?;
        p.in_use += 1;
        Some(port)
    }

    fn give_back(&self, port: u16) {
        if let Ok(mut p) = self.inner.lock() {
            p.free.push_back(port);
            p.in_use = p.in_use.saturating_sub(1);
        }
    }

    /// Binds a UDP socket on the next free even port. Ports taken by other programs are
    /// skipped (and returned to the back of the pool). `None` when the pool is exhausted.
    pub async fn bind(&self, ip: IpAddr) -> Option<(PortLease, UdpSocket)> {
        let attempts = self.available();
        for _ in 0..attempts.min(64) {
            let port = self.take()?;
            let lease = PortLease {
                pool: self.clone(),
                port,
            };
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(sock) => return Some((lease, sock)),
                Err(e) => tracing::debug!(port, error = %e, "rtp port busy, trying the next"),
            }
        }
        None
    }
}

/// A leased RTP port; returned to the pool on drop.
#[derive(Debug)]
pub struct PortLease {
    pool: PortPool,
    port: u16,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.give_back(self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leases_even_ports_and_returns_them() {
        let pool = PortPool::new(41001, 41010);
        assert_eq!(pool.available(), 5);
        let (a, _sa) = pool.bind("127.0.0.1".parse().unwrap()).await.unwrap();
        assert_eq!(a.port() % 2, 0);
        assert_eq!(pool.in_use(), 1);
        drop(a);
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.available(), 5);
    }
}
