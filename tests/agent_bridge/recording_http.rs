//! `GET /v1/calls/{id}/recording` over real HTTP (PROTOCOLS.md §3, RFC 9110 §14): a recorded
//! agent call (caller 1000 Hz, agent 500 Hz) on a gateway whose control API listens on a
//! loopback port with a bearer token. While the call is up the recording is 409; afterwards
//! the record's `recording_url` is fetched as it stands and serves the file on disk byte for
//! byte — whole (200, `Accept-Ranges: bytes`), the 44-byte header (`bytes=0-43`), a suffix
//! (`bytes=-100`), an open range (`bytes=1000-`) — and refuses a range past the end (416 with
//! `Content-Range: bytes */<len>`), a wrong token (401) and an unknown call (404), each in
//! the API's `{"error":{"code","message"}}` shape.
//!
//! RTP range 37850-37899.

use reqwest::header::{HeaderMap, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use serde_json::Value;
use trunkgate::app::{Gateway, GatewayEvent};

use super::support::baresip::TempDir;
use super::support::gw::wait_event;
use super::support::http::CallbackServer;
use super::support::leg::{dial, WAIT};
use super::support::recorded::{
    amp, channels, ended_record, hears_the_caller, recording_webhook, tone_agent,
};
use super::support::wav::decode_wav;
use super::{setup, AGENT_HZ, CALLER_HZ};

const TOKEN: &str = "rec-token-1";

/// One HTTP answer: status, headers, body bytes.
struct Got {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: reqwest::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The API's error shape with this code.
    fn assert_error(&self, status: u16, code: &str) {
        let body = self.json();
        assert_eq!(self.status, status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(
            self.header(CONTENT_TYPE)
                .is_some_and(|t| t.starts_with("application/json")),
            "{:?}",
            self.headers
        );
    }
}

async fn get(url: &str, token: &str, range: Option<&str>) -> Got {
    let mut req = reqwest::Client::new().get(url).bearer_auth(token);
    if let Some(r) = range {
        req = req.header(reqwest::header::RANGE, r);
    }
    let resp = tokio::time::timeout(WAIT, req.send())
        .await
        .expect("the API answers in time")
        .expect("HTTP request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = tokio::time::timeout(WAIT, resp.bytes())
        .await
        .expect("the body in time")
        .expect("body")
        .to_vec();
    Got {
        status,
        headers,
        body,
    }
}

/// A 206 for `range` with `Content-Range: bytes a-b/len` and exactly `file[a..=b]`.
async fn expect_part(url: &str, range: &str, file: &[u8], start: usize, end: usize) -> Got {
    let got = get(url, TOKEN, Some(range)).await;
    let len = file.len();
    assert_eq!(got.status, 206, "{range}: {:?}", got.headers);
    assert_eq!(
        got.header(CONTENT_RANGE),
        Some(format!("bytes {start}-{end}/{len}").as_str()),
        "{range}"
    );
    assert_eq!(
        got.header(CONTENT_LENGTH),
        Some((end - start + 1).to_string().as_str()),
        "{range}"
    );
    assert_eq!(got.header(CONTENT_TYPE), Some("audio/wav"), "{range}");
    assert_eq!(got.header(ACCEPT_RANGES), Some("bytes"), "{range}");
    assert!(
        got.body == file[start..=end],
        "{range}: {} bytes, not the file's {start}..={end}",
        got.body.len()
    );
    got
}

async fn start(s: &super::support::bridge::Setup, dir: &TempDir) -> Gateway {
    let token_file = dir.path().join("api.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let text = s.config_text();
    let api = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
        token_file.display()
    );
    assert!(text.contains("[api]\nlisten = \"\""), "{text}");
    let text = text.replace("[api]\nlisten = \"\"", &api);
    let cfg = trunkgate::config::parse(&text, "test").unwrap_or_else(|e| panic!("config: {e}"));
    Gateway::start(cfg).await.expect("gateway starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_is_served_with_ranges_over_http() {
    let dir = TempDir::new("tg-record-http").expect("temp dir");
    let mut agent = tone_agent(AGENT_HZ, 1500).await;
    let hook = recording_webhook(&agent).await;
    let cb = CallbackServer::start(0).await;
    let mut s = setup((37850, 37899), &dir, &cb);
    s.webhook_url = Some(hook.url.clone());
    let rec_dir = dir.path().join("rec");
    s.extra = format!("[recording]\ndir = \"{}\"\n", rec_dir.display());
    let gw = start(&s, &dir).await;
    let base = format!("http://{}", gw.api_addr.expect("the API listens"));
    let mut events = gw.subscribe();
    let mut call = dial(&gw).await.expect_answer(CALLER_HZ).await;
    let started = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallStarted { .. })
    })
    .await;
    let GatewayEvent::CallStarted { call_id, .. } = started else {
        unreachable!()
    };
    hears_the_caller(&mut agent).await;
    // Still being written: not served yet.
    let path = format!("/v1/calls/{call_id}/recording");
    get(&format!("{base}{path}"), TOKEN, None)
        .await
        .assert_error(409, "recording_in_progress");
    call.hangup().await;
    let record = ended_record(&mut events).await;
    assert_eq!(record.call.call_id, call_id);
    assert_eq!(record.call.recording_complete, Some(true), "{record:?}");
    // The record's URL is the API's real address: fetched as it stands.
    let url = record.call.recording_url.clone().unwrap_or_default();
    assert_eq!(url, format!("{base}{path}"), "{record:?}");

    let file = std::fs::read(rec_dir.join(format!("{call_id}.wav"))).expect("the finished file");
    let len = file.len();
    assert!(
        len > 44 + 4 * 8000,
        "over a second of stereo audio: {len} bytes"
    );

    let whole = get(&url, TOKEN, None).await;
    assert_eq!(whole.status, 200, "{:?}", whole.headers);
    assert_eq!(whole.header(CONTENT_TYPE), Some("audio/wav"));
    assert_eq!(whole.header(ACCEPT_RANGES), Some("bytes"));
    assert_eq!(whole.header(CONTENT_LENGTH), Some(len.to_string().as_str()));
    assert_eq!(whole.header(CONTENT_RANGE), None);
    assert!(whole.body == file, "the whole file, byte for byte");
    // What was served is the call: caller left, agent right.
    let wav = decode_wav(&whole.body).expect("a WAV");
    assert_eq!((wav.sample_rate, wav.channels), (8000, 2));
    let (left, right) = channels(&wav);
    let (l, r) = (&left[800..8800], &right[800..8800]);
    assert!(amp(l, CALLER_HZ) > 10.0 * amp(l, AGENT_HZ).max(0.005));
    assert!(amp(r, AGENT_HZ) > 10.0 * amp(r, CALLER_HZ).max(0.005));

    // The header alone: 44 bytes, RIFF/WAVE, data size = the rest of the file.
    let head = expect_part(&url, "bytes=0-43", &file, 0, 43).await;
    assert_eq!(&head.body[0..4], b"RIFF");
    assert_eq!(&head.body[8..12], b"WAVE");
    assert_eq!(&head.body[36..40], b"data");
    let data_len = u32::from_le_bytes([head.body[40], head.body[41], head.body[42], head.body[43]]);
    assert_eq!(data_len as usize, len - 44);
    // A suffix, an open range, an end past the file (cut to its last byte).
    expect_part(&url, "bytes=-100", &file, len - 100, len - 1).await;
    expect_part(&url, "bytes=1000-", &file, 1000, len - 1).await;
    expect_part(
        &url,
        &format!("bytes=44-{}", len + 5000),
        &file,
        44,
        len - 1,
    )
    .await;

    // Past the end: 416 naming the length.
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 1, len + 9),
    ] {
        let bad = get(&url, TOKEN, Some(&range)).await;
        bad.assert_error(416, "range_not_satisfiable");
        assert_eq!(
            bad.header(CONTENT_RANGE),
            Some(format!("bytes */{len}").as_str()),
            "{range}"
        );
    }
    // A wrong token, an unknown call.
    let denied = get(&url, "rec-token-2", None).await;
    denied.assert_error(401, "unauthorized");
    assert!(denied.body.len() < 1000, "no audio without the token");
    get(
        &format!("{base}/v1/calls/CA0000000000000000000000000000dead/recording"),
        TOKEN,
        None,
    )
    .await
    .assert_error(404, "not_found");
    // The call's own resource names the same URL.
    let view = get(&format!("{base}/v1/calls/{call_id}"), TOKEN, None).await;
    assert_eq!(view.status, 200, "{}", view.json());
    assert_eq!(
        view.json()["recording_url"],
        url.as_str(),
        "{}",
        view.json()
    );
}
