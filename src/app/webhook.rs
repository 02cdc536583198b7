//! Asking the webhook which agent takes a call (PROTOCOLS.md §1): an inbound call while it
//! rings (`[webhook] url`, in `[webhook] format`), or an outbound call placed with Twilio's
//! `Url` once the callee has answered (that URL, always in Twilio's form).

use super::Ctx;
use crate::config::{Config, WebhookFormat as CfgFormat};
use crate::core::hooks::answer::{parse_answer, AnswerError, WebhookAnswer, MAX_ANSWER_BYTES};
use crate::core::hooks::request::{self, IncomingCall, WebhookFormat};
use crate::io::http::signed_post;

pub use crate::core::hooks::WebhookFailure;

pub async fn ask(
    ctx: &Ctx,
    config: &Config,
    url: &str,
    call: &IncomingCall,
) -> Result<WebhookAnswer, WebhookFailure> {
    let format = match (&call.outbound_url, config.webhook.format) {
        (Some(_), _) | (None, CfgFormat::TwilioForm) => WebhookFormat::TwilioForm,
        (None, CfgFormat::Json) => WebhookFormat::Json,
    };
    let body = request::body(format, call, &config.api.account_sid);
    let resp = signed_post(
        &ctx.http,
        url,
        format.content_type(),
        &[(
            "Accept",
            "application/json, application/xml;q=0.9, text/xml;q=0.9",
        )],
        body,
        ctx.secret.as_deref().map(Vec::as_slice),
        Some(config.webhook.timeout),
    )
    .await
    .map_err(|e| {
        if e.is_timeout() {
            WebhookFailure::Timeout
        } else {
            WebhookFailure::Transport(e.to_string())
        }
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(WebhookFailure::Status(status.as_u16()));
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Read at most MAX_ANSWER_BYTES: a runaway answer must not eat memory.
    let mut resp = resp;
    let mut bytes = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            if e.is_timeout() {
                WebhookFailure::Timeout
            } else {
                WebhookFailure::Transport(e.to_string())
            }
        })?;
        let Some(chunk) = chunk else { break };
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(AnswerError::TooLarge {
                len: bytes.len() + chunk.len(),
                max: MAX_ANSWER_BYTES,
            }
            .into());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(parse_answer(content_type.as_deref(), &bytes)?)
}
