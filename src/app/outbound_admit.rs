//! Outbound admission for the calls we place: the gate's verdict, and the record a refusal
//! leaves (a `call.completed`, `status: failed`, `end_reason: outbound_policy_<reason>`).
//!
//! Must not: decide the rules (`core::policy::outbound` does) or place the call.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::dial::{Destination, DialError, DialRequest};
use super::outbound::{callback_format, destination};
use super::Ctx;
use crate::config::TrunkConfig;
use crate::core::call::{CallId, CallStatus, CallView, Direction};

pub(super) fn release(ctx: &Ctx, ticket: &crate::core::policy::OutboundTicket) {
    match ctx.outbound.lock() {
        Ok(mut g) => g.ended(ticket),
        Err(poisoned) => poisoned.into_inner().ended(ticket),
    }
}

/// Outbound admission ("phone security" for the calls we place). A refusal is answered at
/// once and leaves a record (a `call.completed` with `status: failed`).
pub(super) fn admit(
    ctx: &Arc<Ctx>,
    trunk: &TrunkConfig,
    req: &DialRequest,
    call_id: &CallId,
) -> Result<crate::core::policy::OutboundTicket, DialError> {
    let now = crate::core::policy::Now {
        mono: Instant::now(),
        wall: jiff::Timestamp::now(),
    };
    let e164 = match &req.to {
        Destination::E164(n) => Some(n.as_str()),
        Destination::Uri(_) | Destination::User(_) => None,
    };
    let verdict = match ctx.outbound.lock() {
        Ok(mut gate) => gate.admit(&now, &trunk.name, e164),
        Err(poisoned) => poisoned.into_inner().admit(&now, &trunk.name, e164),
    };
    let refusal = match verdict {
        Ok(ticket) => return Ok(ticket),
        Err(r) => r,
    };
    ctx.stats.policy_rejected.fetch_add(1, Ordering::Relaxed);
    let reason = refusal.reason.as_str();
    tracing::info!(to = destination(&req.to), trunk = %trunk.name, reason, scope = %refusal.scope, "outbound call refused by policy");
    let at = now.wall.to_string();
    let mut view = CallView::new(call_id.as_str(), Direction::Outbound, at.clone());
    view.from = req.from.clone();
    view.to = Some(destination(&req.to).to_string());
    view.ended_at = Some(at);
    view.status = CallStatus::Failed;
    view.end_reason = Some(format!("outbound_policy_{reason}"));
    ctx.stats
        .calls
        .refused(view.end_reason.as_deref().unwrap_or(""));
    let record = super::record::envelope(
        crate::core::hooks::callback::CallbackEvent::Completed,
        1,
        view,
    );
    let config = ctx.config();
    let url = req.callback_url.clone().or(config.callbacks.url.clone());
    let ctx2 = ctx.clone();
    let format = callback_format(&config, req);
    tokio::spawn(
        async move { super::record::deliver(&ctx2, &record, url.as_deref(), &format).await },
    );
    // 429 for concurrency and rate (with Retry-After for rate), 403 for prefixes and hours.
    match refusal.reason.http_status() {
        429 if refusal.retry_after.is_none() => Err(DialError::Busy(reason.to_string())),
        429 => Err(DialError::Refused {
            reason: reason.to_string(),
            retry_after: refusal.retry_after,
        }),
        _ => Err(DialError::Refused {
            reason: reason.to_string(),
            retry_after: None,
        }),
    }
}
