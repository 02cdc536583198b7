//! The callers' RTP, all calls on one socket and one thread: every millisecond the thread sends
//! the frames due in that millisecond with one `sendmmsg` and drains the socket with
//! `recvmmsg`, demultiplexing replies by the gateway's per-call RTP address. Calls are spread
//! over the 20 ms frame period (each stream starts at a random phase and is kept on a timing
//! wheel of due milliseconds), so the gateway sees a steady stream, not a burst every 20 ms;
//! `--jitter`, `--loss` and `--reorder` move, drop and swap single packets ([`crate::shape`]).
//!
//! Per call ([`crate::media_call`]) it keeps what `caller` used to measure per task: a 100 ms
//! 1 kHz burst each second and the round trip of each burst (sent onset → echoed onset), RTP
//! loss (by sequence number) and late packets (an arrival gap over 60 ms), plus an optional
//! RFC 4733 digit halfway through, and the two directions of each echoed frame's trip from the
//! marks in its audio ([`crate::marks`]). Arrival times have 1 ms resolution (the socket is
//! drained once per millisecond), so round trips read up to 1 ms long, 0.5 ms on average.
//!
//! Click-to-call legs stream the same audio but are *relayed* to each other, not echoed: a
//! leg added with [`Engine::add_relay`] and paired with its other leg ([`Engine::pair`])
//! times each burst onset it hears against the other leg's last burst sent (one way, leg →
//! gateway → leg), and never against its own.
//!
//! Why: one task, one socket and one timer per call made the load tool cost as much CPU as the
//! gateway it measures (two syscalls and a wake-up per packet); batched here, a 1,000-call run
//! leaves the gateway the cores it is being measured on.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, sockopt, MsgFlags, MultiHeaders, SockaddrStorage};
use trunkgate::core::media::srtp::SrtpSession;

use crate::media_call::CallMedia;
pub use crate::media_call::MediaStats;
use crate::shape::{Shape, Shaper};

const WHEEL: usize = 256; // ms; beyond the longest gap between two packets (20 + 2 × 100)
const BATCH: usize = 64; // packets per recvmmsg/sendmmsg call
const RECV_BUF: usize = 512; // RTP from the gateway is 172 bytes (PCMU 20 ms)

struct Table {
    calls: HashMap<u16, CallMedia>,
    /// Timing wheel: the ports whose next packet is due at engine ms `m`, in `wheel[m % WHEEL]`.
    wheel: Vec<Vec<u16>>,
    /// The engine ms last served (new calls start after it).
    current: u64,
}

impl Table {
    fn new() -> Table {
        Table {
            calls: HashMap::new(),
            wheel: vec![Vec::new(); WHEEL],
            current: 0,
        }
    }

    fn unschedule(&mut self, port: u16) {
        if let Some(c) = self.calls.get(&port) {
            let at = (c.due_ms % WHEEL as u64) as usize;
            self.wheel[at].retain(|p| *p != port);
        }
    }
}

/// The shared RTP engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    table: Arc<Mutex<Table>>,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    shape: Shape,
    /// Streams added without a number take the next of these.
    unnumbered: Arc<AtomicU64>,
}

impl Engine {
    /// Binds one UDP socket on `ip` and starts the engine thread (ideal streams).
    #[cfg(test)]
    pub fn start(ip: std::net::IpAddr) -> std::io::Result<Engine> {
        Engine::start_shaped(ip, Shape::default())
    }

    /// [`Engine::start`] with every stream shaped by `shape`.
    pub fn start_shaped(ip: std::net::IpAddr, shape: Shape) -> std::io::Result<Engine> {
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        sock.set_nonblocking(true)?;
        // A millisecond of 1,000 calls' replies is small, but the thread may be descheduled.
        for size in [8 << 20, 4 << 20, 1 << 20] {
            let rcv = socket::setsockopt(&sock, sockopt::RcvBufForce, &size)
                .or_else(|_| socket::setsockopt(&sock, sockopt::RcvBuf, &size));
            let snd = socket::setsockopt(&sock, sockopt::SndBufForce, &size)
                .or_else(|_| socket::setsockopt(&sock, sockopt::SndBuf, &size));
            if rcv.is_ok() && snd.is_ok() {
                break;
            }
        }
        let local = sock.local_addr()?;
        let engine = Engine {
            table: Arc::new(Mutex::new(Table::new())),
            local,
            stop: Arc::new(AtomicBool::new(false)),
            shape,
            unnumbered: Arc::new(AtomicU64::new(1 << 40)),
        };
        let runner = engine.clone();
        std::thread::Builder::new()
            .name("load-rtp".into())
            .spawn(move || runner.run(sock))?;
        Ok(engine)
    }

    /// The address every call offers in its SDP.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts streaming `frames` frames to `remote` (the gateway's RTP address for this call).
    /// `stream` numbers it for its shaping seed (the same number, the same jitter, loss and
    /// reordering in every run with the same `--seed`); None takes the next free number.
    pub fn add(&self, stream: Option<u64>, remote: SocketAddr, frames: u32, dtmf: bool) {
        self.insert(stream, remote, frames, dtmf, false, None);
    }

    /// [`Engine::add`] on SRTP with this session.
    pub fn add_srtp(
        &self,
        stream: Option<u64>,
        remote: SocketAddr,
        frames: u32,
        dtmf: bool,
        srtp: SrtpSession,
    ) {
        self.insert(stream, remote, frames, dtmf, false, Some(srtp));
    }

    /// [`Engine::add`] for a click-to-call leg: what it hears is relayed from its other leg,
    /// timed once [`Engine::pair`] names it.
    pub fn add_relay(&self, stream: Option<u64>, remote: SocketAddr, frames: u32) {
        self.insert(stream, remote, frames, false, true, None);
    }

    /// Makes the streams to `a` and `b` (both added) each other's peer.
    pub fn pair(&self, a: SocketAddr, b: SocketAddr) {
        let mut t = self.lock();
        for (x, y) in [(a, b), (b, a)] {
            if let Some(c) = t.calls.get_mut(&x.port()) {
                c.peer = Some(y.port());
            }
        }
    }

    fn insert(
        &self,
        stream: Option<u64>,
        remote: SocketAddr,
        frames: u32,
        dtmf: bool,
        relay: bool,
        srtp: Option<SrtpSession>,
    ) {
        let n = stream.unwrap_or_else(|| self.unnumbered.fetch_add(1, Ordering::Relaxed));
        let seed = self.shape.stream_seed(n);
        let mut t = self.lock();
        // The shaper gives the stream a random phase within the frame period, as real callers
        // have (a stream that starts right after the ACK would sit at the same phase against
        // the gateway's clock in every call).
        let shaper = Shaper::new(&self.shape, seed, t.current);
        let call = CallMedia::new(remote, frames, dtmf, relay, srtp, shaper);
        let port = remote.port();
        t.unschedule(port);
        if call.streaming() {
            t.wheel[(call.due_ms % WHEEL as u64) as usize].push(port);
        }
        t.calls.insert(port, call);
    }

    /// Stops the call's stream and returns what it measured.
    pub fn remove(&self, remote: SocketAddr) -> MediaStats {
        let mut t = self.lock();
        t.unschedule(remote.port());
        t.calls
            .remove(&remote.port())
            .map(CallMedia::finish)
            .unwrap_or_default()
    }

    /// Serves engine ms `m`: every stream due sends (or drops) its packet into `packets`
    /// (from `*used` on) and is put back on the wheel at its next due time.
    fn serve(
        t: &mut Table,
        m: u64,
        now: Instant,
        packets: &mut Vec<Vec<u8>>,
        addrs: &mut Vec<Option<SockaddrStorage>>,
        used: &mut usize,
    ) {
        let Table {
            calls,
            wheel,
            current,
        } = t;
        *current = m;
        let at = (m % WHEEL as u64) as usize;
        let due = std::mem::take(&mut wheel[at]);
        for port in due {
            let Some(c) = calls.get_mut(&port) else {
                continue;
            };
            if c.due_ms > m {
                wheel[at].push(port); // a later turn of the wheel
                continue;
            }
            // Packets clamped behind a late one leave in the same ms, in order.
            while c.due_ms <= m && c.streaming() {
                if *used == packets.len() {
                    packets.push(Vec::with_capacity(172));
                }
                if c.emit(now, &mut packets[*used]) {
                    *used += 1;
                    addrs.push(Some(SockaddrStorage::from(c.remote)));
                }
                if c.streaming() {
                    c.due_ms = c.shaper.next_due();
                }
            }
            if c.streaming() {
                let next = (c.due_ms % WHEEL as u64) as usize;
                wheel[next].push(port);
            }
        }
    }

    fn run(self, sock: UdpSocket) {
        let fd = sock.as_raw_fd();
        let start = Instant::now();
        let mut served_ms: u64 = 0;
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let mut addrs: Vec<Option<SockaddrStorage>> = Vec::new();
        let mut bufs = vec![[0u8; RECV_BUF]; BATCH];
        let mut got: Vec<(usize, u16, usize)> = Vec::with_capacity(BATCH);
        while !self.stop.load(Ordering::Relaxed) {
            let now_ms = start.elapsed().as_millis() as u64;
            // Serve every slot due (catching up if the thread was late), one sendmmsg batch.
            let mut used = 0;
            addrs.clear();
            {
                let mut t = self.lock();
                let now = Instant::now();
                while served_ms <= now_ms {
                    Engine::serve(&mut t, served_ms, now, &mut packets, &mut addrs, &mut used);
                    served_ms += 1;
                }
            }
            for (chunk, to) in packets[..used].chunks(BATCH).zip(addrs.chunks(BATCH)) {
                let slices: Vec<[IoSlice<'_>; 1]> =
                    chunk.iter().map(|p| [IoSlice::new(p)]).collect();
                let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
                // A full socket buffer drops the rest of the batch: counted as loss by the peer.
                let _ = socket::sendmmsg(fd, &mut headers, &slices, to, [], MsgFlags::empty());
            }
            // Drain everything that arrived.
            loop {
                got.clear();
                let received;
                {
                    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
                    let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                        bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
                    let Ok(res) = socket::recvmmsg(
                        fd,
                        &mut headers,
                        iovs.iter_mut(),
                        MsgFlags::MSG_DONTWAIT,
                        None,
                    ) else {
                        break;
                    };
                    let mut count = 0;
                    for (i, r) in res.enumerate() {
                        count += 1;
                        if let Some(port) = r.address.and_then(port_of) {
                            got.push((i, port, r.bytes));
                        }
                    }
                    received = count;
                }
                if !got.is_empty() {
                    let now = Instant::now();
                    let mut t = self.lock();
                    for &(i, port, len) in &got {
                        let peer_burst = t
                            .calls
                            .get(&port)
                            .and_then(|c| c.peer)
                            .and_then(|p| t.calls.get(&p))
                            .and_then(|p| p.burst_sent);
                        if let Some(c) = t.calls.get_mut(&port) {
                            c.on_packet(&bufs[i][..len.min(RECV_BUF)], now, peer_burst);
                        }
                    }
                }
                if received < BATCH {
                    break;
                }
            }
            // Sleep to the next millisecond boundary.
            let next = start + Duration::from_millis(served_ms);
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    }
}

/// Calls are told apart by the gateway's RTP port (unique per call on one gateway; the
/// address may differ from the SDP's when the gateway binds a wildcard).
fn port_of(s: SockaddrStorage) -> Option<u16> {
    s.as_sockaddr_in()
        .map(|v4| v4.port())
        .or_else(|| s.as_sockaddr_in6().map(|v6| v6.port()))
}
