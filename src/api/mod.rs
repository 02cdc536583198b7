//! The HTTP control API (axum). For now: `GET /healthz`, `GET /readyz` (503 while draining)
//! and `GET /metrics` (Prometheus text). Every route but the two probes needs
//! `Authorization: Bearer <token>` unless the API is open (no token, loopback address).
//!
//! Must not: decide anything about calls; it reads counters and forwards commands.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::Ctx;

#[derive(Clone)]
struct Api {
    ctx: Arc<Ctx>,
    token: Option<Arc<str>>,
    open: bool,
}

/// Serves the API on `listener` until the process ends.
pub fn spawn(listener: tokio::net::TcpListener, ctx: Arc<Ctx>, token: Option<String>, open: bool) {
    let api = Api {
        ctx,
        token: token.map(Arc::from),
        open,
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(api);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "control API stopped");
        }
    });
}

async fn readyz(State(api): State<Api>) -> Response {
    if api.ctx.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

fn authorized(api: &Api, headers: &HeaderMap) -> bool {
    if api.open {
        return true;
    }
    let Some(token) = &api.token else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time comparison: the token is a secret.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn metrics(State(api): State<Api>, headers: HeaderMap) -> Response {
    if !authorized(&api, &headers) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
    }
    let body = render(&api.ctx);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The Prometheus exposition of the gateway's counters.
pub fn render(ctx: &Ctx) -> String {
    let s = &ctx.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP trunkgate_{name} {help}");
        let _ = writeln!(out, "# TYPE trunkgate_{name} {kind}");
        let _ = writeln!(out, "trunkgate_{name} {value}");
    };
    metric(
        "calls_started_total",
        "counter",
        "Calls admitted and started.",
        load(&s.calls_started),
    );
    metric(
        "calls_ended_total",
        "counter",
        "Calls ended (any reason).",
        load(&s.calls_ended),
    );
    metric(
        "calls_active",
        "gauge",
        "Calls in progress.",
        s.active_calls(),
    );
    metric(
        "rtp_ports_in_use",
        "gauge",
        "RTP ports leased by calls.",
        ctx.ports.in_use() as u64,
    );
    metric(
        "sip_malformed_total",
        "counter",
        "SIP messages that failed to parse.",
        load(&s.malformed),
    );
    metric(
        "sip_flood_dropped_total",
        "counter",
        "SIP messages dropped by the per-source flood limit.",
        load(&s.flood_dropped),
    );
    metric(
        "sip_blocked_user_agent_total",
        "counter",
        "SIP requests dropped for a blocked User-Agent.",
        load(&s.blocked_user_agent),
    );
    metric(
        "policy_rejected_total",
        "counter",
        "INVITEs refused by admission policy.",
        load(&s.policy_rejected),
    );
    metric(
        "policy_dropped_total",
        "counter",
        "INVITEs dropped silently by admission policy.",
        load(&s.policy_dropped),
    );
    metric(
        "agent_dropped_frames_total",
        "counter",
        "Agent frames dropped (agent or queue full).",
        load(&s.agent_dropped_frames),
    );
    metric(
        "agent_frame_errors_total",
        "counter",
        "Malformed agent messages.",
        load(&s.agent_frame_errors),
    );
    metric(
        "agent_ignored_events_total",
        "counter",
        "Agent messages with events we do not use.",
        load(&s.agent_ignored_events),
    );
    if let Some(spool) = &ctx.spool {
        let st = &spool.stats;
        metric(
            "callbacks_submitted_total",
            "counter",
            "Call records spooled for delivery.",
            load(&st.submitted),
        );
        metric(
            "callbacks_delivered_total",
            "counter",
            "Callbacks acknowledged with a 2xx.",
            load(&st.delivered),
        );
        metric(
            "callbacks_failed_attempts_total",
            "counter",
            "Callback attempts that failed.",
            load(&st.failed_attempts),
        );
        metric(
            "callbacks_dead_total",
            "counter",
            "Callbacks given up (kept in dead/).",
            load(&st.dead),
        );
        metric(
            "callbacks_pending",
            "gauge",
            "Callbacks waiting in the spool.",
            spool.pending() as u64,
        );
    }
    metric(
        "draining",
        "gauge",
        "1 while draining for shutdown.",
        u64::from(ctx.draining.load(Ordering::Relaxed)),
    );
    out
}
