//! The inbound webhook (PROTOCOLS.md §1) as the daemon uses it: the signed JSON request sent
//! while the caller hears ringing, every failure path with the caller's status and the
//! record's end_reason, the fallback to the number's static agent, and CANCEL while waiting.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::support::agent::{AgentServer, Dialect, Script, Seen};
use super::support::baresip::TempDir;
use super::support::bridge::DID;
use super::support::http::{Answer, CallbackServer, Req, WebhookServer};
use super::support::leg::{dial, WAIT};
use super::{assert_signed, check_end, setup, Expect, CALLER_HZ};

/// The JSON request: trunkgate's fields from the scripted UA's INVITE, signed.
pub fn check_request(req: &Req) {
    assert_signed(req);
    assert!(
        req.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        req.headers
    );
    let v = req.json();
    assert_eq!(v["event"], "call.incoming", "{v}");
    assert!(v["call_id"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
    assert_eq!(v["call_sid"], v["call_id"], "{v}");
    assert!(
        v["sip_call_id"]
            .as_str()
            .is_some_and(|c| c.ends_with("@test")),
        "{v}"
    );
    assert_eq!(v["from_number"], "+919990152080", "{v}");
    assert_eq!(v["to_number"], DID, "{v}");
    assert_eq!(v["did"], "+919990152080", "00 prefix normalised: {v}");
    assert_eq!(v["crt"], "crt-77", "{v}");
    assert_eq!(v["workspace_id"], "ws-test", "{v}");
    assert_eq!(v["source_ip"], "127.0.0.1", "{v}");
    assert_eq!(
        v["headers"]["X-Workspace-ID"], "ws-test",
        "SIP X- headers: {v}"
    );
}

/// The webhook fails (or refuses) and no static agent exists: ringing, then `status`.
async fn failure(
    ports: (u16, u16),
    answer: Option<Answer>,
    status: u16,
    end_reason: &str,
    record_status: &str,
) {
    let dir = TempDir::new("tg-hook-fail").expect("temp dir");
    let mut cb = CallbackServer::start(0).await;
    let mut setup = setup(ports, &dir, &cb);
    setup.webhook_timeout = "400ms";
    let mut hook = match answer {
        Some(a) => Some(WebhookServer::start(a).await),
        None => None,
    };
    setup.webhook_url = Some(match &hook {
        Some(h) => h.url.clone(),
        None => format!("http://{}/incoming", dead_addr().await),
    });
    let gw = setup.start().await;
    let mut events = gw.subscribe();
    let mut ringing = dial(&gw).await;
    ringing.expect_ringing().await;
    let asked = Instant::now();
    if let Some(h) = &mut hook {
        check_request(&h.request(WAIT).await);
    }
    ringing.expect_failure(status).await;
    if status == 480 {
        assert!(
            asked.elapsed() >= Duration::from_millis(350),
            "480 only after webhook.timeout"
        );
    }
    let want = Expect {
        end_reason,
        status: record_status,
        sip_status: status,
        duration: None,
        billing: setup.billing,
    };
    check_end(&mut events, &mut cb, &want).await;
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

/// A loopback address nobody listens on.
pub async fn dead_addr() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_timeout_is_480() {
    failure(
        (35000, 35009),
        Some(Answer::Hang),
        480,
        "webhook_timeout",
        "failed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_http_500_is_503() {
    failure(
        (35010, 35019),
        Some(Answer::Status(500)),
        503,
        "webhook_http_error",
        "failed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_garbage_is_503() {
    failure(
        (35020, 35029),
        Some(Answer::garbage()),
        503,
        "webhook_bad_answer",
        "failed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_unreachable_is_503() {
    failure((35030, 35039), None, 503, "webhook_unreachable", "failed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_json_reject_is_486() {
    failure(
        (35040, 35049),
        Some(Answer::json(json!({"action":"reject","status":486}))),
        486,
        "webhook_reject",
        "busy",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_twiml_reject_busy_is_486() {
    failure(
        (35050, 35059),
        Some(Answer::xml(
            r#"<Response><Reject reason="busy"/></Response>"#,
        )),
        486,
        "webhook_reject",
        "busy",
    )
    .await;
}

/// The webhook fails but the number has a static agent: the call goes there.
async fn fallback(ports: (u16, u16), answer: Answer, min_ring: Duration) {
    let dir = TempDir::new("tg-hook-fallback").expect("temp dir");
    let mut agent = AgentServer::start(Dialect::Raw, Script::default()).await;
    let mut hook = WebhookServer::start(answer).await;
    let mut cb = CallbackServer::start(0).await;
    let mut setup = setup(ports, &dir, &cb);
    setup.webhook_url = Some(hook.url.clone());
    setup.webhook_timeout = "400ms";
    setup.static_agent = Some(format!(
        r#"{{ url = "{}", dialect = "raw", sample_rate = 8000 }}"#,
        agent.url
    ));
    let gw = setup.start().await;
    let mut events = gw.subscribe();
    let mut ringing = dial(&gw).await;
    ringing.expect_ringing().await;
    let asked = Instant::now();
    hook.request(WAIT).await;
    let mut call = ringing.expect_answer(CALLER_HZ).await;
    assert!(
        asked.elapsed() >= min_ring,
        "answered only after the webhook failed"
    );
    let start: Value = agent.start_msg(WAIT).await;
    assert_eq!(start["audio"]["sample_rate"], 8000, "{start}");
    // A static route tells the agent the call's facts too (PROTOCOLS.md §2).
    assert_eq!(start["did"], "+919990152080", "{start}");
    assert_eq!(start["crt"], "crt-77", "{start}");
    assert_eq!(start["headers"]["X-Workspace-ID"], "ws-test", "{start}");
    assert!(
        agent.wait_heard(WAIT, |h| h.frames >= 10).await,
        "caller audio reaches the static agent"
    );
    let bye_at = call.hangup().await;
    let want = Expect {
        end_reason: "caller_hangup",
        status: "completed",
        sip_status: 200,
        duration: Some((bye_at - call.answered).as_secs_f64()),
        billing: setup.billing,
    };
    check_end(&mut events, &mut cb, &want).await;
    agent
        .expect("stop", WAIT, |s| matches!(s, Seen::Stop(_)))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_500_falls_back_to_static_agent() {
    fallback((35060, 35079), Answer::Status(500), Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_timeout_falls_back_to_static_agent() {
    fallback((35080, 35099), Answer::Hang, Duration::from_millis(350)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_webhook_hangs_is_487() {
    let dir = TempDir::new("tg-hook-cancel").expect("temp dir");
    let mut hook = WebhookServer::start(Answer::Hang).await;
    let mut cb = CallbackServer::start(0).await;
    let mut setup = setup((35100, 35109), &dir, &cb);
    setup.webhook_url = Some(hook.url.clone());
    setup.webhook_timeout = "10s";
    let gw = setup.start().await;
    let mut events = gw.subscribe();
    let mut ringing = dial(&gw).await;
    ringing.expect_ringing().await;
    hook.request(WAIT).await;
    let cancel = ringing.ua.request("CANCEL", "inv1", 1, None, "");
    ringing.ua.send(&cancel).await;
    let ok = ringing.ua.expect_status(200).await;
    assert!(ok.header("CSeq").is_some_and(|c| c.ends_with("CANCEL")));
    ringing.expect_failure(487).await;
    let want = Expect {
        end_reason: "canceled",
        status: "canceled",
        sip_status: 487,
        duration: None,
        billing: setup.billing,
    };
    check_end(&mut events, &mut cb, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_form_webhook_answered_by_twiml() {
    let dir = TempDir::new("tg-hook-form").expect("temp dir");
    let mut agent = AgentServer::start(Dialect::Twilio, Script::default()).await;
    let mut hook = WebhookServer::start(Answer::xml(&format!(
        r#"<Response><Connect><Stream url="{}"/></Connect></Response>"#,
        agent.url
    )))
    .await;
    let mut cb = CallbackServer::start(0).await;
    let mut setup = setup((35110, 35129), &dir, &cb);
    setup.webhook_url = Some(hook.url.clone());
    setup.webhook_format = "twilio-form";
    let gw = setup.start().await;
    let mut events = gw.subscribe();
    let mut call = dial(&gw).await.expect_answer(CALLER_HZ).await;
    let req = hook.request(WAIT).await;
    assert_signed(&req);
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = String::from_utf8_lossy(&req.body).into_owned();
    let start = agent.start_msg(WAIT).await;
    let sid = start["start"]["callSid"].as_str().unwrap_or_default();
    for field in [
        format!("CallSid={sid}"),
        "From=%2B919990152080".to_owned(),
        "To=%2B48123456789".to_owned(),
        "Direction=inbound".to_owned(),
        "CallStatus=ringing".to_owned(),
    ] {
        assert!(form.split('&').any(|kv| kv == field), "{field} in {form}");
    }
    assert!(
        agent.wait_heard(WAIT, |h| h.frames >= 5).await,
        "caller audio reaches the agent"
    );
    let bye_at = call.hangup().await;
    let want = Expect {
        end_reason: "caller_hangup",
        status: "completed",
        sip_status: 200,
        duration: Some((bye_at - call.answered).as_secs_f64()),
        billing: setup.billing,
    };
    check_end(&mut events, &mut cb, &want).await;
}
