//! The recording tap (issue 11): what the caller says (left) and what the caller hears
//! (right: the agent, the echo), interleaved as stereo 8 kHz PCM, one frame per media tick,
//! so both channels share the frame clock and stay aligned within a frame or two.
//!
//! Owns: the alignment (caller audio arrives with network jitter; it waits here at most
//! [`MAX_LAG`] samples, older audio is dropped) and the chunking the driver takes away.
//! Must not: write files or allocate per packet (one chunk per [`CHUNK`] samples).

use std::collections::VecDeque;

/// Interleaved samples handed to the driver at a time (0.5 s of stereo).
pub const CHUNK: usize = 8000;
/// Caller audio waiting for its tick beyond this (60 ms) is dropped from the front.
const MAX_LAG: usize = 480;

#[derive(Debug, Default)]
pub struct RecordTap {
    /// The channels change sides (click-to-call: the client, our far leg, goes left).
    swap: bool,
    caller: VecDeque<i16>,
    chunk: Vec<i16>,
    ready: Option<Vec<i16>>,
}

impl RecordTap {
    pub fn new() -> Self {
        RecordTap {
            swap: false,
            caller: VecDeque::with_capacity(MAX_LAG + 160),
            chunk: Vec::with_capacity(CHUNK),
            ready: None,
        }
    }

    /// The same tap with the channels swapped: the first leg right, what it hears left.
    pub fn swapped() -> Self {
        RecordTap {
            swap: true,
            ..RecordTap::new()
        }
    }

    /// Decoded caller audio, as it arrives.
    pub fn caller(&mut self, pcm: &[i16]) {
        self.caller.extend(pcm.iter().copied());
        let over = self.caller.len().saturating_sub(MAX_LAG);
        self.caller.drain(..over);
    }

    /// One tick: the frame the caller hears, paired with as much caller audio (silence
    /// where there is none yet).
    pub fn tick(&mut self, heard: &[i16]) {
        for &r in heard {
            let l = self.caller.pop_front().unwrap_or(0);
            let (l, r) = if self.swap { (r, l) } else { (l, r) };
            self.chunk.push(l);
            self.chunk.push(r);
        }
        if self.chunk.len() >= CHUNK && self.ready.is_none() {
            self.ready = Some(std::mem::replace(
                &mut self.chunk,
                Vec::with_capacity(CHUNK),
            ));
        }
    }

    /// A full chunk, when one is ready.
    pub fn take(&mut self) -> Option<Vec<i16>> {
        self.ready.take()
    }

    /// Whatever is left, at the end.
    pub fn take_rest(&mut self) -> Option<Vec<i16>> {
        let mut rest = self.ready.take().unwrap_or_default();
        rest.append(&mut self.chunk);
        (!rest.is_empty()).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_interleave_on_the_tick_and_jitter_is_absorbed() {
        let mut t = RecordTap::new();
        // Two caller packets land in one tick, none in the next.
        t.caller(&[1; 160]);
        t.caller(&[2; 160]);
        t.tick(&[-1; 160]);
        t.tick(&[-2; 160]);
        t.tick(&[-3; 160]);
        let rest = t.take_rest().expect("audio");
        assert_eq!(rest.len(), 3 * 320);
        assert_eq!(&rest[..2], &[1, -1]);
        assert_eq!(&rest[320..322], &[2, -2]);
        assert_eq!(&rest[640..642], &[0, -3]);
    }

    #[test]
    fn a_swapped_tap_puts_the_first_leg_right() {
        let mut t = RecordTap::swapped();
        t.caller(&[1; 160]);
        t.tick(&[-1; 160]);
        assert_eq!(&t.take_rest().expect("audio")[..2], &[-1, 1]);
    }

    #[test]
    fn chunks_come_every_half_second_and_lag_is_bounded() {
        let mut t = RecordTap::new();
        t.caller(&[5; 2000]);
        assert_eq!(t.caller.len(), MAX_LAG);
        for _ in 0..25 {
            t.tick(&[0; 160]);
        }
        let c = t.take().expect("a chunk after 0.5 s");
        assert_eq!(c.len(), CHUNK);
        assert!(t.take().is_none());
        assert!(t.take_rest().is_none());
    }
}
