//! The HTTP client for webhooks, callbacks and alerts: reqwest over the shared rustls config,
//! and the one signed POST all three send.
//!
//! Owns: client settings and [`signed_post`] (`X-Trunkgate-Signature`, PROTOCOLS.md §1 and §4,
//! over the exact bytes sent, at the wall clock of sending). Must not: retry, read answers,
//! or log bodies and secrets (the caller decides what a failure means).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::hooks::sign::{signature_header, SIGNATURE_HEADER};

pub fn client(
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .use_preconfigured_tls((**tls).clone())
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        // A burst of calls opens many webhook connections; keep only a few idle afterwards.
        .pool_max_idle_per_host(8)
        .user_agent(concat!("trunkgate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// POSTs `body` to `url` as `content_type`, with `headers` added, signed with
/// `X-Trunkgate-Signature` when `secret` is set; `timeout` overrides the client's for this
/// request. Any status is `Ok`: the caller judges it.
pub async fn signed_post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    secret: Option<&[u8]>,
    timeout: Option<Duration>,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut req = client.post(url).header("Content-Type", content_type);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(timeout) = timeout {
        req = req.timeout(timeout);
    }
    if let Some(secret) = secret {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        req = req.header(SIGNATURE_HEADER, signature_header(secret, unix, &body));
    }
    req.body(body).send().await
}
