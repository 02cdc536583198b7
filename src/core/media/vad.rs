//! Energy voice-activity detection for the call summary (PROTOCOLS.md §4 `talk_s`, `turns`):
//! one `Vad` per side fed that side's 20 ms frames, plus the merge of both sides into turns.
//!
//! Owns: the noise-floor tracker, the on/off decision with hangover, segment bookkeeping.
//! Must not: read a clock (frame times are passed in), allocate per frame (segments are pushed
//! per segment), or panic for any input.
//!
//! Levels are mean-square power relative to a full-scale square wave (32768²), in dB ("dBFS").
//! - Noise floor: minimum statistics. The floor is the minimum frame power over the last
//!   [`FLOOR_WINDOWS`] × 0.5 s (≈ 3 s). It drops at once when the line gets quieter and rises
//!   when a louder stationary sound (hum, fan) has filled the whole window, so a constant hum
//!   stops counting as talk within ≈ 3 s. Until 3 s have passed the window is seeded with
//!   [`INITIAL_FLOOR_DB`], so that a caller who speaks at once is still heard.
//! - A frame turns talk on at floor + [`ON_ABOVE_FLOOR_DB`] (never below [`ABS_ON_DB`]); once on,
//!   it stays on down to [`HYSTERESIS_DB`] less. Gaps up to [`HANGOVER_MS`] are bridged; segments
//!   shorter than [`MIN_SEGMENT_MS`] (clicks) are dropped.
//! - Segment edges are refined to 2.5 ms sub-blocks inside the boundary frames, so talk time is
//!   not biased by up to a frame per edge; the hangover is not counted as talk.

/// Sub-windows of the minimum-statistics window, each half a second.
pub const FLOOR_WINDOWS: usize = 6;
pub const INITIAL_FLOOR_DB: f64 = -60.0;
/// The floor never goes below this (digital silence would otherwise give -∞).
pub const MIN_FLOOR_DB: f64 = -90.0;
pub const ON_ABOVE_FLOOR_DB: f64 = 12.0;
pub const ABS_ON_DB: f64 = -55.0;
pub const HYSTERESIS_DB: f64 = 4.0;
pub const HANGOVER_MS: u64 = 200;
pub const MIN_SEGMENT_MS: u64 = 100;
/// Same-speaker segments at most this far apart, with no other-speaker segment starting in
/// between, form one turn.
pub const TURN_MAX_GAP_MS: u64 = 2000;

const FULL_SCALE_POWER: f64 = 32768.0 * 32768.0;

fn from_db(db: f64) -> f64 {
    FULL_SCALE_POWER * 10f64.powf(db / 10.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Segment {
    pub fn len_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Caller,
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub speaker: Speaker,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Vad {
    rate: u64,
    sub_len: usize,
    /// Minimum frame power of each completed half-second sub-window (ring).
    window_mins: [f64; FLOOR_WINDOWS],
    window_idx: usize,
    current_min: f64,
    current_samples: u64,
    /// Open segment: (start, end of the last active sub-block).
    open: Option<Segment>,
    segments: Vec<Segment>,
    talk_ms: u64,
    /// The per-frame constants, as powers (computed once, not per frame).
    on_gain: f64,
    hysteresis_gain: f64,
    abs_on: f64,
}

impl Vad {
    /// `sample_rate` of the frames that will be pushed (0 is treated as 8000).
    pub fn new(sample_rate: u32) -> Self {
        let rate = if sample_rate == 0 { 8000 } else { sample_rate };
        Self {
            rate: u64::from(rate),
            sub_len: (rate / 400).max(1) as usize,
            window_mins: [from_db(INITIAL_FLOOR_DB); FLOOR_WINDOWS],
            window_idx: 0,
            current_min: f64::INFINITY,
            current_samples: 0,
            open: None,
            segments: Vec::new(),
            talk_ms: 0,
            on_gain: 10f64.powf(ON_ABOVE_FLOOR_DB / 10.0),
            hysteresis_gain: 10f64.powf(-HYSTERESIS_DB / 10.0),
            abs_on: from_db(ABS_ON_DB),
        }
    }

    /// Current noise floor in dBFS.
    pub fn noise_floor_db(&self) -> f64 {
        10.0 * (self.floor() / FULL_SCALE_POWER).log10()
    }

    fn floor(&self) -> f64 {
        self.window_mins
            .iter()
            .fold(self.current_min, |a, &b| a.min(b))
            .max(from_db(MIN_FLOOR_DB))
    }

    fn ms(&self, samples: usize) -> u64 {
        (samples as u64)
            .saturating_mul(1000)
            .saturating_add(self.rate / 2)
            / self.rate
    }

    /// One frame of this side starting at `t_ms` (call time). Frames should be consecutive;
    /// a gap in `t_ms` is treated as silence.
    pub fn push(&mut self, frame: &[i16], t_ms: u64) {
        if frame.is_empty() {
            return;
        }
        let power = mean_power(frame);
        let on = (self.floor() * self.on_gain).max(self.abs_on);
        let threshold = if self.open.is_some() {
            on * self.hysteresis_gain
        } else {
            on
        };
        if power >= threshold {
            let (first, last) = self.active_span(frame, threshold);
            let start = t_ms.saturating_add(self.ms(first));
            let end = t_ms.saturating_add(self.ms(last));
            match &mut self.open {
                Some(seg) if start <= seg.end_ms.saturating_add(HANGOVER_MS) => {
                    seg.end_ms = seg.end_ms.max(end);
                }
                _ => {
                    self.close();
                    self.open = Some(Segment {
                        start_ms: start,
                        end_ms: end.max(start),
                    });
                }
            }
        } else if let Some(seg) = self.open {
            if t_ms.saturating_add(self.ms(frame.len())) > seg.end_ms.saturating_add(HANGOVER_MS) {
                self.close();
            }
        }
        self.track_floor(power, frame.len());
    }

    /// Sample offsets of the start of the first and the end of the last sub-block at or above
    /// `threshold`. The frame's mean is above it, so at least one sub-block is.
    fn active_span(&self, frame: &[i16], threshold: f64) -> (usize, usize) {
        let mut span: Option<(usize, usize)> = None;
        for (i, block) in frame.chunks(self.sub_len).enumerate() {
            if mean_power(block) >= threshold {
                let begin = i * self.sub_len;
                let end = begin + block.len();
                span = Some(span.map_or((begin, end), |(b, _)| (b, end)));
            }
        }
        span.unwrap_or((0, frame.len()))
    }

    fn track_floor(&mut self, power: f64, samples: usize) {
        self.current_min = self.current_min.min(power);
        self.current_samples = self.current_samples.saturating_add(samples as u64);
        if self.current_samples >= self.rate / 2 {
            if let Some(slot) = self.window_mins.get_mut(self.window_idx) {
                *slot = self.current_min;
            }
            self.window_idx = (self.window_idx + 1) % FLOOR_WINDOWS;
            self.current_min = f64::INFINITY;
            self.current_samples = 0;
        }
    }

    fn close(&mut self) {
        if let Some(seg) = self.open.take() {
            if seg.len_ms() >= MIN_SEGMENT_MS {
                self.talk_ms = self.talk_ms.saturating_add(seg.len_ms());
                self.segments.push(seg);
            }
        }
    }

    /// Ends the stream at `t_ms`: closes an open segment (clamped to `t_ms`).
    pub fn finish(&mut self, t_ms: u64) {
        if let Some(seg) = &mut self.open {
            seg.end_ms = seg.end_ms.min(t_ms).max(seg.start_ms);
        }
        self.close();
    }

    /// Closed segments, in time order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Talk time so far: closed segments plus the open one if already long enough to count.
    pub fn talk_ms(&self) -> u64 {
        let open = self
            .open
            .map(|s| s.len_ms())
            .filter(|&l| l >= MIN_SEGMENT_MS)
            .unwrap_or(0);
        self.talk_ms.saturating_add(open)
    }
}

fn mean_power(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: i64 = samples.iter().map(|&x| i64::from(x) * i64::from(x)).sum();
    sum as f64 / samples.len() as f64
}

/// Both sides' segments as conversational turns, sorted by start: consecutive segments of one
/// speaker (in start order, gap ≤ [`TURN_MAX_GAP_MS`]) merge; the other speaker starting, even
/// overlapping (barge-in, backchannel), begins a new turn.
pub fn turns(caller: &[Segment], agent: &[Segment]) -> Vec<Turn> {
    let mut all: Vec<Turn> = caller
        .iter()
        .map(|s| (Speaker::Caller, s))
        .chain(agent.iter().map(|s| (Speaker::Agent, s)))
        .map(|(speaker, s)| Turn {
            speaker,
            start_ms: s.start_ms,
            end_ms: s.end_ms.max(s.start_ms),
        })
        .collect();
    all.sort_by_key(|t| (t.start_ms, t.speaker == Speaker::Agent));
    let mut out: Vec<Turn> = Vec::with_capacity(all.len());
    for t in all {
        match out.last_mut() {
            Some(cur)
                if cur.speaker == t.speaker
                    && t.start_ms <= cur.end_ms.saturating_add(TURN_MAX_GAP_MS) =>
            {
                cur.end_ms = cur.end_ms.max(t.end_ms);
            }
            _ => out.push(t),
        }
    }
    out
}

#[cfg(test)]
mod tests;
