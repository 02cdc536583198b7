//! Outbound calls through the Twilio-compatible API, end to end over real sockets: `Url` is
//! fetched (signed, Twilio's form) once the scripted trunk has answered and its TwiML
//! `<Connect><Stream>` names the agent, whose start carries the created `sid`; the
//! `StatusCallback` gets Twilio's form fields (`ringing`, `in-progress`, `completed`); the
//! call resource reads `queued` at creation and `completed` after. Also `Idempotency-Key` on
//! `POST /v1/calls`: a replay dials nothing, a changed body is a 409.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use trunkgate::app::{Gateway, GatewayEvent};

use support::agent::{AgentServer, Dialect, Script as AgentScript};
use support::gw::scratch_dir;
use support::http::{Answer, CallbackServer, Req, WebhookServer};
use support::leg::WAIT;
use support::placing::{self, Api, Got, Setup, TOKEN};
use support::trunk::{Script, Transport, Trunk};

const ACCOUNT: &str = "AC00112233445566778899aabbccddeeff";
const SECRET: &str = "hook-secret";

/// A keyed `POST /v1/calls`.
async fn dial(api: &Api, key: &str, body: &Value) -> Got {
    let req = api.http.post(format!("{}/v1/calls", api.base));
    let req = req.bearer_auth(TOKEN).header("Idempotency-Key", key);
    api.send(req.json(body)).await
}

fn twilio_url(api: &Api, sid: Option<&str>) -> String {
    let tail = sid.map_or_else(|| "Calls.json".into(), |s| format!("Calls/{s}.json"));
    format!("{}/2010-04-01/Accounts/{ACCOUNT}/{tail}", api.base)
}

async fn twilio_post(api: &Api, sid: Option<&str>, form: &[(&str, &str)]) -> Got {
    let req = api.http.post(twilio_url(api, sid));
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    let req = req
        .basic_auth(ACCOUNT, Some(TOKEN))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"));
    api.send(req).await
}

async fn twilio_get(api: &Api, sid: &str) -> Value {
    let req = api.http.get(twilio_url(api, Some(sid)));
    api.send(req.basic_auth(ACCOUNT, Some(TOKEN))).await.2
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A form body as a map (the last value of a repeated name).
fn form(body: &[u8]) -> HashMap<String, String> {
    let dec = |s: &str| {
        let s = s.replace('+', " ");
        let (mut out, b) = (Vec::new(), s.as_bytes());
        let mut i = 0;
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

/// The request is a signed Twilio-style form.
fn signed_form(req: &Req) -> HashMap<String, String> {
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let sig = req.header("x-trunkgate-signature").expect("signed");
    let now = jiff::Timestamp::now().as_second().max(0) as u64;
    assert!(
        trunkgate::core::hooks::verify_signature(SECRET.as_bytes(), sig, &req.body, now, 300),
        "signature {sig:?}"
    );
    form(&req.body)
}

/// A gateway with the Twilio-compatible API, a webhook secret, and trunk `carrier`.
async fn start(ports: (u16, u16), trunk: &Trunk) -> (Gateway, Api) {
    let secret = scratch_dir("outbound-twilio").join("hook.secret");
    std::fs::write(&secret, SECRET).expect("secret file");
    let password = placing::password_file();
    let setup = Setup {
        api_keys: &format!("twilio_compat = true\naccount_sid = \"{ACCOUNT}\""),
        sections: &format!("[webhook]\nsecret_file = \"{}\"", secret.display()),
        trunk_keys: &trunk.outbound_toml("alice", &password),
        ..Setup::default()
    };
    placing::start(ports, setup).await
}

/// The call's `end_reason`.
async fn ended(events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>, id: &str) -> String {
    placing::ended(events, id, WAIT).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_is_asked_on_answer_names_the_agent_and_callbacks_are_twilio_forms() {
    let trunk = Trunk::with_script(
        Transport::Udp,
        Script::answer()
            .ring(Duration::from_millis(50))
            .answer_after(Duration::from_millis(150)),
    )
    .await;
    let (gw, api) = start((37100, 37119), &trunk).await;
    let mut events = gw.subscribe();
    let no_script = AgentScript {
        on_start: Vec::new(),
        on_dtmf: None,
    };
    let mut agent = AgentServer::start(Dialect::Twilio, no_script).await;
    let twiml = format!(
        "<Response><Connect><Stream url=\"{}\"><Parameter name=\"lead\" value=\"42\"/></Stream></Connect></Response>",
        agent.url
    );
    let mut hook = WebhookServer::start(Answer::xml(&twiml)).await;
    let mut status = CallbackServer::start(0).await;

    let (code, _, created) = twilio_post(
        &api,
        None,
        &[
            ("To", "+48123456789"),
            ("From", "+48111222333"),
            ("Url", &hook.url),
            ("StatusCallback", &status.url),
            (
                "StatusCallbackEvent",
                "initiated ringing answered completed",
            ),
        ],
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["status"], "queued", "{created}");
    assert_eq!(created["direction"], "outbound-api", "{created}");
    let sid = created["sid"].as_str().expect("sid").to_string();

    // Twilio's semantics: the Url is fetched once the callee has answered.
    let asked = hook.request(WAIT).await;
    let call = trunk
        .calls()
        .first()
        .cloned()
        .expect("the trunk has the call");
    assert_eq!(call.final_status, Some(200), "asked before the answer");
    let f = signed_form(&asked);
    for (k, v) in [
        ("CallSid", sid.as_str()),
        ("AccountSid", ACCOUNT),
        ("From", "+48111222333"),
        ("To", "+48123456789"),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-api"),
        ("ApiVersion", "2010-04-01"),
    ] {
        assert_eq!(f.get(k).map(String::as_str), Some(v), "{k} in {f:?}");
    }

    let start = agent.start_msg(WAIT).await;
    assert_eq!(start["start"]["callSid"], sid.as_str(), "{start}");
    assert_eq!(start["start"]["customParameters"]["lead"], "42", "{start}");
    let view = twilio_get(&api, &sid).await;
    assert_eq!(view["status"], "in-progress", "{view}");

    let (code, _, body) = twilio_post(&api, Some(&sid), &[("Status", "completed")]).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(ended(&mut events, &sid).await, "api_hangup");
    let view = twilio_get(&api, &sid).await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["direction"], "outbound-api", "{view}");

    // Three callbacks (spooled, delivered in any order): ringing, answered, completed.
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(signed_form(&status.success(WAIT).await));
    }
    got.sort_by_key(|f| f.get("SequenceNumber").cloned().unwrap_or_default());
    let statuses: Vec<&str> = got.iter().map(|f| f["CallStatus"].as_str()).collect();
    assert_eq!(statuses, ["ringing", "in-progress", "completed"], "{got:?}");
    for f in &got {
        assert_eq!(f["CallSid"], sid, "{f:?}");
        assert_eq!(f["AccountSid"], ACCOUNT, "{f:?}");
        assert_eq!(f["Direction"], "outbound-api", "{f:?}");
    }
    assert!(got[2].contains_key("CallDuration"), "{:?}", got[2]);
    assert_eq!(got[2]["SipResponseCode"], "200", "{:?}", got[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_answering_hangup_or_failing_hangs_the_answered_call_up() {
    let trunk = Trunk::with_script(Transport::Udp, Script::answer()).await;
    let (gw, api) = start((37120, 37139), &trunk).await;
    let mut events = gw.subscribe();
    let mut hook = WebhookServer::start(Answer::xml("<Response><Hangup/></Response>")).await;
    let mut status = CallbackServer::start(0).await;
    let cases = [(0, "webhook_reject"), (1, "webhook_http_error")];
    for (index, reason) in cases {
        if index == 1 {
            hook.set_answer(Answer::Status(500));
        }
        let (code, _, created) = twilio_post(
            &api,
            None,
            &[
                ("To", "+48123456789"),
                ("From", "+48111222333"),
                ("Url", &hook.url),
                ("StatusCallback", &status.url),
            ],
        )
        .await;
        assert_eq!(code, 201, "{created}");
        let sid = created["sid"].as_str().expect("sid").to_string();
        hook.request(WAIT).await;
        assert_eq!(ended(&mut events, &sid).await, reason);
        let call = trunk
            .expect_call(index, WAIT, "BYE from the gateway", |c| {
                c.bye_from.is_some()
            })
            .await;
        assert_eq!(call.bye_from, Some(support::trunk::Side::Gateway));
        // `completed` only (Twilio's default), as a form; the callee did answer.
        let f = signed_form(&status.success(WAIT).await);
        assert_eq!(f["CallSid"], sid, "{f:?}");
        assert_eq!(f["CallStatus"], "completed", "{f:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_first_call_and_never_dials_twice() {
    let trunk = Trunk::with_script(Transport::Udp, Script::answer().never_answer()).await;
    let (_gw, api) = start((37140, 37159), &trunk).await;
    let body = json!({"to": "+48123456789", "websocket_url": "builtin:echo", "timeout_s": 30});
    let (code, headers, first) = dial(&api, "key-1", &body).await;
    assert_eq!(code, 201, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let id = first["call_id"].as_str().expect("call_id").to_string();
    trunk.expect_request("INVITE", WAIT).await;

    let (code, headers, again) = dial(&api, "key-1", &body).await;
    assert_eq!(code, 201, "{again}");
    assert_eq!(again["call_id"], id.as_str(), "{again}");
    let replayed = headers
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok());
    assert_eq!(replayed, Some("true"));

    let other = json!({"to": "+48123456780", "websocket_url": "builtin:echo"});
    let (code, _, refused) = dial(&api, "key-1", &other).await;
    assert_eq!(code, 409, "{refused}");

    // A call under a new key is dialled: INVITEs leave in order, so a second INVITE for the
    // replay would have reached the trunk before this one.
    let (code, _, third) = dial(&api, "key-2", &other).await;
    assert_eq!(code, 201, "{third}");
    assert_ne!(third["call_id"], id.as_str());
    trunk
        .wait_call(1, WAIT, |c| c.invites >= 1)
        .await
        .expect("the second key's call reaches the trunk");
    assert_eq!(trunk.calls().len(), 2, "exactly one INVITE per key");
}
