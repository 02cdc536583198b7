//! One call's stream on the shared RTP engine ([`crate::media`]): the frames it builds (20 ms
//! PCMU, a 100 ms 1 kHz burst each second, an optional RFC 4733 digit halfway, a timing mark
//! in every audio frame: [`crate::marks`]), when and whether each leaves ([`Shaper`]: jitter,
//! deliberate loss, reordering), and what the packets coming back measure.
//!
//! Round trip: with marks, the echo of each burst's first frame (the frame index says which it
//! is) is timed against the send time its own mark carries, so a reply held by a chunking or
//! bursting agent, or a gap the gateway's pacing puts into a burst, still times the frame it
//! echoes, once per burst; a stream without marks (a gateway that changed the audio) falls
//! back to the first loud frame after the burst last sent, re-armed by each burst, under 900 ms.
//!
//! Loss: `lost` is the gateway's RTP to us (by sequence number), which deliberate drops do not
//! touch (the gateway streams on regardless). Frames we dropped are counted apart
//! (`echo.dropped`); `echo.missing` counts only frames that did leave, between the first and
//! the last frame that came back, and never came back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use trunkgate::core::media::dtmf::{DtmfPacket, DtmfSender};
use trunkgate::core::media::srtp::SrtpSession;
use trunkgate::core::media::tone::ToneGen;
use trunkgate::core::media::{g711, rtp};

use crate::marks::{self, EchoStats, Mark};
use crate::shape::Shaper;

const BURST_EVERY: u32 = 50; // frames (1 s)
const BURST_LEN: u32 = 5; // frames (100 ms)
const ONSET_ENERGY: f64 = 2000.0; // mean |sample| of an echoed burst frame is ~5000
/// A marked round trip longer than this is not believed (a wrapped or foreign stamp).
const MAX_MARKED_RTT: Duration = Duration::from_secs(60);

/// What one call's media measured.
#[derive(Debug, Default, Clone)]
pub struct MediaStats {
    pub rtts: Vec<Duration>,
    /// Packets that left (deliberately dropped ones are in `echo.dropped`).
    pub sent: u32,
    pub received: u32,
    pub lost: u32,
    pub late: u32,
    pub echo: EchoStats,
}

/// A frame's fate, per frame built.
const OTHER: u8 = 0; // DTMF, or not yet decided
const SENT: u8 = 1;
const DROPPED: u8 = 2;
const ECHOED: u8 = 3;

/// A frame built, not yet sent.
#[derive(Debug, Clone, Copy)]
struct Built {
    idx: u32,
    audio: bool,
    onset: bool,
}

pub struct CallMedia {
    pub remote: SocketAddr,
    /// Grid slots to serve (one packet, sent or dropped, in each).
    pub frames: u32,
    pub slots: u32,
    built: u32,
    seq: u16,
    ts: u32,
    ssrc: u32,
    gen: ToneGen,
    dtmf: bool,
    dtmf_queue: Vec<(u32, DtmfPacket)>,
    pub burst_sent: Option<Instant>,
    in_echo: bool,
    last_arrival: Option<Instant>,
    first_seq: Option<u16>,
    max_seq: u16,
    pub stats: MediaStats,
    /// A click-to-call leg: onsets are timed against `peer`'s bursts (none until paired).
    pub relay: bool,
    pub peer: Option<u16>,
    /// SRTP both ways (an `--srtp` call): what goes out is protected, what comes in checked.
    srtp: Option<SrtpSession>,
    pub shaper: Shaper,
    /// The engine ms the next packet is due.
    pub due_ms: u64,
    /// A packet swapped behind the next one, with its bytes.
    held: Option<Built>,
    held_buf: Vec<u8>,
    fate: Vec<u8>,
}

impl CallMedia {
    pub fn new(
        remote: SocketAddr,
        frames: u32,
        dtmf: bool,
        relay: bool,
        srtp: Option<SrtpSession>,
        mut shaper: Shaper,
    ) -> CallMedia {
        let (seq, ts, ssrc) = (shaper.rng.u16(..), shaper.rng.u32(..), shaper.rng.u32(..));
        let due_ms = shaper.next_due();
        CallMedia {
            remote,
            frames,
            slots: 0,
            built: 0,
            seq,
            ts,
            ssrc,
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
            shaper,
            due_ms,
            held: None,
            held_buf: Vec::with_capacity(172),
            fate: Vec::with_capacity(frames.min(1 << 16) as usize),
        }
    }

    /// Slots left to serve.
    pub fn streaming(&self) -> bool {
        self.slots < self.frames
    }

    /// Appends the next frame's plain RTP packet to `out` (its mark is written when it leaves).
    fn build(&mut self, out: &mut Vec<u8>) -> Built {
        let idx = self.built;
        let phase = idx % BURST_EVERY;
        if self.dtmf && idx == self.frames / 2 {
            if let Ok(p) = DtmfSender::new(8000).packets('5', 100, 20, 10) {
                self.dtmf_queue = p.into_iter().map(|p| (self.ts, p)).rev().collect();
            }
        }
        let mut b = Built {
            idx,
            audio: false,
            onset: false,
        };
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
                    b.onset = true;
                    self.burst_sent = None;
                    self.in_echo = false;
                }
            }
            let mut payload = [0u8; 160];
            g711::encode_ulaw(&pcm, &mut payload);
            let h = rtp::RtpHeader {
                marker: idx == 0,
                payload_type: 0,
                sequence: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
            };
            rtp::write(&h, &payload, out);
            b.audio = true;
        }
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        self.built += 1;
        self.fate.push(OTHER);
        b
    }

    /// Serves one grid slot at `now`: the packet due (the held one after a swap, else the
    /// next, possibly swapped with the one after it) goes into `out`, or is dropped. True when
    /// `out` holds a packet to send.
    pub fn emit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        self.slots += 1;
        out.clear();
        let b = match self.held.take() {
            Some(b) => {
                std::mem::swap(out, &mut self.held_buf);
                b
            }
            None => {
                let first = self.build(out);
                // The last slot has no next packet to swap with.
                if self.slots < self.frames && self.shaper.swap() {
                    std::mem::swap(out, &mut self.held_buf);
                    out.clear();
                    let second = self.build(out);
                    self.held = Some(first);
                    self.stats.echo.reordered += 1;
                    second
                } else {
                    first
                }
            }
        };
        if self.shaper.lose() {
            self.stats.echo.dropped += 1;
            if b.audio {
                self.set_fate(b.idx, DROPPED);
            }
            return false;
        }
        if b.audio {
            let mark = Mark {
                idx: b.idx,
                sent: marks::us(now),
                ..Mark::default()
            };
            if let Some(payload) = out.get_mut(rtp::HEADER_LEN..) {
                mark.write_ulaw(payload);
            }
            self.set_fate(b.idx, SENT);
        }
        if b.onset {
            self.burst_sent = Some(now);
        }
        self.stats.sent += 1;
        if let Some(srtp) = &mut self.srtp {
            if let Ok(protected) = srtp.protect_rtp(out) {
                out.clear();
                out.extend_from_slice(&protected);
            }
        }
        true
    }

    fn set_fate(&mut self, idx: u32, fate: u8) {
        if let Some(f) = self.fate.get_mut(idx as usize) {
            *f = fate;
        }
    }

    /// `peer_burst`: the paired leg's last burst onset sent (relay legs only).
    pub fn on_packet(&mut self, data: &[u8], now: Instant, peer_burst: Option<Instant>) {
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
        if let Some(m) = Mark::read_ulaw(pkt.payload) {
            self.on_mark(&m, now);
            return;
        }
        let k = pkt.payload.len().min(160);
        let mut dec = [0i16; 160];
        g711::decode_ulaw(&pkt.payload[..k], &mut dec[..k]);
        let energy = dec[..k].iter().map(|&x| f64::from(x).abs()).sum::<f64>() / k.max(1) as f64;
        let loud = energy > ONSET_ENERGY;
        let reference = if self.relay {
            peer_burst
        } else {
            self.burst_sent
        };
        let onset = loud && !self.in_echo;
        if self.relay {
            // No burst of our own re-arms the detector: the next loud frame after a quiet one
            // is the next onset.
            self.in_echo = loud;
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

    /// A marked frame came back (relay legs hear the other leg's frames: timed, not counted).
    fn on_mark(&mut self, m: &Mark, now: Instant) {
        let arrived = marks::us(now);
        if m.idx % BURST_EVERY == 0 {
            let rtt = Duration::from_micros(u64::from(arrived.wrapping_sub(m.sent)));
            if rtt < MAX_MARKED_RTT {
                self.stats.rtts.push(rtt);
            }
        }
        if self.relay {
            return;
        }
        if let Some(f) = self.fate.get_mut(m.idx as usize) {
            if *f == SENT {
                *f = ECHOED;
                self.stats.echo.note(m, arrived);
            }
        }
    }

    pub fn finish(mut self) -> MediaStats {
        if let Some(first) = self.first_seq {
            let expected = u32::from(self.max_seq.wrapping_sub(first)) + 1;
            self.stats.lost = expected.saturating_sub(self.stats.received);
        }
        self.stats.echo.missing = missing(&self.fate);
        self.stats
    }
}

/// Frames sent, between the first and the last that came back, that never came back.
fn missing(fate: &[u8]) -> u32 {
    let first = fate.iter().position(|&f| f == ECHOED);
    let last = fate.iter().rposition(|&f| f == ECHOED);
    match (first, last) {
        (Some(a), Some(b)) => fate[a..=b].iter().filter(|&&f| f == SENT).count() as u32,
        _ => 0,
    }
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
