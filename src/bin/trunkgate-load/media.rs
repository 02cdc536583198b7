//! The callers' RTP, all calls on one socket and one thread: every millisecond the thread sends
//! the frames due in that millisecond with one `sendmmsg` and drains the socket with
//! `recvmmsg`, demultiplexing replies by the gateway's per-call RTP address. Calls are spread
//! over the 20 ms frame period (a call sends in the millisecond slot it registered in), so the
//! gateway sees a steady stream, not a burst every 20 ms.
//!
//! Per call it keeps what `caller` used to measure per task: a 100 ms 1 kHz burst each second
//! and the round trip of each burst (sent onset → first echoed frame above an energy threshold),
//! RTP loss (by sequence number) and late packets (an arrival gap over 60 ms), plus an optional
//! RFC 4733 digit halfway through. Arrival times have 1 ms resolution (the socket is drained
//! once per millisecond), so round trips read up to 1 ms long, 0.5 ms on average.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, sockopt, MsgFlags, MultiHeaders, SockaddrStorage};
use trunkgate::core::media::dtmf::{DtmfPacket, DtmfSender};
use trunkgate::core::media::srtp::SrtpSession;
use trunkgate::core::media::tone::ToneGen;
use trunkgate::core::media::{g711, rtp};

const BURST_EVERY: u32 = 50; // frames (1 s)
const BURST_LEN: u32 = 5; // frames (100 ms)
const ONSET_ENERGY: f64 = 2000.0; // mean |sample| of an echoed burst frame is ~6000
const SLOTS: usize = 20; // 1 ms slots in a 20 ms frame period
const BATCH: usize = 64; // packets per recvmmsg/sendmmsg call
const RECV_BUF: usize = 512; // RTP from the gateway is 172 bytes (PCMU 20 ms)

/// What one call's media measured.
#[derive(Debug, Default, Clone)]
pub struct MediaStats {
    pub rtts: Vec<Duration>,
    pub sent: u32,
    pub received: u32,
    pub lost: u32,
    pub late: u32,
}

struct CallMedia {
    remote: SocketAddr,
    frames: u32,
    sent: u32,
    seq: u16,
    ts: u32,
    ssrc: u32,
    gen: ToneGen,
    dtmf: bool,
    dtmf_queue: Vec<(u32, DtmfPacket)>,
    burst_sent: Option<Instant>,
    in_echo: bool,
    last_arrival: Option<Instant>,
    first_seq: Option<u16>,
    max_seq: u16,
    stats: MediaStats,
    /// A click-to-call leg: onsets are timed against `peer`'s bursts (none until paired).
    relay: bool,
    peer: Option<u16>,
    /// SRTP both ways (an `--srtp` call): what goes out is protected, what comes in checked.
    srtp: Option<SrtpSession>,
}

impl CallMedia {
    /// Appends the next frame's RTP packet to `out`.
    fn next_packet(&mut self, now: Instant, out: &mut Vec<u8>) {
        let phase = self.sent % BURST_EVERY;
        if self.dtmf && self.sent == self.frames / 2 {
            if let Ok(p) = DtmfSender::new(8000).packets('5', 100, 20, 10) {
                self.dtmf_queue = p.into_iter().map(|p| (self.ts, p)).rev().collect();
            }
        }
        if let Some((event_ts, p)) = self.dtmf_queue.pop() {
            let h = rtp::RtpHeader {
                marker: p.marker,
                payload_type: 101,
                sequence: self.seq,
                timestamp: event_ts,
                ssrc: self.ssrc,
            };
            rtp::write(&h, &p.payload, out);
        } else {
            let mut pcm = [0i16; 160];
            if phase < BURST_LEN {
                self.gen.fill(&mut pcm);
                if phase == 0 {
                    self.burst_sent = Some(now);
                    self.in_echo = false;
                }
            }
            let mut payload = [0u8; 160];
            g711::encode_ulaw(&pcm, &mut payload);
            let h = rtp::RtpHeader {
                marker: self.sent == 0,
                payload_type: 0,
                sequence: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
            };
            rtp::write(&h, &payload, out);
        }
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        self.sent += 1;
        if let Some(srtp) = &mut self.srtp {
            if let Ok(protected) = srtp.protect_rtp(out) {
                out.clear();
                out.extend_from_slice(&protected);
            }
        }
    }

    /// `peer_burst`: the paired leg's last burst onset sent (relay legs only).
    fn on_packet(&mut self, data: &[u8], now: Instant, peer_burst: Option<Instant>) {
        let plain;
        let data = match &mut self.srtp {
            None => data,
            Some(srtp) => match srtp.unprotect_rtp(data) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                // Not ours or forged: not media (never counted as received).
                Err(_) => return,
            },
        };
        let Ok(pkt) = rtp::parse(data) else { return };
        self.stats.received += 1;
        if let Some(prev) = self.last_arrival {
            if now.duration_since(prev) > Duration::from_millis(60) {
                self.stats.late += 1;
            }
        }
        self.last_arrival = Some(now);
        let s = pkt.header.sequence;
        match self.first_seq {
            None => {
                self.first_seq = Some(s);
                self.max_seq = s;
            }
            Some(_) => {
                if s.wrapping_sub(self.max_seq) < 0x8000 {
                    self.max_seq = s;
                }
            }
        }
        if pkt.header.payload_type != 0 {
            return;
        }
        let k = pkt.payload.len().min(160);
        let mut dec = [0i16; 160];
        g711::decode_ulaw(&pkt.payload[..k], &mut dec[..k]);
        let energy = dec[..k].iter().map(|&x| f64::from(x).abs()).sum::<f64>() / k.max(1) as f64;
        let reference = if self.relay {
            peer_burst
        } else {
            self.burst_sent
        };
        let onset = energy > ONSET_ENERGY && !self.in_echo;
        if self.relay {
            // No burst of our own re-arms the detector: the next loud frame after a quiet one
            // is the next onset.
            self.in_echo = energy > ONSET_ENERGY;
        }
        if onset {
            self.in_echo = true;
            if let Some(t) = reference {
                let rtt = now.duration_since(t);
                if rtt < Duration::from_millis(900) {
                    self.stats.rtts.push(rtt);
                }
            }
        }
    }

    fn finish(mut self) -> MediaStats {
        if let Some(first) = self.first_seq {
            let expected = u32::from(self.max_seq.wrapping_sub(first)) + 1;
            self.stats.lost = expected.saturating_sub(self.stats.received);
        }
        self.stats
    }
}

#[derive(Default)]
struct Table {
    calls: HashMap<u16, CallMedia>,
    slots: [Vec<u16>; SLOTS],
    /// The slot the engine thread serves next (new calls join the one after).
    current: usize,
}

/// The shared RTP engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    table: Arc<Mutex<Table>>,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Engine {
    /// Binds one UDP socket on `ip` and starts the engine thread.
    pub fn start(ip: std::net::IpAddr) -> std::io::Result<Engine> {
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
            table: Arc::new(Mutex::new(Table::default())),
            local,
            stop: Arc::new(AtomicBool::new(false)),
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
    pub fn add(&self, remote: SocketAddr, frames: u32, dtmf: bool) {
        self.insert(remote, frames, dtmf, false, None);
    }

    /// [`Engine::add`] on SRTP with this session.
    pub fn add_srtp(&self, remote: SocketAddr, frames: u32, dtmf: bool, srtp: SrtpSession) {
        self.insert(remote, frames, dtmf, false, Some(srtp));
    }

    /// [`Engine::add`] for a click-to-call leg: what it hears is relayed from its other leg,
    /// timed once [`Engine::pair`] names it.
    pub fn add_relay(&self, remote: SocketAddr, frames: u32) {
        self.insert(remote, frames, false, true, None);
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
        remote: SocketAddr,
        frames: u32,
        dtmf: bool,
        relay: bool,
        srtp: Option<SrtpSession>,
    ) {
        let call = CallMedia {
            remote,
            frames,
            sent: 0,
            seq: fastrand::u16(..),
            ts: fastrand::u32(..),
            ssrc: fastrand::u32(..),
            gen: ToneGen::single(1000.0, 8000.0, 8000),
            dtmf,
            dtmf_queue: Vec::new(),
            burst_sent: None,
            in_echo: false,
            last_arrival: None,
            first_seq: None,
            max_seq: 0,
            stats: MediaStats::default(),
            relay,
            peer: None,
            srtp,
        };
        let mut t = self.lock();
        // A random phase within the frame period, as real callers have (a stream that starts
        // right after the ACK would sit at the same phase against the gateway's clock in
        // every call).
        let slot = (t.current + 1 + fastrand::usize(..SLOTS)) % SLOTS;
        t.slots[slot].push(remote.port());
        t.calls.insert(remote.port(), call);
    }

    /// Stops the call's stream and returns what it measured.
    pub fn remove(&self, remote: SocketAddr) -> MediaStats {
        let mut t = self.lock();
        for slot in t.slots.iter_mut() {
            slot.retain(|p| *p != remote.port());
        }
        t.calls
            .remove(&remote.port())
            .map(CallMedia::finish)
            .unwrap_or_default()
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
                    let slot = (served_ms % SLOTS as u64) as usize;
                    t.current = slot;
                    let Table { calls, slots, .. } = &mut *t;
                    for port in &slots[slot] {
                        if let Some(c) = calls.get_mut(port) {
                            if c.sent < c.frames {
                                if used == packets.len() {
                                    packets.push(Vec::with_capacity(172));
                                }
                                let out = &mut packets[used];
                                out.clear();
                                c.next_packet(now, out);
                                c.stats.sent += 1;
                                used += 1;
                                addrs.push(Some(SockaddrStorage::from(c.remote)));
                            }
                        }
                    }
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
