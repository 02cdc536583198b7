//! G.711 tests: reference ports as oracles over all 65536 inputs, known vectors, round trips.

use super::*;

/// ITU-T G.191 `ulaw_compress`, one sample, written straight from the reference.
fn ref_ulaw_compress(x: i16) -> u8 {
    let x = i32::from(x);
    let mut absno = if x < 0 {
        ((!x) >> 2) + 33
    } else {
        (x >> 2) + 33
    };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high = 8 - segno;
    let low = 0x0F - ((absno >> segno) & 0x0F);
    let mut out = (high << 4) | low;
    if x >= 0 {
        out |= 0x80;
    }
    out as u8
}

/// ITU-T G.191 `alaw_compress`, one sample.
fn ref_alaw_compress(x: i16) -> u8 {
    let x = i32::from(x);
    let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if x >= 0 {
        ix |= 0x80;
    }
    (ix ^ 0x55) as u8
}

/// Sun/CCITT `linear2ulaw` (16-bit form: bias 0x84, clip 32635).
fn sun_linear2ulaw(x: i16) -> u8 {
    const SEG_END: [i32; 8] = [0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF];
    let x = i32::from(x);
    let (v, mask) = if x < 0 {
        (0x84 - x, 0x7F)
    } else {
        (x + 0x84, 0xFF)
    };
    let seg = SEG_END.iter().position(|&e| v <= e).unwrap_or(8);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let uval = ((seg as i32) << 4) | ((v >> (seg + 3)) & 0xF);
    (uval ^ mask) as u8
}

/// Sun/CCITT `ulaw2linear` and `alaw2linear`.
fn sun_ulaw2linear(code: u8) -> i16 {
    let u = !code;
    let t = ((i32::from(u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

fn sun_alaw2linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = i32::from(a & 0x0F) << 4;
    match (a & 0x70) >> 4 {
        0 => t += 8,
        1 => t += 0x108,
        seg => t = (t + 0x108) << (seg - 1),
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

fn all_samples() -> impl Iterator<Item = i16> {
    i16::MIN..=i16::MAX
}

#[test]
fn encoders_match_g191_for_every_input() {
    for x in all_samples() {
        assert_eq!(linear_to_ulaw(x), ref_ulaw_compress(x), "ulaw x={x}");
        assert_eq!(linear_to_alaw(x), ref_alaw_compress(x), "alaw x={x}");
    }
}

#[test]
fn ulaw_encoder_matches_sun_for_non_negative_and_within_one_code_below() {
    for x in all_samples() {
        let ours = linear_to_ulaw(x);
        let sun = sun_linear2ulaw(x);
        if x >= 0 {
            assert_eq!(ours, sun, "x={x}");
        } else {
            // Codes of one sign are ordered, so "one code apart" is a difference of 1.
            assert!((i32::from(ours) - i32::from(sun)).abs() <= 1, "x={x}");
        }
    }
}

#[test]
fn decoders_match_sun_reference() {
    for c in 0..=255u8 {
        assert_eq!(ulaw_to_linear(c), sun_ulaw2linear(c), "ulaw {c:#04x}");
        assert_eq!(alaw_to_linear(c), sun_alaw2linear(c), "alaw {c:#04x}");
    }
}

#[test]
fn known_vectors() {
    assert_eq!(linear_to_ulaw(0), ULAW_SILENCE);
    assert_eq!(linear_to_ulaw(-1), 0x7F);
    assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
    assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
    assert_eq!(linear_to_ulaw(1000), 0xCE);
    assert_eq!(ulaw_to_linear(0x00), -32124);
    assert_eq!(ulaw_to_linear(0x80), 32124);
    assert_eq!(ulaw_to_linear(0xFF), 0);
    assert_eq!(ulaw_to_linear(0x7F), 0);
    assert_eq!(ulaw_to_linear(0x7E), -8);
    assert_eq!(ulaw_to_linear(0xCE), 988);

    assert_eq!(linear_to_alaw(0), ALAW_SILENCE);
    assert_eq!(linear_to_alaw(-1), 0x55);
    assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
    assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    assert_eq!(alaw_to_linear(0xD5), 8);
    assert_eq!(alaw_to_linear(0x55), -8);
    assert_eq!(alaw_to_linear(0xAA), 32256);
    assert_eq!(alaw_to_linear(0x2A), -32256);

    // Vector from the G.191 test suite as used by its Rust bindings.
    let lin: [i16; 8] = [
        -0x5EE4, 0x48A7, 0x1430, -0x35B8, -0x4A54, -0x39EA, -0x74E0, 0x0036,
    ];
    let mut out = [0u8; 8];
    encode_alaw(&lin, &mut out);
    assert_eq!(out, [0x22, 0xA7, 0x81, 0x3F, 0x27, 0x39, 0x28, 0xD6]);
}

#[test]
fn decode_then_encode_is_identity() {
    for c in 0..=255u8 {
        // 0x7F is μ-law "negative zero": it decodes to 0, which encodes as +0 (0xFF).
        if c != 0x7F {
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), c, "ulaw {c:#04x}");
        }
        assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "alaw {c:#04x}");
    }
    assert_eq!(linear_to_ulaw(ulaw_to_linear(0x7F)), 0xFF);
}

#[test]
fn encoding_is_antisymmetric_under_ones_complement() {
    for x in all_samples() {
        assert_eq!(linear_to_ulaw(!x), linear_to_ulaw(x) ^ 0x80, "x={x}");
        assert_eq!(linear_to_alaw(!x), linear_to_alaw(x) ^ 0x80, "x={x}");
    }
}

#[test]
fn quantisation_is_monotonic() {
    let (mut pu, mut pa) = (i16::MIN, i16::MIN);
    for x in all_samples() {
        let u = ulaw_to_linear(linear_to_ulaw(x));
        let a = alaw_to_linear(linear_to_alaw(x));
        assert!(u >= pu && a >= pa, "x={x}");
        pu = u;
        pa = a;
    }
    let mut sorted: Vec<i16> = (0..=255u8).map(ulaw_to_linear).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        255,
        "μ-law has 255 distinct levels (±0 coincide)"
    );
    let mut sorted: Vec<i16> = (0..=255u8).map(alaw_to_linear).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 256);
}

#[test]
fn error_is_within_half_a_step() {
    for x in all_samples() {
        let m = i32::from(x).abs();
        let eu = (i32::from(ulaw_to_linear(linear_to_ulaw(x))) - i32::from(x)).abs();
        let ea = (i32::from(alaw_to_linear(linear_to_alaw(x))) - i32::from(x)).abs();
        // Half a step is at most 1/32 of the (biased) magnitude; +1 for the one's complement.
        let bu = ((m + 0x84) / 32 + 1).max(m - 32124);
        let ba = (m / 32 + 1).max(9).max(m - 32256);
        assert!(eu <= bu, "ulaw x={x} err={eu}");
        assert!(ea <= ba, "alaw x={x} err={ea}");
    }
}

#[test]
fn slice_versions_convert_the_common_prefix() {
    let src = [0i16, 1000, -1000, i16::MAX];
    let mut u = [0u8; 3];
    encode_ulaw(&src, &mut u);
    assert_eq!(u, [0xFF, 0xCE, 0x4E]);
    let mut back = [7i16; 5];
    decode_ulaw(&u, &mut back);
    assert_eq!(back, [0, 988, -988, 7, 7]);
    let mut a = [0u8; 4];
    encode_alaw(&src, &mut a);
    let mut back = [0i16; 4];
    decode_alaw(&a, &mut back);
    assert_eq!(back[0], 8);
    assert_eq!(back[3], 32256);
}
