//! Caller-side re-chunking (PROTOCOLS.md §2: frames are 20 ms each): PCM of any size in (RTP
//! payloads of any ptime, resampler output), exact fixed-size frames out, at 8 or 16 kHz.
//!
//! Owns: the partial-frame carry between pushes.
//! Must not: allocate after construction, read a clock, or panic for any input.
//!
//! Frames are handed to a callback so that no frame is ever copied into a growing buffer: whole
//! frames are passed straight from the input slice when nothing is carried over, and only the
//! remainder (< one frame) is copied into the fixed carry buffer.

#[derive(Debug, Clone)]
pub struct Rechunker {
    carry: Vec<i16>,
    frame: usize,
}

impl Rechunker {
    /// Frames of `frame_samples` samples (clamped to ≥ 1). The one allocation happens here.
    pub fn new(frame_samples: usize) -> Self {
        let frame = frame_samples.max(1);
        Self {
            carry: Vec::with_capacity(frame),
            frame,
        }
    }

    /// 20 ms frames at `sample_rate` (160 at 8 kHz, 320 at 16 kHz).
    pub fn twenty_ms(sample_rate: u32) -> Self {
        Self::new((sample_rate / 50) as usize)
    }

    pub fn frame_samples(&self) -> usize {
        self.frame
    }

    /// Samples held back waiting for the rest of their frame (always < `frame_samples`).
    pub fn pending(&self) -> usize {
        self.carry.len()
    }

    /// Feeds `pcm`; calls `emit` once per completed frame, in order.
    pub fn push(&mut self, mut pcm: &[i16], mut emit: impl FnMut(&[i16])) {
        if !self.carry.is_empty() {
            let need = self.frame.saturating_sub(self.carry.len());
            let (head, rest) = pcm.split_at(need.min(pcm.len()));
            self.carry.extend_from_slice(head);
            pcm = rest;
            if self.carry.len() < self.frame {
                return;
            }
            emit(&self.carry);
            self.carry.clear();
        }
        let mut frames = pcm.chunks_exact(self.frame);
        for f in &mut frames {
            emit(f);
        }
        self.carry.extend_from_slice(frames.remainder());
    }

    /// Emits the held-back remainder padded with silence to a whole frame (end of stream);
    /// nothing if there is none.
    pub fn flush_padded(&mut self, mut emit: impl FnMut(&[i16])) {
        if self.carry.is_empty() {
            return;
        }
        self.carry.resize(self.frame, 0);
        emit(&self.carry);
        self.carry.clear();
    }

    /// Drops the held-back remainder.
    pub fn clear(&mut self) {
        self.carry.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(r: &mut Rechunker, pieces: &[usize], total: usize) -> Vec<Vec<i16>> {
        let data: Vec<i16> = (1..=total as i32).map(|i| (i % 30_000) as i16).collect();
        let mut frames = Vec::new();
        let mut rest = data.as_slice();
        let mut k = 0;
        while !rest.is_empty() {
            let (a, b) = rest.split_at(pieces[k % pieces.len()].min(rest.len()));
            r.push(a, |f| frames.push(f.to_vec()));
            rest = b;
            k += 1;
        }
        frames
    }

    #[test]
    fn arbitrary_pieces_become_exact_frames_in_order() {
        for rate in [8000, 16000] {
            let mut r = Rechunker::twenty_ms(rate);
            let n = r.frame_samples();
            assert_eq!(n, rate as usize / 50);
            let total = 50 * n + 37;
            let frames = collect(&mut r, &[1, 7, 0, 480, n, n - 1, 2 * n + 3, 3], total);
            assert_eq!(frames.len(), 50);
            assert!(frames.iter().all(|f| f.len() == n));
            let flat: Vec<i16> = frames.concat();
            let expected: Vec<i16> = (1..=(50 * n) as i32).map(|i| (i % 30_000) as i16).collect();
            assert_eq!(flat, expected);
            assert_eq!(r.pending(), 37);
        }
    }

    #[test]
    fn flush_pads_and_clear_drops() {
        let mut r = Rechunker::new(4);
        let mut out = Vec::new();
        r.push(&[1, 2, 3, 4, 5, 6], |f| out.push(f.to_vec()));
        r.flush_padded(|f| out.push(f.to_vec()));
        r.flush_padded(|f| out.push(f.to_vec()));
        assert_eq!(out, vec![vec![1, 2, 3, 4], vec![5, 6, 0, 0]]);
        r.push(&[9, 9], |_| panic!("no frame yet"));
        r.clear();
        r.push(&[1, 2, 3, 4], |f| assert_eq!(f, [1, 2, 3, 4]));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn carry_never_reallocates() {
        let mut r = Rechunker::new(160);
        let cap = r.carry.capacity();
        collect(&mut r, &[159, 3, 161, 1, 1000], 100_000);
        r.flush_padded(|_| {});
        assert_eq!(r.carry.capacity(), cap);
        let mut z = Rechunker::new(0);
        let mut count = 0;
        z.push(&[1, 2, 3], |_| count += 1);
        assert_eq!(count, 3);
    }
}
