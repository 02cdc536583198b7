//! The control API seen from a test: one request sent with a bounded wait, its status and its
//! body as JSON (or as a JSON string when it is not JSON).
//! Must not: retry, or hide a transport error (the test fails on it).

use std::time::Duration;

use serde_json::Value;

/// How long a request may take.
const WAIT: Duration = Duration::from_secs(10);

/// Sends `req`; the status, the response headers and the body.
pub async fn send_full(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("API answers in time")
        .expect("HTTP request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// Sends `req`; the status and the body.
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let (status, _, body) = send_full(req).await;
    (status, body)
}

/// `POST {base}{path}` with `body` as JSON and `token` as the bearer.
pub async fn post(base: &str, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(body);
    send(req).await
}
