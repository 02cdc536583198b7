//! DTMF as RFC 4733 telephone-events: the event payload (§2.3), the digit ↔ event code mapping
//! (§3.2), the send-side packet sequence (§2.5.1), the receive side (`receiver`) and the
//! tone frequency table (ITU-T Q.23).
//!
//! Owns: event bytes and their timing in RTP timestamp units.
//! Must not: stamp sequence numbers, timestamps or SSRCs (the RTP sender does), pace packets,
//! or read a clock — callers pass RTP timestamps.

mod receiver;

pub use receiver::{DtmfEvent, DtmfReceiver};

/// Size of one event block in a telephone-event payload.
pub const EVENT_LEN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("telephone-event payload of {0} bytes, need at least 4")]
    Short(usize),
    #[error("{0:?} is not a DTMF digit (0-9 * # A-D)")]
    NotADigit(char),
    #[error("packet interval of {0} ms is not usable")]
    BadPtime(u32),
}

/// One event block (RFC 4733 §2.3): event code, end bit, volume (-dBm0, 0..=63), duration in
/// RTP timestamp units since the event's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl EventPayload {
    /// Parses the first event block; any further blocks are ignored (see [`Self::blocks`]).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        match payload {
            [e, f, d0, d1, ..] => Ok(Self {
                event: *e,
                end: f & 0x80 != 0,
                volume: f & 0x3F,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(DtmfError::Short(payload.len())),
        }
    }

    /// All complete event blocks of a payload (RFC 4733 §2.5.1.5 packs several events into one
    /// packet); trailing bytes that do not form a block are ignored.
    pub fn blocks(payload: &[u8]) -> impl Iterator<Item = Self> + '_ {
        payload
            .chunks_exact(EVENT_LEN)
            .filter_map(|b| Self::parse(b).ok())
    }

    /// Serialises the block; the reserved bit is zero and the volume is clamped to 63.
    pub fn to_bytes(&self) -> [u8; EVENT_LEN] {
        let d = self.duration.to_be_bytes();
        let flags = (u8::from(self.end) << 7) | self.volume.min(63);
        [self.event, flags, d[0], d[1]]
    }
}

/// RFC 4733 §3.2 event code for a DTMF digit (letters in either case).
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// The digit for an event code 0..=15; other events (flash, tones) are not digits.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Keypad layout, row-major, matching `ROWS` × `COLS`.
pub(crate) const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// The (row, column) frequency pair in Hz of a digit.
pub fn dtmf_freqs(digit: char) -> Option<(f32, f32)> {
    let digit = digit.to_ascii_uppercase();
    KEYPAD.iter().enumerate().find_map(|(r, row)| {
        let c = row.iter().position(|&d| d == digit)?;
        Some((*ROWS.get(r)?, *COLS.get(c)?))
    })
}

/// The DTMF row and column frequencies, for detectors.
pub fn dtmf_row_col_freqs() -> ([f32; 4], [f32; 4]) {
    (ROWS, COLS)
}

/// One telephone-event packet of a digit; every packet of a digit carries the same RTP
/// timestamp (the event start) and its own sequence number, both stamped by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    pub marker: bool,
    pub payload: [u8; EVENT_LEN],
    pub end: bool,
}

/// Builds the RFC 4733 §2.5.1 packet sequence for digits at a given telephone-event clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfSender {
    clock_rate: u32,
}

impl Default for DtmfSender {
    fn default() -> Self {
        Self { clock_rate: 8000 }
    }
}

impl DtmfSender {
    /// End packets are repeated for robustness against loss (§2.5.1.4 recommends three).
    pub const END_REPEATS: usize = 3;

    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate }
    }

    /// The packets for one digit, one per `ptime_ms`: updates with growing durations (marker on
    /// the first), then three end packets with the final duration. Durations are capped at the
    /// 16-bit field (8.19 s at 8 kHz); longer digits are not segmented.
    pub fn packets(
        &self,
        digit: char,
        duration_ms: u32,
        ptime_ms: u32,
        volume: u8,
    ) -> Result<Vec<DtmfPacket>, DtmfError> {
        let event = digit_to_event(digit).ok_or(DtmfError::NotADigit(digit))?;
        let ticks = |ms: u32| u64::from(ms) * u64::from(self.clock_rate) / 1000;
        let step = ticks(ptime_ms);
        if step == 0 {
            return Err(DtmfError::BadPtime(ptime_ms));
        }
        let total = ticks(duration_ms).min(u64::from(u16::MAX));
        let block = |duration: u64, end| EventPayload {
            event,
            end,
            volume,
            duration: u16::try_from(duration).unwrap_or(u16::MAX),
        };
        let updates = (1..).map(|k| k * step).take_while(|&d| d < total);
        let ends = std::iter::repeat_n(total, Self::END_REPEATS);
        let mut out: Vec<DtmfPacket> = updates
            .map(|d| (d, false))
            .chain(ends.map(|d| (d, true)))
            .map(|(d, end)| DtmfPacket {
                marker: false,
                payload: block(d, end).to_bytes(),
                end,
            })
            .collect();
        if let Some(first) = out.first_mut() {
            first.marker = true;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_bits() {
        let p = EventPayload {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(p.to_bytes(), [11, 0x8A, 0x03, 0x20]);
        assert_eq!(EventPayload::parse(&p.to_bytes()), Ok(p));
        // The reserved bit is ignored on parse.
        let q = EventPayload::parse(&[5, 0x40 | 7, 0, 160]).unwrap();
        assert_eq!((q.event, q.end, q.volume, q.duration), (5, false, 7, 160));
        assert_eq!(EventPayload::parse(&[1, 2, 3]), Err(DtmfError::Short(3)));
        let two: Vec<_> = EventPayload::blocks(&[1, 0x80, 0, 1, 2, 0x80, 0, 2, 9]).collect();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].event, 2);
    }

    #[test]
    fn digit_mapping_is_a_bijection_on_0_to_15() {
        for e in 0..16u8 {
            let d = event_to_digit(e).unwrap();
            assert_eq!(digit_to_event(d), Some(e));
            assert!(dtmf_freqs(d).is_some());
        }
        assert_eq!(event_to_digit(16), None);
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(digit_to_event('d'), Some(15));
        assert_eq!(dtmf_freqs('1'), Some((697.0, 1209.0)));
        assert_eq!(dtmf_freqs('#'), Some((941.0, 1477.0)));
        assert_eq!(dtmf_freqs('0'), Some((941.0, 1336.0)));
        assert_eq!(dtmf_freqs('d'), Some((941.0, 1633.0)));
        assert_eq!(dtmf_freqs('E'), None);
    }

    #[test]
    fn sender_sequence_for_100ms_at_20ms() {
        let pk = DtmfSender::default().packets('5', 100, 20, 10).unwrap();
        let parsed: Vec<_> = pk
            .iter()
            .map(|p| EventPayload::parse(&p.payload).unwrap())
            .collect();
        let durations: Vec<u16> = parsed.iter().map(|p| p.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = pk.iter().map(|p| p.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert!(parsed.iter().zip(&pk).all(|(a, p)| a.end == p.end));
        let markers: Vec<bool> = pk.iter().map(|p| p.marker).collect();
        assert_eq!(markers, [true, false, false, false, false, false, false]);
        assert!(parsed.iter().all(|p| p.event == 5 && p.volume == 10));
    }

    #[test]
    fn sender_edge_cases() {
        let s = DtmfSender::default();
        let short = s.packets('#', 10, 20, 70).unwrap();
        assert_eq!(short.len(), 3);
        assert!(short[0].marker && short.iter().all(|p| p.end));
        assert_eq!(short[0].payload, [11, 0x80 | 63, 0, 80]);
        let long = s.packets('1', 60_000, 20, 10).unwrap();
        let last = EventPayload::parse(&long.last().unwrap().payload).unwrap();
        assert_eq!(last.duration, u16::MAX);
        assert_eq!(s.packets('x', 100, 20, 10), Err(DtmfError::NotADigit('x')));
        assert_eq!(s.packets('1', 100, 0, 10), Err(DtmfError::BadPtime(0)));
        let wide = DtmfSender::new(16000).packets('1', 40, 20, 10).unwrap();
        let d: Vec<u16> = wide
            .iter()
            .map(|p| EventPayload::parse(&p.payload).unwrap().duration)
            .collect();
        assert_eq!(d, [320, 640, 640, 640]);
    }
}
