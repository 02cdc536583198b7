//! Receiving a call's RTP without the extra read per packet.
//!
//! A plain `recv_from` on an edge-triggered socket costs two system calls per packet: the read
//! that gets it and the read that fails with EAGAIN so the runtime re-arms readiness. Here one
//! `recvmmsg` asks for up to [`BATCH`] datagrams; getting fewer proves the socket is empty, and
//! readiness is cleared on the spot (through `try_io`, which only clears it if no new packet
//! arrived since readiness was observed, so none is missed). One system call per packet in the
//! usual case of one packet per wake-up.
//!
//! Owns: the receive buffers of one call (allocated once). The `recvmmsg` message headers hold
//! raw pointers (not `Send`), so they live per thread and are used only inside the
//! synchronous read, never across an await: no allocation per packet, no `unsafe`.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams asked for per call; two is enough to tell "drained" from "more waiting".
pub const BATCH: usize = 2;
/// Bytes per datagram: RTP of 60 ms G.711 (the longest packet time we negotiate) is 492 with
/// a plain header, room is left for CSRCs and header extensions; anything longer is truncated
/// and fails to parse, like any other malformed packet.
const DATAGRAM: usize = 1024;

thread_local! {
    static HEADERS: RefCell<MultiHeaders<SockaddrStorage>> =
        RefCell::new(MultiHeaders::preallocate(BATCH, None));
}

pub struct RtpReceiver {
    bufs: Box<[[u8; DATAGRAM]; BATCH]>,
    got: [(usize, Option<SocketAddr>); BATCH],
    count: usize,
}

impl Default for RtpReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl RtpReceiver {
    pub fn new() -> Self {
        RtpReceiver {
            bufs: Box::new([[0u8; DATAGRAM]; BATCH]),
            got: [(0, None); BATCH],
            count: 0,
        }
    }

    /// Waits for datagrams and returns how many were received (≥ 1); read them with
    /// [`RtpReceiver::datagram`].
    pub async fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        loop {
            sock.readable().await?;
            self.count = 0;
            let res = sock.try_io(Interest::READABLE, || {
                let n = self.recv_now(sock.as_raw_fd())?;
                if n < BATCH {
                    // Drained: have the runtime clear readiness (the datagrams are kept).
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match res {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.count > 0 {
                        return Ok(self.count);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The `i`-th datagram of the last [`RtpReceiver::recv`]: bytes and source.
    pub fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let (len, from) = self.got[i];
        Some((&self.bufs[i][..len.min(DATAGRAM)], from?))
    }

    /// One non-blocking `recvmmsg`; EAGAIN comes back as `WouldBlock`.
    fn recv_now(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        let bufs = &mut self.bufs;
        let got = &mut self.got;
        let n = HEADERS.with(|h| {
            let mut headers = h.borrow_mut();
            let [a, b] = &mut **bufs;
            let mut iovs = [[IoSliceMut::new(a)], [IoSliceMut::new(b)]];
            let res = recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(io::Error::from)?;
            let mut n = 0;
            for (slot, r) in got.iter_mut().zip(res) {
                *slot = (r.bytes, r.address.and_then(to_socket_addr));
                n += 1;
            }
            Ok::<usize, io::Error>(n)
        })?;
        self.count = n;
        Ok(n)
    }
}

fn to_socket_addr(s: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    s.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        (a, b)
    }

    #[tokio::test]
    async fn one_two_and_three_queued_datagrams_all_arrive_in_order() {
        let (rx_sock, tx) = pair().await;
        let to = rx_sock.local_addr().expect("addr");
        let from = tx.local_addr().expect("addr");
        let mut rx = RtpReceiver::new();
        let mut seen = Vec::new();
        for burst in 1..=3u8 {
            for k in 0..burst {
                tx.send_to(&[burst, k], to).await.expect("send");
            }
            let mut got = 0;
            while got < usize::from(burst) {
                let n = rx.recv(&rx_sock).await.expect("recv");
                for i in 0..n {
                    let (data, src) = rx.datagram(i).expect("datagram");
                    assert_eq!(src, from);
                    seen.push(data.to_vec());
                }
                got += n;
            }
        }
        let want: Vec<Vec<u8>> = vec![
            vec![1, 0],
            vec![2, 0],
            vec![2, 1],
            vec![3, 0],
            vec![3, 1],
            vec![3, 2],
        ];
        assert_eq!(seen, want);
    }

    /// After a read that drained the socket, a datagram sent later still wakes the receiver.
    #[tokio::test]
    async fn a_later_datagram_wakes_the_receiver_after_a_drain() {
        let (rx_sock, tx) = pair().await;
        let to = rx_sock.local_addr().expect("addr");
        let mut rx = RtpReceiver::new();
        for k in 0..50u8 {
            tx.send_to(&[k], to).await.expect("send");
            let n = rx.recv(&rx_sock).await.expect("recv");
            assert_eq!(n, 1);
            assert_eq!(rx.datagram(0).map(|(d, _)| d.to_vec()), Some(vec![k]));
            assert!(rx.datagram(1).is_none());
        }
    }

    #[tokio::test]
    async fn an_oversized_datagram_is_truncated_not_an_error() {
        let (rx_sock, tx) = pair().await;
        let to = rx_sock.local_addr().expect("addr");
        let mut rx = RtpReceiver::new();
        tx.send_to(&vec![7u8; 4000], to).await.expect("send");
        let n = rx.recv(&rx_sock).await.expect("recv");
        assert_eq!(n, 1);
        let (data, _) = rx.datagram(0).expect("datagram");
        assert!(data.len() <= DATAGRAM);
    }
}
