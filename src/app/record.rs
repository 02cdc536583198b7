//! The end of a call: its record (PROTOCOLS.md §4), delivered to the callback URL through the
//! durable spool and appended to the CDR file.

use std::sync::Arc;

use super::Admitted;
use super::Ctx;
use crate::config::BillingConfig;
use crate::core::call::Ended;
use crate::core::hooks::callback::{
    billable_seconds, CallCompleted, CallStatus, CallView, CallbackEvent, Direction,
};
use crate::core::sip::endpoint::IncomingCall;

/// The record of a finished call: its view, billed per `[billing]`.
pub fn build(ended: &Ended, billing: &BillingConfig) -> CallCompleted {
    let mut call = ended.view.clone();
    // An answered call bills at least the minimum, however short it was.
    call.billable_s = match call.answered_at {
        Some(_) => billable_seconds(
            call.duration_s.max(0.001),
            billing.minimum_s,
            billing.increment_s,
        ),
        None => 0,
    };
    envelope(call)
}

fn envelope(call: CallView) -> CallCompleted {
    CallCompleted {
        event: CallbackEvent::Completed,
        event_id: format!("evt-{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..)),
        seq: 1,
        call,
    }
}

/// Spools the callback (if a URL applies) and appends the CDR line (by the record writer);
/// returns once both are on disk. Never loses the record silently: a failure to write either
/// is logged with the record itself.
pub async fn deliver(ctx: &Arc<Ctx>, record: &CallCompleted, url: Option<&str>) {
    let json = String::from_utf8(record.to_json()).unwrap_or_default();
    ctx.records
        .write_and_wait(json, &record.event_id, url)
        .await;
}

/// The record of a call refused before any work (admission): CDR and callback like any other.
/// `then` runs once the record is on disk (the rejection's response waits for it), unless
/// the writer's queue was full: then the record was written here, at once, `then` does not
/// run, and the answer is [`Written::Inline`].
pub fn rejected(
    ctx: &Arc<Ctx>,
    info: &IncomingCall,
    admitted: &Admitted,
    status: u16,
    why: &str,
    then: impl FnOnce() + Send + 'static,
) -> super::record_writer::Written {
    let (record, url) = rejected_record(ctx, info, admitted, status, why);
    let json = String::from_utf8(record.to_json()).unwrap_or_default();
    ctx.records
        .write(json, &record.event_id, url.as_deref(), then)
}

/// [`rejected`] for a call task: returns once the record is on disk.
pub async fn rejected_and_wait(
    ctx: &Arc<Ctx>,
    info: &IncomingCall,
    admitted: &Admitted,
    status: u16,
    why: &str,
) {
    let (record, url) = rejected_record(ctx, info, admitted, status, why);
    deliver(ctx, &record, url.as_deref()).await;
}

/// The record of a refused call and the callback URL that applies to it.
fn rejected_record(
    ctx: &Arc<Ctx>,
    info: &IncomingCall,
    admitted: &Admitted,
    status: u16,
    why: &str,
) -> (CallCompleted, Option<String>) {
    let config = ctx.config();
    let number = super::routing::find_number(&config, info);
    let url = number
        .and_then(|n| n.callback_url.clone())
        .or_else(|| config.callbacks.url.clone());
    let now = jiff::Timestamp::now();
    let mut call = CallView::new(
        admitted.call_id.as_str(),
        Direction::Inbound,
        now.to_string(),
    );
    call.from = admitted.caller.clone();
    call.to = admitted.dialled.clone();
    call.did = info.did.clone();
    call.crt = info.crt.clone();
    call.ended_at = Some(now.to_string());
    call.status = match status {
        486 | 600 => CallStatus::Busy,
        _ => CallStatus::Failed,
    };
    call.end_reason = Some(why.to_string());
    call.sip_status = Some(status);
    (envelope(call), url)
}
