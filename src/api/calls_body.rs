//! The JSON body of `POST /v1/calls` (PROTOCOLS.md §3) as a validated [`DialRequest`]: every
//! field's type, range and default; a field at fault is a 400 naming it; unknown fields too.
//!
//! Owns: the JSON field names and what each accepts. Must not: look at headers or status
//! codes of dialling (`calls_create` does), or check values both APIs take (`fields` does).

use std::time::Duration;

use serde_json::{Map, Value};

use super::{fields, ApiError};
use crate::app::control::{AgentSource, DialRequest};
use crate::config::{Dialect, SrtpMode};
use crate::core::hooks::callback::{CallbackEvent, EventSet};

/// `timeout_s` (ring timeout) and `time_limit_s` ranges.
pub(super) const MAX_TIMEOUT_S: u64 = 600;
pub(super) const MAX_TIME_LIMIT_S: u64 = 86_400;
/// `parameters`: at most this many, keys and values at most this long.
pub(super) const MAX_PARAMETERS: usize = 64;
pub(super) const MAX_PARAMETER_KEY: usize = 128;
pub(super) const MAX_PARAMETER_VALUE: usize = 1024;
/// `trunk`: a name of at most this many characters.
const MAX_TRUNK: usize = 128;

/// Every field the body may have.
pub(super) const FIELDS: &[&str] = &[
    "to",
    "from",
    "websocket_url",
    "dialect",
    "sample_rate",
    "callback_url",
    "trunk",
    "timeout_s",
    "time_limit_s",
    "record",
    "parameters",
    "status_events",
    "early_media",
    "bridge_from",
    "bridge_from_trunk",
    "srtp",
];

/// The body as a validated request (its `idempotency_key` is set by the caller).
pub(super) fn request(value: &Value) -> Result<DialRequest, ApiError> {
    let Some(body) = value.as_object() else {
        return Err(ApiError::bad_request("body must be a JSON object"));
    };
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let field = fields::shorten(unknown);
        return Err(ApiError::invalid_field(&field, "unknown field"));
    }
    let to = string(body, "to", fields::MAX_URI)?
        .ok_or_else(|| ApiError::invalid_field("to", "required"))?;
    let to = fields::destination(to).map_err(|e| ApiError::invalid_field("to", e))?;
    if let Some(from) = string(body, "bridge_from", fields::MAX_URI)? {
        // Click-to-call: no agent; the manager first, then `to`.
        if field(body, "websocket_url").is_some() {
            return Err(ApiError::invalid_field(
                "websocket_url",
                "not with bridge_from (click-to-call bridges two phones, no agent)",
            ));
        }
        let from = fields::phone_or_destination(from)
            .map_err(|e| ApiError::invalid_field("bridge_from", e))?;
        let trunk = string(body, "bridge_from_trunk", MAX_TRUNK)?.map(str::to_string);
        let agent = AgentSource::Bridge { from, trunk };
        return options(body, DialRequest::new(to, agent));
    }
    if field(body, "bridge_from_trunk").is_some() {
        return Err(ApiError::invalid_field(
            "bridge_from_trunk",
            "only with bridge_from",
        ));
    }
    let url = string(body, "websocket_url", fields::MAX_URL)?
        .ok_or_else(|| ApiError::invalid_field("websocket_url", "required"))?;
    let url = fields::agent_url(url).map_err(|e| ApiError::invalid_field("websocket_url", e))?;
    let dialect = match string(body, "dialect", 16)? {
        None | Some("twilio") => Dialect::Twilio,
        Some("plivo") => Dialect::Plivo,
        Some("raw") => Dialect::Raw,
        Some(other) => {
            let what = format!("{other:?} is not one of twilio, plivo, raw");
            return Err(ApiError::invalid_field("dialect", what));
        }
    };
    let sample_rate = match integer(body, "sample_rate")? {
        None => 8000,
        Some(rate @ (8000 | 16000)) => rate as u32,
        Some(other) => {
            let what = format!("{other} is not 8000 or 16000");
            return Err(ApiError::invalid_field("sample_rate", what));
        }
    };
    let agent = AgentSource::Stream {
        url,
        dialect,
        sample_rate,
    };
    options(body, DialRequest::new(to, agent))
}

/// The fields every kind of call takes.
fn options(body: &Map<String, Value>, mut req: DialRequest) -> Result<DialRequest, ApiError> {
    if let Some(from) = string(body, "from", fields::MAX_URI)? {
        req.from = Some(fields::caller_id(from).map_err(|e| ApiError::invalid_field("from", e))?);
    }
    if let Some(url) = string(body, "callback_url", fields::MAX_URL)? {
        let url = fields::http_url(url).map_err(|e| ApiError::invalid_field("callback_url", e))?;
        req.callback_url = Some(url);
    }
    req.trunk = string(body, "trunk", MAX_TRUNK)?.map(str::to_string);
    if let Some(s) = seconds(body, "timeout_s", MAX_TIMEOUT_S)? {
        req.ring_timeout = s;
    }
    req.time_limit = seconds(body, "time_limit_s", MAX_TIME_LIMIT_S)?;
    req.record = boolean(body, "record")?.unwrap_or(false);
    req.early_media = boolean(body, "early_media")?.unwrap_or(false);
    req.srtp = srtp(body)?;
    req.parameters = parameters(body)?;
    req.status_events = status_events(body)?;
    Ok(req)
}

/// The field's value; JSON `null` counts as absent.
fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

/// A string of 1 to `max` characters without control characters.
fn string<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Option<&'a str>, ApiError> {
    let Some(v) = field(body, name) else {
        return Ok(None);
    };
    let Some(text) = v.as_str() else {
        return Err(ApiError::invalid_field(name, "must be a string"));
    };
    check_text(text, max).map_err(|e| ApiError::invalid_field(name, e))?;
    Ok(Some(text))
}

fn check_text(text: &str, max: usize) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > max {
        return Err(format!("longer than {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(())
}

fn integer(body: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match field(body, name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field(name, format!("{v} is not a whole number"))),
    }
}

/// Whole seconds from 1 to `max`.
fn seconds(body: &Map<String, Value>, name: &str, max: u64) -> Result<Option<Duration>, ApiError> {
    match integer(body, name)? {
        None => Ok(None),
        Some(s) if (1..=max).contains(&s) => Ok(Some(Duration::from_secs(s))),
        Some(s) => Err(ApiError::invalid_field(
            name,
            format!("{s} is not from 1 to {max} seconds"),
        )),
    }
}

fn boolean(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match field(body, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ApiError::invalid_field(
            name,
            format!("{v} is not true or false"),
        )),
    }
}

/// `srtp`: "off", "optional" or "required" (the trunk's `outbound.srtp` when absent).
fn srtp(body: &Map<String, Value>) -> Result<Option<SrtpMode>, ApiError> {
    match field(body, "srtp") {
        None => Ok(None),
        Some(Value::String(s)) if s == "off" => Ok(Some(SrtpMode::Off)),
        Some(Value::String(s)) if s == "optional" => Ok(Some(SrtpMode::Optional)),
        Some(Value::String(s)) if s == "required" => Ok(Some(SrtpMode::Required)),
        Some(v) => Err(ApiError::invalid_field(
            "srtp",
            format!(
                "{} is not \"off\", \"optional\" or \"required\"",
                fields::shorten(&v.to_string())
            ),
        )),
    }
}

/// `parameters`: an object of strings (numbers and booleans are written as text).
fn parameters(body: &Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    let bad = |what: String| ApiError::invalid_field("parameters", what);
    let Some(v) = field(body, "parameters") else {
        return Ok(Vec::new());
    };
    let Some(map) = v.as_object() else {
        return Err(bad("must be an object of strings".into()));
    };
    if map.len() > MAX_PARAMETERS {
        return Err(bad(format!("more than {MAX_PARAMETERS} parameters")));
    }
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        let shown = fields::shorten(key);
        check_text(key, MAX_PARAMETER_KEY).map_err(|e| bad(format!("key {shown:?}: {e}")))?;
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(bad(format!(
                    "{shown:?} must be a string, number or boolean"
                )))
            }
        };
        if text.chars().count() > MAX_PARAMETER_VALUE || text.chars().any(char::is_control) {
            let what = format!("{shown:?} is longer than {MAX_PARAMETER_VALUE} characters or has control characters");
            return Err(bad(what));
        }
        out.push((key.clone(), text));
    }
    Ok(out)
}

/// `status_events`: an array of `ringing`, `answered`, `completed`.
fn status_events(body: &Map<String, Value>) -> Result<Option<EventSet>, ApiError> {
    let bad = |what: String| ApiError::invalid_field("status_events", what);
    let Some(v) = field(body, "status_events") else {
        return Ok(None);
    };
    let Some(items) = v.as_array().filter(|a| a.len() <= 8) else {
        return Err(bad(format!("must be an array of {}", CallbackEvent::NAMES)));
    };
    let mut set = EventSet::NONE;
    for item in items {
        let event = item
            .as_str()
            .and_then(CallbackEvent::from_name)
            .ok_or_else(|| bad(format!("{item} is not one of {}", CallbackEvent::NAMES)))?;
        set = set.with(event);
    }
    Ok(Some(set))
}
