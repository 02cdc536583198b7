//! SDES keys in SDP (RFC 4568): the `a=crypto` attribute for the suites trunkgate's SRTP
//! supports — `AES_CM_128_HMAC_SHA1_80`, `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2) and
//! `AEAD_AES_128_GCM` (RFC 7714 §12).
//!
//! Owns: parsing a value (`1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>[|lifetime]`),
//! printing one, and choosing the offered line to answer. A line this gateway cannot honour
//! (unknown suite, several keys, an MKI, session parameters such as `UNENCRYPTED_SRTP`) is
//! reported as unusable, so the caller skips it (RFC 4568 §7.1.1: answer with one it can).
//! Must not: generate keys (the caller brings random bytes), or show key material anywhere —
//! `Debug` prints the suite and tag only.

use base64::Engine as _;

/// The SRTP protection suites offered and accepted, in our order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
}

impl Suite {
    /// Every suite, most preferred first (what an offer lists).
    pub const ALL: [Suite; 3] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Master key and master salt lengths in bytes.
    pub fn key_len(self) -> usize {
        16
    }

    pub fn salt_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => 14,
            Suite::AeadAes128Gcm => 12,
        }
    }
}

/// One usable `a=crypto` line: its tag, suite and master key followed by the master salt.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: Suite,
    /// `key_len + salt_len` bytes: the master key, then the master salt.
    pub key_salt: Vec<u8>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("key_salt", &"<redacted>")
            .finish()
    }
}

/// Why an `a=crypto` line cannot be used. None of these show the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("malformed crypto attribute")]
    Malformed,
    #[error("unsupported crypto suite {0:?}")]
    UnknownSuite(String),
    #[error("key method other than inline")]
    KeyMethod,
    #[error("key is not base64 of the suite's key and salt length")]
    KeyLength,
    #[error("several keys or an MKI are not supported")]
    Mki,
    #[error("unsupported session parameter {0:?}")]
    SessionParam(String),
}

impl Crypto {
    /// Parses the value of an `a=crypto` attribute (what follows `crypto:`).
    pub fn parse(value: &str) -> Result<Crypto, CryptoError> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields
            .next()
            .filter(|t| !t.is_empty() && t.len() <= 9 && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or(CryptoError::Malformed)?;
        let suite_name = fields.next().ok_or(CryptoError::Malformed)?;
        let suite = Suite::from_name(suite_name)
            .ok_or_else(|| CryptoError::UnknownSuite(suite_name.chars().take(40).collect()))?;
        let key_params = fields.next().ok_or(CryptoError::Malformed)?;
        if let Some(param) = fields.next() {
            return Err(CryptoError::SessionParam(param.chars().take(40).collect()));
        }
        if key_params.contains(';') {
            return Err(CryptoError::Mki);
        }
        let inline = key_params
            .strip_prefix("inline:")
            .ok_or(CryptoError::KeyMethod)?;
        let mut parts = inline.split('|');
        let b64 = parts.next().unwrap_or("");
        let lifetime = parts.next();
        if parts.next().is_some() {
            return Err(CryptoError::Mki);
        }
        // A lifetime is `2^n` or a decimal; an MKI (`n:len`) may also stand second.
        if let Some(l) = lifetime {
            if l.contains(':') {
                return Err(CryptoError::Mki);
            }
            let ok = match l.strip_prefix("2^") {
                Some(exp) => exp.parse::<u8>().is_ok_and(|e| e <= 64),
                None => !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()),
            };
            if !ok {
                return Err(CryptoError::Malformed);
            }
        }
        let key_salt = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| CryptoError::KeyLength)?;
        if key_salt.len() != suite.key_len() + suite.salt_len() {
            return Err(CryptoError::KeyLength);
        }
        Ok(Crypto {
            tag,
            suite,
            key_salt,
        })
    }

    /// The attribute value: `<tag> <suite> inline:<base64>`.
    pub fn value(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.key_salt);
        format!("{} {} inline:{b64}", self.tag, self.suite.name())
    }

    pub fn master_key(&self) -> &[u8] {
        self.key_salt.get(..self.suite.key_len()).unwrap_or(&[])
    }

    pub fn master_salt(&self) -> &[u8] {
        self.key_salt.get(self.suite.key_len()..).unwrap_or(&[])
    }
}

/// The offered line to answer: the first usable one of our most preferred suite (lines we
/// cannot use are skipped). `None` → no common suite (488 when SRTP is required).
pub fn choose<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Crypto> {
    let usable: Vec<Crypto> = offered
        .into_iter()
        .filter_map(|v| Crypto::parse(v).ok())
        .collect();
    Suite::ALL
        .into_iter()
        .find_map(|s| usable.iter().find(|c| c.suite == s).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §9.1's example key (40 base64 characters: 16 + 14 bytes).
    const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    #[test]
    fn parses_the_rfc_example_and_prints_it_back() {
        let value = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20");
        let c = Crypto::parse(&value).expect("parses");
        assert_eq!((c.tag, c.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(c.master_key().len(), 16);
        assert_eq!(c.master_salt().len(), 14);
        assert_eq!(c.value(), format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains(KEY) && debug.contains("redacted"),
            "{debug}"
        );
    }

    #[test]
    fn unusable_lines_say_why_without_the_key() {
        let cases = [
            ("", CryptoError::Malformed),
            (
                "x AES_CM_128_HMAC_SHA1_80 inline:AAAA",
                CryptoError::Malformed,
            ),
            (
                "1 F8_128_HMAC_SHA1_80 inline:AAAA",
                CryptoError::UnknownSuite("F8_128_HMAC_SHA1_80".into()),
            ),
            ("1 AES_CM_128_HMAC_SHA1_80", CryptoError::Malformed),
            ("1 AES_CM_128_HMAC_SHA1_80 uri:x", CryptoError::KeyMethod),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
                CryptoError::KeyLength,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:!!!",
                CryptoError::KeyLength,
            ),
        ];
        for (value, want) in cases {
            assert_eq!(Crypto::parse(value), Err(want), "{value}");
        }
        let mki = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4");
        assert_eq!(Crypto::parse(&mki), Err(CryptoError::Mki));
        let mki_only = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|1:4");
        assert_eq!(Crypto::parse(&mki_only), Err(CryptoError::Mki));
        let two = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}");
        assert_eq!(Crypto::parse(&two), Err(CryptoError::Mki));
        let session = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP");
        assert_eq!(
            Crypto::parse(&session),
            Err(CryptoError::SessionParam("UNENCRYPTED_SRTP".into()))
        );
        for bad_lifetime in ["2^99", "2^", "abc", ""] {
            let v = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|{bad_lifetime}");
            assert_eq!(Crypto::parse(&v), Err(CryptoError::Malformed), "{v}");
        }
        for e in [CryptoError::KeyLength, CryptoError::Mki] {
            assert!(!e.to_string().contains(KEY));
        }
    }

    #[test]
    fn gcm_takes_a_12_byte_salt() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 28]);
        let c = Crypto::parse(&format!("3 AEAD_AES_128_GCM inline:{key}")).expect("gcm");
        assert_eq!((c.master_key().len(), c.master_salt().len()), (16, 12));
        let wrong = format!("3 AEAD_AES_128_GCM inline:{KEY}");
        assert_eq!(Crypto::parse(&wrong), Err(CryptoError::KeyLength));
    }

    #[test]
    fn the_answer_takes_our_preferred_usable_suite() {
        let k32 = format!("1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}");
        let k80 = format!("2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}");
        let junk = "3 AES_CM_128_HMAC_SHA1_80 inline:short".to_string();
        let chosen = choose([k32.as_str(), junk.as_str(), k80.as_str()]).expect("one");
        assert_eq!((chosen.tag, chosen.suite), (2, Suite::AesCm128HmacSha1_80));
        let chosen = choose([junk.as_str(), k32.as_str()]).expect("the 32-bit tag one");
        assert_eq!(chosen.suite, Suite::AesCm128HmacSha1_32);
        assert_eq!(choose([junk.as_str()]), None);
        assert_eq!(choose(std::iter::empty()), None);
    }
}
