//! The caller's media for agent-bridge tests: a background task that streams PCMU in real
//! time (a tone or silence, switchable while it runs), sends RFC 4733 digits between audio
//! frames, and records every packet the gateway sends with its arrival time, so tests can
//! check content (tones, silence), pacing and telephone-events (pt 101, event, end bit).
//! RTP headers and RFC 4733 payloads are built and parsed here by hand, independently of
//! trunkgate's code; only the G.711 tables and the tone detector are shared.
//! Must not: sleep to wait for state (waits are on a watch of "packets received", bounded).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use trunkgate::core::media::g711;
use trunkgate::core::media::tone::detect_tone;

/// One packet from the gateway.
#[derive(Debug, Clone)]
pub struct Pkt {
    pub at: Instant,
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// One RFC 4733 event as the caller saw it (all packets with one timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfSeen {
    pub event: u8,
    pub ts: u32,
    pub marker: bool,
    pub end: bool,
    pub duration: u16,
    pub packets: usize,
    /// Packets with the end bit (RFC 4733 §2.5.1.4 sends the end three times).
    pub end_packets: usize,
}

#[derive(Debug, Default)]
pub struct Heard {
    pub packets: Vec<Pkt>,
    /// Audio frames (not DTMF) the caller has sent.
    pub sent_audio: usize,
}

impl Heard {
    /// RTP stream problems: SSRC changes, sequence gaps or reordering, audio timestamps that
    /// do not advance 160 per packet, and telephone-events whose timestamp is not the media
    /// time at which they start (RFC 3550 §5.1, RFC 4733 §2.5.1).
    pub fn stream_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut last_audio: Option<&Pkt> = None;
        for w in self.packets.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if b.ssrc != a.ssrc {
                out.push(format!("SSRC changed at seq {}", b.seq));
            }
            if b.seq != a.seq.wrapping_add(1) {
                out.push(format!("seq {} after {}", b.seq, a.seq));
            }
        }
        let mut events_checked = Vec::new();
        for p in &self.packets {
            match (p.pt, last_audio) {
                (0, Some(prev)) => {
                    let frames = u32::from(p.seq.wrapping_sub(prev.seq));
                    if p.ts != prev.ts.wrapping_add(160 * frames) {
                        out.push(format!(
                            "audio ts {} at seq {} after ts {} at seq {}",
                            p.ts, p.seq, prev.ts, prev.seq
                        ));
                    }
                }
                (101, Some(prev)) if !events_checked.contains(&p.ts) => {
                    events_checked.push(p.ts);
                    let frames = u32::from(p.seq.wrapping_sub(prev.seq));
                    if p.ts != prev.ts.wrapping_add(160 * frames) {
                        out.push(format!(
                            "event ts {} at seq {} is not media time ({} at seq {})",
                            p.ts, p.seq, prev.ts, prev.seq
                        ));
                    }
                }
                _ => {}
            }
            if p.pt == 0 {
                last_audio = Some(p);
            }
        }
        out
    }

    /// PCMU frames decoded, with their arrival times.
    pub fn frames(&self) -> impl Iterator<Item = (Instant, Vec<i16>)> + '_ {
        self.packets.iter().filter(|p| p.pt == 0).map(|p| {
            let mut pcm = vec![0i16; p.payload.len()];
            g711::decode_ulaw(&p.payload, &mut pcm);
            (p.at, pcm)
        })
    }

    /// Arrival times of the 20 ms frames that carry `freq`.
    pub fn tone_times(&self, freq: f32) -> Vec<Instant> {
        self.frames()
            .filter(|(_, pcm)| pcm.len() >= 80 && detect_tone(pcm, 8000, freq) > 0.5)
            .map(|(at, _)| at)
            .collect()
    }

    /// Audio frames (not DTMF) that arrived in `[from, to)`.
    pub fn frames_between(&self, from: Instant, to: Instant) -> Vec<Vec<i16>> {
        self.frames()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, pcm)| pcm)
            .collect()
    }

    pub fn dtmf(&self) -> Vec<DtmfSeen> {
        let mut out: Vec<DtmfSeen> = Vec::new();
        for p in self.packets.iter().filter(|p| p.pt == 101) {
            let Some(&[event, flags, d0, d1]) = p.payload.get(..4) else {
                continue;
            };
            let end = flags & 0x80 != 0;
            let duration = u16::from_be_bytes([d0, d1]);
            match out.iter_mut().find(|e| e.ts == p.ts) {
                Some(e) => {
                    e.end |= end;
                    e.duration = e.duration.max(duration);
                    e.packets += 1;
                    e.end_packets += usize::from(end);
                }
                None => out.push(DtmfSeen {
                    event,
                    ts: p.ts,
                    marker: p.marker,
                    end,
                    duration,
                    packets: 1,
                    end_packets: usize::from(end),
                }),
            }
        }
        out
    }

    /// Digits of the completed (end bit seen) events.
    pub fn digits(&self) -> String {
        self.dtmf()
            .iter()
            .filter(|e| e.end)
            .filter_map(|e| "0123456789*#ABCD".chars().nth(usize::from(e.event)))
            .collect()
    }
}

enum Cmd {
    Tone(f32),
    Dtmf(char),
}

pub struct Caller {
    sock: Option<UdpSocket>,
    pub addr: SocketAddr,
    cmds: Option<mpsc::UnboundedSender<Cmd>>,
    heard: Arc<Mutex<Heard>>,
    changed: watch::Receiver<usize>,
    changed_tx: Option<watch::Sender<usize>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Caller {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

fn event_code(d: char) -> Option<u8> {
    "0123456789*#ABCD"
        .find(d)
        .and_then(|i| u8::try_from(i).ok())
}

pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&0x5eed_cafe_u32.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

pub fn parse(at: Instant, b: &[u8]) -> Option<Pkt> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    if b0 >> 6 != 2 {
        return None;
    }
    let mut start = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = u16::from_be_bytes([*b.get(start + 2)?, *b.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = b.len();
    if b0 & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    Some(Pkt {
        at,
        pt: b1 & 0x7f,
        marker: b1 & 0x80 != 0,
        seq: u16::from_be_bytes([*b.get(2)?, *b.get(3)?]),
        ts: u32::from_be_bytes([*b.get(4)?, *b.get(5)?, *b.get(6)?, *b.get(7)?]),
        ssrc: u32::from_be_bytes([*b.get(8)?, *b.get(9)?, *b.get(10)?, *b.get(11)?]),
        payload: b.get(start..end)?.to_vec(),
    })
}

impl Caller {
    pub async fn bind() -> Caller {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind rtp");
        let addr = sock.local_addr().expect("rtp addr");
        let (tx, rx) = watch::channel(0);
        Caller {
            sock: Some(sock),
            addr,
            cmds: None,
            heard: Arc::new(Mutex::new(Heard::default())),
            changed: rx,
            changed_tx: Some(tx),
            task: None,
        }
    }

    /// Starts streaming to `to`: `freq` Hz (0 = silence) every 20 ms, until dropped.
    pub fn start(&mut self, to: SocketAddr, freq: f32) {
        let (Some(sock), Some(changed)) = (self.sock.take(), self.changed_tx.take()) else {
            panic!("caller already started");
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.cmds = Some(tx);
        self.task = Some(tokio::spawn(run(
            sock,
            to,
            freq,
            rx,
            self.heard.clone(),
            changed,
        )));
    }

    pub fn tone(&self, freq: f32) {
        self.cmd(Cmd::Tone(freq));
    }

    /// Queues a 100 ms RFC 4733 event per digit (60 ms of audio between digits).
    pub fn dtmf(&self, digits: &str) {
        for d in digits.chars() {
            self.cmd(Cmd::Dtmf(d));
        }
    }

    fn cmd(&self, c: Cmd) {
        if let Some(tx) = &self.cmds {
            let _ = tx.send(c);
        }
    }

    pub fn heard(&self) -> std::sync::MutexGuard<'_, Heard> {
        self.heard.lock().expect("heard lock")
    }

    /// Waits until what was heard satisfies `pred`; false after `wait`.
    pub async fn wait_until(&mut self, wait: Duration, pred: impl Fn(&Heard) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if pred(&self.heard()) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.changed.changed()).await {
                Ok(Ok(())) => continue,
                _ => return pred(&self.heard()),
            }
        }
    }
}

async fn run(
    sock: UdpSocket,
    to: SocketAddr,
    mut freq: f32,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    heard: Arc<Mutex<Heard>>,
    changed: watch::Sender<usize>,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let (mut seq, mut ts, mut phase) = (1u16, 0u32, 0f32);
    let mut digits = std::collections::VecDeque::new();
    // (event code, event timestamp, packets sent) of the digit being sent.
    let mut current: Option<(u8, u32, u16)> = None;
    let mut gap = 0u32;
    let mut buf = vec![0u8; 2048];
    let mut first = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if current.is_none() && gap == 0 {
                    current = digits.pop_front().and_then(event_code).map(|e| (e, ts, 0));
                }
                let packet = match &mut current {
                    Some((event, event_ts, sent)) => {
                        // 100 ms: 5 packets growing in duration, then the end packet 3 times.
                        *sent += 1;
                        let end = *sent > 5;
                        let duration = 160 * (*sent).min(5);
                        let payload = [*event, if end { 0x80 | 10 } else { 10 }, (duration >> 8) as u8, duration as u8];
                        let p = rtp(101, *sent == 1, seq, *event_ts, &payload);
                        if *sent >= 8 {
                            current = None;
                            gap = 3;
                        }
                        p
                    }
                    None => {
                        gap = gap.saturating_sub(1);
                        let mut pcm = [0i16; 160];
                        if freq > 0.0 {
                            for s in pcm.iter_mut() {
                                *s = (phase.sin() * 8000.0) as i16;
                                phase = (phase + 2.0 * std::f32::consts::PI * freq / 8000.0) % (2.0 * std::f32::consts::PI);
                            }
                        }
                        let mut payload = [0u8; 160];
                        g711::encode_ulaw(&pcm, &mut payload);
                        if let Ok(mut h) = heard.lock() {
                            h.sent_audio += 1;
                        }
                        rtp(0, first, seq, ts, &payload)
                    }
                };
                first = false;
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
                let _ = sock.send_to(&packet, to).await;
            }
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, _)) = r {
                    if let Some(p) = buf.get(..n).and_then(|b| parse(Instant::now(), b)) {
                        if let Ok(mut h) = heard.lock() {
                            h.packets.push(p);
                            changed.send_replace(h.packets.len());
                        }
                    }
                }
            }
            c = cmds.recv() => match c {
                Some(Cmd::Tone(f)) => freq = f,
                Some(Cmd::Dtmf(d)) => digits.push_back(d),
                None => return,
            },
        }
    }
}
