//! A recorded agent call over real sockets: the webhook answer says `record: true`; the
//! caller sends a 1000 Hz tone, the agent a 500 Hz one. The stereo WAV found through the
//! control handle (what `GET /v1/calls/{id}/recording` serves) carries the caller on the
//! left and the agent on the right, and the record names it with `recording_complete`.

use serde_json::json;

use super::support::agent::{Action, AgentServer, Dialect, Script};
use super::support::baresip::TempDir;
use super::support::gw::wait_event;
use super::support::http::{Answer, CallbackServer, WebhookServer};
use super::support::leg::{dial, WAIT};
use super::support::wav::{read_wav, tone_amplitude};
use super::{setup, AGENT_HZ, CALLER_HZ};
use trunkgate::app::control::RecordingLookup;
use trunkgate::app::GatewayEvent;
use trunkgate::core::call::CallId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_has_the_caller_left_and_the_agent_right() {
    let dir = TempDir::new("tg-record").expect("temp dir");
    let script = Script {
        on_start: vec![Action::Tone {
            freq: AGENT_HZ,
            ms: 1500,
            chunk_ms: 20,
        }],
        on_dtmf: None,
    };
    let mut agent = AgentServer::start(Dialect::Twilio, script).await;
    let hook = WebhookServer::start(Answer::json(json!({"websocket_url": agent.url,
        "dialect": "twilio", "sample_rate": 8000, "record": true})))
    .await;
    let cb = CallbackServer::start(0).await;
    let mut s = setup((37750, 37799), &dir, &cb);
    s.webhook_url = Some(hook.url.clone());
    s.extra = format!(
        "[recording]\ndir = \"{}\"\n",
        dir.path().join("rec").display()
    );
    let gw = s.start().await;
    let mut events = gw.subscribe();
    let mut call = dial(&gw).await.expect_answer(CALLER_HZ).await;
    agent.start_msg(WAIT).await;
    assert!(
        agent.wait_heard(WAIT, |h| h.frames >= 75).await,
        "1.5 s of caller audio reaches the agent"
    );
    call.hangup().await;
    let ended = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded { record, .. } = ended else {
        unreachable!()
    };
    let id = record.call.call_id.clone();
    assert_eq!(record.call.recording_complete, Some(true), "{record:?}");
    assert!(record
        .call
        .recording_url
        .as_deref()
        .is_some_and(|u| u.ends_with(&format!("/v1/calls/{id}/recording"))));
    let path = match gw.control().recording(&CallId::from_string(id.clone())) {
        RecordingLookup::Finished(p) => p,
        other => panic!(
            "no finished recording: {:?}",
            matches!(other, RecordingLookup::InProgress)
        ),
    };
    let wav = read_wav(&path).expect("a readable WAV");
    assert_eq!((wav.sample_rate, wav.channels), (8000, 2));
    assert!(wav.duration_secs() >= 1.0, "{} s", wav.duration_secs());
    let left: Vec<i16> = wav.samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = wav.samples.iter().skip(1).step_by(2).copied().collect();
    // The first second: the caller's tone on the left, the agent's on the right, each
    // far above the other's.
    let (l, r) = (&left[800..8800], &right[800..8800]);
    let (l_caller, l_agent) = (
        tone_amplitude(l, 8000, f64::from(CALLER_HZ)),
        tone_amplitude(l, 8000, f64::from(AGENT_HZ)),
    );
    let (r_caller, r_agent) = (
        tone_amplitude(r, 8000, f64::from(CALLER_HZ)),
        tone_amplitude(r, 8000, f64::from(AGENT_HZ)),
    );
    assert!(
        l_caller > 0.05 && l_caller > 10.0 * l_agent,
        "left {l_caller} vs {l_agent}"
    );
    assert!(
        r_agent > 0.05 && r_agent > 10.0 * r_caller,
        "right {r_agent} vs {r_caller}"
    );
}
