//! Streaming 2x sample-rate conversion between the RTP rate (8 kHz) and wideband agent audio
//! (16 kHz): a 47-tap Kaiser-windowed half-band FIR run in polyphase form, state kept across calls.
//!
//! Owns: the filter design, the up/down polyphase kernels, the rate-pair dispatch.
//! Must not: allocate in `process` (other than growing the caller's `out`), read a clock, or
//! panic for any input. Rates other than 8000/16000 are refused at construction.
//!
//! Filter: windowed sinc cut at fs/4 (4 kHz at 16 kHz), Kaiser β = [`KAISER_BETA`]. Being
//! half-band, every second tap is zero and the transition band is symmetric about 4 kHz, so a
//! passband to 3.4 kHz implies a stopband from 4.6 kHz. Measured figures are in the tests.
//!
//! Latency: the filter's group delay is [`GROUP_DELAY_16K`] = 23 samples at 16 kHz (1.4375 ms),
//! i.e. 11.5 samples at 8 kHz, for either direction. A full 8k→16k→8k round trip delays by
//! exactly 23 samples at 8 kHz.

use std::f64::consts::PI;

/// Length of the half-band prototype (4k+3, so its end taps are non-zero).
pub const FILTER_TAPS: usize = 47;
/// Group delay of the prototype, in samples at 16 kHz (= (taps-1)/2).
pub const GROUP_DELAY_16K: usize = (FILTER_TAPS - 1) / 2;
/// Kaiser window shape; ≈ 57 dB design attenuation at 47 taps.
pub const KAISER_BETA: f64 = 5.4;

/// Non-zero taps of the odd-offset polyphase branch (the even-index taps of the prototype).
const BRANCH: usize = FILTER_TAPS.div_ceil(2);
/// The branch is symmetric, so only half of it is stored and each tap multiplies a pair.
const PAIRS: usize = BRANCH / 2;
/// History a block-wise branch filter carries between blocks.
const HIST: usize = BRANCH - 1;
/// Input samples converted per block (bounded scratch inside the struct, no allocation).
const BLOCK: usize = 256;

/// Zeroth-order modified Bessel function of the first kind (power series; converges fast for
/// the β used here).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / f64::from(k * k);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// The unique half of the branch taps h[0], h[2], …, h[22], scaled so that the whole branch sums
/// to exactly 0.5 (together with the 0.5 centre tap: unity DC gain).
fn branch_coefficients() -> [f32; PAIRS] {
    let mut taps = [0.0f64; PAIRS];
    let centre = GROUP_DELAY_16K as f64;
    let i0_beta = bessel_i0(KAISER_BETA);
    for (j, tap) in taps.iter_mut().enumerate() {
        let offset = (2 * j) as f64 - centre; // odd, so the sinc is non-zero
        let sinc = (PI * offset / 2.0).sin() / (PI * offset / 2.0);
        let r = offset / centre;
        let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
        *tap = 0.5 * sinc * window;
    }
    let branch_sum: f64 = 2.0 * taps.iter().sum::<f64>();
    let mut out = [0.0f32; PAIRS];
    for (o, t) in out.iter_mut().zip(taps) {
        *o = (t * 0.5 / branch_sum) as f32;
    }
    out
}

/// Symmetric dot product: Σ c[j]·(w[j] + w[BRANCH-1-j]) over a window (either order). Four
/// partial sums shorten the add dependency chain (f32 addition is never reassociated for us).
#[inline]
fn symmetric_dot(coeffs: &[f32; PAIRS], window: &[f32]) -> f32 {
    let Ok(w) = <&[f32; BRANCH]>::try_from(window) else {
        return 0.0;
    };
    let mut acc = [0.0f32; 4];
    for j in 0..PAIRS {
        acc[j % 4] += coeffs[j] * (w[j] + w[BRANCH - 1 - j]);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Rounds half away from zero; `as` saturates to the i16 range and maps NaN to 0.
#[inline]
fn to_i16(v: f32) -> i16 {
    (v + 0.5f32.copysign(v)) as i16
}

/// A streaming rate converter; output is appended to `out`.
pub trait Resample {
    fn process(&mut self, input: &[i16], out: &mut Vec<i16>);
    /// Forgets the filter history (e.g. after the agent's `clear`), as if newly built.
    fn reset(&mut self);
}

/// 8 kHz → 16 kHz. Each input sample yields two output samples; the odd outputs are the input
/// delayed by 11 samples (the centre tap), the even ones are the 24-tap branch. Works block-wise
/// over a history + block buffer so that each window is a contiguous slice.
#[derive(Debug, Clone)]
pub struct Upsampler2x {
    /// Branch taps ×2 (interpolation gain).
    coeffs: [f32; PAIRS],
    /// `HIST` samples of history (oldest first) followed by the block being processed.
    buf: [f32; HIST + BLOCK],
}

impl Default for Upsampler2x {
    fn default() -> Self {
        Self::new()
    }
}

impl Upsampler2x {
    pub fn new() -> Self {
        let mut coeffs = branch_coefficients();
        for c in &mut coeffs {
            *c *= 2.0;
        }
        Self {
            coeffs,
            buf: [0.0; HIST + BLOCK],
        }
    }
}

impl Resample for Upsampler2x {
    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.reserve(input.len() * 2);
        for block in input.chunks(BLOCK) {
            let n = block.len();
            for (d, &x) in self.buf.iter_mut().skip(HIST).zip(block) {
                *d = f32::from(x);
            }
            let live = self.buf.get(..HIST + n).unwrap_or(&[]);
            for w in live.windows(BRANCH) {
                // Oldest first: w[BRANCH-1] is the newest sample, w[PAIRS] the centre tap's.
                let odd = w.get(PAIRS).copied().unwrap_or(0.0);
                out.push(to_i16(symmetric_dot(&self.coeffs, w)));
                out.push(to_i16(odd));
            }
            self.buf.copy_within(n..n + HIST, 0);
        }
    }

    fn reset(&mut self) {
        self.buf = [0.0; HIST + BLOCK];
    }
}

/// 16 kHz → 8 kHz. Even input samples feed the 24-tap branch, odd ones only the centre tap
/// (a 12-sample delay); one output per even input. Odd-length inputs carry the phase over.
#[derive(Debug, Clone)]
pub struct Downsampler2x {
    coeffs: [f32; PAIRS],
    /// `HIST` even samples of history (oldest first), then the block's even samples.
    evens: [f32; HIST + BLOCK],
    /// The last `PAIRS` odd samples (oldest first), then the block's odd samples.
    odds: [f32; PAIRS + BLOCK],
    /// Whether the next input sample has an odd index in the stream.
    next_is_odd: bool,
}

impl Default for Downsampler2x {
    fn default() -> Self {
        Self::new()
    }
}

impl Downsampler2x {
    pub fn new() -> Self {
        Self {
            coeffs: branch_coefficients(),
            evens: [0.0; HIST + BLOCK],
            odds: [0.0; PAIRS + BLOCK],
            next_is_odd: false,
        }
    }
}

impl Resample for Downsampler2x {
    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.reserve(input.len().div_ceil(2));
        for block in input.chunks(2 * BLOCK) {
            let starts_odd = self.next_is_odd;
            let (mut ne, mut no) = (0, 0);
            for &x in block {
                let (slot, count) = if self.next_is_odd {
                    (self.odds.get_mut(PAIRS + no), &mut no)
                } else {
                    (self.evens.get_mut(HIST + ne), &mut ne)
                };
                if let Some(slot) = slot {
                    *slot = f32::from(x);
                }
                *count += 1;
                self.next_is_odd = !self.next_is_odd;
            }
            // Output m needs odd sample m-12: that is odds[t] for the block's t-th even when the
            // block starts on an even sample, odds[t+1] when it starts on an odd one.
            let evens = self.evens.get(..HIST + ne).unwrap_or(&[]);
            let centre = self.odds.get(usize::from(starts_odd)..).unwrap_or(&[]);
            for (w, &o) in evens.windows(BRANCH).zip(centre) {
                out.push(to_i16(symmetric_dot(&self.coeffs, w) + 0.5 * o));
            }
            self.evens.copy_within(ne..ne + HIST, 0);
            self.odds.copy_within(no..no + PAIRS, 0);
        }
    }

    fn reset(&mut self) {
        *self = Self {
            coeffs: self.coeffs,
            ..Self::new()
        };
    }
}

/// The converter for one direction of one call, picked by rate pair.
#[derive(Debug, Clone)]
pub enum Resampler {
    Passthrough,
    /// Boxed: the filter state is ~1-2 KB of block buffers, the enum stays pointer-sized.
    Up(Box<Upsampler2x>),
    Down(Box<Downsampler2x>),
}

impl Resample for Resampler {
    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match self {
            Resampler::Passthrough => out.extend_from_slice(input),
            Resampler::Up(u) => u.process(input, out),
            Resampler::Down(d) => d.process(input, out),
        }
    }

    fn reset(&mut self) {
        match self {
            Resampler::Passthrough => {}
            Resampler::Up(u) => u.reset(),
            Resampler::Down(d) => d.reset(),
        }
    }
}

impl Resampler {
    /// Group delay in samples at 16 kHz (the half-sample delay at 8 kHz stays exact this way):
    /// 0 for passthrough, 23 for either 2x direction (= 11.5 samples at 8 kHz, 1.4375 ms).
    pub fn group_delay_16k(&self) -> usize {
        match self {
            Resampler::Passthrough => 0,
            Resampler::Up(_) | Resampler::Down(_) => GROUP_DELAY_16K,
        }
    }
}

/// The converter for `from` Hz → `to` Hz, for the rates the dialects allow (8000 and 16000);
/// `None` for any other pair.
pub fn resampler(from: u32, to: u32) -> Option<Resampler> {
    match (from, to) {
        (8000, 8000) | (16000, 16000) => Some(Resampler::Passthrough),
        (8000, 16000) => Some(Resampler::Up(Box::default())),
        (16000, 8000) => Some(Resampler::Down(Box::default())),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
