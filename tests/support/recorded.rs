//! Recorded agent calls in tests: an agent (Twilio dialect) that plays a tone from the
//! start, the inbound webhook answer that bridges to it with `record: true`, the ended
//! call's record, and the stereo recording's channels (caller left, agent right) told apart
//! by their tones.
//! Must not: wait without a bound (every wait is [`WAIT`]).

#![allow(dead_code)]

use std::ops::Range;

use serde_json::json;
use tokio::sync::broadcast;
use trunkgate::app::GatewayEvent;
use trunkgate::core::hooks::callback::CallCompleted;

use super::agent::{Action, AgentServer, Dialect, Script};
use super::gw::wait_event;
use super::http::{Answer, WebhookServer};
use super::leg::WAIT;
use super::wav::{tone_amplitude, Wav};

/// The agent's script: `freq` Hz for `ms` in 20 ms chunks once the stream starts, no DTMF.
pub fn tone_script(freq: f32, ms: u32) -> Script {
    Script {
        on_start: vec![Action::Tone {
            freq,
            ms,
            chunk_ms: 20,
        }],
        on_dtmf: None,
    }
}

/// A Twilio-dialect agent following [`tone_script`].
pub async fn tone_agent(freq: f32, ms: u32) -> AgentServer {
    AgentServer::start(Dialect::Twilio, tone_script(freq, ms)).await
}

/// A webhook whose answer bridges every call to `agent` (Twilio, 8 kHz) and records it.
pub async fn recording_webhook(agent: &AgentServer) -> WebhookServer {
    WebhookServer::start(Answer::json(json!({"websocket_url": agent.url,
        "dialect": "twilio", "sample_rate": 8000, "record": true})))
    .await
}

/// The record of the next call to end.
pub async fn ended_record(events: &mut broadcast::Receiver<GatewayEvent>) -> Box<CallCompleted> {
    let ended = wait_event(events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded { record, .. } = ended else {
        unreachable!()
    };
    record
}

/// A stereo recording's left and right channels.
pub fn channels(wav: &Wav) -> (Vec<i16>, Vec<i16>) {
    let left = wav.samples.iter().step_by(2).copied().collect();
    let right = wav.samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// The `hz` component of 8 kHz `samples` (0.0..=1.0 of full scale).
pub fn amp(samples: &[i16], hz: f32) -> f64 {
    tone_amplitude(samples, 8000, f64::from(hz))
}

/// Over `frames` of an 8 kHz stereo recording: the caller's tone on the left and the
/// agent's on the right, each far above the other's (over 0.05, over ten times it).
pub fn assert_caller_left_agent_right(
    wav: &Wav,
    frames: Range<usize>,
    caller_hz: f32,
    agent_hz: f32,
) {
    let (left, right) = channels(wav);
    let (l, r) = (&left[frames.clone()], &right[frames]);
    let (l_caller, l_agent) = (amp(l, caller_hz), amp(l, agent_hz));
    let (r_caller, r_agent) = (amp(r, caller_hz), amp(r, agent_hz));
    assert!(
        l_caller > 0.05 && l_caller > 10.0 * l_agent,
        "left {l_caller} vs {l_agent}"
    );
    assert!(
        r_agent > 0.05 && r_agent > 10.0 * r_caller,
        "right {r_agent} vs {r_caller}"
    );
}

/// The agent's stream has started and 1.5 s of caller audio (75 frames) has reached it.
pub async fn hears_the_caller(agent: &mut AgentServer) {
    agent.start_msg(WAIT).await;
    assert!(
        agent.wait_heard(WAIT, |h| h.frames >= 75).await,
        "1.5 s of caller audio reaches the agent"
    );
}
