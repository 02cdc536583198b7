//! The control API's call resource over real sockets (PROTOCOLS.md §3): a scripted UA's call
//! answered by the built-in agent is read, listed, sent DTMF (heard by the caller as RFC 4733)
//! and hung up through `/v1/calls`, and through the Twilio-compatible resource; errors are
//! 400/401/404/409 with JSON bodies; every JSON response is checked against the gateway's own
//! `/v1/openapi.json`.

mod support;

use serde_json::{json, Value};
use trunkgate::app::{Gateway, GatewayEvent};

use support::gw::{scratch_dir, wait_event};
use support::leg::{dial, WAIT};
use support::schema::{assert_response, check};

const TOKEN: &str = "s3cret-token";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

/// A real HTTP client on the gateway's API, with the OpenAPI document to check answers by.
struct Api {
    base: String,
    http: reqwest::Client,
    doc: Value,
}

struct Answer {
    status: u16,
    body: Value,
}

impl Api {
    async fn new(gw: &Gateway) -> Api {
        let addr = gw.api_addr.expect("API listening");
        let mut api = Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            doc: Value::Null,
        };
        let doc = api.get("/v1/openapi.json").await;
        assert_eq!(doc.status, 200, "{}", doc.body);
        assert_eq!(doc.body["openapi"], "3.1.0");
        api.doc = doc.body;
        api
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let (status, body) = support::api::send(req).await;
        Answer { status, body }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(TOKEN),
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        let req = self.http.post(format!("{}{path}", self.base));
        self.send(req.bearer_auth(TOKEN).json(&body)).await
    }

    /// `req` answered `status`, with a body as documented for `method template`.
    fn documented(&self, template: &str, method: &str, a: &Answer, status: u16) {
        assert_eq!(a.status, status, "{method} {template}: {}", a.body);
        assert_response(&self.doc, template, method, status, &a.body);
    }

    /// A request on the Twilio resource of `sid` under account `user`, with Basic auth.
    fn twilio(
        &self,
        method: reqwest::Method,
        sid: &str,
        user: &str,
        pass: &str,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}/2010-04-01/Accounts/{user}/Calls/{sid}.json", self.base);
        self.http.request(method, url).basic_auth(user, Some(pass))
    }
}

async fn start(ports: (u16, u16), agent: &str, twilio: bool) -> Gateway {
    let dir = scratch_dir("control-api");
    let token_file = dir.join("api.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let api = format!(
        "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"\ntwilio_compat = {twilio}\naccount_sid = \"{ACCOUNT}\"",
        token_file.display()
    );
    let text = support::gw::config_text(ports, agent, "").replace("listen = \"\"", &api);
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    Gateway::start(cfg).await.expect("start")
}

async fn started_call_id(events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>) -> String {
    match wait_event(events, WAIT, |e| {
        matches!(e, GatewayEvent::CallStarted { .. })
    })
    .await
    {
        GatewayEvent::CallStarted { call_id, .. } => call_id,
        _ => unreachable!(),
    }
}

async fn ended_reason(
    events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>,
) -> (String, Value) {
    match wait_event(events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await
    {
        GatewayEvent::CallEnded {
            end_reason, record, ..
        } => (
            end_reason,
            serde_json::from_slice(&record.to_json()).expect("record JSON"),
        ),
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_call_get_list_dtmf_and_hangup() {
    let gw = start((36700, 36719), "builtin:echo", false).await;
    let api = Api::new(&gw).await;
    let mut events = gw.subscribe();
    let mut call = dial(&gw).await.expect_answer(0.0).await;
    let id = started_call_id(&mut events).await;
    assert!(id.len() == 34 && id.starts_with("CA"), "call id {id}");

    // A second of the call has gone by (the caller heard it), so the duration is live.
    assert!(
        call.caller
            .wait_until(WAIT, |h| h.packets.len() >= 10)
            .await
    );
    let got = api.get(&format!("/v1/calls/{id}")).await;
    api.documented("/v1/calls/{id}", "get", &got, 200);
    let v = &got.body;
    assert_eq!(
        (v["call_id"].as_str(), v["status"].as_str()),
        (Some(id.as_str()), Some("in-progress")),
        "{v}"
    );
    assert_eq!(v["direction"], "inbound");
    assert_eq!(v["from"], "+919990152080", "{v}");
    assert_eq!(v["to"], "+48123456789", "{v}");
    assert_eq!(v["crt"], "crt-77", "{v}");
    assert!(v["answered_at"].is_string(), "{v}");
    assert!(
        v["duration_s"].as_f64().unwrap_or(0.0) >= 0.1,
        "live duration: {v}"
    );

    let list = api.get("/v1/calls?status=active").await;
    api.documented("/v1/calls", "get", &list, 200);
    let ids: Vec<&Value> = list.body["calls"]
        .as_array()
        .map(|c| c.iter().map(|c| &c["call_id"]).collect())
        .unwrap_or_default();
    assert_eq!(ids, [&json!(id)], "{}", list.body);
    let done = api.get("/v1/calls?status=completed&limit=5").await;
    api.documented("/v1/calls", "get", &done, 200);
    assert_eq!(done.body["calls"], json!([]));

    // DTMF reaches the caller as RFC 4733 events, each with its three end packets.
    let sent = api
        .post(&format!("/v1/calls/{id}/dtmf"), json!({"digits": "12#"}))
        .await;
    api.documented("/v1/calls/{id}/dtmf", "post", &sent, 202);
    let all_ended = |h: &support::caller::Heard| {
        h.digits() == "12#" && h.dtmf().iter().all(|e| e.end_packets >= 3)
    };
    assert!(
        call.caller.wait_until(WAIT, all_ended).await,
        "RFC 4733 at the caller: {:?}",
        call.caller.heard().dtmf()
    );
    assert_eq!(call.caller.heard().stream_problems(), Vec::<String>::new());
    for bad in [
        json!({"digits": "12E"}),
        json!({"digits": ""}),
        json!({"digits": "1".repeat(33)}),
        json!({"tones": "1"}),
    ] {
        let a = api.post(&format!("/v1/calls/{id}/dtmf"), bad.clone()).await;
        api.documented("/v1/calls/{id}/dtmf", "post", &a, 400);
        assert_eq!(
            a.body["error"]["code"], "invalid_request",
            "{bad}: {}",
            a.body
        );
    }

    // Hangup: 202 with the view, the gateway's BYE, the record says api_hangup.
    let hung = api.post(&format!("/v1/calls/{id}/hangup"), json!({})).await;
    api.documented("/v1/calls/{id}/hangup", "post", &hung, 202);
    assert_eq!(hung.body["call_id"], id.as_str());
    call.expect_bye(WAIT).await;
    let (end_reason, record) = ended_reason(&mut events).await;
    assert_eq!(end_reason, "api_hangup");
    assert_eq!(
        (record["end_reason"].as_str(), record["call_id"].as_str()),
        (Some("api_hangup"), Some(id.as_str())),
        "{record}"
    );

    // The ended call stays visible with its final view, and takes no more commands.
    let got = api.get(&format!("/v1/calls/{id}")).await;
    api.documented("/v1/calls/{id}", "get", &got, 200);
    assert_eq!(got.body["status"], "completed", "{}", got.body);
    assert_eq!(got.body["end_reason"], "api_hangup");
    assert_eq!(
        got.body["duration_s"], record["duration_s"],
        "final view = record"
    );
    for (path, body, code) in [
        ("hangup", json!({}), "call_ended"),
        ("dtmf", json!({"digits": "1"}), "call_ended"),
    ] {
        let a = api.post(&format!("/v1/calls/{id}/{path}"), body).await;
        api.documented(&format!("/v1/calls/{{id}}/{path}"), "post", &a, 409);
        assert_eq!(a.body["error"]["code"], code);
    }
    let done = api.get("/v1/calls?status=completed").await;
    assert_eq!(
        done.body["calls"][0]["call_id"],
        id.as_str(),
        "{}",
        done.body
    );
    assert_eq!(
        api.get("/v1/calls?status=active").await.body["calls"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_and_documented() {
    let gw = start((36720, 36739), "builtin:echo", false).await;
    let api = Api::new(&gw).await;
    let unknown = "CA00000000000000000000000000000001";
    let a = api.get(&format!("/v1/calls/{unknown}")).await;
    api.documented("/v1/calls/{id}", "get", &a, 404);
    assert_eq!(a.body["error"]["code"], "not_found");
    let a = api.get(&format!("/v1/calls/{unknown}/recording")).await;
    api.documented("/v1/calls/{id}/recording", "get", &a, 404);
    assert_eq!(a.body["error"]["code"], "not_found");
    for path in ["hangup", "dtmf"] {
        let a = api
            .post(
                &format!("/v1/calls/{unknown}/{path}"),
                json!({"digits": "1"}),
            )
            .await;
        api.documented(&format!("/v1/calls/{{id}}/{path}"), "post", &a, 404);
    }
    for query in [
        "status=ringing",
        "status=",
        "limit=0",
        "limit=1001",
        "limit=ten",
    ] {
        let a = api.get(&format!("/v1/calls?{query}")).await;
        api.documented("/v1/calls", "get", &a, 400);
        assert_eq!(a.body["error"]["code"], "invalid_request", "{query}");
    }
    // No token, a wrong token: 401 everywhere but the probes. The wrong tokens come from a
    // second address: ten failures from one address within a minute are the limit (429,
    // tests/api.rs).
    let url = |p: &str| format!("{}{p}", api.base);
    let second = std::net::IpAddr::from([127, 0, 0, 2]);
    let guesser = reqwest::Client::builder()
        .local_address(second)
        .build()
        .expect("client");
    for path in [
        "/v1/calls",
        "/v1/calls/x",
        "/v1/calls/x/recording",
        "/v1/openapi.json",
        "/metrics",
    ] {
        let a = api.send(api.http.get(url(path))).await;
        assert_eq!(a.status, 401, "{path}");
        assert_eq!(
            a.body["error"]["code"], "unauthorized",
            "{path}: {}",
            a.body
        );
        let a = api
            .send(guesser.get(url(path)).bearer_auth("s3cret-tokem"))
            .await;
        assert_eq!(a.status, 401, "{path} with a wrong token");
    }
    let a = api.send(guesser.post(url("/v1/calls/x/hangup"))).await;
    api.documented("/v1/calls/{id}/hangup", "post", &a, 401);
    assert_eq!(api.send(api.http.get(url("/healthz"))).await.status, 200);
    // Twilio compatibility is off: its resource is not there.
    let tw = api.twilio(reqwest::Method::GET, unknown, ACCOUNT, TOKEN);
    let a = api.send(tw).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{}",
        a.body
    );

    // The checker is not a rubber stamp: a wrong view fails it.
    let schema = json!({"$ref": "#/components/schemas/Call"});
    let bad = json!({"call_id": 7, "direction": "sideways", "status": "completed", "extra": 1});
    let problems = check(&api.doc, &schema, &bad);
    for needle in ["/call_id", "/direction", "\"started_at\"", "\"extra\""] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle} in {problems:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_while_ringing_rejects_the_invite() {
    let gw = start((36740, 36759), "builtin:echo?answer_delay_ms=20000", false).await;
    let api = Api::new(&gw).await;
    let mut events = gw.subscribe();
    let mut ringing = dial(&gw).await;
    ringing.expect_ringing().await;
    let id = started_call_id(&mut events).await;
    let got = api.get(&format!("/v1/calls/{id}")).await;
    api.documented("/v1/calls/{id}", "get", &got, 200);
    assert_eq!(got.body["status"], "ringing", "{}", got.body);
    // DTMF needs an answered call.
    let a = api
        .post(&format!("/v1/calls/{id}/dtmf"), json!({"digits": "1"}))
        .await;
    api.documented("/v1/calls/{id}/dtmf", "post", &a, 409);
    assert_eq!(a.body["error"]["code"], "call_not_answered");

    let a = api.post(&format!("/v1/calls/{id}/hangup"), json!({})).await;
    api.documented("/v1/calls/{id}/hangup", "post", &a, 202);
    ringing.expect_failure(480).await;
    let (end_reason, record) = ended_reason(&mut events).await;
    assert_eq!(end_reason, "api_hangup");
    assert_eq!(
        (record["status"].as_str(), record["sip_status"].as_u64()),
        (Some("canceled"), Some(480)),
        "{record}"
    );
    let got = api.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(
        (got.body["status"].as_str(), got.body["end_reason"].as_str()),
        (Some("canceled"), Some("api_hangup"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_compatible_call_resource() {
    let gw = start((36760, 36779), "builtin:echo", true).await;
    let api = Api::new(&gw).await;
    let template = "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json";
    let mut events = gw.subscribe();
    let mut call = dial(&gw).await.expect_answer(0.0).await;
    let sid = started_call_id(&mut events).await;

    let get = api
        .send(api.twilio(reqwest::Method::GET, &sid, ACCOUNT, TOKEN))
        .await;
    api.documented(template, "get", &get, 200);
    let v = &get.body;
    assert_eq!(
        (v["sid"].as_str(), v["account_sid"].as_str()),
        (Some(sid.as_str()), Some(ACCOUNT)),
        "{v}"
    );
    assert_eq!(
        (v["status"].as_str(), v["direction"].as_str()),
        (Some("in-progress"), Some("inbound")),
        "{v}"
    );
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str()),
        (Some("+919990152080"), Some("+48123456789"))
    );
    assert_eq!(
        (&v["duration"], &v["end_time"]),
        (&Value::Null, &Value::Null),
        "{v}"
    );
    let start = v["start_time"].as_str().unwrap_or_default();
    assert!(
        start.ends_with(" +0000") && start.len() == 31 && start.as_bytes()[3] == b',',
        "RFC 2822 like Twilio: {start}"
    );

    // Wrong credentials, another account: 401 with Twilio's 20003.
    for (user, pass) in [
        (ACCOUNT, "wrong"),
        ("AC0123456789abcdef0123456789abcdee", TOKEN),
    ] {
        let a = api
            .send(api.twilio(reqwest::Method::GET, &sid, user, pass))
            .await;
        api.documented(template, "get", &a, 401);
        assert_eq!(a.body["code"], 20003);
    }
    let a = api
        .send(api.http.get(format!(
            "{}/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json",
            api.base
        )))
        .await;
    assert_eq!(a.status, 401, "no credentials");
    // Unknown call: Twilio's 20404, word for word.
    let unknown = "CA00000000000000000000000000000009";
    let a = api
        .send(api.twilio(reqwest::Method::GET, unknown, ACCOUNT, TOKEN))
        .await;
    api.documented(template, "get", &a, 404);
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{unknown}.json");
    assert_eq!(
        a.body,
        json!({"code": 20404, "message": format!("The requested resource {path} was not found"),
        "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})
    );

    let post = |status: &str| {
        let req = api.twilio(reqwest::Method::POST, &sid, ACCOUNT, TOKEN);
        api.send(
            req.header("content-type", "application/x-www-form-urlencoded")
                .body(format!("Status={status}")),
        )
    };
    // `canceled` leaves an answered call alone; a bad Status is refused.
    let a = post("canceled").await;
    api.documented(template, "post", &a, 200);
    assert_eq!(a.body["status"], "in-progress");
    let a = post("paused").await;
    api.documented(template, "post", &a, 400);
    // `completed` hangs up.
    let a = post("completed").await;
    api.documented(template, "post", &a, 200);
    call.expect_bye(WAIT).await;
    let (end_reason, record) = ended_reason(&mut events).await;
    assert_eq!(end_reason, "api_hangup");
    let get = api
        .send(api.twilio(reqwest::Method::GET, &sid, ACCOUNT, TOKEN))
        .await;
    api.documented(template, "get", &get, 200);
    let v = &get.body;
    assert_eq!(v["status"], "completed", "{v}");
    // Whole seconds of the record's duration (which is rounded to 0.1 s on the wire).
    let whole: f64 = v["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(-9.0);
    let exact = record["duration_s"].as_f64().unwrap_or(-1.0);
    assert!(
        whole <= exact + 0.05 && exact < whole + 1.0,
        "{v} vs {record}"
    );
    assert!(
        v["end_time"]
            .as_str()
            .is_some_and(|t| t.ends_with(" +0000")),
        "{v}"
    );
    let a = post("completed").await;
    api.documented(template, "post", &a, 400);
    assert_eq!(a.body["code"], 21220, "ended: {}", a.body);
}
