//! Server-side digest (RFC 7616 / RFC 2617 `qop=auth`, RFC 8760 SHA-256): the challenge
//! header values, parsing an `Authorization` value (leniently: quoted or bare values, any
//! order, unknown parameters ignored; bounded by the `auth::MAX_*` limits), the checks that
//! need no password, and the constant-time comparison of the request-digest.
//! Must not: return or format anything derived from the password except the comparison.

use md5::Md5;
use sha2::{Digest, Sha256};

use super::Why;
use crate::core::sip::auth::{split_challenges, MAX_VALUE_LEN};
use crate::core::sip::message::Message;

/// The algorithms we offer and accept (no `-sess`: we never offer them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Md5,
    Sha256,
}

impl Alg {
    /// Both, in RFC 8760's order of preference.
    pub const BOTH: [Alg; 2] = [Alg::Sha256, Alg::Md5];

    /// The `algorithm` parameter's value.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Md5 => "MD5",
            Alg::Sha256 => "SHA-256",
        }
    }

    fn hex(self, data: &[u8]) -> String {
        match self {
            Alg::Md5 => hex(&Md5::digest(data)),
            Alg::Sha256 => hex(&Sha256::digest(data)),
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Alg::Md5 => 32,
            Alg::Sha256 => 64,
        }
    }
}

/// The parameters of one `Digest` Authorization value, unquoted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Answer {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

/// What [`check`] established before the password is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Checked {
    pub alg: Alg,
    pub nc: u32,
}

/// The `WWW-Authenticate` headers of a challenge, one per algorithm in `algs`' order (RFC
/// 8760 §2.4: most preferred first).
pub(super) fn challenge_headers(
    realm: &str,
    nonce: &str,
    stale: bool,
    algs: &[Alg],
) -> Vec<(&'static str, String)> {
    let stale = if stale { ", stale=true" } else { "" };
    algs.iter()
        .map(|alg| {
            let alg = alg.name();
            let value = format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", qop=\"auth\", algorithm={alg}{stale}",
                quote(realm)
            );
            ("WWW-Authenticate", value)
        })
        .collect()
}

/// The checks that need no password: algorithm, `qop=auth`, `nc`, `cnonce`, and the digest
/// `uri` equal to the Request-URI (else [`Why::BadRequest`], RFC 2617 §3.2.2.5).
pub(super) fn check(
    a: &Answer,
    req: &Message,
    realm: &str,
    allowed: &[Alg],
) -> Result<Checked, Why> {
    if a.realm != realm {
        return Err(Why::BadCredentials("realm is not ours"));
    }
    let alg = match a.algorithm.as_deref() {
        None => Alg::Md5,
        Some(s) if s.eq_ignore_ascii_case("MD5") => Alg::Md5,
        Some(s) if s.eq_ignore_ascii_case("SHA-256") => Alg::Sha256,
        Some(_) => return Err(Why::BadCredentials("unsupported algorithm")),
    };
    if !allowed.contains(&alg) {
        return Err(Why::BadCredentials("algorithm not offered to this user"));
    }
    if !a
        .qop
        .as_deref()
        .is_some_and(|q| q.eq_ignore_ascii_case("auth"))
    {
        return Err(Why::BadCredentials("qop=auth required"));
    }
    let nc =
        a.nc.as_deref()
            .and_then(parse_nc)
            .ok_or(Why::BadCredentials("missing or malformed nc"))?;
    if a.cnonce.as_deref().is_none_or(str::is_empty) {
        return Err(Why::BadCredentials("missing cnonce"));
    }
    if a.response.len() != alg.hex_len() {
        return Err(Why::BadCredentials("response of the wrong length"));
    }
    if req.request_uri() != Some(a.uri.as_str()) {
        return Err(Why::BadRequest("digest uri is not the Request-URI"));
    }
    Ok(Checked { alg, nc })
}

/// Whether the request-digest matches `password` (constant time in the digest).
pub(super) fn matches(c: &Checked, a: &Answer, password: &str, method: &str) -> bool {
    let ha1 = c
        .alg
        .hex(format!("{}:{}:{password}", a.username, a.realm).as_bytes());
    let ha2 = c.alg.hex(format!("{method}:{}", a.uri).as_bytes());
    let nc = a.nc.as_deref().unwrap_or("");
    let cnonce = a.cnonce.as_deref().unwrap_or("");
    let qop = a.qop.as_deref().unwrap_or("auth");
    let expected = c
        .alg
        .hex(format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", a.nonce).as_bytes());
    ct_eq(
        expected.as_bytes(),
        a.response.to_ascii_lowercase().as_bytes(),
    )
}

/// `1*8LHEX` (RFC 7616 asks for exactly 8; shorter is accepted), not zero.
fn parse_nc(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok().filter(|&n| n > 0)
}

/// Equal length and contents, without an early exit on the contents.
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// For inside a quoted string: `"` and `\` escaped, control characters dropped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Parses `Digest name=value, ...`. Every failure is a short reason, never a panic.
pub(super) fn parse_authorization(value: &str) -> Result<Answer, &'static str> {
    if value.len() > MAX_VALUE_LEN {
        return Err("Authorization too long");
    }
    // The auth-param grammar is the challenges' (one splitter for both sides of digest).
    let parts = split_challenges(value).map_err(|_| "malformed Authorization")?;
    let one = match &parts[..] {
        [one] => one,
        [] => return Err("no parameters after Digest"),
        _ => return Err("more than one credential in one Authorization"),
    };
    if !one.scheme().eq_ignore_ascii_case("Digest") {
        return Err("scheme is not Digest");
    }
    if one.params().is_empty() {
        return Err("no parameters after Digest");
    }
    let mut a = Answer::default();
    let mut seen = [false; 9];
    for (name, v) in one.params() {
        if v.bytes().any(|c| c < 0x20 && c != b'\t' || c == 0x7f) {
            return Err("control character in a value");
        }
        if let Some(i) = a.set(name, v.clone()) {
            if seen.get(i).copied().unwrap_or(true) {
                return Err("parameter given twice");
            }
            if let Some(s) = seen.get_mut(i) {
                *s = true;
            }
        }
    }
    for (field, what) in [
        (&a.username, "missing username"),
        (&a.realm, "missing realm"),
        (&a.nonce, "missing nonce"),
        (&a.uri, "missing uri"),
        (&a.response, "missing response"),
    ] {
        if field.is_empty() {
            return Err(what);
        }
    }
    Ok(a)
}

impl Answer {
    /// Stores a known parameter; returns its index (for the duplicate check).
    fn set(&mut self, name: &str, v: String) -> Option<usize> {
        const NAMES: [&str; 9] = [
            "username",
            "realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "qop",
            "nc",
            "cnonce",
        ];
        let i = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))?;
        match i {
            0 => self.username = v,
            1 => self.realm = v,
            2 => self.nonce = v,
            3 => self.uri = v,
            4 => self.response = v,
            5 => self.algorithm = Some(v),
            6 => self.qop = Some(v),
            7 => self.nc = Some(v),
            _ => self.cnonce = Some(v),
        }
        Some(i)
    }
}
