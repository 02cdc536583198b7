//! Validation of `[transcription]`: the OpenAI-compatible `/v1/audio/transcriptions` endpoint
//! that turns each recorded channel into text (PROTOCOLS.md §4 `call.transcript`).
//!
//! Owns the section's defaults (they must match `etc/trunkgate.toml`) and per-key rules. Must
//! not read the key file (it is read when the transcriber is built: [`super::secret`]).

use std::time::Duration;

use super::error::Problems;
use super::schema::RawTranscription;
use super::types::TranscriptionConfig;
use super::validate::{duration, has_control, http_url, optional_path, span_of};

const DEFAULT_MODEL: &str = "whisper-1";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn transcription(
    ctx: &mut Problems<'_>,
    raw: Option<&RawTranscription>,
) -> TranscriptionConfig {
    let default = RawTranscription::default();
    let raw = raw.unwrap_or(&default);
    let model = match &raw.model {
        None => DEFAULT_MODEL.to_string(),
        Some(sp) if sp.value.is_empty() => {
            ctx.push("transcription.model", &sp.span, "must not be empty");
            DEFAULT_MODEL.to_string()
        }
        Some(sp) if has_control(&sp.value) => {
            let msg = "must not contain control characters";
            ctx.push("transcription.model", &sp.span, msg);
            DEFAULT_MODEL.to_string()
        }
        Some(sp) => sp.value.clone(),
    };
    let timeout = duration(ctx, "transcription.timeout", &raw.timeout, DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        let span = span_of(&raw.timeout);
        ctx.push("transcription.timeout", &span, "must be more than 0s");
    }
    TranscriptionConfig {
        url: http_url(ctx, "transcription.url", &raw.url),
        model,
        api_key_file: optional_path(&raw.api_key_file, None),
        timeout,
    }
}
