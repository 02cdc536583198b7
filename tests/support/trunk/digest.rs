//! The trunk's side of SIP digest auth (RFC 2617 / RFC 7616 / RFC 8760, `qop=auth`): the
//! challenge header it sends and the check of an `Authorization` / `Proxy-Authorization`
//! answer against the username and password it knows. Hashes are computed here with the
//! `md-5` and `sha2` crates directly, not with `trunkgate::core::sip::auth`, so the gateway's
//! client and this check verify each other.
//! Must not: panic on any header value (a malformed answer is a failed check with a reason).

use md5::Md5;
use sha2::{Digest, Sha256};

/// Digest algorithm the trunk challenges with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    pub fn hex(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 => Sha256::digest(data.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The challenge value (`Digest realm=..., nonce=..., ...`).
pub fn challenge_value(
    realm: &str,
    nonce: &str,
    opaque: &str,
    alg: Algorithm,
    stale: bool,
) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", opaque=\"{opaque}\", algorithm={}, qop=\"auth\"{stale}",
        alg.token()
    )
}

/// The parameters of a `Digest` answer, names lower-cased, quotes removed.
pub fn params(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.trim();
    let (scheme, mut rest) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut out = Vec::new();
    // At most 64 parameters; each turn consumes at least one character.
    for _ in 0..64 {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (val, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut val = String::new();
            let mut end = None;
            let mut chars = q.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => val.push(c),
                }
            }
            (val, q.get(end?..)?)
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after.get(..end)?.trim().to_string(), after.get(end..)?)
        };
        out.push((name.trim().to_ascii_lowercase(), val));
        rest = tail;
    }
    Some(out)
}

/// What the trunk found in one answer to its challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCheck {
    /// The header that carried it (`Authorization` or `Proxy-Authorization`), None if absent.
    pub header: Option<String>,
    /// Whether the response matched the known credentials, realm, nonce and Request-URI.
    pub ok: bool,
    /// Why it did not (empty when ok).
    pub reason: String,
    pub username: Option<String>,
    pub algorithm: Option<String>,
    pub nonce: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub qop: Option<String>,
    pub uri: Option<String>,
}

/// What the answer must match.
pub struct Expected<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub opaque: &'a str,
    pub alg: Algorithm,
    pub method: &'a str,
    pub request_uri: &'a str,
}

/// Checks a digest answer (`value` of `header`) against `exp`.
pub fn verify(header: &str, value: Option<&str>, exp: &Expected<'_>) -> AuthCheck {
    let mut check = AuthCheck {
        header: value.map(|_| header.to_string()),
        ok: false,
        reason: String::new(),
        username: None,
        algorithm: None,
        nonce: None,
        nc: None,
        cnonce: None,
        qop: None,
        uri: None,
    };
    let Some(value) = value else {
        check.reason = format!("no {header} header");
        return check;
    };
    let Some(p) = params(value) else {
        check.reason = format!("unparsable {header}: {value}");
        return check;
    };
    let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    check.username = get("username");
    check.algorithm = get("algorithm");
    check.nonce = get("nonce");
    check.nc = get("nc");
    check.cnonce = get("cnonce");
    check.qop = get("qop");
    check.uri = get("uri");
    let mut problems = Vec::new();
    if check.username.as_deref() != Some(exp.username) {
        problems.push(format!("username {:?}", check.username));
    }
    if get("realm").as_deref() != Some(exp.realm) {
        problems.push(format!("realm {:?}", get("realm")));
    }
    if check.nonce.as_deref() != Some(exp.nonce) {
        problems.push(format!("nonce {:?} (expected {})", check.nonce, exp.nonce));
    }
    if get("opaque").as_deref() != Some(exp.opaque) {
        problems.push(format!("opaque {:?}", get("opaque")));
    }
    // RFC 7616 §3.4: algorithm may be left out only for MD5.
    let alg_ok = match (check.algorithm.as_deref(), exp.alg) {
        (None, Algorithm::Md5) => true,
        (Some(a), alg) => a.eq_ignore_ascii_case(alg.token()),
        (None, _) => false,
    };
    if !alg_ok {
        problems.push(format!("algorithm {:?}", check.algorithm));
    }
    if check.uri.as_deref() != Some(exp.request_uri) {
        problems.push(format!(
            "uri {:?} is not the Request-URI {}",
            check.uri, exp.request_uri
        ));
    }
    if check.qop.as_deref() != Some("auth") {
        problems.push(format!("qop {:?}", check.qop));
    }
    let nc_ok = check
        .nc
        .as_deref()
        .is_some_and(|nc| nc.len() == 8 && u32::from_str_radix(nc, 16).is_ok());
    if !nc_ok {
        problems.push(format!("nc {:?}", check.nc));
    }
    if check.cnonce.as_deref().is_none_or(str::is_empty) {
        problems.push("no cnonce".into());
    }
    let uri = check.uri.clone().unwrap_or_default();
    let ha1 = exp
        .alg
        .hex(&format!("{}:{}:{}", exp.username, exp.realm, exp.password));
    let ha2 = exp.alg.hex(&format!("{}:{uri}", exp.method));
    let want = exp.alg.hex(&format!(
        "{ha1}:{}:{}:{}:auth:{ha2}",
        check.nonce.clone().unwrap_or_default(),
        check.nc.clone().unwrap_or_default(),
        check.cnonce.clone().unwrap_or_default(),
    ));
    match get("response") {
        Some(r) if r.eq_ignore_ascii_case(&want) => {}
        r => problems.push(format!("response {r:?} does not match")),
    }
    check.ok = problems.is_empty();
    check.reason = problems.join("; ");
    check
}
