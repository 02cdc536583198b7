//! A call's status events (PROTOCOLS.md §4): `call.ringing`, `call.answered`,
//! `call.transfer`, `call.completed` and, after it, `call.transcript`, each through the
//! durable spool with its own `event_id` and the call's next `seq` (from 1, in the order
//! sent; only events actually sent count), and the call's crash journal entry (written at
//! the answer, removed once the final record is on disk).
//!
//! Which events a call sends: `[callbacks] events`, or the webhook answer's
//! `callback_events`; where: the webhook answer's `callback_url`, else the number's
//! `callback_url`, else `[callbacks] url`. Without a URL nothing is spooled, but the
//! `call.completed` record still goes to the CDR (it is the only event that does).
//! A call created through the Twilio-compatible API POSTs Twilio's form fields instead of
//! the JSON envelope ([`StatusEvents::with_format`]); spool, retries and CDR are the same.
//!
//! Owns: the per-call sequence and the once-only rule of each event. Must not: block a call
//! worker on the disk (ringing and answered are fire-and-forget into the record writer,
//! the journal has its own thread), or decide when a call rings, answers or ends.

use std::sync::Arc;

use super::record::{self, CallbackFormat};
use super::Ctx;
use crate::core::hooks::callback::{
    CallCompleted, CallView, CallbackEvent, EventSet, TranscriptEvent,
};
use crate::core::media::vad::Segment;
use crate::core::transcript::Turn;

/// One call's status events. Create it when the call is admitted.
#[derive(Debug)]
pub struct StatusEvents {
    url: Option<String>,
    wanted: EventSet,
    /// The last `seq` used.
    seq: u32,
    rang: bool,
    answered: bool,
    /// The call id whose journal entry this call wrote.
    journaled: Option<String>,
    /// JSON, or Twilio's form fields (calls created through the Twilio-compatible API).
    format: CallbackFormat,
}

impl StatusEvents {
    /// `url`: the number's `callback_url` or `[callbacks] url`; `wanted`: `[callbacks] events`.
    pub fn new(url: Option<String>, wanted: EventSet) -> Self {
        StatusEvents {
            url,
            wanted,
            seq: 0,
            rang: false,
            answered: false,
            journaled: None,
            format: CallbackFormat::Json,
        }
    }

    /// A call's events after a restart, for its `call.transcript` only (a transcript job,
    /// `app::transcript_jobs`): JSON to `url`, the next event taking `seq`, so its
    /// `event_id` is the one the previous run would have given it.
    pub fn resume(url: String, seq: u32) -> Self {
        let mut status = StatusEvents::new(Some(url), EventSet::NONE);
        status.seq = seq.saturating_sub(1);
        status
    }

    /// Every event of this call in `format` (the spool, retries and the CDR are the same).
    pub fn with_format(mut self, format: CallbackFormat) -> Self {
        self.format = format;
        self
    }

    /// The webhook answer's `callback_url` / `callback_events`, when it set them: they replace
    /// the configured ones for this call. Call [`StatusEvents::ringing`] again afterwards if
    /// the call is still ringing (the webhook is asked after the 180 went out).
    pub fn redirect(&mut self, url: Option<String>, wanted: Option<EventSet>) {
        if url.is_some() {
            self.url = url;
        }
        if let Some(w) = wanted {
            self.wanted = w;
        }
    }

    /// The call rings (180 sent). Sends `call.ringing` at most once per call, if wanted.
    pub fn ringing(&mut self, ctx: &Arc<Ctx>, view: &CallView) {
        if !self.rang && self.send(ctx, CallbackEvent::Ringing, view) {
            self.rang = true;
        }
    }

    /// The call is answered (200 OK sent): `call.answered` if wanted, and the call's journal
    /// entry, so a crash from now on still produces its record.
    pub fn answered(&mut self, ctx: &Arc<Ctx>, view: &CallView) {
        if self.answered {
            return;
        }
        self.answered = true;
        self.send(ctx, CallbackEvent::Answered, view);
        let account = match &self.format {
            CallbackFormat::TwilioForm { account_sid } => Some(account_sid.clone()),
            CallbackFormat::Json => None,
        };
        ctx.journal
            .answered(view, self.completed_url(), self.seq, account);
        self.journaled = Some(view.call_id.clone());
    }

    /// A transfer moved on (the view's `transfer` says how): `call.transfer`, whenever the
    /// call has a callback URL and its callbacks are trunkgate's JSON (Twilio has no such
    /// event).
    pub fn transfer(&mut self, ctx: &Arc<Ctx>, view: &CallView) {
        if self.format == CallbackFormat::Json {
            let wanted = self.wanted;
            self.wanted = wanted.with(CallbackEvent::Transfer);
            self.send(ctx, CallbackEvent::Transfer, view);
            self.wanted = wanted;
        }
    }

    /// The bridged leg moved on (the view's `bridge` says how): `call.leg`, like
    /// `call.transfer` whenever the call has a callback URL and JSON callbacks.
    pub fn leg(&mut self, ctx: &Arc<Ctx>, view: &CallView) {
        if self.format == CallbackFormat::Json {
            let wanted = self.wanted;
            self.wanted = wanted.with(CallbackEvent::Leg);
            self.send(ctx, CallbackEvent::Leg, view);
            self.wanted = wanted;
        }
    }

    /// A checkpoint of an answered call: its view (`duration_s` up to now) and both sides'
    /// talk so far (milliseconds from the answer). Every `[callbacks] checkpoint`.
    pub fn checkpoint(
        &self,
        ctx: &Arc<Ctx>,
        view: &CallView,
        caller: &[Segment],
        agent: &[Segment],
    ) {
        if self.journaled.is_some() {
            ctx.journal.checkpoint(view, caller, agent);
        }
    }

    /// The call has ended: `view` is final. Spools `call.completed` (if wanted and a URL
    /// applies) and appends it to the CDR; returns the record once it is on disk, after
    /// which the journal entry is dropped.
    pub async fn completed(&mut self, ctx: &Arc<Ctx>, view: CallView) -> CallCompleted {
        self.seq += 1;
        let record = record::envelope(CallbackEvent::Completed, self.seq, view);
        let url = self.completed_url();
        record::deliver(ctx, &record, url.as_deref(), &self.format).await;
        if let Some(call_id) = self.journaled.take() {
            ctx.journal.ended(&call_id);
        }
        record
    }

    /// Where this call's `call.transcript` goes: its callback URL, whatever `events` says
    /// (like `call.transfer`), when its callbacks are trunkgate's JSON (Twilio has no such
    /// event).
    pub fn transcript_url(&self) -> Option<&str> {
        self.url
            .as_deref()
            .filter(|_| self.format == CallbackFormat::Json)
    }

    /// The call's transcript (after `call.completed`: the next `seq`), spooled for
    /// [`StatusEvents::transcript_url`] and retried like every event; returns it once it is
    /// on disk (`None`, and nothing sent, without that URL). Not a CDR line.
    pub async fn transcript(
        &mut self,
        ctx: &Arc<Ctx>,
        call_id: &str,
        turns: Vec<Turn>,
        error: Option<&str>,
    ) -> Option<TranscriptEvent> {
        let url = self.transcript_url()?.to_string();
        self.seq += 1;
        let event = TranscriptEvent {
            event: CallbackEvent::Transcript,
            event_id: record::event_id(call_id, self.seq),
            seq: self.seq,
            call_id: call_id.to_string(),
            turns,
            error: error.map(str::to_string),
        };
        let json = String::from_utf8(event.to_json()).unwrap_or_default();
        ctx.records
            .write_and_wait(json, &event.event_id, Some(&url), false)
            .await;
        Some(event)
    }

    /// The last `seq` used (0 before any event).
    pub fn seq(&self) -> u32 {
        self.seq
    }

    fn completed_url(&self) -> Option<String> {
        self.url
            .clone()
            .filter(|_| self.wanted.contains(CallbackEvent::Completed))
    }

    /// Spools a non-final event; whether it was sent.
    fn send(&mut self, ctx: &Arc<Ctx>, event: CallbackEvent, view: &CallView) -> bool {
        let Some(url) = self.url.as_deref().filter(|_| self.wanted.contains(event)) else {
            return false;
        };
        self.seq += 1;
        let record = record::envelope(event, self.seq, view.clone());
        let payload = record::payload(&record, &self.format);
        // Queued, or (queue full) written here at once: either way on its way to disk.
        let _ = ctx
            .records
            .write(payload, &record.event_id, Some(url), false, || {});
        true
    }
}
