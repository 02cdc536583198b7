//! The HTTP control API (axum, PROTOCOLS.md §3): probes and metrics ([`health`]), the call
//! resource ([`calls`]; placing calls: [`calls_create`]; its recording: [`recording`]), its OpenAPI document ([`openapi`])
//! and, with `[api] twilio_compat`, the Twilio-compatible call resource ([`twilio`],
//! [`twilio_create`]). Everything but `/healthz` and `/readyz`
//! needs `Authorization: Bearer <token>` (the Twilio resource: Basic `AccountSid:token`)
//! unless the API is open (no token, loopback address). Errors are JSON:
//! `{"error":{"code":"not_found","message":"…"}}`. A source that fails authentication too
//! often is refused with 429 for a while ([`auth_limit`]); failures are logged with the source
//! and path, never the credentials.
//!
//! Owns: routes, authentication, status codes and error bodies.
//! Must not: decide anything about calls (it reads views and forwards commands through the
//! [`Control`] handle, its only view of `app`), or log the token.

mod auth_limit;
mod calls;
mod calls_body;
mod calls_create;
mod fields;
mod health;
mod openapi;
mod openapi_dial;
mod recording;
mod trunks;
mod twilio;
mod twilio_create;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::app::control::Control;

/// What the API needs from the configuration, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bearer token (also the Twilio resource's Basic password); `None` → no token.
    pub token: Option<String>,
    /// No token on a loopback address: everything is served without credentials.
    pub open: bool,
    /// `Some(AccountSid)` → serve the Twilio-compatible resource under that account.
    pub twilio_account: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the client (see [`auth_limit::client_address`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Clone)]
struct Api {
    control: Control,
    token: Option<Arc<str>>,
    open: bool,
    account: Option<Arc<str>>,
    failed_auth: Arc<Mutex<auth_limit::FailedAuth>>,
    trusted_proxies: Arc<[ipnet::IpNet]>,
}

/// Serves the API on `listener` until the process ends.
pub fn spawn(listener: tokio::net::TcpListener, control: Control, settings: Settings) {
    let app = router(Api {
        control,
        token: settings.token.map(Arc::from),
        open: settings.open,
        account: settings.twilio_account.map(Arc::from),
        failed_auth: Arc::default(),
        trusted_proxies: settings.trusted_proxies.into(),
    });
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "control API stopped");
        }
    });
}

fn router(api: Api) -> Router {
    let bearer = Router::new()
        .route("/metrics", get(health::metrics))
        .route("/v1/openapi.json", get(openapi::document))
        .route(
            "/v1/calls",
            get(calls::list)
                .post(calls_create::create)
                .layer(body_limit()),
        )
        .route("/v1/calls/{id}", get(calls::get))
        .route("/v1/calls/{id}/hangup", post(calls::hangup))
        .route("/v1/calls/{id}/dtmf", post(calls::dtmf))
        .route("/v1/calls/{id}/transfer", post(calls::transfer))
        .route("/v1/calls/{id}/recording", get(recording::get))
        .route("/v1/trunks", get(trunks::list))
        .route_layer(middleware::from_fn_with_state(api.clone(), require_bearer));
    let mut app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(bearer);
    if api.account.is_some() {
        app = app.route(
            "/2010-04-01/Accounts/{account}/Calls/{call}",
            get(twilio::get).post(twilio::update),
        );
        app = app.route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(twilio_create::create).layer(body_limit()),
        );
    }
    app.fallback(not_found)
        .layer(middleware::from_fn_with_state(
            api.clone(),
            limit_failed_auth,
        ))
        .with_state(api)
}

/// Refuses a source that failed authentication too often (429, before any handler runs; the
/// probes stay served, so a load balancer sharing its address keeps its view) and counts and
/// logs each 401 answered — with the source and path, never the credentials.
async fn limit_failed_auth(State(api): State<Api>, req: Request, next: Next) -> Response {
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| auth_limit::client_address(c.0.ip(), req.headers(), &api.trusted_proxies));
    let now = std::time::Instant::now();
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    let refused = source
        .filter(|_| !probe)
        .and_then(|ip| lock(&api.failed_auth).refused(ip, now));
    if let Some(secs) = refused {
        let message = "too many failed authentications from this address";
        return ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            .with_retry_after(secs)
            .into_response();
    }
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        api.control.count_auth_failure();
        let Some(ip) = source else { return resp };
        let failure = lock(&api.failed_auth).failed(ip, now);
        match failure {
            auth_limit::Failure::First => {
                tracing::warn!(source = %ip, path, "API authentication failed")
            }
            auth_limit::Failure::LockedOut => tracing::warn!(
                source = %ip,
                path,
                failures = auth_limit::MAX_FAILURES,
                window_s = auth_limit::WINDOW.as_secs(),
                "API authentication failed too often; refusing this source for the window"
            ),
            auth_limit::Failure::Counted => {
                tracing::debug!(source = %ip, path, "API authentication failed")
            }
        }
    }
    resp
}

/// The failure table, also after a panic elsewhere poisoned its lock (counters stay valid).
fn lock(m: &Mutex<auth_limit::FailedAuth>) -> std::sync::MutexGuard<'_, auth_limit::FailedAuth> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The most a create request's body may hold (larger: 413).
pub(crate) const MAX_BODY: usize = 64 * 1024;

fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_BODY)
}

/// An error answer: `{"error":{"code","message"}}` (and `field` when one request field is at
/// fault) with its status.
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request` naming `field`: the message is `<field>: <what is wrong>`.
    pub(crate) fn invalid_field(field: &str, what: impl std::fmt::Display) -> ApiError {
        ApiError::bad_request(format!("{field}: {what}")).with_field(field)
    }

    pub(crate) fn with_field(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_string());
        self
    }

    /// Adds `Retry-After: <secs>`.
    pub(crate) fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    fn unauthorized() -> ApiError {
        let message = "missing or wrong bearer token";
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = field.into();
        }
        let mut resp = (self.status, Json(serde_json::json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no resource {}", req.uri().path()))
}

async fn require_bearer(
    State(api): State<Api>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if api.open || token_matches(&api, given) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

/// Whether `given` is the API token (never true without one).
fn token_matches(api: &Api, given: Option<&str>) -> bool {
    let (Some(token), Some(given)) = (&api.token, given) else {
        return false;
    };
    // Constant-time comparison: the token is a secret.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
