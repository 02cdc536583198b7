//! A call's way to its `call.transcript` (PROTOCOLS.md §4). At the end, before
//! `call.completed` is written, [`decide`] sets the record's `transcript`
//! (`core::transcript::plan`: `pending`, or why not); once that record is on disk, [`spawn`]
//! starts a task off the call's path that keeps a transcript job on disk
//! (`app::transcript_jobs`), finds the recording, transcribes each channel on its own
//! (`app::transcribe`), sends `call.transcript` through the call's [`StatusEvents`] (the
//! next `seq`, signed, spooled, retried) and, once it is spooled, removes the job. On start,
//! [`resume`] finishes every job a stopped or killed daemon left the same way.
//!
//! Owns: when transcription runs (only after `call.completed` is on disk; with the config the
//! decision saw, or a resumed job's start-up config), waiting (bounded) for a recording the
//! writer has not finished yet, and the failure rule: a failed transcription is logged
//! (never the API key: the errors do not carry it), counted
//! (`trunkgate_transcripts_failed_total`), and still sends `call.transcript`, with no turns
//! and an `error` code, so a record's `pending` always resolves — across restarts too.
//! Duplicates: a daemon that dies after spooling the event but before removing its job
//! resumes it and spools it again, with the same `event_id` (`evt-<call_id>-<seq>`, the seq
//! kept in the job): at worst a redelivery, which receivers de-duplicate by `event_id` (its
//! turns may differ if the transcriber is not deterministic). The job is on disk before
//! `call.completed` ([`keep_job`]): a daemon that dies between the two leaves the journal's
//! `gateway_restart` record standing for the call, and its transcript follows with the job.
//! Must not: delay `call.completed` beyond the job's write or start-up, block a call worker (file work runs on the
//! blocking pool), retry a transcription within a run, or decide which calls qualify
//! (`core::transcript` does).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::events::StatusEvents;
use super::transcribe::{TranscribeError, Transcriber};
use super::transcript_jobs::Job;
use super::Ctx;
use crate::config::Config;
use crate::core::hooks::callback::CallView;
use crate::core::transcript::{self, TranscriptState, Turn};

/// How long the task waits for a recording the writer is still finishing.
const RECORDING_WAIT: Duration = Duration::from_secs(10);
const RECORDING_POLL: Duration = Duration::from_millis(100);

/// Sets `view.transcript` for a call that has just ended: whether a transcript follows.
pub(super) fn decide(ctx: &Ctx, status: &StatusEvents, view: &mut CallView) {
    let configured = ctx.config().transcription.is_enabled();
    let has_callback = status.transcript_url().is_some();
    view.transcript = Some(transcript::plan(view, configured, has_callback));
}

/// Before `call.completed` is written: a `pending` transcript's job goes to disk first, so no
/// moment exists in which the record says `pending` and nothing on disk would finish it. Its
/// `seq` is the one after `call.completed`'s.
pub(super) async fn keep_job(ctx: &Ctx, status: &StatusEvents, view: &CallView) {
    if view.transcript != Some(TranscriptState::Pending) {
        return;
    }
    let speakers = transcript::speakers(view);
    let seq = status.seq().saturating_add(2);
    if let Some(url) = status.transcript_url() {
        keep(ctx, Job::new(&view.call_id, url, seq, speakers)).await;
    }
}

/// After the record (`view`, as written) is on disk: if it said `pending`, the transcription
/// starts on this runtime, as a task of its own; the call's task does not wait for it.
pub(super) fn spawn(ctx: &Arc<Ctx>, status: StatusEvents, view: &CallView, span: &tracing::Span) {
    if view.transcript != Some(TranscriptState::Pending) {
        return;
    }
    let (ctx, config) = (ctx.clone(), ctx.config());
    let call_id = view.call_id.clone();
    let (left, right) = transcript::speakers(view);
    let speakers = (left.to_string(), right.to_string());
    let task = deliver(ctx, config, call_id, speakers, status);
    tokio::spawn(task.instrument(span.clone()));
}

/// On start: every transcript job a previous run left is finished as a live call's would
/// be, each in a task of its own (the job's URL and seq; the recording as repaired). Reads
/// the jobs off the start-up path; returns at once.
pub(super) fn resume(ctx: &Arc<Ctx>) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let jobs = ctx.transcript_jobs.clone();
        let Ok((pending, _)) = tokio::task::spawn_blocking(move || jobs.pending()).await else {
            return;
        };
        for job in pending {
            let span = tracing::info_span!("call", call_id = %job.call_id);
            tracing::info!(parent: &span, seq = job.seq, "transcript left pending by the previous run; resuming it");
            let status = StatusEvents::resume(job.callback_url, job.seq);
            let task = deliver(ctx.clone(), ctx.config(), job.call_id, job.speakers, status);
            tokio::spawn(task.instrument(span));
        }
    });
}

/// Writes the call's job (on the blocking pool); a failure is logged and the transcript
/// still goes out (only a restart in the meantime would lose it).
async fn keep(ctx: &Ctx, job: Job) {
    let jobs = ctx.transcript_jobs.clone();
    let written = tokio::task::spawn_blocking(move || jobs.write(&job))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot keep the transcript job; a restart before call.transcript is spooled loses it");
    }
}

async fn deliver(
    ctx: Arc<Ctx>,
    config: Arc<Config>,
    call_id: String,
    speakers: (String, String),
    mut status: StatusEvents,
) {
    let labels = (speakers.0.as_str(), speakers.1.as_str());
    let (turns, error) = match transcribe(&ctx, config, &call_id, labels).await {
        Ok(turns) => {
            ctx.stats.transcripts_sent.fetch_add(1, Ordering::Relaxed);
            tracing::info!(turns = turns.len(), "call transcribed");
            (turns, None)
        }
        Err(e) => {
            ctx.stats.transcripts_failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "transcription failed");
            (Vec::new(), Some(e.code()))
        }
    };
    if status
        .transcript(&ctx, &call_id, turns, error)
        .await
        .is_none()
    {
        // `decide` saw the URL (a resumed job has one); nothing can have taken it since.
        tracing::warn!("call.transcript not sent: the call has no callback URL");
    }
    // Spooled: the spool owns its delivery now.
    let jobs = ctx.transcript_jobs.clone();
    let _ = tokio::task::spawn_blocking(move || jobs.remove(&call_id)).await;
}

async fn transcribe(
    ctx: &Ctx,
    config: Arc<Config>,
    call_id: &str,
    speakers: (&str, &str),
) -> Result<Vec<Turn>, TranscribeError> {
    let tls = ctx.tls.clone();
    // Reads the key file: on the blocking pool, like the recording itself.
    let built =
        tokio::task::spawn_blocking(move || Transcriber::from_config(&config.transcription, &tls))
            .await
            .map_err(|e| TranscribeError::Client(e.to_string()))??;
    let transcriber =
        built.ok_or_else(|| TranscribeError::Client("transcription is off".into()))?;
    let path = recording(ctx, call_id).await?;
    transcriber.transcribe(&path, speakers).await
}

/// The call's finished recording, waiting up to [`RECORDING_WAIT`] while the writer still
/// has it as `.part`.
async fn recording(ctx: &Ctx, call_id: &str) -> Result<PathBuf, TranscribeError> {
    let missing = || TranscribeError::Read {
        path: PathBuf::from(format!("{call_id}.wav")),
        source: std::io::ErrorKind::NotFound.into(),
    };
    let recordings = ctx.recordings.as_ref().ok_or_else(missing)?;
    let deadline = tokio::time::Instant::now() + RECORDING_WAIT;
    loop {
        if let Some(path) = recordings.finished(call_id) {
            return Ok(path);
        }
        if !recordings.in_progress(call_id) || tokio::time::Instant::now() >= deadline {
            return Err(missing());
        }
        tokio::time::sleep(RECORDING_POLL).await;
    }
}
