//! The trunk resource: `GET /v1/trunks` — every registering trunk's REGISTER state
//! (`{"trunks":[{"name","registered","last_error","expires_at"}]}`).
//!
//! Must not: decide or change anything about registrations (the endpoint task's driver
//! owns them; this only reads what the control handle publishes).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::Api;

pub(super) async fn list(State(api): State<Api>) -> Response {
    Json(serde_json::json!({ "trunks": api.control.trunks() })).into_response()
}
