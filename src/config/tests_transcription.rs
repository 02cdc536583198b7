//! Configuration tests for transcripts and recording retention (`[transcription]`,
//! `[recording] retention`): defaults, typed values, and each problem's exact text, key path
//! and line. The shipped template's defaults are checked with every other section's in
//! `tests.rs`.

use std::path::PathBuf;
use std::time::Duration;

use super::tests::{errors, ok, with_examples, ETC};

#[test]
fn defaults_are_off() {
    let c = ok("");
    assert_eq!(c.transcription.url, None);
    assert!(!c.transcription.is_enabled());
    assert_eq!(c.transcription.model, "whisper-1");
    assert_eq!(c.transcription.api_key_file, None);
    assert_eq!(c.transcription.timeout, Duration::from_secs(120));
    assert_eq!(c.recording.retention, None);
    let c =
        ok("[transcription]\nurl = \"\"\napi_key_file = \"\"\n[recording]\nretention = \"0s\"\n");
    assert!(!c.transcription.is_enabled());
    assert_eq!(c.transcription.api_key_file, None);
    assert_eq!(c.recording.retention, None, "0s keeps forever");
}

#[test]
fn values_are_typed() {
    let c = ok(concat!(
        "[transcription]\n",
        "url = \"http://127.0.0.1:9000/v1/audio/transcriptions\"\n",
        "model = \"large-v3\"\n",
        "api_key_file = \"/etc/trunkgate/stt.key\"\n",
        "timeout = \"2m\"\n",
        "[recording]\n",
        "retention = \"720h\"\n",
    ));
    let t = &c.transcription;
    assert!(t.is_enabled());
    assert_eq!(
        t.url.as_deref(),
        Some("http://127.0.0.1:9000/v1/audio/transcriptions")
    );
    assert_eq!(t.model, "large-v3");
    assert_eq!(
        t.api_key_file,
        Some(PathBuf::from("/etc/trunkgate/stt.key"))
    );
    assert_eq!(t.timeout, Duration::from_secs(120));
    assert_eq!(c.recording.retention, Some(Duration::from_secs(720 * 3600)));
    let https = ok("[transcription]\nurl = \"https://stt.example/v1/audio/transcriptions\"\n");
    assert!(https.transcription.is_enabled());
}

#[test]
fn template_example_is_valid() {
    let text = std::fs::read_to_string(ETC).unwrap_or_default();
    let c = ok(&with_examples(&text));
    assert_eq!(
        c.transcription.url.as_deref(),
        Some("https://whisper.example/v1/audio/transcriptions")
    );
    assert_eq!(
        c.transcription.api_key_file,
        Some(PathBuf::from("/etc/trunkgate/transcription.key"))
    );
    assert_eq!(c.recording.retention, Some(Duration::from_secs(720 * 3600)));
}

#[test]
fn problems_name_key_and_line() {
    let text = concat!(
        "[transcription]\n",
        "url = \"ftp://stt.example/v1\"\n",
        "model = \"\"\n",
        "timeout = \"0s\"\n",
        "[recording]\n",
        "retention = \"forever\"\n",
    );
    let got = errors(text);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "t.toml:2: transcription.url: \"ftp://stt.example/v1\" is not a URL starting with http:// or https://",
            "t.toml:3: transcription.model: must not be empty",
            "t.toml:4: transcription.timeout: must be more than 0s",
        ][..],
        "{got}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("t.toml:6: recording.retention:")),
        "{got}"
    );
    assert_eq!(
        errors("[transcription]\ntimeout = 30\n"),
        "t.toml:2: transcription.timeout: 30 has no unit; write e.g. \"30s\" (units: ms, s, m, h)"
    );
    assert_eq!(
        errors("[transcription]\nurl = \"https://\"\n"),
        "t.toml:2: transcription.url: \"https://\" has no host"
    );
    assert_eq!(
        errors("[transcription]\nmodel = \"a\\r\\nb\"\n"),
        "t.toml:2: transcription.model: must not contain control characters"
    );
    assert_eq!(
        errors("[transcription]\nkey = \"x\"\n"),
        "t.toml:2: transcription.key: unknown key; expected one of: url, model, api_key_file, timeout"
    );
    assert_eq!(
        errors("[recording]\nretain = \"1h\"\n"),
        "t.toml:2: recording.retain: unknown key; expected one of: enabled, dir, retention"
    );
    assert!(errors("[transcription]\nurl = 5\n").contains("transcription.url"));
}
