//! How an answered call is billed (`[billing]`, seeds/003: "the first minute in full, then
//! per second; silent or disconnected time is never charged").
//!
//! Owns: the billing rule and the record's account of it ([`Basis`]).
//! Must not: read a clock or know where durations come from.

use serde::{Deserialize, Serialize};

/// What the billed seconds counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counted {
    /// The whole answered duration.
    Duration,
    /// Only the seconds in which someone spoke (`exclude_silence = true`).
    Speech,
}

/// The record's account of how `billable_s` was computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Basis {
    pub counted: Counted,
    /// The seconds counted before the minimum and the increment were applied.
    pub counted_s: f64,
    pub minimum_s: u32,
    pub increment_s: u32,
}
