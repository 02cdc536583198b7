//! Lenient E.164 normalisation of the caller and dialled numbers of an attempt, without
//! allocating (admission runs for every INVITE).
//!
//! Owns: `00` → `+`, dropping visual separators (RFC 3966 §5.1.1: `-`, `.`, `(`, `)`, plus
//! spaces and `/`), cutting URI parameters after `;`. Must not guess national formats: a number
//! without `+` or `00` is not E.164 and is treated as absent. The strict form used for
//! configured prefixes is `settings::normalise_e164`.

/// `+` and up to 15 digits, on the stack.
#[derive(Clone, Copy)]
pub(crate) struct E164 {
    len: u8,
    buf: [u8; 16],
}

impl E164 {
    pub(crate) fn parse(text: &str) -> Option<E164> {
        let text = text.split(';').next().unwrap_or("").trim();
        let (digits, prefixed) = if let Some(rest) = text.strip_prefix('+') {
            (rest, true)
        } else if let Some(rest) = text.strip_prefix("00") {
            (rest, true)
        } else {
            (text, false)
        };
        if !prefixed {
            return None;
        }
        let mut out = E164 {
            len: 1,
            buf: [0; 16],
        };
        out.buf[0] = b'+';
        for b in digits.bytes() {
            match b {
                b'0'..=b'9' => {
                    let slot = out.buf.get_mut(usize::from(out.len))?;
                    *slot = b;
                    out.len += 1;
                }
                b' ' | b'-' | b'.' | b'(' | b')' | b'/' => {}
                _ => return None,
            }
        }
        (out.len > 1).then_some(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        // Only ASCII '+' and digits are ever written.
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

impl std::fmt::Debug for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `"0048 12-345"` → `Some("+4812345")`; `None` for anything that is not an E.164 number.
pub fn normalise_number(text: &str) -> Option<String> {
    E164::parse(text).map(|n| n.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::normalise_number;

    #[test]
    fn normalises_or_refuses() {
        let cases: &[(&str, Option<&str>)] = &[
            ("+48123456789", Some("+48123456789")),
            ("0048123456789", Some("+48123456789")),
            ("00919990152080", Some("+919990152080")),
            (" +1 (212) 555-0100 ", Some("+12125550100")),
            ("+48.12.34", Some("+481234")),
            ("+4812;phone-context=example.com", Some("+4812")),
            ("+123456789012345", Some("+123456789012345")),
            ("+1234567890123456", None),
            ("48123456789", None),
            ("anonymous", None),
            ("+", None),
            ("00", None),
            ("+48a1", None),
            ("++48", None),
            ("", None),
            ("+４８", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalise_number(input).as_deref(), *want, "{input:?}");
        }
    }
}
