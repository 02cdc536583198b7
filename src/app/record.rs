//! The end of a call: its record (PROTOCOLS.md §4), delivered to the callback URL through the
//! durable spool and appended to the CDR file; and the envelope every status event shares.
//!
//! Owns: serialising a status event ([`payload`]: the JSON envelope, or Twilio's form
//! fields for calls created through the Twilio-compatible API); turning what is known about a call (times, VAD segments, `[billing]`) into its final
//! [`CallView`] ([`settle`] is the one place talk, turns and the bill are filled in — the
//! journal's recovery uses it too), and event ids (`evt-<call_id>-<seq>`: unique per event,
//! and the same for a call's `call.completed` whether it was sent at the end or recovered
//! after a crash, so a receiver's de-duplication holds across a restart).
//! Must not: decide end reasons (the call does) or block a call worker on the disk (the
//! record writer does the I/O).

use std::sync::Arc;

use super::record_writer::Payload;
use super::{Admitted, Ctx};
use crate::config::BillingConfig;
use crate::core::call::billing::Rule;
use crate::core::hooks::callback::{CallCompleted, CallStatus, CallView, CallbackEvent, Direction};
use crate::core::hooks::request::form_urlencoded;
use crate::core::hooks::twilio_status::form_fields;
use crate::core::sip::endpoint::IncomingCall;

/// `[billing]` as the billing rule takes it.
pub fn rule(billing: &BillingConfig) -> Rule {
    Rule {
        minimum_s: billing.minimum_s,
        increment_s: billing.increment_s,
        exclude_silence: billing.exclude_silence,
    }
}

/// A call's `seq`-th status event.
pub fn event_id(call_id: &str, seq: u32) -> String {
    format!("evt-{call_id}-{seq}")
}

/// The status event `event` (the call's `seq`-th) carrying `view`.
pub fn envelope(event: CallbackEvent, seq: u32, view: CallView) -> CallCompleted {
    CallCompleted {
        event,
        event_id: event_id(&view.call_id, seq),
        seq,
        call: view,
    }
}

/// How a call's status callbacks are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CallbackFormat {
    /// trunkgate's JSON envelope (PROTOCOLS.md §4).
    #[default]
    Json,
    /// Twilio's form fields (a call created through the Twilio-compatible API), naming
    /// this `AccountSid`.
    TwilioForm { account_sid: String },
}

/// The one place a status event is serialised: its JSON (the CDR line, and the callback's
/// body) and, for a Twilio-form call, the form body its callback POSTs instead.
pub fn payload(record: &CallCompleted, format: &CallbackFormat) -> Payload {
    let json = String::from_utf8(record.to_json()).unwrap_or_default();
    let form = match format {
        CallbackFormat::Json => None,
        CallbackFormat::TwilioForm { account_sid } => {
            let view = &record.call;
            // The event's own time where the view has it, else now (ringing).
            let at = match record.event {
                CallbackEvent::Ringing | CallbackEvent::Transfer | CallbackEvent::Leg => None,
                CallbackEvent::Answered => view.answered_at.clone(),
                CallbackEvent::Completed | CallbackEvent::Transcript => view.ended_at.clone(),
            }
            .unwrap_or_else(|| jiff::Timestamp::now().to_string());
            let fields = form_fields(view, record.event, account_sid, record.seq, &at);
            Some(form_urlencoded(&fields))
        }
    };
    Payload { json, form }
}

/// Spools the callback (if a URL applies) and appends the CDR line (by the record writer);
/// returns once both are on disk. Never loses the record silently: a failure to write either
/// is logged with the record itself.
pub async fn deliver(
    ctx: &Arc<Ctx>,
    record: &CallCompleted,
    url: Option<&str>,
    format: &CallbackFormat,
) {
    ctx.records
        .write_and_wait(payload(record, format), &record.event_id, url, true)
        .await;
}

/// The record of a call refused before any work (admission): CDR and callback like any other.
/// `then` runs once the record is on disk (the rejection's response waits for it), unless
/// the writer's queue was full: then the record was written here, at once, `then` does not
/// run, and the answer is [`Written::Inline`](super::record_writer::Written::Inline).
pub fn rejected(
    ctx: &Arc<Ctx>,
    info: &IncomingCall,
    admitted: &Admitted,
    status: u16,
    why: &str,
    then: impl FnOnce() + Send + 'static,
) -> super::record_writer::Written {
    let (record, url) = rejected_record(ctx, info, admitted, status, why, 1);
    let json = String::from_utf8(record.to_json()).unwrap_or_default();
    ctx.records
        .write(json, &record.event_id, url.as_deref(), true, then)
}

/// The record of a call task that failed (a bug): returns once the record is on disk.
pub async fn failed_and_wait(
    ctx: &Arc<Ctx>,
    info: &IncomingCall,
    admitted: &Admitted,
) -> CallCompleted {
    // A failed task may have sent events already; its record is still the last word, and
    // receivers order by seq, so it takes a seq past anything it can have sent.
    let (record, url) = rejected_record(ctx, info, admitted, 500, "internal_error", u32::MAX);
    deliver(ctx, &record, url.as_deref(), &CallbackFormat::Json).await;
    record
}

/// The record of a refused call and the callback URL that applies to it.
fn rejected_record(
    ctx: &Arc<Ctx>,
    info: &IncomingCall,
    admitted: &Admitted,
    status: u16,
    why: &str,
    seq: u32,
) -> (CallCompleted, Option<String>) {
    let config = ctx.config();
    let number = super::routing::find_number_by_did(&config, admitted.dialled.as_deref());
    let url = number
        .and_then(|n| n.callback_url.clone())
        .or_else(|| config.callbacks.url.clone())
        .filter(|_| config.callbacks.events.contains(CallbackEvent::Completed));
    let now = jiff::Timestamp::now().to_string();
    let mut view = CallView::new(admitted.call_id.as_str(), Direction::Inbound, now.clone());
    view.from = admitted.caller.clone();
    view.to = admitted.dialled.clone();
    view.did = info.did.clone();
    view.crt = info.crt.clone();
    view.ended_at = Some(now);
    view.status = match status {
        486 | 600 => CallStatus::Busy,
        _ => CallStatus::Failed,
    };
    view.end_reason = Some(why.to_string());
    view.sip_status = Some(status);
    (envelope(CallbackEvent::Completed, seq, view), url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed() -> CallCompleted {
        let mut v = CallView::new("CA01", Direction::Outbound, "2025-01-15T10:30:00Z".into());
        v.from = Some("+48111222333".into());
        v.to = Some("+48123456789".into());
        v.answered_at = Some("2025-01-15T10:30:05Z".into());
        v.ended_at = Some("2025-01-15T10:31:07Z".into());
        v.status = CallStatus::Completed;
        v.duration_s = 62.4;
        v.sip_status = Some(200);
        envelope(CallbackEvent::Completed, 3, v)
    }

    #[test]
    fn json_calls_post_the_envelope_and_twilio_calls_its_form() {
        let record = completed();
        let json = payload(&record, &CallbackFormat::Json);
        assert_eq!(json.form, None);
        let v: serde_json::Value = serde_json::from_str(&json.json).unwrap_or_default();
        assert_eq!(
            (v["event"].as_str(), v["seq"].as_u64()),
            (Some("call.completed"), Some(3))
        );
        let twilio = CallbackFormat::TwilioForm {
            account_sid: "AC1".into(),
        };
        let p = payload(&record, &twilio);
        // The CDR line stays the JSON record.
        assert_eq!(p.json, json.json);
        assert_eq!(
            p.form.as_deref(),
            Some(
                "CallSid=CA01&AccountSid=AC1&From=%2B48111222333&To=%2B48123456789\
                 &CallStatus=completed&Direction=outbound-api&CallDuration=62\
                 &SipResponseCode=200&Timestamp=Wed%2C+15+Jan+2025+10%3A31%3A07+%2B0000\
                 &SequenceNumber=2&CallbackSource=call-progress-events&ApiVersion=2010-04-01"
            )
        );
    }
}
