//! When a call's next RTP frame goes out: one frame per packet time from the call's start, except
//! that the first frame of an agent turn may leave at once instead of waiting for the next tick.
//!
//! Owns: the send schedule of one call (as offsets from the media start; the shell turns them
//! into timer deadlines), and the "early start" rule.
//!
//! Early start: while the caller hears silence, agent audio that fills a whole frame and would
//! wait more than half a packet time for its tick is sent the moment it arrives; the next
//! deadline is then one and a half packet times later. That takes 7.5 ms on average (up to
//! 20 ms) off the start of every agent turn. The half period matters for agents that stream in
//! real time (one frame per packet time): their next frame arrives one period after the first,
//! and a deadline set exactly there would miss it at the slightest jitter (a silent frame in
//! the middle of speech, then every frame of the turn a period late); half a period of slack
//! either way keeps such a stream 10 ms behind its arrival, the average of a random phase. Each early start
//! moves the schedule ahead of the RTP timestamps' clock; that lead is paid back while the agent
//! is silent again (silent frames are sent up to half a packet time late each), and an early
//! start is refused while the lead would exceed one packet time. So the packets never run more
//! than one packet time ahead of their timestamps (to the receiver: at most 20 ms of jitter, the
//! early side), and over a call exactly one frame goes out per packet time.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FrameClock {
    period: Duration,
    next: Duration,
    /// How far the schedule runs ahead of `k × period`.
    lead: Duration,
    /// The last frame sent carried no agent audio.
    silent: bool,
}

impl FrameClock {
    /// The first frame is due at once (offset zero), then one per `period`.
    pub fn new(period: Duration) -> Self {
        FrameClock {
            period,
            next: Duration::ZERO,
            lead: Duration::ZERO,
            silent: true,
        }
    }

    /// When the next frame is due (offset from the media start).
    pub fn deadline(&self) -> Duration {
        self.next
    }

    /// A frame was sent at its deadline; `silent` when it carried no agent audio.
    pub fn on_tick(&mut self, silent: bool) {
        self.silent = silent;
        let mut step = self.period;
        if silent && !self.lead.is_zero() {
            let back = self.lead.min(self.period / 2);
            self.lead -= back;
            step += back;
        }
        self.next += step;
    }

    /// Agent audio now fills at least one frame. True: send that frame now (the clock has been
    /// moved: the next deadline is one and a half periods from `now`); false: wait for the
    /// deadline.
    pub fn early_start(&mut self, now: Duration) -> bool {
        // Only the first frame of a turn, only if it saves a meaningful wait.
        if !self.silent || now >= self.next {
            return false;
        }
        let saved = self.next - now;
        let margin = self.period / 2;
        if saved <= margin || self.lead + saved - margin > self.period {
            return false;
        }
        self.lead += saved - margin;
        self.silent = false;
        self.next = now + self.period + margin;
        true
    }

    /// How far the schedule runs ahead of the nominal one (≤ one period).
    pub fn lead(&self) -> Duration {
        self.lead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ticks_every_period_when_nothing_happens() {
        let mut c = FrameClock::new(P);
        for k in 0..10u64 {
            assert_eq!(c.deadline(), ms(20 * k));
            c.on_tick(true);
        }
    }

    #[test]
    fn first_frame_of_a_turn_leaves_at_once_and_the_next_one_period_later() {
        let mut c = FrameClock::new(P);
        c.on_tick(true); // 0
        c.on_tick(true); // 20
        c.on_tick(true); // 40; next 60
        assert!(c.early_start(ms(45)));
        assert_eq!(c.deadline(), ms(75));
        assert_eq!(c.lead(), ms(5));
        // While audio plays, no more early starts and plain periods.
        c.on_tick(false);
        assert_eq!(c.deadline(), ms(95));
        assert!(!c.early_start(ms(70)));
    }

    #[test]
    fn the_lead_is_paid_back_in_silence_and_never_exceeds_a_period() {
        let mut c = FrameClock::new(P);
        c.on_tick(true); // next 20
        c.on_tick(true); // next 40
        assert!(c.early_start(ms(21))); // saves 19: lead 9, next 51
        c.on_tick(false); // next 71
        c.on_tick(false); // next 91
        assert!(!c.early_start(ms(95))); // not after audio: no turn starts
        c.on_tick(true); // silent: +9 back → next 120, lead 0
        assert_eq!(c.deadline(), ms(120));
        assert_eq!(c.lead(), Duration::ZERO);
        // Turns back to back: each adds to the lead, which never passes a period.
        assert!(c.early_start(ms(101))); // saves 19: lead 9, next 131
        c.on_tick(false); // next 151
        c.on_tick(true); // +9 back: next 180, lead 0
        assert!(c.early_start(ms(161))); // lead 9, next 191
        c.on_tick(true); // silent at once: +9 back: next 220
        assert!(c.early_start(ms(201))); // lead 9, next 231
        assert!(c.lead() <= P);
        // Back on the nominal grid (multiples of 20 ms).
        c.on_tick(true);
        assert_eq!(c.deadline(), ms(260));
        assert_eq!(c.lead(), Duration::ZERO);
    }

    #[test]
    fn over_many_turns_one_frame_per_period() {
        let mut c = FrameClock::new(P);
        let mut frames = 0u64;
        let mut now = Duration::ZERO;
        // 1,000 s of turns: 1 s of audio starting at odd offsets, 1 s of silence.
        for turn in 0..500u64 {
            let start = now + ms(3 + (turn * 7) % 17);
            while c.deadline() <= start {
                c.on_tick(true);
                frames += 1;
            }
            now = start;
            if c.early_start(now) {
                frames += 1;
            }
            for _ in 0..49 {
                now = c.deadline();
                c.on_tick(false);
                frames += 1;
            }
            for _ in 0..50 {
                now = c.deadline();
                c.on_tick(true);
                frames += 1;
            }
            assert!(c.lead() <= P);
            // Frames sent by `now` vs. the nominal grid (0, 20, 40 ... ms): never behind it,
            // never more than one frame ahead.
            let nominal = now.as_millis() as u64 / 20 + 1;
            assert!(frames <= nominal + 1, "frames {frames} nominal {nominal}");
            assert!(frames >= nominal, "frames {frames} nominal {nominal}");
        }
    }

    #[test]
    fn late_or_tiny_savings_do_not_move_the_clock() {
        let mut c = FrameClock::new(P);
        c.on_tick(true); // next 20
        assert!(!c.early_start(ms(10))); // would wait 10 ms: not more than half a period
        assert!(!c.early_start(ms(25))); // past the deadline: the tick sends it
        assert_eq!(c.deadline(), ms(20));
        assert_eq!(c.lead(), Duration::ZERO);
    }

    /// An agent streaming in real time after an early start: each next frame arrives one
    /// period after the last (up to 9 ms late) and is in the queue before its deadline.
    #[test]
    fn a_real_time_stream_after_an_early_start_meets_every_deadline() {
        let mut c = FrameClock::new(P);
        c.on_tick(true);
        c.on_tick(true); // next 40
        let first = ms(27);
        assert!(c.early_start(first));
        for k in 1..=50u64 {
            let jitter = if k % 2 == 0 { ms(9) } else { Duration::ZERO };
            let arrival = first + P * k as u32 + jitter;
            assert!(
                arrival < c.deadline(),
                "frame {k} at {arrival:?} misses {:?}",
                c.deadline()
            );
            c.on_tick(false);
        }
    }
}
