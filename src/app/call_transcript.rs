//! A call's way to its `call.transcript` (PROTOCOLS.md §4). At the end, before
//! `call.completed` is written, [`decide`] sets the record's `transcript`
//! (`core::transcript::plan`: `pending`, or why not); once that record is on disk, [`spawn`]
//! starts a task off the call's path that finds the recording, transcribes each channel on
//! its own (`app::transcribe`) and sends `call.transcript` through the call's
//! [`StatusEvents`] (the next `seq`, signed, spooled, retried).
//!
//! Owns: when transcription runs (only after `call.completed` is on disk; with the config the
//! decision saw), waiting (bounded) for a recording the writer has not finished yet, and the
//! failure rule: a failed transcription is logged (never the API key: the errors do not carry
//! it), counted (`trunkgate_transcripts_failed_total`), and still sends `call.transcript`,
//! with no turns and an `error` code, so a record's `pending` always resolves.
//! Must not: delay `call.completed`, block a call worker (file work runs on the blocking
//! pool), retry a transcription, or decide which calls qualify (`core::transcript` does).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::events::StatusEvents;
use super::transcribe::{TranscribeError, Transcriber};
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

/// After the record (`view`, as written) is on disk: if it said `pending`, the transcription
/// starts on this runtime, as a task of its own; the call's task does not wait for it.
pub(super) fn spawn(ctx: &Arc<Ctx>, status: StatusEvents, view: &CallView, span: &tracing::Span) {
    if view.transcript != Some(TranscriptState::Pending) {
        return;
    }
    let (ctx, config) = (ctx.clone(), ctx.config());
    let call_id = view.call_id.clone();
    let speakers = transcript::speakers(view);
    tokio::spawn(deliver(ctx, config, call_id, speakers, status).instrument(span.clone()));
}

async fn deliver(
    ctx: Arc<Ctx>,
    config: Arc<Config>,
    call_id: String,
    speakers: (&'static str, &'static str),
    mut status: StatusEvents,
) {
    let (turns, error) = match transcribe(&ctx, config, &call_id, speakers).await {
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
        // `decide` saw the URL; nothing can have taken it since.
        tracing::warn!("call.transcript not sent: the call has no callback URL");
    }
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
