//! The platform's answer to the inbound-call webhook (PROTOCOLS.md §1): JSON, TwiML or Plivo
//! XML, chosen by Content-Type or, when that says neither, sniffed from the first byte.
//!
//! Owns: turning an answer body into [`WebhookAnswer`] or an [`AnswerError`] that says why it
//! is unusable (the caller then falls back to the route's static agent or fails the call, and
//! the CDR records the error). Bodies over [`MAX_ANSWER_BYTES`] are refused unread; XML with a
//! DTD is refused (no entity expansion beyond the five predefined ones and character
//! references); nesting is capped. JSON answers may also carry `encoding` ("l16"/"mulaw") and
//! `extra_headers`, additions to PROTOCOLS.md for the plivo dialect, and the per-call status
//! callbacks: `callback_url` (http/https) and `callback_events` (a list of `ringing`,
//! `answered`, `completed`; an empty list sends none).
//! Must not: do HTTP, follow redirects, or panic on any body.

mod xml;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::core::agent::{AudioEncoding, Dialect};
use crate::core::hooks::callback::{CallbackEvent, EventSet};

/// Largest answer body read; real answers are a few hundred bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest agent URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Status for a rejection that names none: 603 Decline, the platform chose not to take it.
pub const DEFAULT_REJECT_STATUS: u16 = 603;
/// Untrusted strings quoted in errors are cut to this many bytes.
const MAX_QUOTED: usize = 80;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAnswer {
    /// Connect the caller to the agent at `url`. `None`s mean "the route's default".
    Connect {
        url: String,
        dialect: Option<Dialect>,
        sample_rate: Option<u32>,
        encoding: Option<AudioEncoding>,
        parameters: Vec<(String, String)>,
        record: Option<bool>,
        extra_headers: Option<String>,
        /// JSON `"callback_events"`: which status events this call sends, instead of
        /// `[callbacks] events` (`None`: the configured ones; XML answers never set it).
        callback_events: Option<EventSet>,
        /// JSON `"callback_url"`: where this call's status events go, instead of the
        /// number's or `[callbacks] url` (`None`: those; XML answers never set it).
        callback_url: Option<String>,
    },
    /// Refuse the call with this SIP final status (400..=699).
    Reject { status: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("answer of {len} bytes exceeds {max}")]
    TooLarge { len: usize, max: usize },
    #[error("empty answer")]
    Empty,
    #[error("answer is neither JSON nor XML (content type {content_type:?})")]
    Unrecognised { content_type: Option<String> },
    #[error("answer is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("malformed JSON answer: {0}")]
    Json(String),
    #[error("malformed XML answer at byte {position}: {detail}")]
    Xml { position: u64, detail: String },
    #[error("XML answer has a DTD, which is not accepted")]
    DtdNotAllowed,
    #[error("XML answer nests deeper than {0} elements")]
    TooDeep(usize),
    #[error("XML root element is <{0}>, not <Response>")]
    NotResponse(String),
    #[error("no usable verb in the XML answer (saw {seen:?})")]
    NoUsableVerb { seen: Vec<String> },
    #[error("answer has no agent URL")]
    MissingUrl,
    #[error("agent URL {0:?} is not a ws:// or wss:// URL")]
    BadUrl(String),
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("reject status {0:?} is not a SIP failure status (400-699)")]
    BadStatus(String),
    #[error("unknown dialect {0:?}")]
    UnknownDialect(String),
    #[error("sample rate {0:?} is not 8000 or 16000")]
    BadSampleRate(String),
    #[error("content type {0:?} is not audio/x-l16 (8000/16000) or audio/x-mulaw (8000)")]
    BadContentType(String),
    #[error("field {field}: {detail}")]
    BadField { field: &'static str, detail: String },
}

pub(crate) fn clip(s: &str) -> String {
    let mut end = s.len().min(MAX_QUOTED);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

/// Parses a webhook answer. `content_type` is the response's Content-Type header, if any.
pub fn parse_answer(content_type: Option<&str>, body: &[u8]) -> Result<WebhookAnswer, AnswerError> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(AnswerError::TooLarge {
            len: body.len(),
            max: MAX_ANSWER_BYTES,
        });
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body)
        .map_err(|e| AnswerError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?
        .trim();
    if text.is_empty() {
        return Err(AnswerError::Empty);
    }
    match Kind::from_content_type(content_type).or_else(|| Kind::sniff(text)) {
        Some(Kind::Json) => parse_json(text),
        Some(Kind::Xml) => xml::parse(text),
        None => Err(AnswerError::Unrecognised {
            content_type: content_type.map(clip),
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Xml,
}

impl Kind {
    fn from_content_type(ct: Option<&str>) -> Option<Kind> {
        let ct = ct?.split(';').next()?.trim().to_ascii_lowercase();
        if ct == "application/json" || ct == "text/json" || ct.ends_with("+json") {
            Some(Kind::Json)
        } else if ct == "text/xml" || ct == "application/xml" || ct.ends_with("+xml") {
            Some(Kind::Xml)
        } else {
            None
        }
    }

    fn sniff(text: &str) -> Option<Kind> {
        match text.as_bytes().first() {
            Some(b'{') => Some(Kind::Json),
            Some(b'<') => Some(Kind::Xml),
            _ => None,
        }
    }
}

/// A `ws://` or `wss://` URL with a host and no whitespace or control characters.
pub(crate) fn check_ws_url(raw: &str) -> Result<String, AnswerError> {
    if raw.trim().is_empty() {
        return Err(AnswerError::MissingUrl);
    }
    checked_url(raw, &["wss://", "ws://"]).map_err(AnswerError::BadUrl)
}

/// `raw` trimmed, if it starts with one of `schemes` (any case), names a host and has no
/// white space or control characters; else the clipped text, for the error.
fn checked_url(raw: &str, schemes: &[&str]) -> Result<String, String> {
    let url = raw.trim();
    let rest = schemes.iter().find_map(|scheme| {
        let head = url.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| url.get(scheme.len()..))
            .flatten()
    });
    let host = rest
        .and_then(|r| r.split(['/', '?', '#']).next())
        .unwrap_or_default();
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if host.is_empty() || host.starts_with(':') || !clean || url.len() > MAX_URL_LEN {
        return Err(clip(url));
    }
    Ok(url.to_owned())
}

/// `audio/x-l16;rate=16000` and friends (Plivo's contentType); absent means Plivo's default,
/// L16 at 8 kHz.
pub(crate) fn parse_content_type(raw: &str) -> Result<(AudioEncoding, u32), AnswerError> {
    let bad = || AnswerError::BadContentType(clip(raw));
    let mut parts = raw.split(';');
    let base = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let mut rate = None;
    for p in parts {
        let (k, v) = p.split_once('=').ok_or_else(bad)?;
        if k.trim().eq_ignore_ascii_case("rate") {
            rate = Some(v.trim().parse::<u32>().map_err(|_| bad())?);
        }
    }
    match (base.as_str(), rate.unwrap_or(8_000)) {
        ("audio/x-l16", r @ (8_000 | 16_000)) => Ok((AudioEncoding::L16, r)),
        ("audio/x-mulaw", 8_000) => Ok((AudioEncoding::Mulaw, 8_000)),
        _ => Err(bad()),
    }
}

/// A reject status: 400..=699, as a number or a numeric string.
fn reject_status(v: Option<&Value>) -> Result<u16, AnswerError> {
    let status = match v {
        None | Some(Value::Null) => return Ok(DEFAULT_REJECT_STATUS),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match status {
        Some(s @ 400..=699) => Ok(s as u16),
        _ => Err(AnswerError::BadStatus(clip(
            &v.map(Value::to_string).unwrap_or_default(),
        ))),
    }
}

fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'a str>, AnswerError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AnswerError::BadField {
            field: key,
            detail: "not a string".into(),
        }),
    }
}

fn parse_json(text: &str) -> Result<WebhookAnswer, AnswerError> {
    let obj = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => return Err(AnswerError::Json("answer is not a JSON object".into())),
        Err(e) => return Err(AnswerError::Json(e.to_string())),
    };
    match opt_str(&obj, "action")?.map(str::trim) {
        Some(a) if a.eq_ignore_ascii_case("reject") => {
            return Ok(WebhookAnswer::Reject {
                status: reject_status(obj.get("status"))?,
            })
        }
        None => {}
        Some(a) if a.eq_ignore_ascii_case("connect") => {}
        Some(other) => return Err(AnswerError::UnknownAction(clip(other))),
    }
    let url = check_ws_url(opt_str(&obj, "websocket_url")?.unwrap_or_default())?;
    let dialect = match opt_str(&obj, "dialect")? {
        None => None,
        Some(d) => Some(Dialect::parse(d).ok_or_else(|| AnswerError::UnknownDialect(clip(d)))?),
    };
    let sample_rate = match obj.get("sample_rate") {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(r @ (8_000 | 16_000)) => Some(r as u32),
            _ => return Err(AnswerError::BadSampleRate(clip(&v.to_string()))),
        },
    };
    let encoding = match opt_str(&obj, "encoding")?.map(|e| e.trim().to_ascii_lowercase()) {
        None => None,
        Some(e) => Some(match e.as_str() {
            "l16" | "pcm16" | "audio/x-l16" => AudioEncoding::L16,
            "mulaw" | "ulaw" | "pcmu" | "audio/x-mulaw" => AudioEncoding::Mulaw,
            _ => return Err(AnswerError::BadContentType(clip(&e))),
        }),
    };
    let record = match obj.get("record") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(AnswerError::BadField {
                field: "record",
                detail: "not a boolean".into(),
            })
        }
    };
    Ok(WebhookAnswer::Connect {
        url,
        dialect,
        sample_rate,
        encoding,
        parameters: json_parameters(obj.get("parameters"))?,
        record,
        extra_headers: opt_str(&obj, "extra_headers")?.map(str::to_owned),
        callback_events: callback_events(obj.get("callback_events"))?,
        callback_url: opt_str(&obj, "callback_url")?
            .map(check_http_url)
            .transpose()?,
    })
}

/// `callback_events`: a list of event names (see [`CallbackEvent::from_name`]).
fn callback_events(v: Option<&Value>) -> Result<Option<EventSet>, AnswerError> {
    let bad = |detail: String| AnswerError::BadField {
        field: "callback_events",
        detail,
    };
    let items = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("not a list".into())),
    };
    let mut set = EventSet::NONE;
    for item in items {
        let name = item
            .as_str()
            .ok_or_else(|| bad("not a list of strings".into()))?;
        let event = CallbackEvent::from_name(name).ok_or_else(|| {
            bad(format!(
                "{:?} is not one of {}",
                clip(name),
                CallbackEvent::NAMES
            ))
        })?;
        set = set.with(event);
    }
    Ok(Some(set))
}

/// An `http://` or `https://` URL with a host and no whitespace or control characters.
fn check_http_url(raw: &str) -> Result<String, AnswerError> {
    checked_url(raw, &["https://", "http://"]).map_err(|url| AnswerError::BadField {
        field: "callback_url",
        detail: format!("{url:?} is not an http:// or https:// URL"),
    })
}

/// `parameters` as ordered string pairs: strings as they are, numbers and booleans as their
/// JSON text, nulls dropped; nested values are an error (they cannot become Twilio
/// customParameters).
fn json_parameters(v: Option<&Value>) -> Result<Vec<(String, String)>, AnswerError> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(AnswerError::BadField {
                field: "parameters",
                detail: "not an object".into(),
            })
        }
    };
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let value = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(AnswerError::BadField {
                    field: "parameters",
                    detail: format!("{} is nested", clip(k)),
                })
            }
        };
        out.push((k.clone(), value));
    }
    Ok(out)
}
