//! Outbound calls end to end over real sockets: `POST /v1/calls` → the gateway's INVITE to a
//! scripted trunk (digest challenges, 180/183, answer, rejections, no answer) → the agent
//! connected on answer with an outbound start, audio both ways checked by content → the end,
//! with the status the API and the record show. UDP and TCP toward the trunk.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use trunkgate::app::{Gateway, GatewayEvent};
use trunkgate::core::media::tone::detect_tone;

use support::agent::{Action, AgentServer, Dialect, Script as AgentScript};
use support::http::{Answer, WebhookServer};
use support::leg::WAIT;
use support::placing::{self, Api, Setup, TOKEN};
use support::trunk::{Algorithm, Challenge, Script, Transport, Trunk};

/// A gateway whose trunk `carrier` places calls at `trunk` (digest user alice), API on.
async fn start(ports: (u16, u16), trunk: &Trunk) -> (Gateway, Api) {
    start_with(ports, trunk, "").await
}

/// The same, with more keys for the trunk (e.g. its `outbound_policy`).
async fn start_with(ports: (u16, u16), trunk: &Trunk, trunk_keys: &str) -> (Gateway, Api) {
    let password = placing::password_file();
    let outbound = trunk.outbound_toml("alice", &password);
    start_toml(ports, &format!("{outbound}\n{trunk_keys}")).await
}

/// A gateway whose trunk `carrier` has these keys (its `outbound` among them).
async fn start_toml(ports: (u16, u16), trunk_keys: &str) -> (Gateway, Api) {
    let setup = Setup {
        trunk_keys,
        ..Setup::default()
    };
    placing::start(ports, setup).await
}

async fn ended(
    events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>,
    id: &str,
) -> (String, Value) {
    placing::ended(events, id, WAIT).await
}

/// The agent hears `freq` in the caller-side audio it decoded.
fn agent_hears(agent: &AgentServer, freq: f32) -> bool {
    agent
        .heard()
        .pcm
        .chunks(160)
        .filter(|c| c.len() == 160 && detect_tone(c, 8000, freq) > 0.5)
        .count()
        >= 5
}

/// UDP is challenged with 401 MD5, TCP with 407 SHA-256.
async fn answered_call_both_ways(transport: Transport, ports: (u16, u16)) {
    let challenge = match transport {
        Transport::Udp => Challenge::www(Algorithm::Md5, "alice", "s3cret"),
        Transport::Tcp | Transport::Tls => Challenge::proxy(Algorithm::Sha256, "alice", "s3cret"),
    };
    let trunk = Trunk::with_script(
        transport,
        Script::answer()
            .challenge(challenge)
            .ring(Duration::from_millis(50))
            .answer_after(Duration::from_millis(100))
            .tone(1000.0),
    )
    .await;
    let (gw, api) = start(ports, &trunk).await;
    let mut events = gw.subscribe();
    let script = AgentScript {
        on_start: vec![Action::Tone {
            freq: 440.0,
            ms: 2000,
            chunk_ms: 20,
        }],
        on_dtmf: None,
    };
    let mut agent = AgentServer::start(Dialect::Twilio, script).await;
    let (status, body) = api
        .post(
            "/v1/calls",
            &json!({"to": "+48123456789", "from": "+48111222333",
                    "websocket_url": agent.url, "dialect": "twilio",
                    "parameters": {"lead": "42"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "queued");
    let id = body["call_id"].as_str().expect("call_id").to_string();

    let call = trunk
        .expect_call(0, WAIT, "answered and acked", |c| {
            c.acked && c.final_status == Some(200)
        })
        .await;
    assert_eq!(call.auth_ok, Some(true), "{:?}", call.auth);
    assert_eq!(call.invites, 2, "one challenge, one retry");
    assert!(call.problems.is_empty(), "{:?}", call.problems);
    let ack = call.ack.clone().expect("ACK");
    assert_eq!(ack.uri, call.contact, "the ACK goes to the 2xx's Contact");

    let start = agent.start_msg(WAIT).await;
    assert_eq!(start["start"]["callSid"], id.as_str(), "{start}");
    assert_eq!(start["start"]["customParameters"]["lead"], "42", "{start}");
    // The callee's tone reaches the agent, the agent's tone reaches the callee.
    assert!(
        agent.wait_heard(WAIT, |_| true).await && {
            let deadline = tokio::time::Instant::now() + WAIT;
            let mut ok = false;
            while tokio::time::Instant::now() < deadline {
                if agent_hears(&agent, 1000.0) {
                    ok = true;
                    break;
                }
                agent
                    .wait_heard(Duration::from_millis(200), |_| false)
                    .await;
            }
            ok
        },
        "the agent hears the callee's 1 kHz tone"
    );
    assert!(
        trunk
            .wait_heard(0, WAIT, |h| h.tone_times(440.0).len() >= 5)
            .await,
        "the callee hears the agent's 440 Hz tone"
    );
    let view = api.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(view["status"], "in-progress", "{view}");
    assert_eq!(view["direction"], "outbound", "{view}");

    let (status, _) = api
        .post(&format!("/v1/calls/{id}/hangup"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let (reason, record) = ended(&mut events, &id).await;
    assert_eq!(reason, "api_hangup");
    assert_eq!(record["status"], "completed", "{record}");
    let call = trunk
        .expect_call(0, WAIT, "BYE from the gateway", |c| c.bye_from.is_some())
        .await;
    assert_eq!(call.bye_from, Some(support::trunk::Side::Gateway));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_over_udp_with_401_md5_audio_both_ways() {
    answered_call_both_ways(Transport::Udp, (36900, 36919)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_over_tcp_with_407_sha256_audio_both_ways() {
    answered_call_both_ways(Transport::Tcp, (36920, 36939)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_rejected_and_unanswered_calls_end_with_their_status() {
    let trunk = Trunk::start(Transport::Udp).await;
    trunk.push(Script::answer().reject(486));
    trunk.push(Script::answer().reject(603));
    trunk.push(Script::answer().never_answer());
    let (gw, api) = start((36940, 36959), &trunk).await;
    let mut events = gw.subscribe();
    let mut ids = Vec::new();
    for timeout in [30, 30, 1] {
        let (status, body) = api
            .post(
                "/v1/calls",
                &json!({"to": "+48123456789", "websocket_url": "builtin:echo",
                        "timeout_s": timeout}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["call_id"].as_str().expect("id").to_string();
        let (_, record) = ended(&mut events, &id).await;
        ids.push(record);
    }
    assert_eq!(
        (ids[0]["status"].as_str(), ids[0]["sip_status"].as_u64()),
        (Some("busy"), Some(486)),
        "{}",
        ids[0]
    );
    assert_eq!(
        (ids[1]["status"].as_str(), ids[1]["sip_status"].as_u64()),
        (Some("failed"), Some(603)),
        "{}",
        ids[1]
    );
    assert_eq!(
        (ids[2]["status"].as_str(), ids[2]["end_reason"].as_str()),
        (Some("no-answer"), Some("ring_timeout")),
        "{}",
        ids[2]
    );
    let call = trunk
        .expect_call(2, WAIT, "cancelled", |c| c.canceled)
        .await;
    assert_eq!(call.final_status, Some(487));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_admission_refuses_with_403_and_429_and_dials_nothing() {
    let trunk = Trunk::with_script(Transport::Udp, Script::answer().never_answer()).await;
    let (_gw, api) = start_with(
        (36960, 36979),
        &trunk,
        "outbound_policy = { calls_per_second = 1, blocked_prefixes = [\"+882\"] }",
    )
    .await;
    let call = |to: &str| json!({"to": to, "websocket_url": "builtin:echo", "timeout_s": 1});
    // The refusal leaves a record: its call.completed reaches the request's callback URL.
    let mut hook = WebhookServer::start(Answer::json(json!({}))).await;
    let mut refused = call("+88212345678");
    refused["callback_url"] = json!(hook.url);
    let (status, body) = api.post("/v1/calls", &refused).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("blocked_prefix"),
        "{body}"
    );
    let record = hook.request(WAIT).await.json();
    assert_eq!(record["event"], "call.completed", "{record}");
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(
        record["end_reason"], "outbound_policy_blocked_prefix",
        "{record}"
    );
    assert_eq!(record["to"], "+88212345678", "{record}");
    let (status, body) = api.post("/v1/calls", &call("+48123456789")).await;
    assert_eq!(status, 201, "{body}");
    // Strict: a second call within the same second is refused, never queued.
    let req = api
        .http
        .post(format!("{}/v1/calls", api.base))
        .bearer_auth(TOKEN)
        .json(&call("+48123456780"));
    let resp = req.send().await.expect("HTTP");
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=1).contains(&retry), "{retry}");
    trunk.expect_request("INVITE", WAIT).await;
    // Only the admitted call reached the trunk (the harness records the INVITE before it
    // sets the call up, so wait for that before counting).
    trunk
        .wait_call(0, WAIT, |_| true)
        .await
        .expect("the admitted call");
    assert_eq!(trunk.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_admission_allowed_prefixes_hours_and_concurrency() {
    let trunk = Trunk::with_script(Transport::Udp, Script::answer().never_answer()).await;
    // At most one call at a time, and only to +48 (hours: a second gateway below).
    let (_gw, api) = start_with(
        (37020, 37039),
        &trunk,
        "outbound_policy = { max_concurrent = 1, allowed_prefixes = [\"+48\"] }",
    )
    .await;
    let call = |to: &str| json!({"to": to, "websocket_url": "builtin:echo", "timeout_s": 30});
    let (status, body) = api.post("/v1/calls", &call("+4412345678")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("prefix_not_allowed"),
        "{body}"
    );
    let (status, body) = api.post("/v1/calls", &call("+48123456789")).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.post("/v1/calls", &call("+48123456780")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "busy", "{body}");
    // The running call ends (API hangup → CANCEL): a slot is free again.
    let id = api.get("/v1/calls?status=active").await["calls"][0]["call_id"]
        .as_str()
        .expect("the running call")
        .to_string();
    trunk.expect_request("INVITE", WAIT).await;
    let (status, _) = api
        .post(&format!("/v1/calls/{id}/hangup"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        let (status, _) = api.post("/v1/calls", &call("+48123456781")).await;
        if status != 429 || tokio::time::Instant::now() > deadline {
            break status;
        }
        trunk
            .next_request("CANCEL", Duration::from_millis(100))
            .await;
    };
    assert_eq!(status, 201);

    // Hours: a window that ends one minute after it opens, opening 12 hours from now.
    let opens = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(12))
        .expect("time")
        .to_zoned(jiff::tz::TimeZone::UTC);
    let closes = opens
        .checked_add(jiff::SignedDuration::from_mins(1))
        .expect("time");
    let window = format!(
        "{:02}:{:02}-{:02}:{:02} UTC",
        opens.hour(),
        opens.minute(),
        closes.hour(),
        closes.minute()
    );
    let (_gw2, api2) = start_with(
        (37040, 37059),
        &trunk,
        &format!("outbound_policy = {{ hours = \"{window}\" }}"),
    )
    .await;
    let (status, body) = api2.post("/v1/calls", &call("+48123456782")).await;
    assert_eq!(status, 403, "{window}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("outside_hours"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_without_sdp_or_common_codec_is_acked_byed_and_failed() {
    let trunk = Trunk::start(Transport::Udp).await;
    trunk.push(Script::answer().no_sdp());
    trunk.push(Script::answer().no_common_codec());
    let (gw, api) = start((37060, 37079), &trunk).await;
    let mut events = gw.subscribe();
    for (i, reason) in [(0, "no_sdp_answer"), (1, "no_common_codec")] {
        let (status, body) = api
            .post(
                "/v1/calls",
                &json!({"to": "+48123456789", "websocket_url": "builtin:echo"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["call_id"].as_str().expect("id").to_string();
        let (end, record) = ended(&mut events, &id).await;
        assert_eq!(end, reason, "{record}");
        assert_eq!(record["status"], "failed", "{record}");
        let call = trunk
            .expect_call(i, WAIT, "ACK then BYE", |c| c.acked && c.bye_from.is_some())
            .await;
        assert_eq!(call.bye_from, Some(support::trunk::Side::Gateway));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_proxy_from_domain_and_p_asserted_identity() {
    let trunk = Trunk::start(Transport::Udp).await;
    // The carrier's name does not resolve: everything goes to the proxy (the scripted trunk).
    let keys = format!(
        "outbound = {{ address = \"carrier.invalid:5070\", outbound_proxy = \"{}\", \
         from_domain = \"example.org\", caller_id = \"pai\" }}",
        trunk.addr
    );
    let (_gw, api) = start_toml((37080, 37099), &keys).await;
    let (status, body) = api
        .post(
            "/v1/calls",
            &json!({"to": "+48123456789", "from": "+48111222333",
                    "websocket_url": "builtin:echo"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let invite = trunk.expect_request("INVITE", WAIT).await;
    assert_eq!(invite.uri, "sip:+48123456789@carrier.invalid:5070");
    assert_eq!(
        invite.header("Route"),
        Some(format!("<sip:{};lr>", trunk.addr).as_str())
    );
    assert_eq!(
        invite
            .header("From")
            .map(|f| f.contains("<sip:+48111222333@example.org>")),
        Some(true)
    );
    assert_eq!(
        invite.header("P-Asserted-Identity"),
        Some("<sip:+48111222333@example.org>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_connects_the_agent_before_the_answer() {
    let trunk = Trunk::with_script(
        Transport::Udp,
        Script::answer()
            .early_media(Duration::ZERO)
            .answer_after(Duration::from_secs(3))
            .tone(1000.0),
    )
    .await;
    let (_gw, api) = start((36980, 36999), &trunk).await;
    let mut agent = AgentServer::start(Dialect::Twilio, AgentScript::default()).await;
    let (status, body) = api
        .post(
            "/v1/calls",
            &json!({"to": "+48123456789", "websocket_url": agent.url, "early_media": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let start = agent.start_msg(WAIT).await;
    assert_eq!(start["start"]["callSid"], body["call_id"], "{start}");
    // Connected on the 183: the trunk has not answered yet, and its tone already arrives.
    let calls = trunk.calls();
    assert!(!calls[0].sent.contains(&200), "{:?}", calls[0].sent);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !agent_hears(&agent, 1000.0) && tokio::time::Instant::now() < deadline {
        agent
            .wait_heard(Duration::from_millis(100), |_| false)
            .await;
    }
    assert!(agent_hears(&agent, 1000.0), "early media reaches the agent");
    assert!(
        !trunk.calls()[0].sent.contains(&200),
        "heard before the answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_trunk_fails_at_once_with_its_reason() {
    // A TCP port nobody listens on (bound, then closed), and a name that does not resolve.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    for outbound in [
        format!("outbound = {{ address = \"127.0.0.1:{port}\", transport = \"tcp\" }}"),
        "outbound = { address = \"nonexistent.invalid:5060\", transport = \"udp\" }".into(),
    ] {
        let (gw, api) = start_toml((37000, 37019), &outbound).await;
        let mut events = gw.subscribe();
        let started = tokio::time::Instant::now();
        let (status, body) = api
            .post(
                "/v1/calls",
                &json!({"to": "+48123456789", "websocket_url": "builtin:echo"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["call_id"].as_str().expect("id").to_string();
        let (reason, record) = ended(&mut events, &id).await;
        assert_eq!(reason, "trunk_unreachable", "{outbound}: {record}");
        assert_eq!(record["status"], "failed");
        assert_eq!(record["sip_status"], 503);
        // Well before Timer B (32 s).
        assert!(started.elapsed() < Duration::from_secs(10), "{outbound}");
        gw.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_hanging_up_completes_the_call() {
    let trunk = Trunk::with_script(
        Transport::Udp,
        Script::answer().bye_after(Duration::from_millis(300)),
    )
    .await;
    let (gw, api) = start((37200, 37219), &trunk).await;
    let mut events = gw.subscribe();
    let (status, body) = api
        .post(
            "/v1/calls",
            &json!({"to": "+48123456789", "websocket_url": "builtin:echo"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["call_id"].as_str().expect("id").to_string();
    let (reason, record) = ended(&mut events, &id).await;
    assert_eq!(reason, "callee_hangup", "{record}");
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["sip_status"], 200, "{record}");
    let call = trunk
        .expect_call(0, WAIT, "BYE answered", |c| c.bye_status.is_some())
        .await;
    assert_eq!(
        (call.bye_from, call.bye_status),
        (Some(support::trunk::Side::Trunk), Some(200))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_toward_a_plain_trunk_is_refused_before_dialling() {
    let trunk = Trunk::with_script(Transport::Udp, Script::answer().never_answer()).await;
    let (_gw, api) = start((39510, 39529), &trunk).await;
    let call = |srtp: &str| {
        json!({"to": "+48123456789", "websocket_url": "builtin:echo", "timeout_s": 1,
               "srtp": srtp})
    };
    for mode in ["optional", "required"] {
        let (status, body) = api.post("/v1/calls", &call(mode)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], "srtp", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("in clear"), "{message}");
    }
    // "off" is placed, and its offer carries no key; it is the only INVITE the trunk saw.
    let (status, body) = api.post("/v1/calls", &call("off")).await;
    assert_eq!(status, 201, "{body}");
    let invite = trunk.expect_request("INVITE", WAIT).await;
    let sdp = &invite.msg.body;
    assert!(
        sdp.contains("RTP/AVP") && !sdp.contains("a=crypto"),
        "{sdp}"
    );
    assert_eq!(
        trunk
            .requests()
            .iter()
            .filter(|r| r.method == "INVITE")
            .count(),
        1
    );
}
