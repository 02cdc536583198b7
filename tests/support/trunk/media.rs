//! The trunk's RTP for one call: its own loopback socket (in its SDP), a task that records
//! every packet the gateway sends (as the caller harness's [`Heard`], so its tone, pacing and
//! DTMF checks apply) and either echoes each packet back to its sender or streams a tone or
//! silence every 20 ms in the codec the trunk answered with. Starts at 183 (early media) or at
//! the answer, stops when the call ends.
//! Must not: send to anything but loopback, or run past [`MAX_MEDIA`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use trunkgate::core::media::g711;
use trunkgate::core::media::tone::ToneGen;

use super::super::caller::{parse, rtp, Heard};

/// Longest a call's media runs.
pub const MAX_MEDIA: Duration = Duration::from_secs(300);

/// What the trunk sends once media starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Media {
    /// Every packet received is sent back to its source (same payload type and payload).
    Echo,
    /// A sine at this frequency, 20 ms frames.
    Tone(f32),
    /// Digital silence, 20 ms frames.
    Silence,
    /// Nothing (the trunk only listens).
    Quiet,
}

/// The audio codec the trunk answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// A call's captured audio, shared with the trunk's observation API.
#[derive(Clone)]
pub struct Capture {
    pub heard: Arc<Mutex<Heard>>,
    pub changed: watch::Receiver<usize>,
}

impl Capture {
    /// Decoded audio (PCMU and PCMA packets, in arrival order).
    pub fn audio(&self) -> Vec<i16> {
        let Ok(h) = self.heard.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in &h.packets {
            let mut pcm = vec![0i16; p.payload.len()];
            match p.pt {
                0 => g711::decode_ulaw(&p.payload, &mut pcm),
                8 => g711::decode_alaw(&p.payload, &mut pcm),
                _ => continue,
            }
            out.extend_from_slice(&pcm);
        }
        out
    }

    /// A copy of what was heard (packets with arrival times).
    pub fn heard(&self) -> Heard {
        let Ok(h) = self.heard.lock() else {
            return Heard::default();
        };
        Heard {
            packets: h.packets.clone(),
            sent_audio: h.sent_audio,
        }
    }
}

/// One call's RTP socket before and while media runs.
pub struct CallMedia {
    sock: Option<UdpSocket>,
    pub addr: SocketAddr,
    pub capture: Capture,
    changed_tx: Option<watch::Sender<usize>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for CallMedia {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl CallMedia {
    pub async fn bind() -> CallMedia {
        let sock = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind trunk rtp");
        let addr = sock.local_addr().expect("trunk rtp addr");
        let (tx, rx) = watch::channel(0);
        CallMedia {
            sock: Some(sock),
            addr,
            capture: Capture {
                heard: Arc::new(Mutex::new(Heard::default())),
                changed: rx,
            },
            changed_tx: Some(tx),
            task: None,
        }
    }

    pub fn started(&self) -> bool {
        self.task.is_some()
    }

    /// Starts media toward `to` (the gateway's SDP address; None: learnt from its first
    /// packet). A second call does nothing.
    pub fn start(&mut self, to: Option<SocketAddr>, mode: Media, codec: Codec) {
        let (Some(sock), Some(changed)) = (self.sock.take(), self.changed_tx.take()) else {
            return;
        };
        let to = to.filter(|a| a.ip().is_loopback());
        let heard = self.capture.heard.clone();
        self.task = Some(tokio::spawn(run(sock, to, mode, codec, heard, changed)));
    }

    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn run(
    sock: UdpSocket,
    mut to: Option<SocketAddr>,
    mode: Media,
    codec: Codec,
    heard: Arc<Mutex<Heard>>,
    changed: watch::Sender<usize>,
) {
    let end = Instant::now() + MAX_MEDIA;
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut gen = match mode {
        Media::Tone(f) => Some(ToneGen::single(f, 8000.0, 8000)),
        _ => None,
    };
    let (mut seq, mut ts) = (1u16, 0u32);
    let mut buf = vec![0u8; 2048];
    let mut first = true;
    while Instant::now() < end {
        tokio::select! {
            _ = ticker.tick(), if matches!(mode, Media::Tone(_) | Media::Silence) => {
                let Some(dest) = to else { continue };
                let mut pcm = [0i16; 160];
                if let Some(g) = gen.as_mut() {
                    g.fill(&mut pcm);
                }
                let mut payload = [0u8; 160];
                match codec {
                    Codec::Pcmu => g711::encode_ulaw(&pcm, &mut payload),
                    Codec::Pcma => g711::encode_alaw(&pcm, &mut payload),
                }
                let _ = sock.send_to(&rtp(codec.pt(), first, seq, ts, &payload), dest).await;
                if let Ok(mut h) = heard.lock() {
                    h.sent_audio += 1;
                }
                first = false;
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(160);
            }
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                if !from.ip().is_loopback() {
                    continue;
                }
                let Some(p) = buf.get(..n).and_then(|b| parse(Instant::now(), b)) else {
                    continue;
                };
                to.get_or_insert(from);
                if mode == Media::Echo {
                    // The sender's timestamps and marker are kept (media time, RFC 4733
                    // event timestamps); the sequence is the trunk's own.
                    let _ = sock.send_to(&rtp(p.pt, p.marker, seq, p.ts, &p.payload), from).await;
                    seq = seq.wrapping_add(1);
                    if let Ok(mut h) = heard.lock() {
                        h.sent_audio += 1;
                    }
                }
                if let Ok(mut h) = heard.lock() {
                    h.packets.push(p);
                    changed.send_replace(h.packets.len());
                }
            }
        }
    }
}
