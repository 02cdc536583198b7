//! Byte-class tables for the hot scanning loops (RFC 3261 §25.1 token, host and delimiter
//! characters): one table load per byte instead of a chain of comparisons.
//! Must not: hold anything but pure lookup helpers.

/// Builds a 256-entry table at compile time from a predicate on the byte `$b`.
macro_rules! table {
    (|$b:ident| $pred:expr) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            let $b = i as u8;
            t[i] = $pred;
            i += 1;
        }
        t
    }};
}

const fn token(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// RFC 3261 §25.1 `token`.
pub(crate) static TOKEN: [bool; 256] = table!(|b| token(b));

/// Host name / IPv4 characters (underscore tolerated: real deployments use it).
pub(crate) static HOST: [bool; 256] =
    table!(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));

/// Bytes a URI scan must stop at: blanks and controls, DEL, `<`, `>`, `"` (all invalid in a
/// bare URI) and `@` (the userinfo end).
pub(crate) static URI_STOP: [bool; 256] =
    table!(|b| b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"' | b'@'));

/// Bytes that matter when splitting a list header on commas.
pub(crate) static LIST_STOP: [bool; 256] = table!(|b| matches!(b, b',' | b'"' | b'<'));

/// Bytes that matter when splitting parameters on semicolons.
pub(crate) static PARAM_STOP: [bool; 256] = table!(|b| matches!(b, b';' | b'"'));

#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Whether `s` is a non-empty RFC 3261 token.
#[inline]
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Index of the first byte of `s[from..]` in `class`, as an absolute index.
#[inline]
pub(crate) fn find_class(s: &[u8], from: usize, class: &[bool; 256]) -> Option<usize> {
    s.get(from..)?
        .iter()
        .position(|&b| class[usize::from(b)])
        .map(|i| i + from)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` that equals the byte repeated in `pattern`. The lowest
/// flagged byte is exactly the first match; borrows can only flag bytes above a real match.
#[inline]
fn matches(word: u64, pattern: u64) -> u64 {
    let x = word ^ pattern;
    x.wrapping_sub(LO) & !x & HI
}

/// Position of the first `a` or `b` in `buf[from..]` (absolute), eight bytes at a time
/// (no memchr dependency). Pass `a == b` for a single needle.
pub(crate) fn find_either(buf: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    let hay = buf.get(from..)?;
    let (pa, pb) = (LO.wrapping_mul(u64::from(a)), LO.wrapping_mul(u64::from(b)));
    let mut chunks = hay.chunks_exact(8);
    let mut off = from;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(bytes);
        let found = matches(word, pa) | matches(word, pb);
        if found != 0 {
            return Some(off + (found.trailing_zeros() / 8) as usize);
        }
        off += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == a || c == b)
        .map(|i| off + i)
}

/// Position of `needle` in `buf[from..]` (absolute).
#[inline]
pub(crate) fn find_byte(buf: &[u8], from: usize, needle: u8) -> Option<usize> {
    find_either(buf, from, needle, needle)
}

/// Index of the first `needle` (ASCII) in `s`.
#[inline]
pub(crate) fn find(s: &str, needle: u8) -> Option<usize> {
    find_byte(s.as_bytes(), 0, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_matches_naive_search() {
        let hay: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        for needle in [0u8, 1, 10, 13, 128, 255, 250] {
            for from in [0, 1, 7, 8, 9, 100, 199, 200, 201] {
                let naive = hay
                    .get(from..)
                    .and_then(|h| h.iter().position(|&b| b == needle).map(|i| i + from));
                assert_eq!(find_byte(&hay, from, needle), naive, "{needle} {from}");
            }
        }
    }

    #[test]
    fn find_either_finds_the_first_of_two() {
        assert_eq!(find_either(b"abcdefghij\\k\"", 0, b'"', b'\\'), Some(10));
        assert_eq!(find_either(b"abcdefghijk\"", 3, b'"', b'\\'), Some(11));
        assert_eq!(find_either(b"abc", 0, b'"', b'\\'), None);
    }

    #[test]
    fn token_chars() {
        assert!(is_token("!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!is_token("a b"));
        assert!(!is_token(""));
        assert!(!is_token("SIP/2.0"));
        assert!(HOST[usize::from(b'_')] && !HOST[usize::from(b':')]);
        assert_eq!(find_class(b"ab\"c,d", 0, &LIST_STOP), Some(2));
        assert_eq!(find_class(b"ab\"c,d", 3, &LIST_STOP), Some(4));
        assert_eq!(find_class(b"ab", 5, &LIST_STOP), None);
    }
}
