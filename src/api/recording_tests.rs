//! The Range parser, and the file's answers (status, headers, bytes) on a real file.

use super::*;

const TOTAL: u64 = 1000;

fn part(start: u64, end: u64) -> RangeAsk {
    RangeAsk::Part { start, end }
}

#[test]
fn single_ranges() {
    let p = |v: &str| parse_range(Some(v), TOTAL);
    assert_eq!(parse_range(None, TOTAL), RangeAsk::Whole);
    assert_eq!(p("bytes=0-99"), part(0, 99));
    assert_eq!(p("bytes=0-0"), part(0, 0));
    assert_eq!(p("bytes=500-"), part(500, 999));
    assert_eq!(p("bytes=999-"), part(999, 999));
    assert_eq!(p("bytes=-100"), part(900, 999));
    assert_eq!(
        p("bytes=-5000"),
        part(0, 999),
        "suffix longer than the file"
    );
    assert_eq!(p("bytes=990-5000"), part(990, 999), "end cut to the file");
    assert_eq!(p(" bytes=1-2 "), part(1, 2));
    assert_eq!(p("bytes= 1 - 2"), part(1, 2));
}

#[test]
fn unsatisfiable_and_malformed_ranges() {
    let p = |v: &str| parse_range(Some(v), TOTAL);
    for v in [
        "bytes=1000-",
        "bytes=1000-1001",
        "bytes=-0",
        "bytes=5-4",
        "bytes=-",
        "bytes=",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=99999999999999999999999-",
        "items=0-1",
        "0-1",
        "",
    ] {
        assert_eq!(p(v), RangeAsk::Unsatisfiable, "{v:?}");
    }
    assert_eq!(parse_range(Some("bytes=0-"), 0), RangeAsk::Unsatisfiable);
}

#[test]
fn several_ranges_are_served_whole() {
    assert_eq!(parse_range(Some("bytes=0-1,5-9"), TOTAL), RangeAsk::Whole);
    assert_eq!(parse_range(Some("bytes=0-1, -5"), TOTAL), RangeAsk::Whole);
}

struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A 300 000-byte file (several read chunks) whose byte k is `k % 251`.
fn file() -> (TempFile, Vec<u8>) {
    let path = std::env::temp_dir().join(format!(
        "tg-api-recording-{}-{:x}.wav",
        std::process::id(),
        fastrand::u64(..)
    ));
    let bytes: Vec<u8> = (0..300_000u32).map(|k| (k % 251) as u8).collect();
    std::fs::write(&path, &bytes).expect("file");
    (TempFile(path), bytes)
}

async fn answer(path: &Path, range: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut headers = HeaderMap::new();
    if let Some(r) = range {
        headers.insert(header::RANGE, HeaderValue::from_str(r).expect("value"));
    }
    let resp = serve(path, &headers).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, headers, body.to_vec())
}

fn h(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn whole_file() {
    let (f, bytes) = file();
    let (status, headers, body) = answer(&f.0, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h(&headers, header::CONTENT_TYPE), "audio/wav");
    assert_eq!(h(&headers, header::ACCEPT_RANGES), "bytes");
    assert_eq!(h(&headers, header::CONTENT_LENGTH), "300000");
    assert!(headers.get(header::CONTENT_RANGE).is_none());
    assert_eq!(body, bytes);
    let (status, _, body) = answer(&f.0, Some("bytes=0-1,4-5")).await;
    assert_eq!((status, body.len()), (StatusCode::OK, bytes.len()));
}

#[tokio::test]
async fn partial_content() {
    let (f, bytes) = file();
    for (range, start, end) in [
        ("bytes=0-43", 0usize, 43usize),
        ("bytes=70000-200000", 70_000, 200_000),
        ("bytes=299990-", 299_990, 299_999),
        ("bytes=-10", 299_990, 299_999),
        ("bytes=100-999999", 100, 299_999),
    ] {
        let (status, headers, body) = answer(&f.0, Some(range)).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            h(&headers, header::CONTENT_RANGE),
            format!("bytes {start}-{end}/300000")
        );
        assert_eq!(
            h(&headers, header::CONTENT_LENGTH),
            (end - start + 1).to_string()
        );
        assert_eq!(h(&headers, header::CONTENT_TYPE), "audio/wav");
        assert_eq!(body, bytes[start..=end], "{range}");
    }
}

#[tokio::test]
async fn unsatisfiable_is_416_with_the_total() {
    let (f, _) = file();
    for range in ["bytes=300000-", "bytes=9-1", "pages=1-2"] {
        let (status, headers, body) = answer(&f.0, Some(range)).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(h(&headers, header::CONTENT_RANGE), "bytes */300000");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["error"]["code"], "range_not_satisfiable");
    }
}

#[tokio::test]
async fn a_file_gone_is_404() {
    let path = std::env::temp_dir().join("tg-api-recording-no-such-file.wav");
    let (status, _, body) = answer(&path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["error"]["code"], "not_found");
}
