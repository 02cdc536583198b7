//! The control handle: the one thing the HTTP API gets from `app` (ARCHITECTURE.md §2 — `api`
//! sees only the handle it is given). Reads calls from the registry, hands commands to running
//! calls, and answers what health and metrics need.
//!
//! Owns: the rules between a request and a call — a running answered call's `duration_s` is
//! live; DTMF needs an answered call; an ended call takes no commands.
//! Must not: expose `Ctx` or anything else of `app`'s internals, or know about HTTP.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::recording::Recordings;
use super::registry::SendError;
use super::Ctx;
use crate::core::call::{CallId, CallStatus, CallView, Command};

pub use super::dial::{AgentSource, Destination, DialError, DialRequest, Dialed};
pub use super::registry::ListFilter;
pub use super::trunks::TrunkState;

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no such call")]
    NotFound,
    #[error("the call has ended")]
    Ended,
    /// DTMF or a transfer before the call was answered (there is no media to carry it yet).
    #[error("the call has not been answered")]
    NotAnswered,
}

impl From<SendError> for ControlError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NotFound => ControlError::NotFound,
            SendError::Ended => ControlError::Ended,
        }
    }
}

/// A cheap, cloneable handle on the running gateway for the control API.
#[derive(Clone)]
pub struct Control {
    ctx: Arc<Ctx>,
    recordings: Option<Arc<Recordings>>,
}

impl Control {
    pub(super) fn new(ctx: Arc<Ctx>) -> Control {
        Control {
            ctx,
            recordings: None,
        }
    }

    /// The call's view (running, or ended within `[api] call_retention`).
    pub fn get(&self, id: &str) -> Option<CallView> {
        let view = self
            .ctx
            .registry
            .get(&CallId::from_string(id.to_string()))?;
        Some(live(view, jiff::Timestamp::now()))
    }

    /// Up to `limit` calls, newest first.
    pub fn list(&self, filter: ListFilter, limit: usize) -> Vec<CallView> {
        let now = jiff::Timestamp::now();
        self.ctx
            .registry
            .list(filter, limit)
            .into_iter()
            .map(|v| live(v, now))
            .collect()
    }

    /// Hands `cmd` to the running call; it acts on it asynchronously.
    pub fn send(&self, id: &str, cmd: Command) -> Result<(), ControlError> {
        let id = CallId::from_string(id.to_string());
        if let Command::Dtmf { .. } | Command::Transfer(_) = cmd {
            let view = self.ctx.registry.get(&id).ok_or(ControlError::NotFound)?;
            if !view.status.is_active() {
                return Err(ControlError::Ended);
            }
            if view.status != CallStatus::InProgress {
                return Err(ControlError::NotAnswered);
            }
        }
        Ok(self.ctx.registry.send(&id, cmd)?)
    }

    /// Places a call (outbound admission first; a refusal leaves a record). Returns at once:
    /// the call rings in its own task. With an idempotency key, a key seen within 24 h
    /// returns the first call instead (see [`super::idempotency`]).
    pub fn dial(&self, req: DialRequest) -> Result<Dialed, DialError> {
        if self.draining() {
            return Err(DialError::Draining);
        }
        let Some(key) = req.idempotency_key.clone() else {
            return super::outbound::place(&self.ctx, req);
        };
        let fingerprint = super::idempotency::fingerprint(&req);
        let now = std::time::Instant::now();
        let place = || super::outbound::place(&self.ctx, req);
        self.ctx
            .idempotency
            .dial_once(&key, fingerprint, now, place)
    }

    /// Draining for shutdown: new calls are refused (`/readyz` says 503).
    pub fn draining(&self) -> bool {
        self.ctx.draining.load(Ordering::Relaxed)
    }

    /// Every registering trunk's REGISTER state, in configuration order.
    pub fn trunks(&self) -> Vec<TrunkState> {
        self.ctx.trunks.snapshot()
    }

    /// Counts an API request refused for missing or wrong credentials (`/metrics`).
    pub fn count_auth_failure(&self) {
        self.ctx
            .stats
            .api_auth_failures
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text of every counter.
    pub fn metrics(&self) -> String {
        super::metrics::render(&self.ctx)
    }
}

/// A running answered call's duration so far (the call task updates its view only on status
/// changes); anything else is shown as stored.
fn live(mut view: CallView, now: jiff::Timestamp) -> CallView {
    if view.status != CallStatus::InProgress {
        return view;
    }
    let answered = view
        .answered_at
        .as_deref()
        .and_then(|a| a.parse::<jiff::Timestamp>().ok());
    if let Some(at) = answered {
        let us = now.as_microsecond().saturating_sub(at.as_microsecond());
        view.duration_s = us.max(0) as f64 / 1e6;
    }
    view
}

/// Where a call's recording stands, for `GET /v1/calls/{id}/recording`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingLookup {
    /// The finished WAV file.
    Finished(std::path::PathBuf),
    /// Still being written.
    InProgress,
    /// No recording (not recorded, unknown call, expired, or recordings are off).
    None,
}

impl Control {
    /// The handle with the recordings directory the call driver writes into.
    pub fn with_recordings(mut self, recordings: Option<Arc<Recordings>>) -> Control {
        self.recordings = recordings;
        self
    }

    /// The call's recording, finished or still being written.
    pub fn recording(&self, id: &CallId) -> RecordingLookup {
        let Some(recs) = &self.recordings else {
            return RecordingLookup::None;
        };
        if recs.in_progress(id.as_str()) {
            return RecordingLookup::InProgress;
        }
        match recs.finished(id.as_str()) {
            Some(path) => RecordingLookup::Finished(path),
            None => RecordingLookup::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::call::Direction;

    #[test]
    fn live_duration_only_for_answered_running_calls() {
        let now: jiff::Timestamp = "2025-01-15T10:31:00Z".parse().unwrap_or_default();
        let mut v = CallView::new("CA1", Direction::Inbound, "2025-01-15T10:30:00Z".into());
        v.answered_at = Some("2025-01-15T10:30:12.500Z".into());
        assert_eq!(live(v.clone(), now).duration_s, 0.0, "queued");
        v.status = CallStatus::InProgress;
        assert_eq!(live(v.clone(), now).duration_s, 47.5);
        v.status = CallStatus::Completed;
        v.duration_s = 3.0;
        assert_eq!(live(v.clone(), now).duration_s, 3.0, "final view as stored");
        v.status = CallStatus::InProgress;
        v.answered_at = Some("not a time".into());
        assert_eq!(live(v, now).duration_s, 3.0);
    }
}
