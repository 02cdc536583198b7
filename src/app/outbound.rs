//! Placing calls: outbound admission, the trunk and its flow, the call task of a UAC call.
//!
//! Must not: parse API requests (the API hands over a validated [`DialRequest`]) or remember
//! idempotency keys (the control handle does).

use std::sync::Arc;

use super::dial::{DialError, DialRequest, Dialed};
use super::Ctx;

/// Admits and places one call; returns at once (the call rings in its own task).
pub(super) fn place(ctx: &Arc<Ctx>, req: DialRequest) -> Result<Dialed, DialError> {
    let _ = (ctx, req);
    Err(DialError::NoTrunk(
        "outbound calls are not wired yet".into(),
    ))
}
