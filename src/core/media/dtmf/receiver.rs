//! RFC 4733 receive side: turns telephone-event packets into exactly one `DtmfEvent` per key
//! press (§2.5.2).
//!
//! Owns: event identity (the RTP timestamp of the event start, §2.5.1.1 — never the marker bit,
//! which is lost with the first packet), end de-duplication (§2.5.1.4 sends the end three times),
//! reporting events whose end was lost, joining long-event segments (§2.5.1.3) and unpacking
//! multi-event payloads (§2.5.1.5).
//! Must not: check the payload type, SSRC or sequence numbers (the RTP layer does), or read a
//! clock — staleness is judged against RTP timestamps the caller passes in.

use std::collections::VecDeque;

use super::{event_to_digit, EventPayload};

/// A detected key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    pub digit: char,
    pub duration_ms: u32,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    event: u8,
    /// Start of the current segment: the RTP timestamp identifying its packets.
    seg_start: u32,
    /// Longest duration reported for the current segment.
    seg_duration: u16,
    /// Durations of earlier segments of the same long event.
    earlier: u32,
    reported: bool,
}

impl Current {
    fn end_ts(&self) -> u32 {
        self.seg_start.wrapping_add(u32::from(self.seg_duration))
    }
}

/// Serial-number comparison of RTP timestamps (RFC 3550 wraps at 2^32).
fn ts_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    clock_rate: u32,
    stale_after: u32,
    current: Option<Current>,
    ready: VecDeque<DtmfEvent>,
}

impl Default for DtmfReceiver {
    fn default() -> Self {
        Self::new(8000)
    }
}

impl DtmfReceiver {
    /// A receiver for a telephone-event clock of `clock_rate` Hz (8000 with G.711). An event
    /// without an end is reported once the stream is 250 ms past its last known end.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            stale_after: clock_rate / 4,
            current: None,
            ready: VecDeque::new(),
        }
    }

    /// Overrides the lost-end timeout, in RTP timestamp units.
    pub fn with_stale_after(mut self, ticks: u32) -> Self {
        self.stale_after = ticks;
        self
    }

    /// Feeds one telephone-event packet (its RTP timestamp and payload). Returns the oldest event
    /// that became ready; a packet can complete two (a previous event whose end was lost, and a
    /// one-packet event), so call [`Self::poll_event`] until `None` after each packet. Malformed
    /// payloads and non-DTMF events are ignored.
    pub fn on_packet(&mut self, rtp_ts: u32, payload: &[u8]) -> Option<DtmfEvent> {
        let mut start = rtp_ts;
        for block in EventPayload::blocks(payload) {
            self.on_block(start, block);
            // §2.5.1.5: a packed event starts where the previous one's duration ends.
            start = start.wrapping_add(u32::from(block.duration));
        }
        self.ready.pop_front()
    }

    /// The next queued event, if any.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.ready.pop_front()
    }

    /// Reports an event whose end packets were all lost once the stream's current RTP timestamp
    /// (`rtp_ts_now`, e.g. of the latest audio packet on the same SSRC and clock) is more than the
    /// stale timeout past the event's last known end.
    pub fn poll_stale(&mut self, rtp_ts_now: u32) -> Option<DtmfEvent> {
        if let Some(cur) = self.current {
            let late = rtp_ts_now.wrapping_sub(cur.end_ts()) as i32;
            if !cur.reported && late > 0 && late.unsigned_abs() > self.stale_after {
                self.report();
            }
        }
        self.ready.pop_front()
    }

    /// Reports an unfinished event now (call teardown).
    pub fn flush(&mut self) -> Option<DtmfEvent> {
        self.report();
        self.ready.pop_front()
    }

    fn on_block(&mut self, start: u32, b: EventPayload) {
        if event_to_digit(b.event).is_none() {
            return;
        }
        match self.current {
            Some(cur) if cur.seg_start == start => self.update(b),
            Some(cur) if !ts_after(start, cur.seg_start) => {} // a stale retransmission
            Some(cur) if Self::continues(&cur, start, &b) => {
                self.current = Some(Current {
                    seg_start: start,
                    seg_duration: 0,
                    earlier: cur.earlier.saturating_add(u32::from(cur.seg_duration)),
                    ..cur
                });
                self.update(b);
            }
            _ => {
                self.report();
                self.current = Some(Current {
                    event: b.event,
                    seg_start: start,
                    seg_duration: 0,
                    earlier: 0,
                    reported: false,
                });
                self.update(b);
            }
        }
    }

    /// §2.5.1.3: the next segment of a long event starts exactly where the previous one ended.
    fn continues(cur: &Current, start: u32, b: &EventPayload) -> bool {
        !cur.reported && cur.event == b.event && cur.seg_duration > 0 && start == cur.end_ts()
    }

    fn update(&mut self, b: EventPayload) {
        if let Some(cur) = self.current.as_mut() {
            cur.seg_duration = cur.seg_duration.max(b.duration);
            if b.end {
                self.report();
            }
        }
    }

    /// Queues the current event unless it was already reported.
    fn report(&mut self) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if cur.reported {
            return;
        }
        cur.reported = true;
        let ticks = u64::from(cur.earlier) + u64::from(cur.seg_duration);
        let ms = ticks * 1000 / u64::from(self.clock_rate);
        if let Some(digit) = event_to_digit(cur.event) {
            self.ready.push_back(DtmfEvent {
                digit,
                duration_ms: u32::try_from(ms).unwrap_or(u32::MAX),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::DtmfSender;
    use super::*;

    fn block(event: u8, end: bool, duration: u16) -> [u8; 4] {
        EventPayload {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    fn ev(digit: char, duration_ms: u32) -> Option<DtmfEvent> {
        Some(DtmfEvent { digit, duration_ms })
    }

    #[test]
    fn sender_sequence_yields_exactly_one_event() {
        let mut r = DtmfReceiver::default();
        let pk = DtmfSender::default().packets('7', 100, 20, 10).unwrap();
        let got: Vec<_> = pk
            .iter()
            .filter_map(|p| r.on_packet(1000, &p.payload))
            .collect();
        assert_eq!(
            got,
            [DtmfEvent {
                digit: '7',
                duration_ms: 100
            }]
        );
        assert_eq!(r.poll_event(), None);
        assert_eq!(r.poll_stale(100_000), None);
        assert_eq!(r.flush(), None);
    }

    #[test]
    fn lost_marker_packet_still_detected() {
        let mut r = DtmfReceiver::default();
        // The first (marker) packet never arrives.
        assert_eq!(r.on_packet(500, &block(1, false, 320)), None);
        assert_eq!(r.on_packet(500, &block(1, true, 640)), ev('1', 80));
        assert_eq!(r.on_packet(500, &block(1, true, 640)), None);
    }

    #[test]
    fn triplicated_end_and_late_retransmissions_are_deduplicated() {
        let mut r = DtmfReceiver::default();
        assert_eq!(r.on_packet(0, &block(10, false, 160)), None);
        assert_eq!(r.on_packet(0, &block(10, true, 400)), ev('*', 50));
        for _ in 0..3 {
            assert_eq!(r.on_packet(0, &block(10, true, 400)), None);
        }
        // Next press of the same key: a new timestamp makes it a new event.
        assert_eq!(r.on_packet(2000, &block(10, true, 800)), ev('*', 100));
        // A delayed end of the first press arrives after the second started: ignored.
        assert_eq!(r.on_packet(0, &block(10, true, 400)), None);
    }

    #[test]
    fn lost_end_reported_when_next_event_starts() {
        let mut r = DtmfReceiver::default();
        assert_eq!(r.on_packet(100, &block(2, false, 160)), None);
        assert_eq!(r.on_packet(100, &block(2, false, 480)), None);
        // All end packets of '2' lost; '3' arrives as a single end packet.
        assert_eq!(r.on_packet(5000, &block(3, true, 800)), ev('2', 60));
        assert_eq!(r.poll_event(), ev('3', 100));
        assert_eq!(r.poll_event(), None);
    }

    #[test]
    fn lost_end_reported_by_poll_stale() {
        let mut r = DtmfReceiver::default().with_stale_after(800);
        assert_eq!(r.on_packet(1000, &block(11, false, 480)), None);
        assert_eq!(r.poll_stale(1000 + 480 + 800), None);
        assert_eq!(r.poll_stale(1000 + 480 + 801), ev('#', 60));
        assert_eq!(r.poll_stale(1_000_000), None);
        assert_eq!(r.on_packet(1000, &block(11, true, 800)), None, "late end");
    }

    #[test]
    fn stale_check_ignores_timestamps_before_the_event() {
        let mut r = DtmfReceiver::default();
        assert_eq!(r.on_packet(10_000, &block(4, false, 160)), None);
        assert_eq!(r.poll_stale(5_000), None);
        assert_eq!(r.flush(), ev('4', 20));
    }

    #[test]
    fn timestamps_wrap_around() {
        let mut r = DtmfReceiver::default();
        let t0 = u32::MAX - 100;
        assert_eq!(r.on_packet(t0, &block(5, false, 160)), None);
        assert_eq!(r.on_packet(t0, &block(5, true, 320)), ev('5', 40));
        let t1 = t0.wrapping_add(2000);
        assert_eq!(r.on_packet(t1, &block(6, false, 160)), None);
        // An old packet from before the wrap is not a new event.
        assert_eq!(r.on_packet(t0, &block(5, true, 320)), None);
        assert_eq!(r.poll_stale(t1.wrapping_add(160 + 2001)), ev('6', 20));
    }

    #[test]
    fn non_dtmf_events_and_garbage_are_ignored() {
        let mut r = DtmfReceiver::default();
        assert_eq!(r.on_packet(0, &block(16, true, 800)), None);
        assert_eq!(r.on_packet(0, &[1, 2]), None);
        assert_eq!(r.on_packet(0, &[]), None);
        assert_eq!(r.flush(), None);
    }

    #[test]
    fn long_event_segments_are_joined() {
        let mut r = DtmfReceiver::default();
        assert_eq!(r.on_packet(0, &block(0, false, 0xFFFF)), None);
        assert_eq!(r.on_packet(0xFFFF, &block(0, false, 8000)), None);
        assert_eq!(
            r.on_packet(0xFFFF, &block(0, true, 16_000)),
            ev('0', 10_191)
        );
    }

    #[test]
    fn packed_events_in_one_payload() {
        let mut r = DtmfReceiver::default();
        let mut p = Vec::new();
        p.extend_from_slice(&block(1, true, 1600));
        p.extend_from_slice(&block(2, true, 800));
        assert_eq!(r.on_packet(0, &p), ev('1', 200));
        assert_eq!(r.poll_event(), ev('2', 100));
        // The same packet retransmitted yields nothing new.
        assert_eq!(r.on_packet(0, &p), None);
        assert_eq!(r.poll_event(), None);
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut r = DtmfReceiver::default();
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let b = s.to_le_bytes();
            let len = (s >> 60) as usize % 9;
            let _ = r.on_packet((s >> 32) as u32 & 0x0000_FFFF, &b[..len]);
            while r.poll_event().is_some() {}
            let _ = r.poll_stale(s as u32);
        }
    }
}
