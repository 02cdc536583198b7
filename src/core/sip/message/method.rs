//! Request methods (RFC 3261 §7.1, §27.4 registry, case-sensitive tokens) and the CSeq value
//! (RFC 3261 §20.16: 32-bit sequence number and method).
//! Must not: decide what a method means for a dialog or transaction.

use std::fmt;

use super::class::is_token;
use super::params::trim_lws;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Refer,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Message,
    Publish,
    /// Any other token, kept as written (`RE%47IST%45R` is not REGISTER).
    Other(String),
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Refer => "REFER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }

    /// Case-sensitive, as RFC 3261 §7.1 requires: `invite` is an unknown method.
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "REFER" => Method::Refer,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

/// Why a CSeq value is malformed; an overlarge number is told apart so that a stateless
/// 400 can still name the method (RFC 4475 §3.1.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CSeqError {
    Malformed,
    Overflow,
}

/// Splits `1*DIGIT LWS method` into the number and the method text.
pub(crate) fn parse_cseq(v: &str) -> Result<(u32, &str), (CSeqError, &str)> {
    let v = trim_lws(v);
    let digits_end = v
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(v.len());
    let digits = v.get(..digits_end).unwrap_or("");
    let rest = v.get(digits_end..).unwrap_or("");
    let method = rest.trim_start_matches([' ', '\t']);
    if digits.is_empty() || method.len() == rest.len() || !is_token(method) {
        return Err((CSeqError::Malformed, method));
    }
    match parse_u32(digits) {
        Some(n) => Ok((n, method)),
        None => Err((CSeqError::Overflow, method)),
    }
}

/// Decimal digits (leading zeros allowed) into a u32, `None` on overflow or non-digits.
pub(crate) fn parse_u32(digits: &str) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip_case_sensitively() {
        for m in [
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "OPTIONS",
            "REGISTER",
            "REFER",
            "INFO",
            "UPDATE",
            "PRACK",
            "SUBSCRIBE",
            "NOTIFY",
            "MESSAGE",
            "PUBLISH",
        ] {
            let method = Method::from_token(m);
            assert!(!matches!(method, Method::Other(_)));
            assert_eq!(method.as_str(), m);
        }
        assert_eq!(Method::from_token("invite"), Method::Other("invite".into()));
        assert_eq!(
            Method::from_token("RE%47IST%45R").to_string(),
            "RE%47IST%45R"
        );
    }

    #[test]
    fn cseq_values() {
        assert_eq!(parse_cseq("0009     INVITE"), Ok((9, "INVITE")));
        assert_eq!(parse_cseq("4294967295 ACK"), Ok((u32::MAX, "ACK")));
        assert_eq!(
            parse_cseq("4294967296 ACK"),
            Err((CSeqError::Overflow, "ACK"))
        );
        assert!(parse_cseq("1INVITE").is_err());
        assert!(parse_cseq("INVITE").is_err());
        assert!(parse_cseq("1 ").is_err());
        assert!(parse_cseq("1 INVITE x").is_err());
        assert!(parse_cseq("-1 INVITE").is_err());
    }
}
