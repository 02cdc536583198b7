//! The Twilio-compatible call resource (PROTOCOLS.md §3, `[api] twilio_compat = true`):
//! `GET /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` in Twilio's JSON shape, and
//! `POST` on it with the form field `Status=completed` (hang up) or `Status=canceled` (hang up
//! if not answered yet), so code written against Twilio's REST API works unchanged. Creating
//! calls (`POST …/Calls.json`) is [`super::twilio_create`].
//! HTTP Basic auth `AccountSid:token`; errors in Twilio's shape (`code`, `message`,
//! `more_info`, `status`).
//!
//! Owns: the Twilio field names and formats (RFC 2822 times, `duration` as a string).
//! Must not: decide anything about calls (the control handle and the call task do).

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde_json::{json, Value};

use super::{token_matches, Api};
use crate::app::control::ControlError;
use crate::core::call::{CallStatus, CallView, Command};
use crate::core::hooks::twilio_status::{direction, rfc2822};

pub(super) async fn get(
    State(api): State<Api>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let sid = match authorize(&api, &account, &call, &headers) {
        Ok(sid) => sid,
        Err(refused) => return refused.response(&account, &call),
    };
    match api.control.get(sid) {
        Some(view) => Json(resource(&view, &account)).into_response(),
        None => not_found(&account, &call),
    }
}

pub(super) async fn update(
    State(api): State<Api>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let sid = match authorize(&api, &account, &call, &headers) {
        Ok(sid) => sid,
        Err(refused) => return refused.response(&account, &call),
    };
    let Ok(Form(form)) = form else {
        return error(
            StatusCode::BAD_REQUEST,
            20001,
            "The request must be form-encoded (application/x-www-form-urlencoded)",
        );
    };
    let Some(view) = api.control.get(sid) else {
        return not_found(&account, &call);
    };
    let hang_up = match form.get("Status").map(String::as_str) {
        Some("completed") => true,
        // Twilio: `canceled` ends a call that is queued or ringing, and leaves an answered
        // call alone.
        Some("canceled") => view.status != CallStatus::InProgress,
        Some(other) => {
            let msg = format!("Status {other:?} is not one of completed, canceled");
            return error(StatusCode::BAD_REQUEST, 20001, &msg);
        }
        None => {
            let msg = "Only Status=completed or Status=canceled is supported";
            return error(StatusCode::BAD_REQUEST, 20001, msg);
        }
    };
    if hang_up {
        match api.control.send(sid, Command::Hangup) {
            Ok(()) => {}
            Err(ControlError::NotFound) => return not_found(&account, &call),
            Err(ControlError::Ended | ControlError::NotAnswered) => {
                let msg = "Call is not in progress: it has already ended";
                return error(StatusCode::BAD_REQUEST, 21220, msg);
            }
        }
    } else if !view.status.is_active() {
        let msg = "Call is not in progress: it has already ended";
        return error(StatusCode::BAD_REQUEST, 21220, msg);
    }
    let view = api.control.get(sid).unwrap_or(view);
    Json(resource(&view, &account)).into_response()
}

/// Why a request on the resource was refused before looking at the call.
pub(super) enum Refused {
    /// Wrong or missing credentials, or another account.
    Auth,
    /// Not a `{CallSid}.json` path.
    NotFound,
}

impl Refused {
    pub(super) fn response(self, account: &str, call: &str) -> Response {
        match self {
            Refused::Auth => {
                let mut resp = error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"Twilio API\""),
                );
                resp
            }
            Refused::NotFound => not_found(account, call),
        }
    }
}

/// Checks the Basic credentials and the account in the path; returns the CallSid of
/// `{CallSid}.json`.
fn authorize<'a>(
    api: &Api,
    account: &str,
    call: &'a str,
    headers: &HeaderMap,
) -> Result<&'a str, Refused> {
    check_credentials(api, account, headers)?;
    call.strip_suffix(".json").ok_or(Refused::NotFound)
}

/// Checks the Basic credentials (`AccountSid:token`) and that `account` is the configured one.
pub(super) fn check_credentials(
    api: &Api,
    account: &str,
    headers: &HeaderMap,
) -> Result<(), Refused> {
    let configured = api.account.as_deref().unwrap_or_default();
    let (user, pass) = basic_credentials(headers).unwrap_or_default();
    let credentials_ok = api.open || (user == configured && token_matches(api, Some(&pass)));
    if !credentials_ok || account != configured {
        return Err(Refused::Auth);
    }
    Ok(())
}

/// `Authorization: Basic base64(user:password)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// A call in Twilio's JSON shape.
pub(super) fn resource(view: &CallView, account: &str) -> Value {
    let sid = &view.call_id;
    let started = rfc2822(Some(&view.started_at));
    let ended = rfc2822(view.ended_at.as_deref());
    // Twilio: empty while the call is going on; whole seconds once it has ended.
    let duration = (!view.status.is_active()).then(|| format!("{:.0}", view.duration_s.floor()));
    json!({
        "sid": sid,
        "account_sid": account,
        "parent_call_sid": null,
        "to": view.to,
        "from": view.from,
        "status": view.status.as_str(),
        "direction": direction(view.direction),
        "start_time": started,
        "end_time": ended,
        "duration": duration,
        "date_created": started,
        "date_updated": ended.clone().or_else(|| started.clone()),
        "answered_by": null,
        "price": null,
        "price_unit": "USD",
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
    })
}

fn not_found(account: &str, call: &str) -> Response {
    let msg =
        format!("The requested resource /2010-04-01/Accounts/{account}/Calls/{call} was not found");
    error(StatusCode::NOT_FOUND, 20404, &msg)
}

pub(super) fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::call::Direction;

    #[test]
    fn resource_shape() {
        let mut v = CallView::new("CA0123", Direction::Inbound, "2025-01-15T10:30:00Z".into());
        v.from = Some("+48600100200".into());
        v.to = Some("+48123456789".into());
        v.status = CallStatus::InProgress;
        let r = resource(&v, "AC1");
        assert_eq!(r["duration"], Value::Null, "going on: no duration");
        assert_eq!(r["end_time"], Value::Null);
        assert_eq!(r["start_time"], "Wed, 15 Jan 2025 10:30:00 +0000");
        assert_eq!(r["direction"], "inbound");
        v.status = CallStatus::Completed;
        v.ended_at = Some("2025-01-15T10:31:13Z".into());
        v.duration_s = 61.9;
        v.direction = Direction::Outbound;
        let r = resource(&v, "AC1");
        assert_eq!(r["duration"], "61");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["direction"], "outbound-api");
        assert_eq!(r["uri"], "/2010-04-01/Accounts/AC1/Calls/CA0123.json");
    }
}
