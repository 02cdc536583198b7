//! Tone generation and detection: phase-continuous sine generator, Goertzel detector, a
//! "does this recording contain f Hz" measure and an in-band DTMF detector (ITU-T Q.23/Q.24
//! frequencies, twist limits as commonly applied by telephony DSPs).
//!
//! Owns: sample-level maths on i16 PCM at any sample rate.
//! Must not: allocate per call, read a clock, or know about RTP/SIP; no panics for any input
//! (empty slices, zero rates and NaN parameters give silence / "nothing detected").

use std::f64::consts::TAU;

use super::dtmf::{dtmf_freqs, dtmf_row_col_freqs, KEYPAD};

/// Sums up to two sines with continuous phase across `fill` calls.
#[derive(Debug, Clone)]
pub struct ToneGen {
    /// (phase increment, current phase), both in cycles.
    parts: [(f64, f64); 2],
    count: usize,
    amplitude: f64,
}

impl ToneGen {
    /// `amplitude` is the peak of each component in linear units; the sum is clipped to i16.
    pub fn single(freq: f32, amplitude: f32, sample_rate: u32) -> Self {
        Self::build(&[freq], amplitude, sample_rate)
    }

    pub fn dual(f1: f32, f2: f32, amplitude: f32, sample_rate: u32) -> Self {
        Self::build(&[f1, f2], amplitude, sample_rate)
    }

    /// The tone pair of a DTMF digit, or `None` for a non-digit.
    pub fn dtmf(digit: char, amplitude: f32, sample_rate: u32) -> Option<Self> {
        let (row, col) = dtmf_freqs(digit)?;
        Some(Self::dual(row, col, amplitude, sample_rate))
    }

    fn build(freqs: &[f32], amplitude: f32, sample_rate: u32) -> Self {
        let mut parts = [(0.0, 0.0); 2];
        for (p, &f) in parts.iter_mut().zip(freqs) {
            let inc = f64::from(f) / f64::from(sample_rate);
            p.0 = if inc.is_finite() {
                inc.rem_euclid(1.0)
            } else {
                0.0
            };
        }
        let amplitude = f64::from(amplitude);
        Self {
            parts,
            count: freqs.len().min(2),
            amplitude: if amplitude.is_finite() {
                amplitude
            } else {
                0.0
            },
        }
    }

    /// Writes the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        let count = self.count;
        for o in out.iter_mut() {
            let mut v = 0.0;
            for (inc, phase) in self.parts.iter_mut().take(count) {
                v += (TAU * *phase).sin();
                *phase = (*phase + *inc).rem_euclid(1.0);
            }
            *o = (v * self.amplitude)
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
        }
    }
}

/// Goertzel filter at an arbitrary (not bin-rounded) frequency.
#[derive(Debug, Clone, Copy)]
pub struct Goertzel {
    coeff: f64,
    block_len: usize,
}

impl Goertzel {
    pub fn new(freq: f32, sample_rate: u32, block_len: usize) -> Self {
        let w = TAU * f64::from(freq) / f64::from(sample_rate.max(1));
        let coeff = 2.0 * w.cos();
        Self {
            coeff: if coeff.is_finite() { coeff } else { 0.0 },
            block_len,
        }
    }

    /// The energy of the block (up to `block_len` samples) at this frequency, on the same scale
    /// as the sum of squared samples: a pure tone at the frequency gives ≈ Σx².
    pub fn power(&self, samples: &[i16]) -> f32 {
        let block = samples.get(..self.block_len).unwrap_or(samples);
        if block.is_empty() {
            return 0.0;
        }
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in block {
            let s0 = f64::from(x) + self.coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let mag2 = s1 * s1 + s2 * s2 - self.coeff * s1 * s2;
        (2.0 * mag2 / block.len() as f64).max(0.0) as f32
    }
}

fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum()
}

/// The share (0..=1) of the signal's energy that is a tone at `freq`, measured over 20 ms blocks
/// so that a small frequency error (±20 Hz) still counts. A clean tone gives ≈ 1, a recording
/// without it ≈ 0.
pub fn detect_tone(samples: &[i16], sample_rate: u32, freq: f32) -> f32 {
    if sample_rate == 0 || samples.is_empty() {
        return 0.0;
    }
    let block = ((sample_rate / 50) as usize).clamp(1, samples.len());
    let g = Goertzel::new(freq, sample_rate, block);
    let (mut tone, mut total) = (0.0f64, 0.0f64);
    for chunk in samples.chunks_exact(block) {
        tone += f64::from(g.power(chunk));
        total += energy(chunk);
    }
    if total <= 0.0 {
        return 0.0;
    }
    (tone / total).clamp(0.0, 1.0) as f32
}

/// Minimum energy per sample of each DTMF component (a sine of peak ≈ 100, about -40 dBm0).
const MIN_TONE_POWER: f64 = 100.0 * 100.0 / 2.0;
/// Normal twist: the row (low) tone may be up to 8 dB stronger than the column tone.
const MAX_NORMAL_TWIST: f64 = 6.31;
/// Reverse twist: the column tone may be up to 4 dB stronger.
const MAX_REVERSE_TWIST: f64 = 2.51;
/// The winning row/column must beat the others in its group by 6 dB.
const MIN_RELATIVE_PEAK: f64 = 4.0;
/// The two tones must carry most of the block's energy (rejects speech and noise).
const MIN_TONE_SHARE: f64 = 0.6;

/// Strongest of four Goertzel outputs and whether it beats the other three by the peak margin.
fn strongest(samples: &[i16], rate: u32, freqs: &[f32; 4]) -> Option<(usize, f64)> {
    let mut p = [0.0f64; 4];
    for (out, &f) in p.iter_mut().zip(freqs) {
        *out = f64::from(Goertzel::new(f, rate, samples.len()).power(samples));
    }
    let (best, &max) = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let clear = p
        .iter()
        .enumerate()
        .all(|(i, &v)| i == best || v * MIN_RELATIVE_PEAK <= max);
    clear.then_some((best, max))
}

/// Detects one DTMF digit in a 20-40 ms block, or `None`.
pub fn detect_dtmf(samples: &[i16], rate: u32) -> Option<char> {
    if rate == 0 || samples.len() < (rate / 100) as usize {
        return None;
    }
    let (rows, cols) = dtmf_row_col_freqs();
    let (r, row_p) = strongest(samples, rate, &rows)?;
    let (c, col_p) = strongest(samples, rate, &cols)?;
    let n = samples.len() as f64;
    let total = energy(samples);
    let loud = row_p / n >= MIN_TONE_POWER && col_p / n >= MIN_TONE_POWER;
    let twist_ok = row_p <= col_p * MAX_NORMAL_TWIST && col_p <= row_p * MAX_REVERSE_TWIST;
    let dominant = row_p + col_p >= total * MIN_TONE_SHARE;
    if !(loud && twist_ok && dominant) {
        return None;
    }
    KEYPAD.get(r)?.get(c).copied()
}

#[cfg(test)]
mod tests;
