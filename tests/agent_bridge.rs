//! Agent bridge daemon tests (issue 3) over real sockets: the scripted UA and a caller RTP task
//! call a gateway whose inbound webhook (in-process HTTP) names an in-process WebSocket agent
//! speaking each dialect; the callback receiver gets the call record. Audio is verified by
//! content (tones detected on both sides, at the negotiated rate), DTMF both ways, marks after
//! playout and 16 kHz are here; clear and mixed rates in `agent_bridge/control.rs`; agent
//! hangup, drop, reconnect and connect failure in `agent_bridge/lifecycle.rs`; webhook
//! answers and failures in `agent_bridge/webhook.rs`; callback retries in
//! `agent_bridge/callbacks.rs`; recordings in `agent_bridge/recording.rs` (content) and
//! `agent_bridge/recording_http.rs` (served over HTTP with Range), and their transcripts
//! (`call.transcript`) in `agent_bridge/transcript.rs`.

mod support;

#[path = "agent_bridge/bridge.rs"]
mod bridge;
#[path = "agent_bridge/callbacks.rs"]
mod callbacks;
#[path = "agent_bridge/control.rs"]
mod control;
#[path = "agent_bridge/lifecycle.rs"]
mod lifecycle;
#[path = "agent_bridge/recording.rs"]
mod recording;
#[path = "agent_bridge/recording_http.rs"]
mod recording_http;
#[path = "agent_bridge/transcript.rs"]
mod transcript;
#[path = "agent_bridge/transfer.rs"]
mod transfer;
#[path = "agent_bridge/webhook.rs"]
mod webhook;

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use trunkgate::app::{Gateway, GatewayEvent};
use trunkgate::core::hooks::callback::CallCompleted;
use trunkgate::core::hooks::sign::verify_signature;
use trunkgate::core::media::tone::detect_tone;

use support::agent::{Action, AgentServer, Dialect, Script, Seen};
use support::baresip::TempDir;
use support::bridge::{billing_ok, Setup};
use support::gw::wait_event;
use support::http::{Answer, CallbackServer, Req, WebhookServer};
use support::leg::{dial, WAIT};

pub const CALLER_HZ: f32 = 1000.0;
pub const AGENT_HZ: f32 = 500.0;
pub const SECRET: &[u8] = b"test-secret-1";
const GREETING_MS: u32 = 800;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The request's `X-Trunkgate-Signature` is an HMAC of its body under [`SECRET`].
pub fn assert_signed(req: &Req) {
    let sig = req
        .header("X-Trunkgate-Signature")
        .expect("signature header");
    assert!(
        verify_signature(SECRET, sig, &req.body, unix_now(), 300),
        "signature {sig:?} does not verify"
    );
}

/// A temp dir holding the secret file; the setup signs with it and calls back to `cb`.
pub fn setup(ports: (u16, u16), dir: &TempDir, cb: &CallbackServer) -> Setup {
    let secret = dir.path().join("secret");
    std::fs::write(&secret, [SECRET, b"\n"].concat()).expect("write secret");
    let mut s = Setup::new(ports, dir.path());
    s.secret_file = Some(secret);
    s.callback_url = Some(cb.url.clone());
    s
}

/// What a call record must say.
pub struct Expect<'a> {
    pub end_reason: &'a str,
    pub status: &'a str,
    pub sip_status: u16,
    /// The call's length as the UA measured it (None: never answered).
    pub duration: Option<f64>,
    pub billing: (u32, u32),
}

/// Waits for the CallEnded event and the callback delivery, and checks both against `want`.
pub async fn check_end(
    events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>,
    cb: &mut CallbackServer,
    want: &Expect<'_>,
) -> Value {
    let ended = wait_event(events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded {
        end_reason, record, ..
    } = ended
    else {
        unreachable!()
    };
    assert_eq!(end_reason, want.end_reason, "CallEnded end_reason");
    let delivery = cb.success(WAIT).await;
    assert_signed(&delivery);
    let body = delivery.json();
    check_record(&body, &record, want);
    assert_eq!(
        delivery.header("X-Trunkgate-Event-Id"),
        Some(record.event_id.as_str())
    );
    body
}

fn check_record(body: &Value, record: &CallCompleted, want: &Expect<'_>) {
    assert_eq!(body["event"], "call.completed", "{body}");
    assert_eq!(body["event_id"], record.event_id.as_str(), "{body}");
    assert_eq!(body["call_id"], record.call.call_id.as_str(), "{body}");
    assert_eq!(body["direction"], "inbound");
    assert_eq!(body["status"], want.status, "{body}");
    assert_eq!(body["end_reason"], want.end_reason, "{body}");
    assert_eq!(body["sip_status"], want.sip_status, "{body}");
    assert_eq!(body["from"], "+919990152080", "{body}");
    assert_eq!(body["to"], support::bridge::DID, "{body}");
    assert_eq!(body["did"], "+919990152080", "{body}");
    assert_eq!(body["crt"], "crt-77", "{body}");
    let duration = body["duration_s"].as_f64().expect("duration_s");
    let billed = body["billable_s"].as_u64().expect("billable_s");
    match want.duration {
        Some(d) => {
            assert!(
                (duration - d).abs() <= 0.5,
                "duration_s {duration} vs the call's {d:.2} s"
            );
            assert!(
                billing_ok(billed, duration, want.billing),
                "billable_s {billed} for {duration} s under {:?}: {body}",
                want.billing
            );
            assert!(body["answered_at"].is_string(), "{body}");
        }
        None => {
            assert_eq!(duration, 0.0, "{body}");
            assert_eq!(billed, 0, "{body}");
            assert!(body.get("answered_at").is_none(), "{body}");
        }
    }
}

/// The last `ms` of what the agent heard.
fn tail(pcm: &[i16], rate: u32, ms: u32) -> &[i16] {
    let n = (rate * ms / 1000) as usize;
    &pcm[pcm.len().saturating_sub(n)..]
}

struct Case {
    ports: (u16, u16),
    dialect: Dialect,
    rate: u32,
    answer: fn(&str) -> Answer,
    check_start: fn(&Value),
}

/// One full call in a dialect: webhook while ringing, greeting with a mark, audio both ways,
/// DTMF both ways, the caller hangs up, the callback arrives.
async fn exchange(case: Case) {
    let dir = TempDir::new("tg-bridge").expect("temp dir");
    let script = Script {
        on_start: vec![
            Action::Tone {
                freq: AGENT_HZ,
                ms: GREETING_MS,
                chunk_ms: 37,
            },
            Action::Mark("greeting".into()),
        ],
        on_dtmf: Some("7#".into()),
    };
    let mut agent = AgentServer::start(case.dialect, script).await;
    let mut hook = WebhookServer::start((case.answer)(&agent.url)).await;
    let mut cb = CallbackServer::start(0).await;
    let mut setup = setup(case.ports, &dir, &cb);
    setup.webhook_url = Some(hook.url.clone());
    let gw = setup.start().await;
    let mut events = gw.subscribe();

    // The caller rings while the webhook is asked: 180 first, the answer after.
    hook.hold();
    let mut ringing = dial(&gw).await;
    ringing.expect_ringing().await;
    let req = hook.request(WAIT).await;
    webhook::check_request(&req);
    hook.release();
    let mut call = ringing.expect_answer(CALLER_HZ).await;

    let start = agent.start_msg(WAIT).await;
    (case.check_start)(&start);
    if case.dialect == Dialect::Twilio {
        let hello = agent
            .expect("connected", WAIT, |s| matches!(s, Seen::Hello(_)))
            .await;
        assert_eq!(hello.seen_json()["version"], "1.0.0");
    }

    // The mark comes back only once the greeting before it has played out at real time.
    let sent = agent
        .expect(
            "mark sent",
            WAIT,
            |s| matches!(s, Seen::Did(a) if a.starts_with("Mark")),
        )
        .await
        .at;
    let echoed = agent
        .expect(
            "mark echo",
            WAIT,
            |s| matches!(s, Seen::Marked(m) if m == "greeting"),
        )
        .await
        .at;
    let played = echoed - sent;
    assert!(
        played >= Duration::from_millis(u64::from(GREETING_MS) - 60)
            && played <= Duration::from_millis(u64::from(GREETING_MS) + 700),
        "mark echoed {played:?} after it was sent behind {GREETING_MS} ms of audio"
    );
    let greeting_frames = (GREETING_MS / 20) as usize;
    assert!(
        call.caller
            .wait_until(WAIT, |h| h.tone_times(AGENT_HZ).len()
                >= greeting_frames - 2)
            .await,
        "the caller heard the agent's {AGENT_HZ} Hz greeting ({} frames)",
        call.caller.heard().tone_times(AGENT_HZ).len()
    );
    let times = call.caller.heard().tone_times(AGENT_HZ);
    assert!(
        times.len() <= greeting_frames + 1,
        "{} tone frames",
        times.len()
    );
    let span = times[times.len() - 1] - times[0];
    assert!(
        span >= Duration::from_millis(u64::from(GREETING_MS) - 120),
        "greeting sent at once, paced over {span:?}"
    );

    // The agent hears the caller's tone at the stream's rate.
    let rate = case.rate;
    let heard_tone = agent
        .wait_heard(WAIT, |h| {
            h.rate == rate
                && h.pcm.len() >= rate as usize
                && detect_tone(tail(&h.pcm, rate, 500), rate, CALLER_HZ) > 0.5
        })
        .await;
    let h = agent.heard();
    assert!(
        heard_tone,
        "agent heard {} frames at {} Hz; {CALLER_HZ} Hz share {}",
        h.frames,
        h.rate,
        detect_tone(
            tail(&h.pcm, h.rate.max(8000), 500),
            h.rate.max(8000),
            CALLER_HZ
        )
    );

    // DTMF both ways: the caller's 5 reaches the agent, the agent's 7# reaches the caller.
    call.caller.dtmf("5");
    agent
        .expect("caller DTMF 5", WAIT, |s| matches!(s, Seen::Dtmf('5')))
        .await;
    let all_ended = |h: &support::caller::Heard| {
        h.digits() == "7#" && h.dtmf().iter().all(|e| e.end_packets >= 3)
    };
    assert!(
        call.caller.wait_until(WAIT, all_ended).await,
        "RFC 4733 digits at the caller: {:?}",
        call.caller.heard().dtmf()
    );
    for ev in call.caller.heard().dtmf() {
        assert!(
            ev.marker,
            "first packet of an event has the marker bit: {ev:?}"
        );
        assert_eq!(
            (ev.duration, ev.end_packets),
            (800, 3),
            "100 ms events: {ev:?}"
        );
    }

    let sent_audio = call.caller.heard().sent_audio;
    let bye_at = call.hangup().await;
    let want = Expect {
        end_reason: "caller_hangup",
        status: "completed",
        sip_status: 200,
        duration: Some((bye_at - call.answered).as_secs_f64()),
        billing: setup.billing,
    };
    let record = check_end(&mut events, &mut cb, &want).await;
    // The caller's tone ran the whole call; the agent spoke only its 800 ms greeting.
    let talk = |who: &str| record["talk_s"][who].as_f64().unwrap_or(-1.0);
    let duration = record["duration_s"].as_f64().unwrap_or(0.0);
    assert!(talk("caller") >= duration - 0.3, "{record}");
    assert!((talk("agent") - 0.8).abs() <= 0.15, "{record}");
    let speakers: Vec<&Value> = record["turns"]
        .as_array()
        .map(|t| t.iter().map(|t| &t["speaker"]).collect())
        .unwrap_or_default();
    assert!(
        speakers.contains(&&json!("caller")) && speakers.contains(&&json!("agent")),
        "turns of both speakers: {record}"
    );
    assert_eq!(
        record["call_id"],
        req.json()["call_id"],
        "webhook and record agree"
    );

    // The stream ends: twilio and raw say stop, plivo only closes.
    let closed = agent
        .expect("stream closed", WAIT, |s| matches!(s, Seen::Closed { .. }))
        .await;
    let stops: Vec<Value> = agent
        .history
        .iter()
        .filter_map(|n| match &n.seen {
            Seen::Stop(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    match case.dialect {
        Dialect::Plivo => assert!(stops.is_empty(), "plivo has no stop: {stops:?}"),
        Dialect::Raw => assert_eq!(stops, [json!({"type":"stop","reason":"caller_hangup"})]),
        Dialect::Twilio => {
            assert_eq!(stops.len(), 1, "one stop before the close");
            assert_eq!(stops[0]["stop"]["callSid"], start["start"]["callSid"]);
        }
    }
    assert!(matches!(closed.seen, Seen::Closed { clean: true }));
    let frames = agent.heard().frames;
    assert!(
        frames + 5 >= sent_audio && frames <= sent_audio + 50,
        "the caller sent {sent_audio} audio frames before BYE, the agent got {frames}"
    );
    assert_eq!(call.caller.heard().stream_problems(), Vec::<String>::new());
    assert_eq!(
        agent.digits(),
        "5",
        "each caller digit reaches the agent once"
    );
    assert_eq!(agent.violations(), Vec::<String>::new());
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

trait NoteJson {
    fn seen_json(&self) -> Value;
}

impl NoteJson for support::agent::Note {
    fn seen_json(&self) -> Value {
        match &self.seen {
            Seen::Hello(v) | Seen::Start(v) | Seen::Stop(v) | Seen::Other(v) => v.clone(),
            _ => Value::Null,
        }
    }
}

fn twiml(url: &str) -> Answer {
    Answer::xml(&format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Connect><Stream url="{url}"><Parameter name="lang" value="pl"/><Parameter name="tier" value="gold &amp; more"/></Stream></Connect></Response>"#
    ))
}

fn plivo_xml(content_type: &'static str) -> impl Fn(&str) -> Answer {
    move |url| {
        Answer::xml(&format!(
            r#"<Response><Stream bidirectional="true" keepCallAlive="true" contentType="{content_type}" extraHeaders="a=1,b=2">{url}</Stream></Response>"#
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_via_twiml_end_to_end() {
    exchange(Case {
        ports: (34000, 34099),
        dialect: Dialect::Twilio,
        rate: 8000,
        answer: twiml,
        check_start: |v| {
            assert_eq!(
                v["start"]["customParameters"],
                json!({"lang":"pl","tier":"gold & more","did":"+919990152080","crt":"crt-77",
                    "X-Workspace-ID":"ws-test"}),
                "<Parameter>s, did, crt and the kept headers reach the agent: {v}"
            );
            assert_eq!(v["start"]["tracks"], json!(["inbound"]), "{v}");
        },
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plivo_l16_16k_via_plivo_xml_end_to_end() {
    exchange(Case {
        ports: (34100, 34199),
        dialect: Dialect::Plivo,
        rate: 16000,
        answer: |url| plivo_xml("audio/x-l16;rate=16000")(url),
        check_start: |v| {
            assert_eq!(
                v["start"]["mediaFormat"],
                json!({"encoding":"audio/x-l16","sampleRate":16000}),
                "{v}"
            );
            assert_eq!(
                v["extra_headers"], "a=1,b=2,did=+919990152080,crt=crt-77,X-Workspace-ID=ws-test",
                "the answer's extraHeaders, then did, crt and the kept headers: {v}"
            );
        },
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plivo_mulaw_8k_end_to_end() {
    exchange(Case {
        ports: (34200, 34299),
        dialect: Dialect::Plivo,
        rate: 8000,
        answer: |url| plivo_xml("audio/x-mulaw;rate=8000")(url),
        check_start: |v| {
            assert_eq!(
                v["start"]["mediaFormat"],
                json!({"encoding":"audio/x-mulaw","sampleRate":8000}),
                "{v}"
            );
        },
    })
    .await;
}

fn raw_json(rate: u32) -> impl Fn(&str) -> Answer {
    move |url| {
        Answer::json(
            json!({"websocket_url": url, "dialect": "raw", "sample_rate": rate,
            "parameters": {"lang": "pl", "n": 7}}),
        )
    }
}

fn check_raw_start(v: &Value) {
    assert_eq!(v["custom_parameters"], json!({"lang":"pl","n":"7"}), "{v}");
    assert_eq!(v["from"], "+919990152080", "{v}");
    assert_eq!(v["did"], "+919990152080", "{v}");
    assert_eq!(v["crt"], "crt-77", "{v}");
    assert_eq!(v["headers"]["X-Workspace-ID"], "ws-test", "{v}");
    assert_eq!(v["direction"], "inbound", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_8k_via_json_end_to_end() {
    exchange(Case {
        ports: (34300, 34399),
        dialect: Dialect::Raw,
        rate: 8000,
        answer: |url| raw_json(8000)(url),
        check_start: |v| {
            check_raw_start(v);
            assert_eq!(v["audio"]["sample_rate"], 8000, "{v}");
        },
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_16k_via_json_end_to_end() {
    exchange(Case {
        ports: (34400, 34499),
        dialect: Dialect::Raw,
        rate: 16000,
        answer: |url| raw_json(16000)(url),
        check_start: |v| {
            check_raw_start(v);
            assert_eq!(v["audio"]["sample_rate"], 16000, "{v}");
        },
    })
    .await;
}

/// A call connected to an agent that runs `script` (answered by a JSON webhook at 8 kHz),
/// with the gateway's events subscribed before the call.
pub struct Live {
    pub agent: AgentServer,
    pub cb: CallbackServer,
    pub gw: Gateway,
    pub events: tokio::sync::broadcast::Receiver<GatewayEvent>,
    pub call: support::leg::Call,
    pub setup: Setup,
}

pub async fn connected(
    ports: (u16, u16),
    dialect: Dialect,
    script: Script,
    dir: &TempDir,
    tweak: impl FnOnce(&mut Setup),
) -> Live {
    let agent = AgentServer::start(dialect, script).await;
    let d = match dialect {
        Dialect::Twilio => "twilio",
        Dialect::Plivo => "plivo",
        Dialect::Raw => "raw",
    };
    let hook = WebhookServer::start(Answer::json(
        json!({"websocket_url": agent.url, "dialect": d, "sample_rate": 8000}),
    ))
    .await;
    let cb = CallbackServer::start(0).await;
    let mut setup = setup(ports, dir, &cb);
    setup.webhook_url = Some(hook.url.clone());
    tweak(&mut setup);
    let gw = setup.start().await;
    let events = gw.subscribe();
    let call = dial(&gw).await.expect_answer(CALLER_HZ).await;
    Live {
        agent,
        cb,
        gw,
        events,
        call,
        setup,
    }
}

/// What the record of an answered call must say when the UA saw it end at `until`.
pub fn completed(live: &Live, end_reason: &'static str, until: Instant) -> Expect<'static> {
    Expect {
        end_reason,
        status: "completed",
        sip_status: 200,
        duration: Some((until - live.call.answered).as_secs_f64()),
        billing: live.setup.billing,
    }
}
