//! The HTTP client for webhooks and callbacks: reqwest over the shared rustls config.

use std::sync::Arc;
use std::time::Duration;

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
