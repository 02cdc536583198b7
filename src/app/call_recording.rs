//! The call driver's side of a recording: the machine's chunks go to the writer without
//! waiting; at the end the file is closed and the record told where it is and whether it is
//! whole.
//!
//! Must not: touch the audio (the machine's tap interleaves it) or block the call's runtime.

use super::{Driver, Ended};

impl Driver {
    /// A chunk of the recording goes to the writer (never waiting for it).
    pub(super) fn record(&mut self, chunk: Vec<i16>) {
        if self.recording.is_none() {
            self.recording = self
                .ctx
                .recordings
                .as_ref()
                .and_then(|r| r.start(self.call.id().as_str()));
            if self.recording.is_none() {
                self.recording_lost = true;
            }
        }
        if let Some(rec) = &mut self.recording {
            if !rec.push(chunk) {
                self.recording_lost = true;
            }
        }
    }

    /// The call is over: the rest of the recording, the file closed, and the record told
    /// where it is and whether it is whole.
    pub(super) async fn finish_recording(&mut self, ended: &mut Ended) {
        if !self.call.is_recorded() {
            return;
        }
        if let Some(rest) = self.call.take_recording(true) {
            self.record(rest);
        }
        let Some(rec) = self.recording.take() else {
            if self.recording_lost {
                ended.view.recording_complete = Some(false);
            }
            return;
        };
        let outcome = tokio::task::spawn_blocking(move || rec.finish()).await;
        let complete = outcome.as_ref().is_ok_and(|o| o.complete) && !self.recording_lost;
        let id = self.call.id();
        // The API's bound address (`[api] listen` may say port 0).
        let api = self.ctx.api_addr.get().copied().or(self.config.api.listen);
        ended.view.recording_url = Some(crate::app::recording::url(api, id.as_str()));
        ended.view.recording_complete = Some(complete);
        if !complete {
            tracing::warn!("the recording is incomplete (queue full or a write failed)");
        }
    }
}
