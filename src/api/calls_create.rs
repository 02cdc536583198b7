//! `POST /v1/calls` (PROTOCOLS.md §3): a JSON body, every field checked and defaulted, becomes
//! a [`DialRequest`] for [`crate::app::control::Control::dial`]; `201 {"call_id","status"}`.
//! A field at fault is a 400 naming it (`{"error":{"code":"invalid_request","message":
//! "<field>: …","field":"<field>"}}`), and nothing is dialled. `Idempotency-Key` is checked
//! here and honoured by the control handle; a replay answers like the first request, plus
//! `Idempotent-Replayed: true`.
//!
//! Owns: the request's framing (Content-Type, size, JSON, the key header; the fields are
//! [`super::calls_body`]) and the mapping of [`DialError`] to status codes. Must not: decide
//! whether a call may be placed (outbound admission does) or remember keys (the control
//! handle does).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::calls_body::request;
use super::{fields, Api, ApiError, MAX_BODY};
use crate::app::control::{DialError, Dialed};

pub(super) async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match place(&api, &headers, body) {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

fn place(
    api: &Api,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::bad_request(format!("body: {}", e.body_text())),
    })?;
    if !is_json(headers) {
        return Err(ApiError::bad_request(
            "Content-Type must be application/json",
        ));
    }
    let key = fields::idempotency_key(headers)
        .map_err(|e| ApiError::invalid_field("Idempotency-Key", e))?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    let mut req = request(&value)?;
    req.idempotency_key = key;
    let named_trunk = req.trunk.is_some();
    let dialed = api
        .control
        .dial(req)
        .map_err(|e| dial_error(e, named_trunk))?;
    Ok(created(
        &dialed,
        json!({"call_id": dialed.call_id, "status": dialed.status.as_str()}),
    ))
}

/// 201 with `body`, `Location` of the call, and `Idempotent-Replayed: true` on a replay.
pub(super) fn created(dialed: &Dialed, body: Value) -> Response {
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/calls/{}", dialed.call_id)) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    if dialed.replayed {
        let name = header::HeaderName::from_static("idempotent-replayed");
        resp.headers_mut()
            .insert(name, HeaderValue::from_static("true"));
    }
    resp
}

pub(super) fn too_large() -> ApiError {
    let message = format!("body: larger than {MAX_BODY} bytes");
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Whole seconds for `Retry-After`, at least 1.
pub(super) fn retry_after_secs(after: Duration) -> u64 {
    let whole = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    whole.max(1)
}

fn dial_error(e: DialError, named_trunk: bool) -> ApiError {
    let message = e.to_string();
    match e {
        DialError::NoTrunk(_) => {
            let e = ApiError::new(StatusCode::BAD_REQUEST, "no_trunk", message);
            match named_trunk {
                true => e.with_field("trunk"),
                false => e,
            }
        }
        DialError::Refused {
            retry_after: Some(after),
            ..
        } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            .with_retry_after(retry_after_secs(after)),
        DialError::Refused { .. } => ApiError::new(StatusCode::FORBIDDEN, "refused", message),
        DialError::Busy(_) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", message),
        DialError::Draining => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "draining", message),
        DialError::Invalid { field, .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).with_field(field)
        }
        DialError::NotRegistered(_, false) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
                .with_field("bridge_from")
        }
        DialError::NotRegistered(_, true) => {
            ApiError::new(StatusCode::CONFLICT, "not_registered", message).with_field("bridge_from")
        }
        DialError::KeyReused => ApiError::conflict(
            "idempotency_key_reused",
            "Idempotency-Key was used within 24 h with a different request",
        )
        .with_field("Idempotency-Key"),
    }
}

#[cfg(test)]
#[path = "calls_create_tests.rs"]
mod tests;
