//! The agent's side of a call's life: its hangup, a clean close and a dropped connection end
//! the call with a BYE and the right end_reason; `on_disconnect = "reconnect"` reconnects
//! once (same call, a fresh start message) and hangs up on the second drop; an agent that
//! cannot be reached leaves the ringing caller with 480.

use serde_json::json;

use super::support::agent::{Action, Dialect, Script, Seen};
use super::support::baresip::TempDir;
use super::support::http::{Answer, CallbackServer, WebhookServer};
use super::support::leg::{dial, WAIT};
use super::webhook::dead_addr;
use super::{check_end, completed, connected, setup, Expect, AGENT_HZ};

async fn agent_ends(ports: (u16, u16), dialect: Dialect, how: Action, end_reason: &'static str) {
    let dir = TempDir::new("tg-agent-end").expect("temp dir");
    let mut live = connected(ports, dialect, Script::default(), &dir, |_| {}).await;
    live.agent.start_msg(WAIT).await;
    assert!(
        live.agent.wait_heard(WAIT, |h| h.frames >= 10).await,
        "caller audio flows first"
    );
    live.agent.act(how.clone());
    let bye_at = live.call.expect_bye(WAIT).await;
    // A silent agent still means RTP every 20 ms (silence frames), not a gap.
    let expected = (bye_at - live.call.answered).as_millis() / 20;
    let got = live.call.caller.heard().frames().count() as u128;
    assert!(
        got * 10 >= expected * 8,
        "{got} frames from the gateway in {expected} ptimes"
    );
    let want = completed(&live, end_reason, bye_at);
    let record = check_end(&mut live.events, &mut live.cb, &want).await;
    assert!(record["talk_s"]["caller"].as_f64() > Some(0.0), "{record}");
    if matches!(how, Action::Hangup) {
        live.agent
            .expect("closed", WAIT, |s| matches!(s, Seen::Closed { .. }))
            .await;
        let stop = live.agent.history.iter().find_map(|n| match &n.seen {
            Seen::Stop(v) => Some(v.clone()),
            _ => None,
        });
        match dialect {
            Dialect::Raw => {
                let stop = stop.expect("raw stop");
                assert_eq!(stop["reason"], "agent_hangup", "{stop}");
            }
            Dialect::Twilio => assert!(stop.is_some(), "twilio stop"),
            Dialect::Plivo => assert!(stop.is_none(), "plivo has no stop"),
        }
    }
    assert_eq!(live.agent.violations(), Vec::<String>::new());
    assert_eq!(live.gw.rtp_ports_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_agent_hangup_sends_bye() {
    agent_ends(
        (34800, 34849),
        Dialect::Twilio,
        Action::Hangup,
        "agent_hangup",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_agent_hangup_sends_bye() {
    agent_ends((34850, 34899), Dialect::Raw, Action::Hangup, "agent_hangup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_agent_drop_sends_bye() {
    agent_ends(
        (34900, 34949),
        Dialect::Raw,
        Action::Drop,
        "agent_disconnected",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plivo_agent_close_sends_bye() {
    agent_ends(
        (34950, 34999),
        Dialect::Plivo,
        Action::Close,
        "agent_disconnected",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_drop_with_reconnect_keeps_the_call_once() {
    let dir = TempDir::new("tg-reconnect").expect("temp dir");
    let mut live = connected(
        (35750, 35799),
        Dialect::Twilio,
        Script::default(),
        &dir,
        |s| s.on_disconnect = "reconnect",
    )
    .await;
    let first = live.agent.start_msg(WAIT).await;
    assert!(live.agent.wait_heard(WAIT, |h| h.frames >= 10).await);
    live.agent.act(Action::Drop);
    live.agent
        .expect("a second connection", WAIT, |s| {
            matches!(s, Seen::Connected(2))
        })
        .await;
    let second = live.agent.start_msg(WAIT).await;
    assert_eq!(
        second["start"]["callSid"], first["start"]["callSid"],
        "the same call"
    );
    let frames = live.agent.heard().frames;
    assert!(
        live.agent
            .wait_heard(WAIT, |h| h.frames >= frames + 10)
            .await,
        "caller audio reaches the new connection"
    );
    live.agent.act(Action::Tone {
        freq: AGENT_HZ,
        ms: 400,
        chunk_ms: 40,
    });
    assert!(
        live.call
            .caller
            .wait_until(WAIT, |h| h.tone_times(AGENT_HZ).len() >= 18)
            .await,
        "the reconnected agent is heard"
    );
    // Reconnect is once per call: the second drop ends it.
    live.agent.act(Action::Drop);
    let bye_at = live.call.expect_bye(WAIT).await;
    let want = completed(&live, "agent_disconnected", bye_at);
    check_end(&mut live.events, &mut live.cb, &want).await;
    assert_eq!(live.agent.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_agent_is_480() {
    let dir = TempDir::new("tg-agent-refused").expect("temp dir");
    let ws = format!("ws://{}/agent", dead_addr().await);
    let hook = WebhookServer::start(Answer::json(json!({"websocket_url": ws}))).await;
    let mut cb = CallbackServer::start(0).await;
    let mut setup = setup((35800, 35809), &dir, &cb);
    setup.webhook_url = Some(hook.url.clone());
    let gw = setup.start().await;
    let mut events = gw.subscribe();
    let mut ringing = dial(&gw).await;
    ringing.expect_ringing().await;
    ringing.expect_failure(480).await;
    let want = Expect {
        end_reason: "agent_connect_failed",
        status: "failed",
        sip_status: 480,
        duration: None,
        billing: setup.billing,
    };
    check_end(&mut events, &mut cb, &want).await;
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_that_never_upgrades_is_480_after_connect_timeout() {
    let dir = TempDir::new("tg-agent-mute").expect("temp dir");
    // Accepts TCP and then says nothing: the WebSocket upgrade never completes.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let ws = format!("ws://{}/agent", mute.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = mute.accept().await {
            conns.push(c);
        }
    });
    let hook = WebhookServer::start(Answer::json(json!({"websocket_url": ws}))).await;
    let mut cb = CallbackServer::start(0).await;
    let mut setup = setup((35810, 35819), &dir, &cb);
    setup.webhook_url = Some(hook.url.clone());
    let gw = setup.start().await;
    let mut events = gw.subscribe();
    let mut ringing = dial(&gw).await;
    ringing.expect_ringing().await;
    let rang = tokio::time::Instant::now();
    ringing.expect_failure(480).await;
    assert!(
        rang.elapsed() >= std::time::Duration::from_millis(1900),
        "480 after agent.connect_timeout (2 s), not {:?}",
        rang.elapsed()
    );
    let want = Expect {
        end_reason: "agent_connect_failed",
        status: "failed",
        sip_status: 480,
        duration: None,
        billing: setup.billing,
    };
    check_end(&mut events, &mut cb, &want).await;
    held.abort();
}
