//! Fraud alerts: one signed POST per episode to the alert URL (PROTOCOLS-style JSON).
//! Best effort with a few retries; the alert is also logged, so it is never silent.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Ctx;
use crate::core::hooks::sign::{signature_header, SIGNATURE_HEADER};
use crate::core::policy::FraudAlertEvent;

pub fn send(ctx: &Arc<Ctx>, alert: FraudAlertEvent) {
    let body = serde_json::json!({
        "event": "fraud.alert",
        "scope": alert.scope.to_string(),
        "calls": alert.calls,
        "within_s": alert.within_s,
        "threshold": alert.threshold,
        "at": jiff::Timestamp::now().to_string(),
    })
    .to_string();
    tracing::warn!(scope = %alert.scope, calls = alert.calls, within_s = alert.within_s, threshold = alert.threshold, "fraud alert");
    let ctx = ctx.clone();
    tokio::spawn(async move {
        for attempt in 0..3u32 {
            let mut req = ctx
                .http
                .post(&alert.url)
                .header("Content-Type", "application/json")
                .body(body.clone());
            if let Some(secret) = &ctx.secret {
                let ts = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                req = req.header(
                    SIGNATURE_HEADER,
                    signature_header(secret, ts, body.as_bytes()),
                );
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::warn!(status = %r.status(), "fraud alert not accepted"),
                Err(e) => tracing::warn!(error = %e, "fraud alert not delivered"),
            }
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
    });
}
