//! A recording survives `kill -9` (issue 11, PROTOCOLS.md §3): the real `trunkgate` binary
//! records every call (`[recording] enabled`); a call whose caller sends 1000 Hz and whose
//! agent (an in-process WebSocket server) sends 500 Hz is up while `<call_id>.wav.part` grows;
//! SIGKILL; the `.part` is left with a provisional header. A second daemon on the same config
//! repairs it on start: `<call_id>.wav` with RIFF and data sizes matching the bytes present
//! (whole frames), playable (our parser, and `sox --i` when sox is installed), the caller on
//! the left and the agent on the right; the call's `gateway_restart` record points at it and
//! says it is incomplete; the API serves it.
//! Only the recordings directory is polled (bounded, 20 ms steps): nothing else signals it.
//!
//! RTP range 37900-37939, API on 127.0.0.1:37945.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;

use support::baresip::TempDir;
use support::bridge::poll_until;
use support::daemon::Daemon;
use support::http::CallbackServer;
use support::leg::{dial_to, WAIT};
use support::recorded::{assert_caller_left_agent_right, tone_agent};
use support::restart::{files, kill_9, recording, twilio_agent, write_config, Conf};
use support::wav::decode_wav;

const CALLER_HZ: f32 = 1000.0;
const AGENT_HZ: f32 = 500.0;
const API: &str = "127.0.0.1:37945";
const TOKEN: &str = "restart-token";
/// Bytes of one stereo 16-bit frame, and of the WAV header.
const FRAME: u64 = 4;
const HEADER: u64 = 44;

/// The one file in `dir` whose name ends with `suffix`.
fn only(dir: &Path, suffix: &str) -> Option<PathBuf> {
    match files(dir, suffix).as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `sox --i -<flag> <file>`'s answer; `None` when sox is not installed.
fn soxi(flag: &str, file: &Path) -> Option<String> {
    match std::process::Command::new("sox")
        .arg("--i")
        .arg(flag)
        .arg(file)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "sox --i {flag} rejects the file: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("run sox: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_cut_by_kill_9_is_repaired_on_the_next_start() {
    let dir = TempDir::new("tg-rec-restart").expect("temp dir");
    let mut agent = tone_agent(AGENT_HZ, 20_000).await;
    let mut cb = CallbackServer::start(0).await;
    let cfg = write_config(
        dir.path(),
        &Conf {
            ports: (37900, 37939),
            api: Some((API, TOKEN)),
            callback: &cb.url,
            cdr: false,
            extra: recording(dir.path()),
            agent: twilio_agent(&agent.url),
        },
    );
    let rec = dir.path().join("rec");

    let mut first = Daemon::start(&cfg).await;
    let _call = dial_to(first.udp).await.expect_answer(CALLER_HZ).await;
    agent.start_msg(WAIT).await;
    // Two seconds of stereo audio on disk (the writer flushes every 40 ms).
    let want = HEADER + 2 * 8000 * FRAME;
    poll_until("the recording to grow past 2 s", WAIT, || {
        only(&rec, ".wav.part")
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() >= want)
    })
    .await;
    kill_9(&mut first).await;
    let part = only(&rec, ".wav.part").expect("the .part outlives the daemon");
    let name = part
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    let call_id = name.trim_end_matches(".wav.part").to_owned();
    let cut = std::fs::read(&part).expect("read the .part");
    assert!(cut.len() as u64 >= want);
    assert_eq!(
        le_u32(&cut, 40),
        0,
        "the provisional header: the sizes are patched only at the end"
    );
    assert!(only(&rec, ".wav").is_none(), "nothing finished yet");
    assert!(cb.deliveries().is_empty(), "nothing sent for the call yet");

    let second = Daemon::start(&cfg).await;
    // Repaired before the daemon reports itself started.
    assert!(!part.exists(), "the .part is gone");
    let wav_path = rec.join(format!("{call_id}.wav"));
    let bytes = std::fs::read(&wav_path).expect("the repaired <call_id>.wav");
    let len = bytes.len() as u64;
    let data = (cut.len() as u64 - HEADER) / FRAME * FRAME;
    assert_eq!(len, HEADER + data, "cut to whole frames, nothing else lost");
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(u64::from(le_u32(&bytes, 4)), len - 8, "RIFF size");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    assert_eq!(&bytes[36..40], b"data");
    assert_eq!(u64::from(le_u32(&bytes, 40)), data, "data size");
    assert!(bytes[HEADER as usize..] == cut[HEADER as usize..len as usize]);

    let wav = decode_wav(&bytes).expect("our parser reads it");
    assert_eq!((wav.sample_rate, wav.channels), (8000, 2));
    assert!(wav.duration_secs() >= 2.0, "{} s", wav.duration_secs());
    // The second second: the caller's tone left, the agent's right, each far above the other.
    assert_caller_left_agent_right(&wav, 8000..16000, CALLER_HZ, AGENT_HZ);

    // An outside reader agrees (sox: channels, rate, samples per channel).
    match soxi("-c", &wav_path) {
        Some(channels) => {
            assert_eq!(channels, "2");
            assert_eq!(soxi("-r", &wav_path).as_deref(), Some("8000"));
            assert_eq!(soxi("-b", &wav_path).as_deref(), Some("16"));
            assert_eq!(
                soxi("-s", &wav_path),
                Some((data / FRAME).to_string()),
                "sox counts every frame present"
            );
        }
        None => eprintln!("sox is not installed: the outside check is skipped"),
    }

    // The record of the call cut by the crash points at the recording and says it is
    // incomplete.
    let body = cb.success(WAIT).await.json();
    assert_eq!(body["event"], "call.completed", "{body}");
    assert_eq!(body["call_id"], call_id.as_str(), "{body}");
    assert_eq!(body["end_reason"], "gateway_restart", "{body}");
    let url = format!("http://{API}/v1/calls/{call_id}/recording");
    assert_eq!(body["recording_url"], url.as_str(), "{body}");
    assert_eq!(body["recording_complete"], Value::Bool(false), "{body}");

    // And the API of the new daemon serves the repaired file at that URL.
    // reqwest needs a TLS provider even for plain HTTP (the daemon installs it for itself).
    trunkgate::io::tls::install_default_provider();
    let get = reqwest::Client::new().get(&url).bearer_auth(TOKEN).send();
    let resp = tokio::time::timeout(WAIT, get)
        .await
        .expect("the API answers in time")
        .expect("HTTP GET");
    assert_eq!(resp.status().as_u16(), 200);
    let served = resp.bytes().await.expect("body");
    assert!(served == bytes, "the repaired file, byte for byte");
    second.stop().await;
}
