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
    let mut body = api.control.metrics();
    let failures = api.auth_failures.load(std::sync::atomic::Ordering::Relaxed);
    body.push_str(&format!(
        "# HELP trunkgate_api_auth_failures_total API requests refused for missing or wrong credentials.\n\
         # TYPE trunkgate_api_auth_failures_total counter\n\
         trunkgate_api_auth_failures_total {failures}\n"
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
