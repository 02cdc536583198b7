//! Interop with a real SIP UA through the agent bridge (issue 3, "done when"): baresip calls
//! the gateway, whose webhook (in-process) sends the call to an in-process agent, once per
//! dialect — twilio (TwiML), plivo at 16 kHz (Plivo XML), raw (JSON). The agent must hear
//! baresip's tone, baresip's recording must hold the agent's tone, DTMF must cross both ways
//! (baresip's RFC 4733 → agent `dtmf`; agent DTMF → baresip's `CALL_DTMF_START`), and the
//! callback must arrive with the call's duration when baresip's play file ends the call.

mod support;

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use trunkgate::core::media::tone::detect_tone;

use support::agent::{Action, AgentServer, Dialect, Script, Seen};
use support::baresip::{Baresip, BaresipOptions, TempDir, Transport};
use support::bridge::{billing_ok, Setup, DID};
use support::http::{Answer, CallbackServer, WebhookServer};
use support::wav;

const CALLER_HZ: f64 = 1000.0;
const AGENT_HZ: f32 = 500.0;
const WAIT: Duration = Duration::from_secs(10);

async fn call_agent(ports: (u16, u16), dialect: Dialect, rate: u32) {
    let dir = TempDir::new("tg-interop-dialects").expect("temp dir");
    let script = Script {
        on_start: vec![
            Action::Tone {
                freq: AGENT_HZ,
                ms: 1500,
                chunk_ms: 55,
            },
            Action::Mark("greeting".into()),
        ],
        on_dtmf: Some("9#".into()),
    };
    let mut agent = AgentServer::start(dialect, script).await;
    let answer = match dialect {
        Dialect::Twilio => Answer::xml(&format!(
            r#"<Response><Connect><Stream url="{}"/></Connect></Response>"#,
            agent.url
        )),
        Dialect::Plivo => Answer::xml(&format!(
            r#"<Response><Stream bidirectional="true" contentType="audio/x-l16;rate={rate}">{}</Stream></Response>"#,
            agent.url
        )),
        Dialect::Raw => {
            Answer::json(json!({"websocket_url": agent.url, "dialect": "raw", "sample_rate": rate}))
        }
    };
    let hook = WebhookServer::start(answer).await;
    let mut cb = CallbackServer::start(0).await;
    let mut setup = Setup::new(ports, dir.path());
    setup.webhook_url = Some(hook.url.clone());
    setup.callback_url = Some(cb.url.clone());
    let gw = setup.start().await;

    // 4 s of audio: the call ends (baresip sends BYE) when the file ends.
    let mut samples = wav::silence(200, 8000);
    samples.extend(wav::tone(CALLER_HZ, 3800, 0.5, 8000));
    let play = dir.path().join("play.wav");
    wav::write_wav_8k(&play, &samples).expect("write play.wav");
    let mut opts = BaresipOptions::new(Transport::Udp, &play);
    opts.record_wav = Some(dir.path().join("heard.wav"));
    let mut ua = Baresip::start(opts).await.expect("baresip starts");
    ua.dial(&format!("sip:{DID}@{}", gw.udp_addrs[0]))
        .await
        .expect("dial");
    ua.wait_established(WAIT).await.expect("call established");
    let established = Instant::now();

    let start = agent.start_msg(WAIT).await;
    assert!(start.to_string().contains(&rate.to_string()), "{start}");
    // The greeting plays out before baresip presses a key: its mark comes back first.
    agent
        .expect("greeting played", WAIT, |s| matches!(s, Seen::Marked(_)))
        .await;
    ua.send_dtmf("4").await.expect("send dtmf");
    agent
        .expect("baresip's digit", WAIT, |s| matches!(s, Seen::Dtmf('4')))
        .await;
    for want in ["9", "#"] {
        let dtmf = ua
            .wait_event("CALL_DTMF_START", WAIT)
            .await
            .expect("agent's digits reach baresip");
        assert_eq!(dtmf.param.as_deref(), Some(want), "{}", dtmf.raw);
    }

    // The agent heard baresip's tone, at the stream's rate.
    let heard = agent.heard();
    assert_eq!(heard.rate, rate);
    let windows = heard
        .pcm
        .chunks(rate as usize / 10)
        .filter(|w| detect_tone(w, rate, CALLER_HZ as f32) > 0.5)
        .count();
    assert!(
        windows >= 10,
        "agent heard {CALLER_HZ} Hz in {windows} of {} 100 ms windows",
        heard.pcm.len() / (rate as usize / 10)
    );

    let closed = ua
        .wait_event("CALL_CLOSED", WAIT)
        .await
        .expect("baresip ends the call when its file ends");
    let call_s = established.elapsed().as_secs_f64();
    assert!(
        closed
            .param
            .as_deref()
            .unwrap_or_default()
            .contains("end of file"),
        "{}",
        closed.raw
    );
    let got = cb.success(WAIT).await;
    let body = got.json();
    assert_eq!(body["end_reason"], "caller_hangup", "{body}");
    assert_eq!(body["sip_status"], 200, "{body}");
    let duration = body["duration_s"].as_f64().unwrap_or(-1.0);
    assert!(
        (duration - call_s).abs() <= 0.5,
        "duration_s {duration} vs the call's {call_s:.2} s"
    );
    assert!(billing_ok(
        body["billable_s"].as_u64().unwrap_or(0),
        duration,
        setup.billing
    ));
    assert!(body["talk_s"]["caller"].as_f64() > Some(1.0), "{body}");
    assert!(body["talk_s"]["agent"].as_f64() > Some(0.5), "{body}");

    let rec = ua
        .save_recording(&dir.path().join("heard.wav"))
        .await
        .expect("recording");
    let rec = wav::read_wav(&rec).expect("read recording");
    let greeting = rec
        .samples
        .chunks(800)
        .filter(|w| w.len() == 800 && detect_tone(w, 8000, AGENT_HZ) > 0.5)
        .count();
    assert!(
        (12..=16).contains(&greeting),
        "baresip heard the 1.5 s greeting in {greeting} 100 ms windows"
    );
    assert_eq!(agent.violations(), Vec::<String>::new());
    let _ = ua.quit().await;
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_reaches_twilio_agent() {
    call_agent((35400, 35499), Dialect::Twilio, 8000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_reaches_plivo_agent_at_16k() {
    call_agent((35500, 35599), Dialect::Plivo, 16000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_reaches_raw_agent() {
    call_agent((35600, 35699), Dialect::Raw, 8000).await;
}
