//! Packets lost on the way in, from RTP sequence numbers (RFC 3550 §6.4.1 / A.3, simplified):
//! expected = highest extended sequence − first + 1, lost = expected − received, per SSRC; a new
//! SSRC starts a new count and keeps what the old one lost.
//!
//! Owns: that arithmetic, per packet in O(1) with no allocation. Must not: judge late or
//! reordered packets (a late packet counts as received; a duplicate can hide a loss, as in
//! RFC 3550).

/// The receive side of one RTP stream (a call leg's caller audio).
#[derive(Debug, Default, Clone)]
pub struct RxLoss {
    ssrc: Option<u32>,
    highest: u16,
    /// Extended (unwrapped) highest and first sequence numbers.
    ext_highest: u64,
    ext_first: u64,
    received: u64,
    /// Lost on earlier SSRCs of the stream.
    lost_before: u64,
}

/// Sequence numbers further ahead than this are a restart, not a gap (RFC 3550 A.1's
/// MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;

impl RxLoss {
    pub fn on_packet(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc != Some(ssrc) {
            self.lost_before += self.lost_now();
            *self = RxLoss {
                ssrc: Some(ssrc),
                highest: seq,
                ext_highest: u64::from(seq) + (1 << 16),
                ext_first: u64::from(seq) + (1 << 16),
                received: 1,
                lost_before: self.lost_before,
            };
            return;
        }
        let ahead = seq.wrapping_sub(self.highest);
        if (MAX_DROPOUT..u16::MAX - 100).contains(&ahead) {
            // A jump: the sender restarted its numbering; count afresh from here.
            self.lost_before += self.lost_now();
            self.ext_first = self.ext_highest + 1;
            self.ext_highest = self.ext_first;
            self.highest = seq;
            self.received = 1;
            return;
        }
        self.received += 1;
        if ahead != 0 && ahead < MAX_DROPOUT {
            self.ext_highest += u64::from(ahead);
            self.highest = seq;
        }
        // Otherwise late, reordered or duplicated: received, not a new highest.
    }

    fn lost_now(&self) -> u64 {
        if self.ssrc.is_none() {
            return 0;
        }
        let expected = self.ext_highest - self.ext_first + 1;
        expected.saturating_sub(self.received)
    }

    /// Packets lost so far on every SSRC of the stream.
    pub fn lost(&self) -> u64 {
        self.lost_before + self.lost_now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: &[(u32, u16)]) -> u64 {
        let mut r = RxLoss::default();
        for &(ssrc, seq) in seqs {
            r.on_packet(ssrc, seq);
        }
        r.lost()
    }

    #[test]
    fn gaps_wraps_reorders_and_restarts() {
        assert_eq!(RxLoss::default().lost(), 0);
        assert_eq!(run(&[(1, 10), (1, 11), (1, 12)]), 0);
        assert_eq!(run(&[(1, 10), (1, 13)]), 2, "11 and 12 lost");
        assert_eq!(
            run(&[(1, 65534), (1, 65535), (1, 0), (1, 2)]),
            1,
            "across the wrap"
        );
        assert_eq!(run(&[(1, 10), (1, 12), (1, 11)]), 0, "reordered, not lost");
        assert_eq!(
            run(&[(1, 10), (1, 11), (1, 11), (1, 13)]),
            0,
            "a duplicate hides a loss"
        );
        assert_eq!(
            run(&[(1, 10), (1, 12), (2, 500), (2, 503)]),
            3,
            "kept across SSRCs"
        );
        assert_eq!(
            run(&[(1, 10), (1, 12), (1, 20_000), (1, 20_001)]),
            1,
            "a restart is no gap"
        );
    }
}
