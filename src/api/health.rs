//! Probes and metrics: `GET /healthz` (the process answers), `GET /readyz` (503 while
//! draining) and `GET /metrics` (Prometheus text; behind the bearer token, see `mod.rs`).
//!
//! Must not: compute metrics (the control handle renders them).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Api;

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(State(api): State<Api>) -> Response {
    if api.control.draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

pub(super) async fn metrics(State(api): State<Api>) -> Response {
    let body = api.control.metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
