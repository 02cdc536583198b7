//! Twilio-compatible call creation (PROTOCOLS.md §3, `[api] twilio_compat = true`):
//! `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`, form-encoded `To`, `From`, `Url` or
//! `Twiml`, `StatusCallback`, `StatusCallbackEvent`, `StatusCallbackMethod`, `Timeout`,
//! `TimeLimit`, `Record`; other Twilio fields are ignored. `201` with Twilio's call JSON
//! (status `queued`, direction `outbound-api`); errors in Twilio's shape with its codes.
//! Basic auth like the rest of the resource; `Idempotency-Key` is honoured as on
//! `POST /v1/calls`.
//!
//! Owns: the Twilio field names, their defaults (`Timeout` 60 s, events `completed` only when
//! a `StatusCallback` names none) and error codes. Must not: decide whether a call may be
//! placed (outbound admission does) or fetch `Url` (the call does, when the callee answers).

use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;

use super::calls_body::{MAX_TIMEOUT_S, MAX_TIME_LIMIT_S};
use super::calls_create::{created, retry_after_secs};
use super::twilio::{check_credentials, error, resource};
use super::{fields, Api};
use crate::app::control::{AgentSource, DialError, DialRequest, Dialed};
use crate::core::call::{CallView, Direction};
use crate::core::hooks::callback::{CallbackEvent, EventSet};

/// Twilio's default ring timeout.
const DEFAULT_TIMEOUT_S: u64 = 60;
/// Twilio's limit on inline TwiML.
const MAX_TWIML: usize = 4000;

type Fields = Vec<(String, String)>;

pub(super) async fn create(
    State(api): State<Api>,
    Path(account): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    if let Err(refused) = check_credentials(&api, &account, &headers) {
        return refused.response(&account, "");
    }
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let msg = format!("The request is larger than {} bytes", super::MAX_BODY);
            return error(StatusCode::PAYLOAD_TOO_LARGE, 20001, &msg);
        }
        Err(_) => {
            let msg = "The request must be form-encoded (application/x-www-form-urlencoded)";
            return error(StatusCode::BAD_REQUEST, 20001, msg);
        }
    };
    let mut req = match request(&form) {
        Ok(req) => req,
        Err((code, msg)) => return error(StatusCode::BAD_REQUEST, code, &msg),
    };
    match fields::idempotency_key(&headers) {
        Ok(key) => req.idempotency_key = key,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                20001,
                &format!("Idempotency-Key: {e}"),
            )
        }
    }
    let (from, to) = (req.from.clone(), destination_text(&req));
    match api.control.dial(req) {
        Ok(dialed) => {
            let view = api
                .control
                .get(&dialed.call_id)
                .unwrap_or_else(|| queued_view(&dialed, from, to));
            created(&dialed, resource(&view, &account))
        }
        Err(e) => dial_error(e),
    }
}

/// The call as just queued, when the registry does not show it (yet).
fn queued_view(dialed: &Dialed, from: Option<String>, to: String) -> CallView {
    let now = jiff::Timestamp::now().to_string();
    let mut view = CallView::new(&dialed.call_id, Direction::Outbound, now);
    view.status = dialed.status;
    view.from = from;
    view.to = Some(to);
    view
}

fn destination_text(req: &DialRequest) -> String {
    use crate::app::control::Destination;
    match &req.to {
        Destination::E164(n) | Destination::Uri(n) => n.clone(),
        Destination::User(n) => format!("user:{n}"),
    }
}

fn dial_error(e: DialError) -> Response {
    let msg = e.to_string();
    match e {
        DialError::NoTrunk(_) => error(StatusCode::BAD_REQUEST, 21214, &msg),
        DialError::Refused {
            retry_after: Some(after),
            ..
        } => {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, 20429, &msg);
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                retry_after_secs(after).into(),
            );
            resp
        }
        DialError::Refused { .. } => error(StatusCode::FORBIDDEN, 20403, &msg),
        DialError::Busy(_) => error(StatusCode::TOO_MANY_REQUESTS, 20429, &msg),
        DialError::Draining => error(StatusCode::SERVICE_UNAVAILABLE, 20503, &msg),
        DialError::Invalid { .. } => error(StatusCode::BAD_REQUEST, 21200, &msg),
        DialError::KeyReused => error(StatusCode::CONFLICT, 20409, &msg),
        DialError::NotRegistered(..) => error(StatusCode::BAD_REQUEST, 21200, &msg),
    }
    .into_response()
}

/// The first non-empty value of `name` (Twilio treats an empty parameter as absent).
fn one<'a>(form: &'a Fields, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The form as a validated request, or Twilio's error code and message.
fn request(form: &Fields) -> Result<DialRequest, (u32, String)> {
    let to = one(form, "To").ok_or((21201, "No 'To' number is specified".to_string()))?;
    let to =
        fields::destination(to).map_err(|e| (21211, format!("Invalid 'To' Phone Number: {e}")))?;
    let from = one(form, "From").ok_or((21213, "No 'From' number is specified".to_string()))?;
    let from = fields::caller_id(from)
        .map_err(|e| (21212, format!("Invalid 'From' Phone Number: {e}")))?;
    let agent = match (one(form, "Twiml"), one(form, "Url")) {
        // Inline TwiML wins over a Url, as at Twilio.
        (Some(twiml), _) if twiml.chars().count() > MAX_TWIML => {
            return Err((
                21200,
                format!("Twiml is longer than {MAX_TWIML} characters"),
            ))
        }
        (Some(twiml), _) => AgentSource::Twiml(twiml.to_string()),
        (None, Some(url)) => AgentSource::Webhook {
            url: fields::http_url(url)
                .map_err(|e| (21205, format!("Url is not a valid URL: {e}")))?,
        },
        (None, None) => {
            return Err((21205, "Either Url or Twiml is required".to_string()));
        }
    };
    let mut req = DialRequest::new(to, agent);
    req.from = Some(from);
    req.twilio_form = true;
    if let Some(url) = one(form, "StatusCallback") {
        let url = fields::http_url(url)
            .map_err(|e| (21609, format!("StatusCallback is not a valid URL: {e}")))?;
        req.callback_url = Some(url);
    }
    match one(form, "StatusCallbackMethod") {
        None => {}
        Some(m) if m.eq_ignore_ascii_case("POST") => {}
        Some(m) if m.eq_ignore_ascii_case("GET") => {
            return Err((
                21209,
                "StatusCallbackMethod GET is not supported: use POST".to_string(),
            ))
        }
        Some(m) => {
            return Err((
                21209,
                format!(
                    "StatusCallbackMethod {:?} is not GET or POST",
                    fields::shorten(m)
                ),
            ))
        }
    }
    req.status_events = events(form, req.callback_url.is_some())?;
    let timeout = seconds(form, "Timeout", MAX_TIMEOUT_S, 21208)?.unwrap_or(DEFAULT_TIMEOUT_S);
    req.ring_timeout = Duration::from_secs(timeout);
    req.time_limit = seconds(form, "TimeLimit", MAX_TIME_LIMIT_S, 21200)?.map(Duration::from_secs);
    req.record = match one(form, "Record") {
        None => false,
        Some(r) if r.eq_ignore_ascii_case("true") => true,
        Some(r) if r.eq_ignore_ascii_case("false") => false,
        Some(r) => {
            return Err((
                21200,
                format!("Record {:?} is not true or false", fields::shorten(r)),
            ))
        }
    };
    Ok(req)
}

/// `StatusCallbackEvent`, space-separated and/or repeated: `initiated` (accepted, not sent),
/// `ringing`, `answered`, `completed`. None given: `completed` when there is a
/// `StatusCallback` (Twilio's default), else the configured events.
fn events(form: &Fields, has_callback: bool) -> Result<Option<EventSet>, (u32, String)> {
    let mut named = form
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .flat_map(|(_, v)| v.split([' ', ',']))
        .filter(|e| !e.is_empty())
        .peekable();
    if named.peek().is_none() {
        return Ok(has_callback.then_some(EventSet::COMPLETED));
    }
    let mut set = EventSet::NONE;
    for name in named {
        match name {
            "initiated" => {}
            "ringing" | "answered" | "completed" => {
                if let Some(e) = CallbackEvent::from_name(name) {
                    set = set.with(e);
                }
            }
            other => {
                let msg = format!(
                    "StatusCallbackEvent {:?} is not one of initiated, ringing, answered, completed",
                    fields::shorten(other)
                );
                return Err((21200, msg));
            }
        }
    }
    Ok(Some(set))
}

/// Whole seconds from 1 to `max`, or Twilio's `code`.
fn seconds(form: &Fields, name: &str, max: u64, code: u32) -> Result<Option<u64>, (u32, String)> {
    match one(form, name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(s) if (1..=max).contains(&s) => Ok(Some(s)),
            _ => Err((
                code,
                format!(
                    "{name} {:?} is not a whole number from 1 to {max}",
                    fields::shorten(v)
                ),
            )),
        },
    }
}

#[cfg(test)]
#[path = "twilio_create_tests.rs"]
mod tests;
