//! G.711 μ-law and A-law companding (ITU-T G.711), table-driven.
//!
//! Owns: the sample ↔ code mapping for PCMU (RTP pt 0) and PCMA (pt 8), RFC 3551 §4.5.14.
//! Must not: know about RTP, framing or sample rates; allocate; panic on any input.
//!
//! Bit-exact with the ITU-T G.191 reference (`ulaw_compress`/`ulaw_expand`,
//! `alaw_compress`/`alaw_expand`). Decoders are identical to Sun's `g711.c`. For encoding, G.191
//! maps a negative two's-complement sample `x` through its one's complement `!x`, so the
//! quantiser is exactly antisymmetric over the whole i16 range (`encode(!x) == encode(x) ^ 0x80`).
//! Sun's 16-bit `linear2ulaw` (bias 0x84, clip 32635) uses `-x` instead; the two agree on every
//! `x >= 0` and differ by one code on a few negative values that sit exactly on a decision level.
//!
//! Why tables: decode is one load from a 256-entry table; encode is one load from a table
//! indexed by the magnitude with the bits the law ignores dropped (8 KiB for μ-law, which keeps 14
//! bits, 2 KiB for A-law, which keeps 13), all built at compile time by `const fn`.

/// μ-law code of digital silence (+0).
pub const ULAW_SILENCE: u8 = 0xFF;
/// A-law code of the smallest positive level, the conventional A-law silence byte.
pub const ALAW_SILENCE: u8 = 0xD5;

const ULAW_BIAS: i32 = 0x84;

const fn ulaw_expand(code: u8) -> i16 {
    let u = !code;
    let t = ((((u & 0x0F) as i32) << 3) + ULAW_BIAS) << ((u & 0x70) >> 4);
    if u & 0x80 != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

const fn alaw_expand(code: u8) -> i16 {
    let a = code ^ 0x55;
    let seg = (a & 0x70) >> 4;
    let mut t = ((a & 0x0F) as i32) << 4;
    if seg == 0 {
        t += 8;
    } else {
        t += 0x108;
        t <<= seg - 1;
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

/// μ-law code (sign bit clear) for a 14-bit magnitude `m14` (G.191 `ulaw_compress`).
const fn ulaw_compress_mag(m14: u16) -> u8 {
    let mut absno = m14 as i32 + 33;
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
    ((high << 4) | low) as u8
}

/// A-law code (sign bit clear, before the even-bit inversion) for a 12-bit magnitude
/// (G.191 `alaw_compress`).
const fn alaw_compress_mag(m12: u16) -> u8 {
    let mut ix = m12 as i32;
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    ix as u8
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_expand(i as u8);
        i += 1;
    }
    t
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
}

const ULAW_ENC_LEN: usize = 1 << 13;
const ALAW_ENC_LEN: usize = 1 << 11;

const fn build_ulaw_encode() -> [u8; ULAW_ENC_LEN] {
    let mut t = [0u8; ULAW_ENC_LEN];
    let mut i = 0;
    while i < ULAW_ENC_LEN {
        t[i] = ulaw_compress_mag(i as u16);
        i += 1;
    }
    t
}

const fn build_alaw_encode() -> [u8; ALAW_ENC_LEN] {
    let mut t = [0u8; ALAW_ENC_LEN];
    let mut i = 0;
    while i < ALAW_ENC_LEN {
        t[i] = alaw_compress_mag(i as u16) ^ 0x55;
        i += 1;
    }
    t
}

static ULAW_DECODE: [i16; 256] = build_ulaw_decode();
static ALAW_DECODE: [i16; 256] = build_alaw_decode();
static ULAW_ENCODE: [u8; ULAW_ENC_LEN] = build_ulaw_encode();
static ALAW_ENCODE: [u8; ALAW_ENC_LEN] = build_alaw_encode();

/// Splits a sample into (one's-complement magnitude 0..=32767, sign bit to OR into the code).
#[inline(always)]
fn split(x: i16) -> (u16, u8) {
    let s = x >> 15; // 0 for x >= 0, -1 for x < 0
    ((x ^ s) as u16, (!s as u8) & 0x80)
}

/// Decodes one μ-law code to a 16-bit linear sample.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Decodes one A-law code to a 16-bit linear sample.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Encodes one 16-bit linear sample to μ-law.
#[inline]
pub fn linear_to_ulaw(x: i16) -> u8 {
    let (mag, sign) = split(x);
    // mag <= 32767, so the mask never changes the index; it only lets the bound be proven.
    ULAW_ENCODE[usize::from(mag >> 2) & (ULAW_ENC_LEN - 1)] | sign
}

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub fn linear_to_alaw(x: i16) -> u8 {
    let (mag, sign) = split(x);
    ALAW_ENCODE[usize::from(mag >> 4) & (ALAW_ENC_LEN - 1)] | sign
}

/// Decodes μ-law bytes into samples; converts `min(src.len(), dst.len())` items.
pub fn decode_ulaw(src: &[u8], dst: &mut [i16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = ulaw_to_linear(s);
    }
}

/// Decodes A-law bytes into samples; converts `min(src.len(), dst.len())` items.
pub fn decode_alaw(src: &[u8], dst: &mut [i16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = alaw_to_linear(s);
    }
}

/// Encodes samples to μ-law bytes; converts `min(src.len(), dst.len())` items.
pub fn encode_ulaw(src: &[i16], dst: &mut [u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = linear_to_ulaw(s);
    }
}

/// Encodes samples to A-law bytes; converts `min(src.len(), dst.len())` items.
pub fn encode_alaw(src: &[i16], dst: &mut [u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = linear_to_alaw(s);
    }
}

#[cfg(test)]
mod tests;
