//! How a caller's RTP departs from the ideal stream (`--jitter`, `--loss`, `--reorder`,
//! `--seed`): each packet's send time, whether it is dropped, whether it swaps places with the
//! next one. One [`Shaper`] per stream, seeded from the run's seed and the call's number, so
//! the same seed gives the same run.
//!
//! Jitter: packet k is due at `start + 20k + u` ms, `u` uniform in ±jitter (1 ms steps, the
//! engine's resolution), but never before packet k-1: the stream is not reordered by jitter
//! (a clamped packet leaves in the same millisecond as the one before it, in order).

/// The run's shaping of the callers' RTP.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shape {
    /// ± ms around the 20 ms grid (at most [`MAX_JITTER_MS`]).
    pub jitter_ms: u32,
    /// Probability a packet is not sent.
    pub loss: f64,
    /// Probability a packet is swapped with the next one.
    pub reorder: f64,
    pub seed: u64,
}

/// Keeps every due time within the engine's timing wheel (20 + 2 × 100 < 256 ms).
pub const MAX_JITTER_MS: u32 = 100;
const PERIOD_MS: i64 = 20;

impl Shape {
    pub fn from_args(args: &crate::Args) -> Shape {
        Shape {
            jitter_ms: args.jitter.min(MAX_JITTER_MS),
            loss: args.loss,
            reorder: args.reorder,
            seed: args.seed,
        }
    }

    /// The seed of stream `n` (a call's number): a splitmix64 step of both.
    pub fn stream_seed(&self, n: u64) -> u64 {
        let mut z = self
            .seed
            .wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn describe(&self) -> String {
        format!(
            "jitter ±{} ms, loss {:.3}, reorder {:.3}, seed {}",
            self.jitter_ms, self.loss, self.reorder, self.seed
        )
    }
}

/// One stream's schedule and dice.
pub struct Shaper {
    pub rng: fastrand::Rng,
    jitter: i64,
    loss: f64,
    reorder: f64,
    /// The next packet's place on the 20 ms grid (engine ms).
    grid: i64,
    /// The last due time handed out.
    last: i64,
}

impl Shaper {
    /// A stream whose grid starts at least one ms after `now_ms` (plus its random phase
    /// within the frame period, as real callers have), so that no due time is in the past.
    pub fn new(shape: &Shape, seed: u64, now_ms: u64) -> Shaper {
        let mut rng = fastrand::Rng::with_seed(seed);
        let jitter = i64::from(shape.jitter_ms.min(MAX_JITTER_MS));
        let phase = rng.i64(0..PERIOD_MS);
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX / 2);
        Shaper {
            rng,
            jitter,
            loss: shape.loss,
            reorder: shape.reorder,
            grid: now + 1 + jitter + phase,
            last: 0,
        }
    }

    /// When the next packet leaves (engine ms), never before the previous one.
    pub fn next_due(&mut self) -> u64 {
        let off = if self.jitter > 0 {
            self.rng.i64(-self.jitter..=self.jitter)
        } else {
            0
        };
        let due = (self.grid + off).max(self.last);
        self.grid += PERIOD_MS;
        self.last = due;
        u64::try_from(due).unwrap_or(0)
    }

    /// Whether the packet due now is dropped.
    pub fn lose(&mut self) -> bool {
        self.loss > 0.0 && self.rng.f64() < self.loss
    }

    /// Whether the packet due now swaps places with the next one.
    pub fn swap(&mut self) -> bool {
        self.reorder > 0.0 && self.rng.f64() < self.reorder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(jitter_ms: u32, loss: f64, reorder: f64) -> Shape {
        Shape {
            jitter_ms,
            loss,
            reorder,
            seed: 7,
        }
    }

    #[test]
    fn jitter_stays_within_bounds_and_never_reorders() {
        for j in [0u32, 1, 5, 10, 15, 40, 100] {
            let mut s = Shaper::new(&shape(j, 0.0, 0.0), 3, 1000);
            let start = s.grid;
            let mut prev = 0u64;
            for k in 0..5000i64 {
                let due = s.next_due();
                let nominal = start + 20 * k;
                let off = due as i64 - nominal;
                assert!(
                    off.abs() <= i64::from(j),
                    "jitter {j}: packet {k} off by {off}"
                );
                assert!(
                    due >= prev,
                    "jitter {j}: packet {k} before the one before it"
                );
                assert!(due > 1000, "due in the past");
                prev = due;
            }
        }
        // No jitter: exactly the grid.
        let mut s = Shaper::new(&shape(0, 0.0, 0.0), 3, 0);
        let a = s.next_due();
        assert_eq!(s.next_due(), a + 20);
    }

    #[test]
    fn jitter_uses_the_whole_range() {
        let mut s = Shaper::new(&shape(5, 0.0, 0.0), 9, 0);
        let start = s.grid;
        let mut seen = std::collections::BTreeSet::new();
        for k in 0..2000i64 {
            let due = s.next_due() as i64;
            seen.insert(due - (start + 20 * k));
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            (-5..=5).collect::<Vec<_>>()
        );
    }

    #[test]
    fn loss_and_reorder_follow_their_probabilities_and_are_off_by_default() {
        let mut off = Shaper::new(&shape(20, 0.0, 0.0), 1, 0);
        assert!((0..10_000).all(|_| !off.lose() && !off.swap()));
        let mut s = Shaper::new(&shape(0, 0.1, 0.02), 1, 0);
        let lost = (0..100_000).filter(|_| s.lose()).count();
        let swapped = (0..100_000).filter(|_| s.swap()).count();
        assert!((9_000..11_000).contains(&lost), "{lost}");
        assert!((1_500..2_500).contains(&swapped), "{swapped}");
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let sh = shape(10, 0.05, 0.05);
        let run = |n: u64| {
            let mut s = Shaper::new(&sh, sh.stream_seed(n), 0);
            (0..500)
                .map(|_| (s.next_due(), s.lose(), s.swap()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(4), run(4));
        assert_ne!(run(4), run(5));
    }
}
