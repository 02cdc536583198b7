//! UAS request inspection (RFC 3261 §8.2.1-8.2.3) before a request reaches the call logic.
//!
//! Order as the RFC gives it: method (405/501), Request-URI scheme (416), content type for
//! INVITE (415), Accept that excludes SDP (406), then Require with unknown extensions (420).

use crate::core::sip::message::{parse_uri, HeaderName, Message, Method, Scheme};

/// A rejection: status, reason and extra headers for the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
}

impl Rejection {
    fn plain(status: u16) -> Self {
        Rejection {
            status,
            headers: Vec::new(),
        }
    }
}

/// Option tags a peer may Require of us (RFC 3261 §8.2.2.3): session timers (RFC 4028).
/// 100rel is answered 420 so the peer falls back.
const SUPPORTED: &[&str] = &[crate::core::sip::session_timer::TAG];

pub fn method_allowed_out_of_dialog(method: &Method) -> Result<(), Rejection> {
    match method {
        Method::Invite | Method::Options | Method::Ack | Method::Cancel | Method::Bye => Ok(()),
        Method::Other(_) => Err(Rejection {
            status: 501,
            headers: vec![("Allow", super::ALLOW.to_string())],
        }),
        _ => Err(Rejection {
            status: 405,
            headers: vec![("Allow", super::ALLOW.to_string())],
        }),
    }
}

pub fn inspect(msg: &Message, method: &Method) -> Result<(), Rejection> {
    let uri = msg.request_uri().unwrap_or("");
    match parse_uri(uri) {
        Ok(u) if matches!(u.scheme, Scheme::Sip | Scheme::Sips | Scheme::Tel) => {}
        Ok(_) => return Err(Rejection::plain(416)),
        Err(_) => {
            // Unparsable Request-URI: an unknown scheme answers 416, anything else 400.
            let scheme_ok =
                uri.starts_with("sip:") || uri.starts_with("sips:") || uri.starts_with("tel:");
            return Err(Rejection::plain(if scheme_ok { 400 } else { 416 }));
        }
    }
    if *method == Method::Invite {
        if !msg.body().is_empty() {
            let ct = msg.content_type().unwrap_or("application/sdp");
            let main = ct.split(';').next().unwrap_or("").trim();
            if !main.eq_ignore_ascii_case("application/sdp") {
                return Err(Rejection {
                    status: 415,
                    headers: vec![("Accept", "application/sdp".to_string())],
                });
            }
        }
        if msg.header(&HeaderName::Accept).is_some() {
            let accepts_sdp = msg.header_values(&HeaderName::Accept).any(|v| {
                let t = v.split(';').next().unwrap_or("").trim();
                t.eq_ignore_ascii_case("application/sdp")
                    || t == "*/*"
                    || t.eq_ignore_ascii_case("application/*")
            });
            if !accepts_sdp {
                return Err(Rejection {
                    status: 406,
                    headers: vec![(
                        "Warning",
                        "399 trunkgate \"only application/sdp is supported\"".to_string(),
                    )],
                });
            }
        }
    }
    let unsupported: Vec<&str> = msg
        .header_values(&HeaderName::Require)
        .map(str::trim)
        .filter(|opt| !opt.is_empty() && !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(opt)))
        .collect();
    if !unsupported.is_empty() && *method != Method::Ack && *method != Method::Cancel {
        return Err(Rejection {
            status: 420,
            headers: vec![("Unsupported", unsupported.join(", "))],
        });
    }
    Ok(())
}
