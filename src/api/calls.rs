//! The call resource (PROTOCOLS.md §3): `GET /v1/calls/{id}`, `GET /v1/calls?status=&limit=`,
//! `POST /v1/calls/{id}/hangup`, `POST /v1/calls/{id}/dtmf {"digits":"12#"}`,
//! `POST /v1/calls/{id}/transfer {"to","mode","fallback"}`.
//!
//! Owns: request validation (list parameters, DTMF digits) and the mapping of control errors
//! to 404/409. Must not: decide what a command does to a call (the call task does).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{Api, ApiError};
use crate::app::control::{ControlError, ListFilter};
use crate::core::call::{transfer, Command};
use crate::core::media::dtmf::digit_to_event;

/// `limit` when the request gives none, and the most it may ask for.
pub(super) const DEFAULT_LIMIT: usize = 50;
pub(super) const MAX_LIMIT: usize = 1000;
/// Digits in one DTMF request (about 7 s of tones).
pub(super) const MAX_DIGITS: usize = 32;

pub(super) async fn get(State(api): State<Api>, Path(id): Path<String>) -> Response {
    match api.control.get(&id) {
        Some(view) => Json(view).into_response(),
        None => unknown(&id).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
    limit: Option<String>,
}

pub(super) async fn list(
    State(api): State<Api>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let filter = match params.status.as_deref() {
        None | Some("all") => ListFilter::All,
        Some("active") => ListFilter::Active,
        Some("completed") => ListFilter::Ended,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status {other:?} is not one of active, completed, all"
            )))
        }
    };
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit {text:?} is not a number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    let calls = api.control.list(filter, limit);
    Ok(Json(serde_json::json!({ "calls": calls })).into_response())
}

pub(super) async fn hangup(State(api): State<Api>, Path(id): Path<String>) -> Response {
    command(&api, &id, Command::Hangup)
}

#[derive(Deserialize)]
pub(super) struct DtmfBody {
    digits: String,
}

pub(super) async fn dtmf(
    State(api): State<Api>,
    Path(id): Path<String>,
    body: Result<Json<DtmfBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_digits(&body.digits).map_err(ApiError::bad_request)?;
    Ok(command(
        &api,
        &id,
        Command::Dtmf {
            digits: body.digits,
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    to: String,
    mode: Option<String>,
    fallback: Option<String>,
}

/// 202 with the call; how the transfer goes comes as `call.transfer` callbacks and in the
/// call's `transfer` (a transfer the call cannot run fails there, never here).
pub(super) async fn transfer(
    State(api): State<Api>,
    Path(id): Path<String>,
    body: Result<Json<TransferBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(command(
        &api,
        &id,
        Command::Transfer(transfer_request(body)?),
    ))
}

fn transfer_request(body: TransferBody) -> Result<transfer::Request, ApiError> {
    let to = body.to.trim();
    if !transfer::valid_target(to) {
        return Err(ApiError::bad_request(
            "to: a number or a SIP URI of at most 256 characters, without <, > or controls",
        ));
    }
    let mode = match body.mode.as_deref() {
        None => None,
        Some(m) => Some(transfer::Mode::parse(m).ok_or_else(|| {
            ApiError::bad_request(format!("mode {m:?} is not one of refer, bridge, notify"))
        })?),
    };
    let fallback = match body.fallback.as_deref() {
        None => None,
        Some(f) => Some(transfer::Fallback::parse(f).ok_or_else(|| {
            ApiError::bad_request(format!("fallback {f:?} is not one of bridge, resume"))
        })?),
    };
    Ok(transfer::Request {
        to: to.to_string(),
        mode,
        fallback,
    })
}

/// `0-9 * # A-D` (RFC 4733 §3.2's digits), 1 to [`MAX_DIGITS`] of them.
fn check_digits(digits: &str) -> Result<(), String> {
    let n = digits.chars().count();
    if n == 0 || n > MAX_DIGITS {
        return Err(format!("digits must be 1 to {MAX_DIGITS} characters"));
    }
    match digits.chars().find(|c| digit_to_event(*c).is_none()) {
        Some(c) => Err(format!("{c:?} is not a DTMF digit (0-9, *, #, A-D)")),
        None => Ok(()),
    }
}

/// Hands `cmd` to the call: 202 with the call as it stands (the call acts asynchronously).
fn command(api: &Api, id: &str, cmd: Command) -> Response {
    match api.control.send(id, cmd) {
        Ok(()) => match api.control.get(id) {
            Some(view) => (StatusCode::ACCEPTED, Json(view)).into_response(),
            // Ended and expired in between (a zero retention): accepted all the same.
            None => StatusCode::ACCEPTED.into_response(),
        },
        Err(ControlError::NotFound) => unknown(id).into_response(),
        Err(ControlError::Ended) => {
            ApiError::conflict("call_ended", format!("call {id} has already ended")).into_response()
        }
        Err(ControlError::NotAnswered) => ApiError::conflict(
            "call_not_answered",
            format!("call {id} has not been answered yet"),
        )
        .into_response(),
    }
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no call {id} (unknown, or ended longer ago than the retention)"
    ))
}

#[cfg(test)]
mod tests {
    use super::check_digits;

    #[test]
    fn digits() {
        assert!(check_digits("0123456789*#ABCD").is_ok());
        assert!(check_digits("12#").is_ok());
        assert!(check_digits("").is_err());
        assert!(check_digits("12E").is_err());
        assert!(check_digits("1 2").is_err());
        assert!(check_digits(&"1".repeat(32)).is_ok());
        assert!(check_digits(&"1".repeat(33)).is_err());
    }
}
