//! A recorded agent call over real sockets: the webhook answer says `record: true`; the
//! caller sends a 1000 Hz tone, the agent a 500 Hz one. The stereo WAV found through the
//! control handle (what `GET /v1/calls/{id}/recording` serves) carries the caller on the
//! left and the agent on the right, and the record names it with `recording_complete`.

use super::support::baresip::TempDir;
use super::support::http::CallbackServer;
use super::support::leg::dial;
use super::support::recorded::{
    assert_caller_left_agent_right, ended_record, hears_the_caller, recording_webhook, tone_agent,
};
use super::support::wav::read_wav;
use super::{setup, AGENT_HZ, CALLER_HZ};
use trunkgate::app::control::RecordingLookup;
use trunkgate::core::call::CallId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_has_the_caller_left_and_the_agent_right() {
    let dir = TempDir::new("tg-record").expect("temp dir");
    let mut agent = tone_agent(AGENT_HZ, 1500).await;
    let hook = recording_webhook(&agent).await;
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
    hears_the_caller(&mut agent).await;
    call.hangup().await;
    let record = ended_record(&mut events).await;
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
    // The first second: the caller's tone on the left, the agent's on the right, each
    // far above the other's.
    assert_caller_left_agent_right(&wav, 800..8800, CALLER_HZ, AGENT_HZ);
}
