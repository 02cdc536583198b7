//! Why the inbound-call webhook gave no usable answer, and what that means for the caller.

use super::answer::AnswerError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookFailure {
    #[error("webhook timed out")]
    Timeout,
    #[error("webhook answered HTTP {0}")]
    Status(u16),
    #[error("webhook unreachable: {0}")]
    Transport(String),
    #[error("webhook answer unusable: {0}")]
    Answer(#[from] AnswerError),
}

impl WebhookFailure {
    /// Stable name for logs, metrics and the CDR.
    pub fn as_str(&self) -> &'static str {
        match self {
            WebhookFailure::Timeout => "webhook_timeout",
            WebhookFailure::Status(_) => "webhook_http_error",
            WebhookFailure::Transport(_) => "webhook_unreachable",
            WebhookFailure::Answer(_) => "webhook_bad_answer",
        }
    }

    /// What the caller hears when no static agent can take over.
    pub fn sip_status(&self) -> u16 {
        match self {
            WebhookFailure::Timeout => 480,
            _ => 503,
        }
    }
}
