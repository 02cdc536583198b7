//! Playback control (PROTOCOLS.md §2): `clear` during a long greeting answers the pending mark
//! at once and leaves the caller on silence frames (RTP goes on, no gap), in every dialect;
//! a plivo agent may play 16 kHz L16 on an 8 kHz stream and is heard at the right pitch.

use std::time::Duration;

use trunkgate::core::media::tone::detect_tone;

use super::support::agent::{Action, Dialect, Script, Seen};
use super::support::baresip::TempDir;
use super::support::leg::WAIT;
use super::{check_end, completed, connected, AGENT_HZ};

async fn clear_during_playback(ports: (u16, u16), dialect: Dialect) {
    let dir = TempDir::new("tg-clear").expect("temp dir");
    let script = Script {
        on_start: vec![
            Action::Tone {
                freq: AGENT_HZ,
                ms: 5000,
                chunk_ms: 100,
            },
            Action::Mark("long".into()),
        ],
        on_dtmf: None,
    };
    let mut live = connected(ports, dialect, script, &dir, |_| {}).await;
    assert!(
        live.call
            .caller
            .wait_until(WAIT, |h| h.tone_times(AGENT_HZ).len() >= 10)
            .await,
        "greeting playing"
    );
    live.agent.act(Action::Clear);
    let cleared_at = live
        .agent
        .expect(
            "clear sent",
            WAIT,
            |s| matches!(s, Seen::Did(a) if a == "Clear"),
        )
        .await
        .at;
    let marked = live
        .agent
        .expect(
            "pending mark answered",
            WAIT,
            |s| matches!(s, Seen::Marked(m) if m == "long"),
        )
        .await
        .at;
    assert!(
        marked > cleared_at && marked - cleared_at < Duration::from_millis(300),
        "mark answered {:?} after clear (greeting had ~4.8 s left)",
        marked.saturating_duration_since(cleared_at)
    );
    if dialect != Dialect::Twilio {
        live.agent
            .expect("cleared notice", WAIT, |s| matches!(s, Seen::Cleared))
            .await;
    }
    // 100 ms for frames already in flight, then a second of silence frames, not a gap.
    let from = cleared_at + Duration::from_millis(100);
    let to = from + Duration::from_millis(1000);
    live.call
        .caller
        .wait_until(Duration::from_secs(3), |h| {
            h.packets.last().is_some_and(|p| p.at >= to)
        })
        .await;
    let after = live.call.caller.heard().frames_between(from, to);
    assert!(
        after.len() >= 40,
        "RTP goes on after clear: {} frames",
        after.len()
    );
    let toned = after
        .iter()
        .filter(|f| detect_tone(f, 8000, AGENT_HZ) > 0.5)
        .count();
    let loud = after
        .iter()
        .filter(|f| f.iter().any(|s| s.unsigned_abs() > 100))
        .count();
    assert_eq!((toned, loud), (0, 0), "silence after clear");
    assert_eq!(
        live.call.caller.heard().stream_problems(),
        Vec::<String>::new()
    );

    let bye_at = live.call.hangup().await;
    let want = completed(&live, "caller_hangup", bye_at);
    check_end(&mut live.events, &mut live.cb, &want).await;
    let marks = live
        .agent
        .history
        .iter()
        .filter(|n| matches!(n.seen, Seen::Marked(_)))
        .count();
    assert_eq!(marks, 1, "the cleared mark is answered once");
    assert_eq!(live.agent.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_clear_answers_pending_mark_and_silences() {
    clear_during_playback((34500, 34599), Dialect::Twilio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plivo_clear_answers_pending_mark_and_silences() {
    clear_during_playback((34600, 34699), Dialect::Plivo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_clear_answers_pending_mark_and_silences() {
    clear_during_playback((34700, 34799), Dialect::Raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plivo_agent_plays_16k_on_an_8k_stream() {
    let dir = TempDir::new("tg-mixed-rate").expect("temp dir");
    let script = Script {
        on_start: vec![
            Action::ToneAt {
                freq: AGENT_HZ,
                ms: 600,
                chunk_ms: 30,
                rate: 16000,
            },
            Action::Mark("done".into()),
        ],
        on_dtmf: None,
    };
    let mut live = connected((35700, 35749), Dialect::Plivo, script, &dir, |_| {}).await;
    let start = live.agent.start_msg(WAIT).await;
    assert_eq!(start["start"]["mediaFormat"]["sampleRate"], 8000, "{start}");
    live.agent
        .expect(
            "played",
            WAIT,
            |s| matches!(s, Seen::Marked(m) if m == "done"),
        )
        .await;
    // 600 ms at 16 kHz is 30 frames at 8 kHz of the same pitch (not 60 frames at half pitch).
    assert!(
        live.call
            .caller
            .wait_until(WAIT, |h| h.tone_times(AGENT_HZ).len() >= 28)
            .await,
        "{AGENT_HZ} Hz heard in {} frames",
        live.call.caller.heard().tone_times(AGENT_HZ).len()
    );
    assert!(live.call.caller.heard().tone_times(AGENT_HZ).len() <= 31);
    assert!(live
        .call
        .caller
        .heard()
        .tone_times(AGENT_HZ / 2.0)
        .is_empty());
    let bye_at = live.call.hangup().await;
    let want = completed(&live, "caller_hangup", bye_at);
    check_end(&mut live.events, &mut live.cb, &want).await;
    assert_eq!(live.agent.violations(), Vec::<String>::new());
}
