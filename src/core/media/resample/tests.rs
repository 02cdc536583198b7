//! Resampler tests: measured passband flatness, stopband / image rejection, exact latency,
//! chunking invariance and the rate-pair table. Figures print with `--nocapture`.

use super::*;
use crate::core::media::tone::{Goertzel, ToneGen};

fn tone(freq: f32, amp: f32, rate: u32, n: usize) -> Vec<i16> {
    let mut v = vec![0; n];
    ToneGen::single(freq, amp, rate).fill(&mut v);
    v
}

/// Mean power per sample of the component at `freq` (≈ A²/2 for a sine of peak A). Blocks are
/// whole seconds, so integer-Hz tones sit exactly on a bin.
fn tone_power(samples: &[i16], freq: f32, rate: u32) -> f64 {
    let n = samples.len().max(1);
    f64::from(Goertzel::new(freq, rate, n).power(samples)) / n as f64
}

fn total_power(samples: &[i16]) -> f64 {
    let n = samples.len().max(1) as f64;
    samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.max(1e-30).log10()
}

fn run(r: &mut impl Resample, input: &[i16]) -> Vec<i16> {
    let mut out = Vec::new();
    r.process(input, &mut out);
    out
}

/// Runs 1.5 s of a tone through and returns (input, output) over the last full second.
fn steady(
    r: &mut impl Resample,
    freq: f32,
    amp: f32,
    in_rate: u32,
    out_rate: u32,
) -> (Vec<i16>, Vec<i16>) {
    let n_in = in_rate as usize * 3 / 2;
    let input = tone(freq, amp, in_rate, n_in);
    let out = run(r, &input);
    let skip_in = in_rate as usize / 2;
    let skip_out = out_rate as usize / 2;
    let tail_in = input.get(skip_in..).unwrap_or(&[]).to_vec();
    let tail_out = out
        .get(skip_out..skip_out + out_rate as usize)
        .unwrap_or(&[])
        .to_vec();
    assert_eq!(tail_out.len(), out_rate as usize);
    (tail_in, tail_out)
}

const PASSBAND: [f32; 10] = [
    100.0, 300.0, 700.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 3300.0, 3400.0,
];

#[test]
fn coefficients_give_unity_dc_gain_and_are_sane() {
    let c = branch_coefficients();
    let sum: f32 = 2.0 * c.iter().sum::<f32>();
    assert!((sum - 0.5).abs() < 1e-6, "branch sum {sum}");
    // Largest taps next to the centre, alternating sign away from it.
    assert!(c[PAIRS - 1] > 0.3 && c[PAIRS - 2] < 0.0, "{c:?}");
}

#[test]
fn downsampler_passband_is_flat_to_3400() {
    let mut worst = 0.0f64;
    for f in PASSBAND {
        let mut d = Downsampler2x::new();
        let (i, o) = steady(&mut d, f, 10_000.0, 16000, 8000);
        let g = db(tone_power(&o, f, 8000) / tone_power(&i, f, 16000));
        println!("down passband {f:>6} Hz: {g:+.4} dB");
        worst = worst.max(g.abs());
    }
    println!("down passband worst |gain| = {worst:.4} dB");
    assert!(worst < 0.5, "passband deviation {worst} dB");
}

#[test]
fn downsampler_attenuates_above_4600_by_50_db() {
    let mut worst = f64::NEG_INFINITY;
    for f in (4600..=7900).step_by(100).map(|f| f as f32) {
        let mut d = Downsampler2x::new();
        let (i, o) = steady(&mut d, f, 20_000.0, 16000, 8000);
        let a = db(total_power(&o) / total_power(&i));
        if f == 4600.0 || f == 6000.0 || f == 7900.0 {
            println!(
                "down stopband {f:>6} Hz -> alias {} Hz: {a:+.1} dB",
                8000.0 - f
            );
        }
        worst = worst.max(a);
    }
    println!("down stopband 4600..7900 Hz worst = {worst:+.1} dB");
    assert!(worst <= -50.0, "stopband only {worst} dB");
}

#[test]
fn upsampler_passband_is_flat_and_images_are_below_50_db() {
    let (mut worst_gain, mut worst_image) = (0.0f64, f64::NEG_INFINITY);
    for f in PASSBAND {
        let mut u = Upsampler2x::new();
        let (i, o) = steady(&mut u, f, 10_000.0, 8000, 16000);
        let p_in = tone_power(&i, f, 8000);
        let g = db(tone_power(&o, f, 16000) / p_in);
        let image = db(tone_power(&o, 8000.0 - f, 16000) / p_in);
        println!(
            "up {f:>6} Hz: gain {g:+.4} dB, image at {} Hz {image:+.1} dB",
            8000.0 - f
        );
        worst_gain = worst_gain.max(g.abs());
        worst_image = worst_image.max(image);
    }
    println!("up worst |gain| = {worst_gain:.4} dB, worst image = {worst_image:+.1} dB");
    assert!(worst_gain < 0.5, "passband deviation {worst_gain} dB");
    assert!(worst_image <= -50.0, "image only {worst_image} dB down");
}

#[test]
fn upsampler_odd_outputs_are_the_input_delayed() {
    let input = tone(1234.0, 12_000.0, 8000, 500);
    let out = run(&mut Upsampler2x::new(), &input);
    assert_eq!(out.len(), 1000);
    for (m, &x) in input.iter().enumerate().take(500 - 11) {
        assert_eq!(out[2 * (m + 11) + 1], x, "m={m}");
    }
}

#[test]
fn round_trip_is_the_input_delayed_by_23_samples() {
    let input = tone(1000.0, 10_000.0, 8000, 4000);
    let up = run(&mut Upsampler2x::new(), &input);
    let back = run(&mut Downsampler2x::new(), &up);
    assert_eq!(back.len(), input.len());
    let worst = (200..4000)
        .map(|m| (i32::from(back[m]) - i32::from(input[m - 23])).abs())
        .max()
        .unwrap_or(0);
    println!("round trip 8k->16k->8k, 1 kHz, delay 23: max error {worst} LSB of 10000");
    assert!(worst <= 20, "max error {worst}");
    // And it is not some other alignment.
    let off = (200..4000)
        .map(|m| (i32::from(back[m]) - i32::from(input[m - 22])).abs())
        .max()
        .unwrap_or(0);
    assert!(off > 500);
}

#[test]
fn chunking_does_not_change_the_output() {
    let input = tone(900.0, 15_000.0, 16000, 3001);
    let sizes = [1usize, 7, 2, 160, 33, 320, 3, 0, 999];
    for make in [0, 1] {
        let mut whole: Resampler = if make == 0 {
            Resampler::Up(Box::default())
        } else {
            Resampler::Down(Box::default())
        };
        let mut pieces = whole.clone();
        let expected = run(&mut whole, &input);
        let mut got = Vec::new();
        let mut rest = input.as_slice();
        let mut k = 0;
        while !rest.is_empty() {
            let n = sizes[k % sizes.len()].min(rest.len());
            let (a, b) = rest.split_at(n);
            pieces.process(a, &mut got);
            rest = b;
            k += 1;
        }
        assert_eq!(got, expected);
    }
}

#[test]
fn full_scale_input_saturates_instead_of_wrapping() {
    let square: Vec<i16> = (0..2000)
        .map(|i| {
            if (i / 20) % 2 == 0 {
                i16::MAX
            } else {
                i16::MIN
            }
        })
        .collect();
    let up = run(&mut Upsampler2x::new(), &square);
    // Gibbs overshoot must clip at the rails: on a plateau (input sign constant ±3 samples
    // around the aligned position) the output keeps the input's sign and reaches the rail.
    let mut clipped = 0;
    for m in 20..square.len() {
        let near = &square[m - 11 - 3..=m - 11 + 3];
        if near.iter().all(|&x| x == near[0]) {
            let y = up[2 * m];
            assert_eq!(y.signum(), near[0].signum(), "wrapped at m={m}: {y}");
            clipped += usize::from(y == i16::MAX || y == i16::MIN);
        }
    }
    assert!(clipped > 0, "expected overshoot to hit the rails");
    let down = run(&mut Downsampler2x::new(), &up);
    assert_eq!(down.len(), square.len());
}

#[test]
fn reset_restores_the_fresh_state() {
    let input = tone(700.0, 9000.0, 16000, 333);
    for mut r in [
        resampler(8000, 16000).unwrap(),
        resampler(16000, 8000).unwrap(),
    ] {
        let fresh = run(&mut r.clone(), &input);
        let _ = run(&mut r, &input[..101]);
        r.reset();
        assert_eq!(run(&mut r, &input), fresh);
    }
}

#[test]
fn rate_pairs() {
    assert!(matches!(
        resampler(8000, 8000),
        Some(Resampler::Passthrough)
    ));
    assert!(matches!(
        resampler(16000, 16000),
        Some(Resampler::Passthrough)
    ));
    assert!(matches!(resampler(8000, 16000), Some(Resampler::Up(_))));
    assert!(matches!(resampler(16000, 8000), Some(Resampler::Down(_))));
    for (a, b) in [
        (0, 8000),
        (8000, 0),
        (44100, 8000),
        (8000, 24000),
        (u32::MAX, 16000),
    ] {
        assert!(resampler(a, b).is_none());
    }
    let mut p = resampler(8000, 8000).unwrap();
    assert_eq!(p.group_delay_16k(), 0);
    assert_eq!(run(&mut p, &[1, -2, 3]), vec![1, -2, 3]);
    assert_eq!(resampler(8000, 16000).unwrap().group_delay_16k(), 23);
}

#[test]
fn empty_input_is_a_no_op() {
    let mut out = vec![5];
    Upsampler2x::new().process(&[], &mut out);
    Downsampler2x::new().process(&[], &mut out);
    assert_eq!(out, vec![5]);
}

#[test]
fn process_only_writes_into_the_callers_buffer() {
    let input = tone(500.0, 8000.0, 16000, 640);
    let mut out = Vec::with_capacity(2 * 640);
    let ptr = out.as_ptr();
    let mut r = resampler(8000, 16000).unwrap();
    r.process(&input, &mut out);
    let mut d = resampler(16000, 8000).unwrap();
    d.process(&input, &mut out);
    assert_eq!(out.len(), 1280 + 320);
    assert!(out.capacity() >= 1600);
    out.clear();
    let ptr2 = out.as_ptr();
    r.process(&input[..320], &mut out);
    d.process(&input[..320], &mut out);
    assert_eq!(out.as_ptr(), ptr2, "no reallocation when capacity suffices");
    let _ = ptr;
}
