//! The platform-facing HTTP payloads of PROTOCOLS.md §1 and §4, as pure functions.
//!
//! Owns: the inbound-call webhook request body (`request`), its signature (`sign`, shared with
//! callbacks), the parsing of the platform's answer (`answer`: JSON, TwiML, Plivo XML) and the
//! status callback payloads (`callback`; in Twilio's form fields: `twilio_status`).
//! Must not: do HTTP, retry, spool, or read a clock (timestamps are passed in).

pub mod answer;
pub mod callback;
pub mod failure;
pub mod request;
pub mod sign;
pub mod twilio_status;

pub use answer::{parse_answer, AnswerError, WebhookAnswer};
pub use failure::WebhookFailure;
pub use sign::{signature_header, verify_signature, SIGNATURE_HEADER};
