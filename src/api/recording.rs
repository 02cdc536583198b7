//! `GET /v1/calls/{id}/recording` (PROTOCOLS.md §3): the call's stereo WAV (left = caller,
//! right = agent), with HTTP Range (RFC 9110 §14).
//!
//! Answers: 200 `audio/wav`, the whole file, `Accept-Ranges: bytes`; one range
//! (`bytes=a-b`, `bytes=a-`, `bytes=-n`) → 206 with `Content-Range: bytes a-b/total` (an end
//! past the file is cut to its last byte); a range starting past the end, `bytes=-0`, or a
//! header that is not one byte range → 416 with `Content-Range: bytes */total`; several
//! ranges (`bytes=0-1,5-9`) are served as 200 with the whole file (RFC 9110 lets a server
//! ignore Range; no multipart). Bodies are streamed from the file in 64 KiB reads, so a
//! response holds at most one read in memory whatever the range. 409 `recording_in_progress`
//! while the call is still being recorded; 404 `not_found` when there is no recording.
//!
//! Owns: the Range parser and the file's answer. Must not: know where recordings live or
//! how they are written (the [`Control`](crate::app::control::Control) handle says).

use std::path::Path;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{Api, ApiError};
use crate::app::control::RecordingLookup;
use crate::core::call::CallId;

/// Bytes read from the file per body chunk.
const READ_CHUNK: usize = 64 * 1024;

/// What a `Range` header asks of a file of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeAsk {
    /// No header, or several ranges: the whole file, 200.
    Whole,
    /// Bytes `start..=end` (both inside the file), 206.
    Part { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

/// Reads a `Range` header value against a file of `total` bytes.
pub(super) fn parse_range(value: Option<&str>, total: u64) -> RangeAsk {
    let Some(value) = value else {
        return RangeAsk::Whole;
    };
    let Some(spec) = value
        .trim()
        .strip_prefix("bytes=")
        .or_else(|| value.trim().strip_prefix("BYTES="))
    else {
        return RangeAsk::Unsatisfiable;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Unsatisfiable;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if total == 0 {
        return RangeAsk::Unsatisfiable;
    }
    match (first.is_empty(), last.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(last) {
            Some(n) if n > 0 => RangeAsk::Part {
                start: total.saturating_sub(n),
                end: total - 1,
            },
            _ => RangeAsk::Unsatisfiable,
        },
        // bytes=a-
        (false, true) => match number(first) {
            Some(start) if start < total => RangeAsk::Part {
                start,
                end: total - 1,
            },
            _ => RangeAsk::Unsatisfiable,
        },
        // bytes=a-b
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end && start < total => RangeAsk::Part {
                start,
                end: end.min(total - 1),
            },
            _ => RangeAsk::Unsatisfiable,
        },
        (true, true) => RangeAsk::Unsatisfiable,
    }
}

pub(super) async fn get(
    State(api): State<Api>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    match api.control.recording(&CallId::from_string(id.clone())) {
        RecordingLookup::Finished(path) => serve(&path, &headers).await,
        RecordingLookup::InProgress => ApiError::conflict(
            "recording_in_progress",
            format!("the recording of call {id} is still being written"),
        )
        .into_response(),
        RecordingLookup::None => missing(&id).into_response(),
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("no recording for call {id}"))
}

/// The file's answer to `headers` (its `Range`).
pub(super) async fn serve(path: &Path, headers: &HeaderMap) -> Response {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        // Swept between the lookup and now.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return ApiError::not_found("no recording for this call").into_response()
        }
        Err(e) => return unreadable(path, e),
    };
    let total = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return unreadable(path, e),
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match headers.get(header::RANGE) {
        Some(_) if range.is_none() => RangeAsk::Unsatisfiable,
        _ => parse_range(range, total),
    };
    let (status, start, len) = match range {
        RangeAsk::Whole => (StatusCode::OK, 0, total),
        RangeAsk::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        RangeAsk::Unsatisfiable => {
            let mut resp = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("Range must be one byte range within the file's {total} bytes"),
            )
            .into_response();
            insert(&mut resp, header::CONTENT_RANGE, format!("bytes */{total}"));
            return resp;
        }
    };
    if start > 0 {
        if let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await {
            return unreadable(path, e);
        }
    }
    let body = Body::from_stream(futures_util::stream::unfold(
        (file, len),
        |(mut file, left)| async move {
            if left == 0 {
                return None;
            }
            let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            match file.read(&mut buf).await {
                // The file shrank under us: end early (the connection reports the short body).
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
                }
                Err(e) => Some((Err(e), (file, 0))),
            }
        },
    ));
    let mut resp = (status, body).into_response();
    insert(&mut resp, header::CONTENT_TYPE, "audio/wav".to_string());
    insert(&mut resp, header::ACCEPT_RANGES, "bytes".to_string());
    insert(&mut resp, header::CONTENT_LENGTH, len.to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + len - 1;
        insert(
            &mut resp,
            header::CONTENT_RANGE,
            format!("bytes {start}-{end}/{total}"),
        );
    }
    resp
}

fn insert(resp: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(name, v);
    }
}

fn unreadable(path: &Path, e: std::io::Error) -> Response {
    tracing::warn!(path = %path.display(), error = %e, "cannot read a recording");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the recording cannot be read",
    )
    .into_response()
}

#[cfg(test)]
#[path = "recording_tests.rs"]
mod tests;
