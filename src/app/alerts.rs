//! Fraud alerts: per episode, one signed POST to the alert URL (PROTOCOLS-style JSON) and/or
//! one mail to the alert's addresses (`mail.rs`). Best effort with a few retries, off the
//! endpoint task's path (spawned); the alert is also logged, so it is never silent.

use std::sync::Arc;
use std::time::Duration;

use super::Ctx;
use crate::core::policy::FraudAlertEvent;
use crate::io::http::signed_post;

pub fn send(ctx: &Arc<Ctx>, alert: FraudAlertEvent) {
    let at = jiff::Timestamp::now();
    tracing::warn!(scope = %alert.scope, calls = alert.calls, within_s = alert.within_s, threshold = alert.threshold, "fraud alert");
    ctx.mail.send(&alert, at);
    let Some(url) = alert.url else {
        return;
    };
    let body = serde_json::json!({
        "event": "fraud.alert",
        "scope": alert.scope.to_string(),
        "calls": alert.calls,
        "within_s": alert.within_s,
        "threshold": alert.threshold,
        "at": at.to_string(),
    })
    .to_string();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        for attempt in 0..3u32 {
            let sent = signed_post(
                &ctx.http,
                &url,
                "application/json",
                &[],
                body.clone().into_bytes(),
                ctx.secret.as_deref().map(Vec::as_slice),
                None,
            )
            .await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::warn!(status = %r.status(), "fraud alert not accepted"),
                Err(e) => tracing::warn!(error = %e, "fraud alert not delivered"),
            }
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
    });
}
