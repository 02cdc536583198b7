//! Timing marks carried in the audio itself, so that one echoed frame can be timed on both
//! halves of its trip: the caller writes a mark into the first [`MARK_LEN`] samples of every
//! μ-law frame it sends (frame index, send time), the echo agent adds when the frame reached it
//! and when it sent it back (and where in its reply message it sits), and the caller reads all
//! of it back from the echo. The tool plays both ends in one process, so one clock
//! ([`us`], microseconds since [`epoch`]) serves both.
//!
//! Each nibble is one μ-law code `0xF0 | nibble`: levels 0…120 of 32 767, far below the tone
//! bursts' onset threshold (a burst frame keeps its energy, quiet frames stay quiet), and codes
//! the gateway's G.711 decode → encode (and the raw dialect's PCM16) carry through unchanged.
//! A frame without a valid mark (silence, DTMF, a mangled frame) is just audio.
//!
//! Layout (36 nibbles): magic `5 A`, frame index (24 bits), caller sent (32), agent in (32),
//! agent out (32), position in the agent's message (8), checksum (8: the sum of the nibbles
//! before it). Times are µs since the epoch, wrapping (differences are taken wrapping, good for
//! 71 minutes); 0 means "not stamped yet".

use std::sync::OnceLock;
use std::time::Instant;

use trunkgate::core::media::g711;

/// Samples (μ-law bytes) a mark takes at the start of a frame.
pub const MARK_LEN: usize = 36;
const MAGIC: [u8; 2] = [0x5, 0xA];

/// The run's clock origin, shared by the callers' RTP engine and the echo agent.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `t` as µs since [`epoch`], wrapping; never 0 (0 is "not stamped").
pub fn us(t: Instant) -> u32 {
    let v = t.saturating_duration_since(epoch()).as_micros() as u32;
    v.max(1)
}

/// `later - earlier` in ms, for stamps taken on the [`us`] clock.
pub fn ms_between(earlier: u32, later: u32) -> f64 {
    f64::from(later.wrapping_sub(earlier)) / 1000.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    /// The caller's frame counter (24 bits).
    pub idx: u32,
    /// When the caller sent the packet.
    pub sent: u32,
    /// When the frame reached the echo agent (0: not through our agent).
    pub agent_in: u32,
    /// When the agent sent the message carrying it back.
    pub agent_out: u32,
    /// The frame's place in that message (0: its first frame), saturating at 255.
    pub pos: u8,
}

impl Mark {
    fn nibbles(&self) -> [u8; MARK_LEN] {
        let mut n = [0u8; MARK_LEN];
        n[..2].copy_from_slice(&MAGIC);
        let mut at = 2;
        let mut put = |value: u32, count: usize| {
            for i in (0..count).rev() {
                n[at] = ((value >> (4 * i)) & 0xF) as u8;
                at += 1;
            }
        };
        put(self.idx & 0xFF_FFFF, 6);
        put(self.sent, 8);
        put(self.agent_in, 8);
        put(self.agent_out, 8);
        put(u32::from(self.pos), 2);
        let sum = n[..MARK_LEN - 2]
            .iter()
            .fold(0u8, |a, &b| a.wrapping_add(b));
        n[MARK_LEN - 2] = sum >> 4;
        n[MARK_LEN - 1] = sum & 0xF;
        n
    }

    /// Writes the mark over the first [`MARK_LEN`] μ-law bytes of `frame` (shorter: untouched).
    pub fn write_ulaw(&self, frame: &mut [u8]) {
        if let Some(dst) = frame.get_mut(..MARK_LEN) {
            for (d, n) in dst.iter_mut().zip(self.nibbles()) {
                *d = 0xF0 | n;
            }
        }
    }

    /// The mark at the start of a μ-law frame, if there is a valid one.
    pub fn read_ulaw(frame: &[u8]) -> Option<Mark> {
        let codes = frame.get(..MARK_LEN)?;
        if codes.iter().any(|&c| c & 0xF0 != 0xF0) {
            return None;
        }
        let n: Vec<u8> = codes.iter().map(|&c| c & 0xF).collect();
        if n[..2] != MAGIC {
            return None;
        }
        let sum = n[..MARK_LEN - 2]
            .iter()
            .fold(0u8, |a, &b| a.wrapping_add(b));
        if n[MARK_LEN - 2] != sum >> 4 || n[MARK_LEN - 1] != sum & 0xF {
            return None;
        }
        let mut at = 2;
        let mut get = |count: usize| {
            let v = n[at..at + count]
                .iter()
                .fold(0u32, |a, &b| (a << 4) | u32::from(b));
            at += count;
            v
        };
        Some(Mark {
            idx: get(6),
            sent: get(8),
            agent_in: get(8),
            agent_out: get(8),
            pos: get(2) as u8,
        })
    }

    /// [`Mark::read_ulaw`] on PCM16 little-endian audio (the raw dialect).
    pub fn read_pcm16(frame: &[u8]) -> Option<Mark> {
        let bytes = frame.get(..MARK_LEN * 2)?;
        let mut codes = [0u8; MARK_LEN];
        for (c, b) in codes.iter_mut().zip(bytes.chunks_exact(2)) {
            *c = g711::linear_to_ulaw(i16::from_le_bytes([b[0], b[1]]));
        }
        Mark::read_ulaw(&codes)
    }

    /// [`Mark::write_ulaw`] on PCM16 little-endian audio.
    pub fn write_pcm16(&self, frame: &mut [u8]) {
        let Some(dst) = frame.get_mut(..MARK_LEN * 2) else {
            return;
        };
        let mut codes = [0u8; MARK_LEN];
        self.write_ulaw(&mut codes);
        for (d, c) in dst.chunks_exact_mut(2).zip(codes) {
            d.copy_from_slice(&g711::ulaw_to_linear(c).to_le_bytes());
        }
    }
}

/// The audio encodings the echo agent sees: twilio's μ-law, raw's PCM16 at 8 kHz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audio {
    Ulaw,
    Pcm16,
}

impl Audio {
    /// Bytes of one ms of audio at 8 kHz.
    pub fn bytes_per_ms(self) -> usize {
        match self {
            Audio::Ulaw => 8,
            Audio::Pcm16 => 16,
        }
    }

    /// Bytes of one 20 ms frame.
    pub fn frame_bytes(self) -> usize {
        self.bytes_per_ms() * 20
    }

    fn read(self, frame: &[u8]) -> Option<Mark> {
        match self {
            Audio::Ulaw => Mark::read_ulaw(frame),
            Audio::Pcm16 => Mark::read_pcm16(frame),
        }
    }

    fn write(self, m: &Mark, frame: &mut [u8]) {
        match self {
            Audio::Ulaw => m.write_ulaw(frame),
            Audio::Pcm16 => m.write_pcm16(frame),
        }
    }

    /// The agent got `audio` at `now_us`: every marked frame in it notes its arrival.
    pub fn stamp_in(self, audio: &mut [u8], now_us: u32) {
        for f in audio.chunks_exact_mut(self.frame_bytes()) {
            if let Some(mut m) = self.read(f) {
                m.agent_in = now_us;
                self.write(&m, f);
            }
        }
    }

    /// The agent sends `msg` at `now_us`: every marked frame in it notes the departure and its
    /// place in the message.
    pub fn stamp_out(self, msg: &mut [u8], now_us: u32) {
        for (j, f) in msg.chunks_exact_mut(self.frame_bytes()).enumerate() {
            if let Some(mut m) = self.read(f) {
                m.agent_out = now_us;
                m.pos = j.min(255) as u8;
                self.write(&m, f);
            }
        }
    }
}

/// One echoed frame's trip, ms: caller → agent (RTP sent → frame at the agent), the agent's
/// hold (frame in → the message carrying it out), agent → caller (message out → RTP in); the
/// three add up to the frame's whole round trip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    pub to_agent: f64,
    pub hold: f64,
    pub to_caller: f64,
}

impl Split {
    /// The split of a frame that came back at `arrived` (µs), if our agent stamped it.
    pub fn of(m: &Mark, arrived: u32) -> Option<Split> {
        if m.agent_in == 0 || m.agent_out == 0 || m.sent == 0 {
            return None;
        }
        Some(Split {
            to_agent: ms_between(m.sent, m.agent_in),
            hold: ms_between(m.agent_in, m.agent_out),
            to_caller: ms_between(m.agent_out, arrived),
        })
    }

    #[cfg(test)]
    pub fn total(&self) -> f64 {
        self.to_agent + self.hold + self.to_caller
    }
}

/// What one call's marks and shaping measured (summed over calls by the reports).
#[derive(Debug, Default, Clone)]
pub struct EchoStats {
    /// Caller → agent, µs, per echoed frame our agent stamped.
    pub to_agent_us: Vec<u32>,
    /// The agent's hold, µs, per such frame.
    pub hold_us: Vec<u32>,
    /// Agent → caller, µs, per first frame of an agent message (later frames of a chunk wait
    /// for their turn in the gateway's real-time pacing, which is not wire time).
    pub to_caller_us: Vec<u32>,
    /// Packets deliberately not sent (`--loss`).
    pub dropped: u32,
    /// Packets swapped with the next one (`--reorder`).
    pub reordered: u32,
    /// Our marked frames that came back.
    pub echoed: u32,
    /// Frames sent (not dropped) between the first and the last that came back, that never
    /// came back: lost on the way through the gateway, either direction.
    pub missing: u32,
}

impl EchoStats {
    /// Our frame `m` came back at `arrived` (µs).
    pub fn note(&mut self, m: &Mark, arrived: u32) {
        self.echoed += 1;
        if Split::of(m, arrived).is_some() {
            self.to_agent_us.push(m.agent_in.wrapping_sub(m.sent));
            self.hold_us.push(m.agent_out.wrapping_sub(m.agent_in));
            if m.pos == 0 {
                self.to_caller_us.push(arrived.wrapping_sub(m.agent_out));
            }
        }
    }
}

#[cfg(test)]
#[path = "marks_tests.rs"]
mod tests;
