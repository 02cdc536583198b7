//! Agents as the media path sees them: PCM in, PCM out, DTMF in, control events out.
//!
//! WebSocket dialects (twilio, plivo, raw) will implement the same shape behind one trait;
//! `echo` is the built-in demo agent.

pub mod echo;
