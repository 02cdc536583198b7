//! The outgoing agent → caller queue (PROTOCOLS.md §2 "Every dialect"): audio of any size is
//! queued at the RTP rate, handed out one frame per 20 ms tick (partial frames padded, silence
//! when empty, never faster), marks are released once all audio queued before them has been
//! handed out, and `clear` drops the queue and returns the marks it cut off.
//!
//! Owns: the sample queue, mark positions, the overflow policy.
//! Must not: read a clock (the caller's tick drives `next_frame`), allocate per frame, or panic
//! for any input.
//!
//! Positions are absolute sample counts since the pacer was built: `head` is the position of the
//! first queued sample, a mark's position is the queue's end when it was pushed. A mark is
//! released by the first `next_frame` call after which `head >= position`; in particular a mark
//! pushed while the queue is empty is released by the next `next_frame` call (the next tick), not
//! immediately, so marks always come out of the tick path in order.
//!
//! Overflow: audio beyond `max_queued_samples` is refused (the tail of the push is dropped and
//! counted), never the oldest. Dropping from the head would cut audio the caller is already
//! hearing and make marks positioned inside the dropped range ambiguous; refusing keeps what was
//! accepted coherent. An agent 60 s ahead of real time is misbehaving, and will usually `clear`
//! on barge-in anyway.

use std::collections::VecDeque;

/// Initial queue capacity in samples (100 ms at 8 kHz); the queue grows beyond this by
/// doubling, which is amortised, not per frame. Every call pays for the initial reservation
/// (1.6 KB here) whether its agent queues ahead or streams in real time.
const INITIAL_CAPACITY: usize = 800;
/// Marks waiting to play at most: an agent cannot grow a call's memory without bound.
pub const MAX_MARKS: usize = 1024;

/// What a tick handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// At least one queued sample (the rest, if any, padded with silence).
    Audio,
    /// Nothing was queued: the frame is all zeros.
    Silence,
}

#[derive(Debug)]
pub struct Pacer {
    frame_samples: usize,
    max_queued: usize,
    queue: VecDeque<i16>,
    /// Absolute position of `queue[0]`.
    head: u64,
    /// (position, name), positions non-decreasing.
    marks: VecDeque<(u64, String)>,
    /// How many marks at the front of `marks` have been released by `next_frame`.
    released: usize,
    dropped: u64,
}

impl Pacer {
    /// `frame_samples` is the RTP frame (160 at 8 kHz, clamped to ≥ 1); `max_queued_samples` caps
    /// the backlog (e.g. 480 000 = 60 s at 8 kHz).
    pub fn new(frame_samples: usize, max_queued_samples: usize) -> Self {
        Self {
            frame_samples: frame_samples.max(1),
            max_queued: max_queued_samples,
            queue: VecDeque::with_capacity(INITIAL_CAPACITY.min(max_queued_samples)),
            head: 0,
            marks: VecDeque::new(),
            released: 0,
            dropped: 0,
        }
    }

    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Queues audio of any size. Returns how many samples were refused because the queue was
    /// full (0 normally); refused samples are gone, later pushes are accepted as space frees.
    pub fn push_audio(&mut self, pcm: &[i16]) -> usize {
        let room = self.max_queued.saturating_sub(self.queue.len());
        let (take, refuse) = pcm.split_at(pcm.len().min(room));
        self.queue.extend(take.iter().copied());
        self.dropped = self.dropped.saturating_add(refuse.len() as u64);
        refuse.len()
    }

    /// Marks the current end of the queue; false (the mark is refused) when [`MAX_MARKS`] are
    /// already waiting.
    pub fn push_mark(&mut self, name: String) -> bool {
        if self.marks.len() >= MAX_MARKS {
            return false;
        }
        let position = self.tail();
        self.marks.push_back((position, name));
        true
    }

    /// Drops all queued audio now and returns the marks not yet released, in order (the dialect
    /// answers them as cleared). Marks already released stay for `take_played_marks`: they did
    /// play. The next frame is silence.
    pub fn clear(&mut self) -> Vec<String> {
        self.head = self.tail();
        self.queue.clear();
        self.marks
            .drain(self.released..)
            .map(|(_, name)| name)
            .collect()
    }

    /// One tick: writes the next frame into `out` and advances by exactly `frame_samples`
    /// samples of time. `out` should be `frame_samples` long; if it is longer the rest is
    /// silence, if shorter the samples that do not fit are still consumed (time must not drift).
    pub fn next_frame(&mut self, out: &mut [i16]) -> FrameKind {
        let n = self.frame_samples.min(self.queue.len());
        // Copied slice by slice (the queue is a ring: at most two pieces), then dropped.
        let fit = n.min(out.len());
        let (a, b) = self.queue.as_slices();
        let from_a = fit.min(a.len());
        out[..from_a].copy_from_slice(&a[..from_a]);
        out[from_a..fit].copy_from_slice(&b[..fit - from_a]);
        out[fit..].fill(0);
        self.queue.drain(..n);
        self.head += n as u64;
        let head = self.head;
        self.released += self
            .marks
            .range(self.released..)
            .take_while(|(pos, _)| *pos <= head)
            .count();
        if n > 0 {
            FrameKind::Audio
        } else {
            FrameKind::Silence
        }
    }

    /// Marks released by `next_frame` since the last call, in the order they were pushed.
    pub fn take_played_marks(&mut self) -> impl Iterator<Item = String> + '_ {
        let n = std::mem::take(&mut self.released);
        self.marks.drain(..n).map(|(_, name)| name)
    }

    pub fn queued_samples(&self) -> usize {
        self.queue.len()
    }

    /// Marks pushed but not yet taken (released or not).
    pub fn pending_marks(&self) -> usize {
        self.marks.len()
    }

    /// Samples refused by `push_audio` over the pacer's life.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped
    }

    fn tail(&self) -> u64 {
        self.head + self.queue.len() as u64
    }
}

#[cfg(test)]
mod tests;
