//! SIP digest authentication as a client (RFC 2617, RFC 7616, RFC 8760; RFC 3261 §22), for
//! placing calls and REGISTER through carrier trunks.
//!
//! Owns: parsing `WWW-Authenticate` (401) and `Proxy-Authenticate` (407) challenge values,
//! choosing among several challenges (SHA-256 over MD5; unsupported algorithms and `qop`
//! without `auth` ignored), computing `Authorization` / `Proxy-Authorization` values
//! (`qop=auth`, or the RFC 2069-compatible form when the challenge has no `qop`), the per-trunk
//! nonce state (`nc` counting) and the per-request answering rules (each realm answered once;
//! once more only after `stale=true`).
//!
//! Must not: do I/O, read clocks or draw random numbers (the caller supplies the `cnonce`),
//! panic on any header value, or let the password reach `Debug` output. It never decides
//! what happens to the call: [`AuthError::Rejected`] is reported and the caller ends the call
//! `auth_failed`.

mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};

pub(crate) use parse::split_challenges;
use parse::RawChallenge;

/// Longest header value we look at; the message parser already bounds a header line.
pub const MAX_VALUE_LEN: usize = 8 * 1024;
/// Longest single parameter value (realm, nonce, opaque, …).
pub const MAX_PARAM_LEN: usize = 1024;
/// Parameters in one challenge.
pub const MAX_PARAMS: usize = 32;
/// Challenges in one header value.
pub const MAX_CHALLENGES: usize = 16;

/// Why a challenge value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("empty challenge")]
    Empty,
    #[error("challenge value, parameter or list too long")]
    TooLong,
    #[error("unexpected character at byte {0}")]
    Unexpected(usize),
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("control character or invalid escape in a value")]
    BadChar,
    #[error("parameter {0} given twice")]
    Duplicate(String),
    #[error("missing realm")]
    MissingRealm,
    #[error("missing nonce")]
    MissingNonce,
    #[error("scheme {0} is not Digest")]
    UnsupportedScheme(String),
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("qop offered without auth")]
    UnsupportedQop,
    #[error("-sess algorithm without qop")]
    SessWithoutQop,
    #[error("expected exactly one challenge, found {0}")]
    NotOne(usize),
}

/// Why no credentials can be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No challenge in the response could be answered (the first reason is kept).
    #[error("no usable digest challenge: {0}")]
    NoUsableChallenge(ChallengeError),
    /// The realm was challenged again after we answered it (and not as a single stale
    /// retry): the credentials are wrong. The call ends `auth_failed`.
    #[error("credentials rejected for realm {realm:?}")]
    Rejected { realm: String },
    /// A caller-supplied value (username, URI, method, cnonce, or a hand-built challenge's
    /// realm/nonce/opaque) is empty where it must not be
    /// or contains a control character or quote that cannot be carried.
    #[error("invalid {0} for a digest response")]
    InvalidInput(&'static str),
}

/// The digest algorithms we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` token (case-insensitive); `None` for anything we cannot compute
    /// (e.g. `SHA-512-256`, `AKAv1-MD5`).
    pub fn from_token(s: &str) -> Option<Algorithm> {
        const ALL: [Algorithm; 4] = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ];
        ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    pub fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Higher is preferred when several challenges for one realm are offered.
    fn rank(self) -> u8 {
        match self {
            Algorithm::Sha256 => 4,
            Algorithm::Sha256Sess => 3,
            Algorithm::Md5 => 2,
            Algorithm::Md5Sess => 1,
        }
    }

    /// Lowercase hex of the hash of `data`.
    fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => to_hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => to_hex(&Sha256::digest(data)),
        }
    }
}

/// Which response carried the challenge, and so which header answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// 401, `WWW-Authenticate` → `Authorization`.
    Www,
    /// 407, `Proxy-Authenticate` → `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// The kind a status code asks for: 401 and 407 only.
    pub fn from_status(status: u16) -> Option<ChallengeKind> {
        match status {
            401 => Some(ChallengeKind::Www),
            407 => Some(ChallengeKind::Proxy),
            _ => None,
        }
    }

    /// The header carrying the challenge.
    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header carrying our answer.
    pub fn response_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// The `qop` values a challenge offered (unknown tokens ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QopOptions {
    pub auth: bool,
    pub auth_int: bool,
}

/// One parsed `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `MD5` when the challenge names none (RFC 2617 §3.2.1).
    pub algorithm: Algorithm,
    /// `None`: no `qop` parameter, answer in the RFC 2069-compatible form.
    pub qop: Option<QopOptions>,
    pub stale: bool,
}

/// A trunk's username and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A computed digest answer; `Display` is the header value (`Digest username="…", …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestResponse {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// Lowercase hex request-digest.
    pub response: String,
    pub algorithm: Algorithm,
    /// `Some` exactly when `qop=auth` is used (with `nc`).
    pub cnonce: Option<String>,
    pub nc: Option<u32>,
    pub opaque: Option<String>,
}

impl DigestResponse {
    pub fn header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DigestResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
            Quoted(&self.username),
            Quoted(&self.realm),
            Quoted(&self.nonce),
            Quoted(&self.uri),
            self.response,
            self.algorithm.as_str(),
        )?;
        if let (Some(cnonce), Some(nc)) = (&self.cnonce, self.nc) {
            write!(f, ", cnonce=\"{}\", qop=auth, nc={nc:08x}", Quoted(cnonce))?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque=\"{}\"", Quoted(opaque))?;
        }
        Ok(())
    }
}

/// A header to add to the (re)sent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// `Authorization` or `Proxy-Authorization`.
    pub name: &'static str,
    pub value: String,
}

/// Computes the answer to `challenge` for one request. `nc` is the nonce count (1 for the
/// first request with this nonce); `cnonce` is ignored when the challenge has no `qop`.
pub fn respond(
    credentials: &Credentials,
    challenge: &Challenge,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Result<DigestResponse, AuthError> {
    check_input(&credentials.username, "username", true)?;
    check_input(method, "method", false)?;
    check_input(uri, "uri", false)?;
    // A hand-built challenge must not smuggle line breaks into the header either.
    check_input(&challenge.realm, "realm", true)?;
    check_input(&challenge.nonce, "nonce", false)?;
    check_input(challenge.opaque.as_deref().unwrap_or(""), "opaque", true)?;
    let alg = challenge.algorithm;
    let with_qop = match challenge.qop {
        None => false,
        Some(q) if q.auth => true,
        Some(_) => return Err(AuthError::NoUsableChallenge(ChallengeError::UnsupportedQop)),
    };
    if alg.is_sess() && !with_qop {
        return Err(AuthError::NoUsableChallenge(ChallengeError::SessWithoutQop));
    }
    if with_qop {
        check_input(cnonce, "cnonce", false)?;
    }
    let mut ha1 = alg.hex(
        format!(
            "{}:{}:{}",
            credentials.username, challenge.realm, credentials.password
        )
        .as_bytes(),
    );
    if alg.is_sess() {
        ha1 = alg.hex(format!("{ha1}:{}:{cnonce}", challenge.nonce).as_bytes());
    }
    let ha2 = alg.hex(format!("{method}:{uri}").as_bytes());
    let response = if with_qop {
        alg.hex(format!("{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}", challenge.nonce).as_bytes())
    } else {
        alg.hex(format!("{ha1}:{}:{ha2}", challenge.nonce).as_bytes())
    };
    Ok(DigestResponse {
        username: credentials.username.clone(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response,
        algorithm: alg,
        cnonce: with_qop.then(|| cnonce.to_owned()),
        nc: with_qop.then_some(nc),
        opaque: challenge.opaque.clone(),
    })
}

/// Parses one header value that must hold exactly one challenge (the SIP form, RFC 3261
/// §25.1: one challenge per header).
pub fn parse_challenge(value: &str) -> Result<Challenge, ChallengeError> {
    let mut all = parse_challenges(value);
    match all.len() {
        1 => all.pop().unwrap_or(Err(ChallengeError::Empty)),
        0 => Err(ChallengeError::Empty),
        n => Err(ChallengeError::NotOne(n)),
    }
}

/// Parses one header value holding one or more comma-separated challenges (the HTTP form).
/// A syntax error makes the whole value a single `Err`; a well-formed challenge we cannot
/// use (another scheme, unknown algorithm, no realm) is an `Err` in its place.
pub fn parse_challenges(value: &str) -> Vec<Result<Challenge, ChallengeError>> {
    match split_challenges(value) {
        Ok(raw) => raw.into_iter().map(RawChallenge::into_challenge).collect(),
        Err(e) => vec![Err(e)],
    }
}

/// Picks the challenges to answer from all challenge header values of one response: the
/// best usable one per realm (SHA-256 over MD5, first listed on a tie), in the order the
/// realms first appear.
pub fn select_challenges(values: &[&str]) -> Result<Vec<Challenge>, AuthError> {
    let mut chosen: Vec<Challenge> = Vec::new();
    let mut first_error = None;
    for result in values.iter().flat_map(|v| parse_challenges(v)) {
        let challenge = match result.and_then(usable) {
            Ok(c) => c,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        match chosen.iter_mut().find(|c| c.realm == challenge.realm) {
            Some(c) if challenge.algorithm.rank() > c.algorithm.rank() => *c = challenge,
            Some(_) => {}
            None => chosen.push(challenge),
        }
    }
    if chosen.is_empty() {
        return Err(AuthError::NoUsableChallenge(
            first_error.unwrap_or(ChallengeError::Empty),
        ));
    }
    Ok(chosen)
}

fn usable(c: Challenge) -> Result<Challenge, ChallengeError> {
    match c.qop {
        Some(q) if !q.auth => Err(ChallengeError::UnsupportedQop),
        None if c.algorithm.is_sess() => Err(ChallengeError::SessWithoutQop),
        _ => Ok(c),
    }
}

/// What one request has answered so far; create one per request (INVITE, REGISTER, …) and
/// keep it across its authenticated resends.
#[derive(Debug, Clone, Default)]
pub struct RequestAuth {
    answered: Vec<Answered>,
}

#[derive(Debug, Clone)]
struct Answered {
    kind: ChallengeKind,
    realm: String,
    stale_retry_used: bool,
}

/// A trunk's digest client: the credentials and the current nonce of every realm that
/// challenged us, so later requests can carry credentials up front with the next `nc`.
#[derive(Debug, Clone)]
pub struct DigestClient {
    credentials: Credentials,
    nonces: Vec<NonceState>,
}

#[derive(Debug, Clone)]
struct NonceState {
    kind: ChallengeKind,
    challenge: Challenge,
    /// The last `nc` sent with this nonce (0: none yet).
    nc: u32,
}

impl DigestClient {
    pub fn new(credentials: Credentials) -> DigestClient {
        DigestClient {
            credentials,
            nonces: Vec::new(),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Takes the challenge header values of a 401 (`Www`) or 407 (`Proxy`) to `request`.
    /// `Ok` means: resend the request with [`DigestClient::authorize`]'s headers.
    /// [`AuthError::Rejected`] when a realm we already answered in this request challenges
    /// again, unless it is the first `stale=true` re-challenge; the rejected realm's nonce is
    /// forgotten.
    pub fn on_challenge(
        &mut self,
        request: &mut RequestAuth,
        kind: ChallengeKind,
        values: &[&str],
    ) -> Result<(), AuthError> {
        let chosen = select_challenges(values)?;
        for c in &chosen {
            let previous = request
                .answered
                .iter()
                .find(|a| a.kind == kind && a.realm == c.realm);
            if let Some(a) = previous {
                if !c.stale || a.stale_retry_used {
                    let realm = c.realm.clone();
                    self.nonces
                        .retain(|n| !(n.kind == kind && n.challenge.realm == realm));
                    return Err(AuthError::Rejected { realm });
                }
            }
        }
        for c in chosen {
            match request
                .answered
                .iter_mut()
                .find(|a| a.kind == kind && a.realm == c.realm)
            {
                Some(a) => a.stale_retry_used = true,
                None => request.answered.push(Answered {
                    kind,
                    realm: c.realm.clone(),
                    stale_retry_used: false,
                }),
            }
            match self
                .nonces
                .iter_mut()
                .find(|n| n.kind == kind && n.challenge.realm == c.realm)
            {
                Some(n) => {
                    if n.challenge.nonce != c.nonce || n.challenge.algorithm != c.algorithm {
                        n.nc = 0;
                    }
                    n.challenge = c;
                }
                None => self.nonces.push(NonceState {
                    kind,
                    challenge: c,
                    nc: 0,
                }),
            }
        }
        Ok(())
    }

    /// The authorization headers for the next request to the trunk (the resend after a
    /// challenge, or any later request while the nonces last): one per known realm, each
    /// with its nonce count advanced by one. Empty before any challenge.
    pub fn authorize(
        &mut self,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> Result<Vec<AuthHeader>, AuthError> {
        let mut headers = Vec::with_capacity(self.nonces.len());
        for n in &mut self.nonces {
            let nc = n.nc.checked_add(1).ok_or(AuthError::InvalidInput("nc"))?;
            let r = respond(&self.credentials, &n.challenge, method, uri, cnonce, nc)?;
            n.nc = nc;
            headers.push(AuthHeader {
                name: n.kind.response_header(),
                value: r.to_string(),
            });
        }
        Ok(headers)
    }

    /// Forgets every nonce (e.g. after the trunk's credentials changed or it was rejected).
    pub fn clear(&mut self) {
        self.nonces.clear();
    }
}

fn check_input(s: &str, what: &'static str, may_be_empty: bool) -> Result<(), AuthError> {
    if (!may_be_empty && s.is_empty()) || s.chars().any(|c| c.is_control()) {
        return Err(AuthError::InvalidInput(what));
    }
    Ok(())
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// Writes a value for inside a quoted string, escaping `"` and `\`.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                write!(f, "\\")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}
