//! RTP sequence-number tracking with 16-bit wrap-around (RFC 3550 §A.1, simplified).
//!
//! Owns: classifying each arriving sequence number (in order, gap, late, duplicate, jump) and
//! keeping loss statistics for one SSRC.
//! Must not: reorder or buffer packets (the jitter buffer does), or read a clock.

/// A jump further ahead than this is treated as a possible restart (RFC 3550 §A.1 MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;
/// Packets up to this far behind the highest seen are late, not a restart (§A.1 MAX_MISORDER).
/// Must stay below 128: the duplicate window is a u128 bitmap.
const MAX_MISORDER: u16 = 100;

/// What one arriving sequence number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStatus {
    /// The first packet of the stream.
    First,
    /// Exactly the next expected number.
    InOrder,
    /// Ahead of the expected number; `missing` packets were skipped (counted as lost for now).
    Gap { missing: u16 },
    /// Behind the highest number and not seen before: a reordered packet (no longer lost).
    Late,
    /// Already seen: drop it.
    Duplicate,
    /// Far outside the window: dropped unless the next packet continues from it (§A.1 probation).
    Jump,
    /// A second packet continued a jump: the sender restarted; tracking re-based on it.
    Restarted,
}

/// Counters since the tracker was created (they survive restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqStats {
    /// Packets accepted (First, InOrder, Gap, Late, Restarted).
    pub received: u64,
    /// Skipped numbers not (yet) filled by late arrivals.
    pub lost: u64,
    pub late: u64,
    pub duplicates: u64,
    /// Jumps dropped while on probation.
    pub jumps: u64,
}

#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    started: bool,
    max_seq: u16,
    /// Number of times `max_seq` wrapped past 65535.
    cycles: u32,
    /// Bit i set ⇔ `max_seq - i` was received.
    window: u128,
    /// §A.1 `bad_seq`: the number that would confirm the last jump.
    probation: Option<u16>,
    stats: SeqStats,
}

impl SeqTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies `seq` and updates the counters.
    pub fn update(&mut self, seq: u16) -> SeqStatus {
        if !self.started {
            self.rebase(seq);
            self.stats.received += 1;
            return SeqStatus::First;
        }
        let ahead = seq.wrapping_sub(self.max_seq);
        let behind = self.max_seq.wrapping_sub(seq);
        if ahead == 0 {
            self.stats.duplicates += 1;
            SeqStatus::Duplicate
        } else if ahead < MAX_DROPOUT {
            self.advance(seq, ahead)
        } else if behind <= MAX_MISORDER {
            self.behind(behind)
        } else if self.probation == Some(seq) {
            self.rebase(seq);
            self.stats.received += 1;
            SeqStatus::Restarted
        } else {
            self.probation = Some(seq.wrapping_add(1));
            self.stats.jumps += 1;
            SeqStatus::Jump
        }
    }

    /// The next in-order sequence number, once a packet has been seen.
    pub fn expected(&self) -> Option<u16> {
        self.started.then(|| self.max_seq.wrapping_add(1))
    }

    pub fn stats(&self) -> SeqStats {
        self.stats
    }

    /// Highest sequence number seen, extended with the wrap count (RFC 3550 §6.4.1).
    pub fn extended_max(&self) -> u64 {
        (u64::from(self.cycles) << 16) | u64::from(self.max_seq)
    }

    fn rebase(&mut self, seq: u16) {
        self.started = true;
        self.max_seq = seq;
        self.window = 1;
        self.probation = None;
    }

    fn advance(&mut self, seq: u16, ahead: u16) -> SeqStatus {
        if seq < self.max_seq {
            self.cycles = self.cycles.wrapping_add(1);
        }
        self.window = self.window.checked_shl(u32::from(ahead)).unwrap_or(0) | 1;
        self.max_seq = seq;
        self.probation = None;
        self.stats.received += 1;
        let missing = ahead - 1;
        self.stats.lost += u64::from(missing);
        if missing == 0 {
            SeqStatus::InOrder
        } else {
            SeqStatus::Gap { missing }
        }
    }

    fn behind(&mut self, behind: u16) -> SeqStatus {
        let bit = 1u128 << behind; // behind <= MAX_MISORDER < 128
        if self.window & bit != 0 {
            self.stats.duplicates += 1;
            return SeqStatus::Duplicate;
        }
        self.window |= bit;
        self.stats.received += 1;
        self.stats.late += 1;
        self.stats.lost = self.stats.lost.saturating_sub(1);
        SeqStatus::Late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut SeqTracker, seqs: &[u16]) -> Vec<SeqStatus> {
        seqs.iter().map(|&s| t.update(s)).collect()
    }

    #[test]
    fn in_order_across_wrap() {
        let mut t = SeqTracker::new();
        assert_eq!(t.expected(), None);
        let st = feed(&mut t, &[65534, 65535, 0, 1]);
        use SeqStatus::*;
        assert_eq!(st, [First, InOrder, InOrder, InOrder]);
        assert_eq!(t.extended_max(), (1 << 16) | 1);
        assert_eq!(t.expected(), Some(2));
        assert_eq!(t.stats().lost, 0);
    }

    #[test]
    fn gap_then_late_fill_and_duplicates_across_wrap() {
        let mut t = SeqTracker::new();
        use SeqStatus::*;
        let st = feed(&mut t, &[65533, 65534, 1, 65535, 0, 0, 65535, 1, 65534]);
        assert_eq!(
            st,
            [
                First,
                InOrder,
                Gap { missing: 2 },
                Late,
                Late,
                Duplicate,
                Duplicate,
                Duplicate,
                Duplicate
            ]
        );
        let s = t.stats();
        assert_eq!((s.received, s.lost, s.late, s.duplicates), (5, 0, 2, 4));
    }

    #[test]
    fn big_jump_needs_two_sequential_packets() {
        let mut t = SeqTracker::new();
        use SeqStatus::*;
        let st = feed(&mut t, &[100, 101, 40000, 102, 50000, 50001, 50002]);
        assert_eq!(
            st,
            [First, InOrder, Jump, InOrder, Jump, Restarted, InOrder]
        );
        assert_eq!(t.stats().jumps, 2);
        assert_eq!(t.stats().lost, 0);
    }

    #[test]
    fn far_behind_is_a_jump_not_late() {
        let mut t = SeqTracker::new();
        assert_eq!(t.update(1000), SeqStatus::First);
        assert_eq!(t.update(1000 - MAX_MISORDER), SeqStatus::Late);
        assert_eq!(t.update(1000 - MAX_MISORDER - 1), SeqStatus::Jump);
    }

    #[test]
    fn long_gap_clears_the_window() {
        let mut t = SeqTracker::new();
        t.update(10);
        assert_eq!(t.update(10 + 2000), SeqStatus::Gap { missing: 1999 });
        assert_eq!(t.update(10 + 1999), SeqStatus::Late);
        assert_eq!(t.stats().lost, 1998);
    }
}
