//! The end of a call: its record (PROTOCOLS.md §4), delivered to the callback URL through the
//! durable spool and appended to the CDR file.

use std::sync::Arc;

use super::Ctx;
use crate::config::BillingConfig;
use crate::core::call::EndReason;
use crate::core::hooks::callback::{
    billable_seconds, CallCompleted, CallStatus, CallView, CallbackEvent, Direction, Speaker,
    TalkSeconds, Turn,
};
use crate::core::media::vad::{self, Segment};

/// Everything known about a call when it ends.
#[derive(Debug, Clone)]
pub struct CallSummary {
    pub call_id: String,
    pub direction: Direction,
    pub from: Option<String>,
    pub to: Option<String>,
    pub did: Option<String>,
    pub crt: Option<String>,
    pub started_at: jiff::Timestamp,
    pub answered_at: Option<jiff::Timestamp>,
    pub ended_at: jiff::Timestamp,
    pub status: CallStatus,
    pub end_reason: String,
    pub sip_status: Option<u16>,
    pub caller_talk: Vec<Segment>,
    pub agent_talk: Vec<Segment>,
}

pub fn build(s: &CallSummary, billing: &BillingConfig) -> CallCompleted {
    let duration_s = s
        .answered_at
        .map(|a| (s.ended_at.as_microsecond() - a.as_microsecond()).max(0) as f64 / 1e6)
        .unwrap_or(0.0);
    // An answered call bills at least the minimum, however short it was.
    let billable_s = match s.answered_at {
        Some(_) => billable_seconds(
            duration_s.max(0.001),
            billing.minimum_s,
            billing.increment_s,
        ),
        None => 0,
    };
    let talk = |segs: &[Segment]| {
        segs.iter()
            .map(|g| g.end_ms.saturating_sub(g.start_ms))
            .sum::<u64>() as f64
            / 1000.0
    };
    let turns = vad::turns(&s.caller_talk, &s.agent_talk)
        .into_iter()
        .map(|t| Turn {
            speaker: match t.speaker {
                vad::Speaker::Caller => Speaker::Caller,
                vad::Speaker::Agent => Speaker::Agent,
            },
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        })
        .collect();
    CallCompleted {
        event: CallbackEvent::Completed,
        event_id: format!("evt-{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..)),
        seq: 1,
        call: CallView {
            call_id: s.call_id.clone(),
            direction: s.direction,
            status: s.status,
            from: s.from.clone(),
            to: s.to.clone(),
            did: s.did.clone(),
            crt: s.crt.clone(),
            started_at: s.started_at.to_string(),
            answered_at: s.answered_at.map(|t| t.to_string()),
            ended_at: Some(s.ended_at.to_string()),
            duration_s,
            billable_s,
            talk_s: TalkSeconds {
                caller: talk(&s.caller_talk),
                agent: talk(&s.agent_talk),
            },
            turns,
            end_reason: Some(s.end_reason.clone()),
            sip_status: s.sip_status,
            recording_url: None,
            billing: None,
        },
    }
}

/// The view of an inbound call just admitted (the registry shows it until the first change).
pub fn first_view(
    call_id: &str,
    started_at: jiff::Timestamp,
    from: &Option<String>,
    to: &Option<String>,
    info: &crate::core::sip::endpoint::IncomingCall,
) -> CallView {
    let mut view = CallView::new(call_id, Direction::Inbound, started_at.to_string());
    view.from = from.clone();
    view.to = to.clone();
    view.did = info.did.clone();
    view.crt = info.crt.clone();
    view
}

/// The last view of a call whose task failed (a bug): ended now, `internal_error`.
pub fn failed_view(mut view: CallView) -> CallView {
    if view.status.is_active() {
        let why = EndReason::InternalError;
        view.status = why.call_status(view.answered_at.is_some());
        view.end_reason = Some(why.as_str());
        view.ended_at = Some(jiff::Timestamp::now().to_string());
    }
    view
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
    info: &crate::core::sip::endpoint::IncomingCall,
    status: u16,
    why: &str,
    then: impl FnOnce() + Send + 'static,
) -> super::record_writer::Written {
    let (record, url) = rejected_record(ctx, info, status, why);
    let json = String::from_utf8(record.to_json()).unwrap_or_default();
    ctx.records
        .write(json, &record.event_id, url.as_deref(), then)
}

/// [`rejected`] for a call task: returns once the record is on disk.
pub async fn rejected_and_wait(
    ctx: &Arc<Ctx>,
    info: &crate::core::sip::endpoint::IncomingCall,
    status: u16,
    why: &str,
) {
    let (record, url) = rejected_record(ctx, info, status, why);
    deliver(ctx, &record, url.as_deref()).await;
}

/// The record of a refused call and the callback URL that applies to it.
fn rejected_record(
    ctx: &Arc<Ctx>,
    info: &crate::core::sip::endpoint::IncomingCall,
    status: u16,
    why: &str,
) -> (CallCompleted, Option<String>) {
    let config = ctx.config();
    let number = super::routing::find_number(&config, info);
    let url = number
        .and_then(|n| n.callback_url.clone())
        .or_else(|| config.callbacks.url.clone());
    let now = jiff::Timestamp::now();
    let summary = CallSummary {
        call_id: crate::core::call::CallId::from_random(fastrand::u128(..)).to_string(),
        direction: Direction::Inbound,
        from: super::routing::caller_number(info),
        to: super::routing::dialled_did(&config, info),
        did: info.did.clone(),
        crt: info.crt.clone(),
        started_at: now,
        answered_at: None,
        ended_at: now,
        status: match status {
            486 | 600 => CallStatus::Busy,
            _ => CallStatus::Failed,
        },
        end_reason: why.to_string(),
        sip_status: Some(status),
        caller_talk: Vec::new(),
        agent_talk: Vec::new(),
    };
    (build(&summary, &config.billing), url)
}
