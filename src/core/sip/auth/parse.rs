//! The challenge syntax (RFC 7235 §2.1 / RFC 3261 §25.1, leniently): splits a header value
//! into schemes and `name=value` parameters and builds [`Challenge`]s. Bounded by the
//! `MAX_*` limits; every failure is a [`ChallengeError`], never a panic.

use super::{
    Algorithm, Challenge, ChallengeError, QopOptions, MAX_CHALLENGES, MAX_PARAMS, MAX_PARAM_LEN,
    MAX_VALUE_LEN,
};

/// One scheme and its parameters, unquoted (also an Authorization value's shape).
pub(crate) struct RawChallenge<'a> {
    scheme: &'a str,
    params: Vec<(&'a str, String)>,
}

impl<'a> RawChallenge<'a> {
    pub(crate) fn scheme(&self) -> &'a str {
        self.scheme
    }

    pub(crate) fn params(&self) -> &[(&'a str, String)] {
        &self.params
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn into_challenge(self) -> Result<Challenge, ChallengeError> {
        if !self.scheme.eq_ignore_ascii_case("Digest") {
            return Err(ChallengeError::UnsupportedScheme(self.scheme.to_owned()));
        }
        for (i, (name, _)) in self.params.iter().enumerate() {
            if self.params[..i]
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                return Err(ChallengeError::Duplicate(name.to_ascii_lowercase()));
            }
        }
        let realm = self.get("realm").ok_or(ChallengeError::MissingRealm)?;
        let nonce = self.get("nonce").ok_or(ChallengeError::MissingNonce)?;
        let algorithm = match self.get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::from_token(a)
                .ok_or_else(|| ChallengeError::UnsupportedAlgorithm(a.to_owned()))?,
        };
        let qop = self.get("qop").map(|list| {
            let mut q = QopOptions::default();
            for t in list.split(',').map(|t| t.trim_matches([' ', '\t'])) {
                if t.eq_ignore_ascii_case("auth") {
                    q.auth = true;
                } else if t.eq_ignore_ascii_case("auth-int") {
                    q.auth_int = true;
                }
            }
            q
        });
        let stale = self
            .get("stale")
            .is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Challenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: self.get("opaque").map(str::to_owned),
            algorithm,
            qop,
            stale,
        })
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// White space and empty list elements (`, ,`).
    fn skip_separators(&mut self) {
        self.skip_ws();
        while self.peek() == Some(b',') {
            self.pos += 1;
            self.skip_ws();
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    /// A quoted string (the opening quote is next) with `\` escapes removed.
    fn quoted(&mut self) -> Result<String, ChallengeError> {
        self.pos += 1;
        let mut out = String::new();
        let mut seg = self.pos;
        loop {
            let b = self.peek().ok_or(ChallengeError::UnterminatedQuote)?;
            match b {
                b'"' => {
                    out.push_str(self.s.get(seg..self.pos).unwrap_or(""));
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    out.push_str(self.s.get(seg..self.pos).unwrap_or(""));
                    let e = self
                        .s
                        .as_bytes()
                        .get(self.pos + 1)
                        .copied()
                        .ok_or(ChallengeError::UnterminatedQuote)?;
                    if !(e == b'\t' || (0x20..0x7f).contains(&e)) {
                        return Err(ChallengeError::BadChar);
                    }
                    out.push(char::from(e));
                    self.pos += 2;
                    seg = self.pos;
                }
                b'\t' => self.pos += 1,
                b if b < 0x20 || b == 0x7f => return Err(ChallengeError::BadChar),
                _ => self.pos += 1,
            }
            if out.len() + (self.pos - seg) > MAX_PARAM_LEN {
                return Err(ChallengeError::TooLong);
            }
        }
        Ok(out)
    }

    /// An unquoted value: leniently anything up to a comma or whitespace (some servers send
    /// unquoted base64 nonces or `qop=auth`).
    fn bare(&mut self) -> Result<String, ChallengeError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b',' || is_ws(b) {
                break;
            }
            if b == b'"' || b < 0x20 || b == 0x7f {
                return Err(ChallengeError::Unexpected(self.pos));
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(ChallengeError::Unexpected(self.pos));
        }
        if self.pos - start > MAX_PARAM_LEN {
            return Err(ChallengeError::TooLong);
        }
        Ok(self.s.get(start..self.pos).unwrap_or("").to_owned())
    }
}

pub(crate) fn split_challenges(value: &str) -> Result<Vec<RawChallenge<'_>>, ChallengeError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(ChallengeError::TooLong);
    }
    let mut sc = Scanner { s: value, pos: 0 };
    let mut out: Vec<RawChallenge<'_>> = Vec::new();
    loop {
        sc.skip_separators();
        if sc.peek().is_none() {
            break;
        }
        let scheme = sc.token();
        if scheme.is_empty() {
            return Err(ChallengeError::Unexpected(sc.pos));
        }
        if out.len() == MAX_CHALLENGES {
            return Err(ChallengeError::TooLong);
        }
        let mut ch = RawChallenge {
            scheme,
            params: Vec::new(),
        };
        match sc.peek() {
            None => {
                out.push(ch);
                break;
            }
            Some(b) if is_ws(b) || b == b',' => {}
            Some(_) => return Err(ChallengeError::Unexpected(sc.pos)),
        }
        loop {
            sc.skip_separators();
            if sc.peek().is_none() {
                break;
            }
            let mark = sc.pos;
            let name = sc.token();
            if name.is_empty() {
                return Err(ChallengeError::Unexpected(sc.pos));
            }
            sc.skip_ws();
            if sc.peek() != Some(b'=') {
                // Not `name=`: the next challenge's scheme (only after a comma).
                let before = value
                    .get(..mark)
                    .unwrap_or("")
                    .trim_end_matches(|c: char| c.is_ascii() && is_ws(c as u8));
                if ch.params.is_empty() || !before.ends_with(',') {
                    return Err(ChallengeError::Unexpected(sc.pos));
                }
                sc.pos = mark;
                break;
            }
            sc.pos += 1;
            sc.skip_ws();
            let v = if sc.peek() == Some(b'"') {
                sc.quoted()?
            } else {
                sc.bare()?
            };
            if ch.params.len() == MAX_PARAMS {
                return Err(ChallengeError::TooLong);
            }
            ch.params.push((name, v));
            sc.skip_ws();
            match sc.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(ChallengeError::Unexpected(sc.pos)),
            }
        }
        out.push(ch);
    }
    Ok(out)
}
