//! Tone tests: generator continuity, tone presence/absence, DTMF through G.711 and rejections.

use super::*;
use crate::core::media::g711;

fn tone(freq: f32, amp: f32, rate: u32, n: usize) -> Vec<i16> {
    let mut v = vec![0; n];
    ToneGen::single(freq, amp, rate).fill(&mut v);
    v
}

fn dtmf(digit: char, amp: f32, rate: u32, ms: u32) -> Vec<i16> {
    let mut v = vec![0; (rate * ms / 1000) as usize];
    ToneGen::dtmf(digit, amp, rate).unwrap().fill(&mut v);
    v
}

fn through_ulaw(x: &[i16]) -> Vec<i16> {
    let mut c = vec![0u8; x.len()];
    g711::encode_ulaw(x, &mut c);
    let mut y = vec![0i16; x.len()];
    g711::decode_ulaw(&c, &mut y);
    y
}

fn through_alaw(x: &[i16]) -> Vec<i16> {
    let mut c = vec![0u8; x.len()];
    g711::encode_alaw(x, &mut c);
    let mut y = vec![0i16; x.len()];
    g711::decode_alaw(&c, &mut y);
    y
}

fn noise(n: usize, amp: i32) -> Vec<i16> {
    let mut s = 0x1234_5678_9ABC_DEF1u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 33) as i32 % amp) as i16
        })
        .collect()
}

#[test]
fn generator_is_phase_continuous_across_fills() {
    let whole = tone(1000.0, 10_000.0, 8000, 1000);
    let mut g = ToneGen::single(1000.0, 10_000.0, 8000);
    let mut pieces = vec![0i16; 1000];
    for chunk in pieces.chunks_mut(7) {
        g.fill(chunk);
    }
    assert_eq!(whole, pieces);
    // 1000 Hz at 8 kHz repeats every 8 samples: 0, +A/√2, +A, …
    assert_eq!(&whole[..4], &[0, 7071, 10_000, 7071]);
    assert_eq!(whole[8], 0);
}

#[test]
fn generator_clips_and_handles_bad_parameters() {
    let mut v = vec![0i16; 64];
    ToneGen::dual(500.0, 500.0, 30_000.0, 8000).fill(&mut v);
    assert!(v.contains(&i16::MAX));
    ToneGen::single(f32::NAN, f32::INFINITY, 0).fill(&mut v);
    assert!(v.iter().all(|&x| x == 0));
    assert!(ToneGen::dtmf('x', 1.0, 8000).is_none());
}

#[test]
fn goertzel_power_matches_block_energy_for_a_pure_tone() {
    let x = tone(697.0, 8000.0, 8000, 160);
    let e: f32 = x.iter().map(|&s| f32::from(s) * f32::from(s)).sum();
    let p = Goertzel::new(697.0, 8000, 160).power(&x);
    assert!((p / e - 1.0).abs() < 0.03, "p={p} e={e}");
    assert!(Goertzel::new(1209.0, 8000, 160).power(&x) < e * 0.01);
    assert_eq!(Goertzel::new(697.0, 8000, 160).power(&[]), 0.0);
    assert_eq!(Goertzel::new(697.0, 8000, 0).power(&x), 0.0);
}

#[test]
fn thousand_hz_detected_and_not_in_four_hundred() {
    let a = through_ulaw(&tone(1000.0, 12_000.0, 8000, 8000));
    assert!(detect_tone(&a, 8000, 1000.0) > 0.95);
    assert!(detect_tone(&a, 8000, 400.0) < 0.01);
    let b = through_alaw(&tone(400.0, 12_000.0, 8000, 8000));
    assert!(detect_tone(&b, 8000, 1000.0) < 0.01);
    assert!(detect_tone(&b, 8000, 400.0) > 0.95);
    // A slightly detuned tone still counts; 16 kHz works too.
    assert!(detect_tone(&tone(1012.0, 9000.0, 16_000, 16_000), 16_000, 1000.0) > 0.8);
    // A quiet tone under loud noise does not.
    let mut mix = noise(8000, 8000);
    for (m, t) in mix.iter_mut().zip(tone(1000.0, 300.0, 8000, 8000)) {
        *m = m.saturating_add(t);
    }
    assert!(detect_tone(&mix, 8000, 1000.0) < 0.05);
}

#[test]
fn detect_tone_degenerate_inputs() {
    assert_eq!(detect_tone(&[], 8000, 1000.0), 0.0);
    assert_eq!(detect_tone(&[0; 400], 8000, 1000.0), 0.0);
    assert_eq!(detect_tone(&[5; 40], 0, 1000.0), 0.0);
    let short = tone(1000.0, 5000.0, 8000, 40);
    assert!(detect_tone(&short, 8000, 1000.0) > 0.8);
}

#[test]
fn every_digit_round_trips_through_g711_and_detection() {
    for digit in "0123456789*#ABCD".chars() {
        for ms in [20, 30, 40] {
            let x = dtmf(digit, 6000.0, 8000, ms);
            assert_eq!(
                detect_dtmf(&through_ulaw(&x), 8000),
                Some(digit),
                "{digit} {ms}ms"
            );
            assert_eq!(
                detect_dtmf(&through_alaw(&x), 8000),
                Some(digit),
                "{digit} {ms}ms"
            );
        }
        assert_eq!(
            detect_dtmf(&dtmf(digit, 3000.0, 16_000, 20), 16_000),
            Some(digit)
        );
    }
}

#[test]
fn dtmf_twist_limits() {
    let mut x = vec![0i16; 160];
    let mut row = vec![0i16; 160];
    let mut col = vec![0i16; 160];
    // Row 6 dB stronger: normal twist within 8 dB.
    ToneGen::single(770.0, 8000.0, 8000).fill(&mut row);
    ToneGen::single(1336.0, 4000.0, 8000).fill(&mut col);
    for ((o, a), b) in x.iter_mut().zip(&row).zip(&col) {
        *o = a + b;
    }
    assert_eq!(detect_dtmf(&x, 8000), Some('5'));
    // Column 10 dB stronger: beyond the 4 dB reverse twist.
    ToneGen::single(770.0, 2500.0, 8000).fill(&mut row);
    ToneGen::single(1336.0, 8000.0, 8000).fill(&mut col);
    for ((o, a), b) in x.iter_mut().zip(&row).zip(&col) {
        *o = a + b;
    }
    assert_eq!(detect_dtmf(&x, 8000), None);
}

#[test]
fn dtmf_rejects_non_dtmf_signals() {
    assert_eq!(detect_dtmf(&[0; 160], 8000), None);
    assert_eq!(detect_dtmf(&tone(697.0, 8000.0, 8000, 160), 8000), None);
    assert_eq!(detect_dtmf(&noise(320, 10_000), 8000), None);
    let mut speechy = vec![0i16; 320];
    let mut g = ToneGen::dual(500.0, 1500.0, 4000.0, 8000);
    g.fill(&mut speechy);
    assert_eq!(detect_dtmf(&speechy, 8000), None);
    // Two rows at once (697 + 770) is not a digit.
    let mut rows = vec![0i16; 160];
    ToneGen::dual(697.0, 770.0, 6000.0, 8000).fill(&mut rows);
    assert_eq!(detect_dtmf(&rows, 8000), None);
    // Too quiet, too short, no rate.
    assert_eq!(detect_dtmf(&dtmf('5', 40.0, 8000, 20), 8000), None);
    assert_eq!(detect_dtmf(&dtmf('5', 6000.0, 8000, 20)[..40], 8000), None);
    assert_eq!(detect_dtmf(&dtmf('5', 6000.0, 8000, 20), 0), None);
    // A digit buried in loud noise is rejected rather than guessed.
    let mut mix = noise(160, 12_000);
    for (m, t) in mix.iter_mut().zip(dtmf('5', 1000.0, 8000, 20)) {
        *m = m.saturating_add(t);
    }
    assert_eq!(detect_dtmf(&mix, 8000), None);
}
