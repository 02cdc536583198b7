//! Placing calls over real HTTP (PROTOCOLS.md §3): `POST /v1/calls` with garbage in every
//! field is a 400 naming that field and dials nothing; bad bodies, content types and sizes;
//! auth; `Idempotency-Key` validation; the Twilio-compatible create's validation (Twilio's
//! codes) and auth. Every JSON answer is checked against `/v1/openapi.json`.
//!
//! The gateway here has no outbound trunk, so a valid request is `400 no_trunk` — true also
//! once dialling works; placing calls for real is tested with a scripted trunk elsewhere.

mod support;

use serde_json::{json, Value};
use trunkgate::app::Gateway;

use support::gw::scratch_dir;
use support::schema::assert_response;

const TOKEN: &str = "dial-token";
const ACCOUNT: &str = "AC00112233445566778899aabbccddeeff";
const CREATE: &str = "/2010-04-01/Accounts/{AccountSid}/Calls.json";

struct Api {
    base: String,
    http: reqwest::Client,
    doc: Value,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
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
        let req = api.http.get(api.url("/v1/openapi.json")).bearer_auth(TOKEN);
        api.doc = api.send(req).await.body;
        assert_eq!(api.doc["openapi"], "3.1.0");
        api
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let (status, headers, body) = support::api::send_full(req).await;
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `POST /v1/calls` with `body` as JSON and the token.
    async fn dial(&self, body: &Value) -> Answer {
        let req = self.http.post(self.url("/v1/calls")).bearer_auth(TOKEN);
        self.send(req.json(body)).await
    }

    /// The answer is `status` and documented as such.
    fn documented(&self, path: &str, a: &Answer, status: u16) {
        assert_eq!(a.status, status, "POST {path}: {}", a.body);
        assert_response(&self.doc, path, "post", status, &a.body);
    }

    /// The Twilio create with a form body and Basic `user:pass`.
    async fn twilio(&self, user: &str, pass: &str, form: &[(&str, &str)]) -> Answer {
        let url = self.url(&format!("/2010-04-01/Accounts/{user}/Calls.json"));
        let req = self.http.post(url).basic_auth(user, Some(pass));
        self.send(form_body(req, form)).await
    }

    /// Nothing was dialled: the gateway knows no calls.
    async fn no_calls(&self) {
        let req = self.http.get(self.url("/v1/calls")).bearer_auth(TOKEN);
        let list = self.send(req).await;
        assert_eq!(list.body["calls"], json!([]), "{}", list.body);
    }
}

async fn start(ports: (u16, u16), twilio: bool) -> Gateway {
    let dir = scratch_dir("dial-api");
    let token_file = dir.join("api.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let api = format!(
        "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"\ntwilio_compat = {twilio}\naccount_sid = \"{ACCOUNT}\"",
        token_file.display()
    );
    let text = support::gw::config_text(ports, "builtin:echo", "").replace("listen = \"\"", &api);
    let cfg = trunkgate::config::parse(&text, "test").expect("config");
    Gateway::start(cfg).await.expect("start")
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
fn form_body(req: reqwest::RequestBuilder, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    char::from(b).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    req.header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
}

fn valid() -> Value {
    json!({"to": "+48123456789", "websocket_url": "wss://agent.example/ws"})
}

fn with(name: &str, value: Value) -> Value {
    let mut body = valid();
    if let Some(o) = body.as_object_mut() {
        o.insert(name.to_string(), value);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_every_field_is_400_naming_it() {
    let gw = start((36800, 36809), false).await;
    let api = Api::new(&gw).await;
    let garbage: &[(&str, Value)] = &[
        ("to", json!("+48 12x 456 789")),
        ("to", json!("12")),
        ("to", json!("+12345678901234567")),
        ("to", json!("sip:bob@example.com\r\nVia: SIP/2.0/UDP evil")),
        ("to", json!("sip:<bob@example.com>")),
        ("to", json!(48123456789u64)),
        ("from", json!("bob@example.com")),
        ("from", json!(true)),
        ("websocket_url", json!("http://agent.example/ws")),
        ("websocket_url", json!("builtin:parrot")),
        ("websocket_url", json!("")),
        ("dialect", json!("exotel")),
        ("sample_rate", json!(11025)),
        ("callback_url", json!("javascript:alert(1)")),
        ("callback_url", json!("https://")),
        ("trunk", json!(7)),
        ("trunk", json!("carrier\n-a")),
        ("timeout_s", json!(0)),
        ("timeout_s", json!(601)),
        ("timeout_s", json!("30")),
        ("time_limit_s", json!(0)),
        ("time_limit_s", json!(86401)),
        ("record", json!("true")),
        ("early_media", json!(0)),
        ("srtp", json!("sometimes")),
        ("parameters", json!({"nested": {"x": 1}})),
        ("parameters", json!({"list": [1]})),
        ("parameters", json!("a=b")),
        ("status_events", json!(["ringing", "hungup"])),
        ("status_events", json!({"ringing": true})),
        // Only with bridge_from (click-to-call).
        ("bridge_from_trunk", json!("pbx")),
        ("websocketUrl", json!("wss://typo")),
    ];
    for (name, value) in garbage {
        let a = api.dial(&with(name, value.clone())).await;
        api.documented("/v1/calls", &a, 400);
        let e = &a.body["error"];
        assert_eq!(
            (e["code"].as_str(), e["field"].as_str()),
            (Some("invalid_request"), Some(*name)),
            "{name}={value}: {}",
            a.body
        );
        let message = e["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("{name}: ")), "{message}");
    }
    // Required fields.
    for name in ["to", "websocket_url"] {
        let mut body = valid();
        if let Some(o) = body.as_object_mut() {
            o.remove(name);
        }
        let a = api.dial(&body).await;
        api.documented("/v1/calls", &a, 400);
        assert_eq!(a.body["error"]["field"], *name, "{}", a.body);
        assert_eq!(a.body["error"]["message"], format!("{name}: required"));
    }
    api.no_calls().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_auth_and_the_valid_request() {
    let gw = start((36810, 36819), false).await;
    let api = Api::new(&gw).await;
    let post = || api.http.post(api.url("/v1/calls")).bearer_auth(TOKEN);
    let json_type = ("content-type", "application/json");
    for (what, req) in [
        (
            "not JSON",
            post().header(json_type.0, json_type.1).body("{\"to\":"),
        ),
        (
            "an array",
            post().header(json_type.0, json_type.1).body("[]"),
        ),
        ("no content type", post().body(valid().to_string())),
        ("form", form_body(post(), &[("to", "+48123456789")])),
        (
            "text",
            post()
                .header("content-type", "text/plain")
                .body(valid().to_string()),
        ),
    ] {
        let a = api.send(req).await;
        api.documented("/v1/calls", &a, 400);
        assert_eq!(a.body["error"]["code"], "invalid_request", "{what}");
    }
    let huge = with("parameters", json!({"blob": "x".repeat(70 * 1024)}));
    let a = api.dial(&huge).await;
    api.documented("/v1/calls", &a, 413);
    assert_eq!(a.body["error"]["code"], "body_too_large");

    // Auth comes first: 401 whatever the body.
    for req in [
        api.http.post(api.url("/v1/calls")).json(&valid()),
        api.http
            .post(api.url("/v1/calls"))
            .bearer_auth("dial-tokem")
            .json(&valid()),
        api.http
            .post(api.url("/v1/calls"))
            .bearer_auth("x")
            .body("garbage"),
    ] {
        let a = api.send(req).await;
        api.documented("/v1/calls", &a, 401);
        assert_eq!(a.body["error"]["code"], "unauthorized");
    }

    // Valid, every field given: no trunk here, so 400 no_trunk naming `trunk`.
    let full = json!({
        "to": "sip:bob@pbx.example;transport=tcp", "from": "anonymous",
        "websocket_url": "builtin:echo", "dialect": "raw", "sample_rate": 16000,
        "callback_url": "https://platform.example/cb", "trunk": "carrier-a",
        "timeout_s": 600, "time_limit_s": 86400, "record": true, "early_media": false,
        "parameters": {"lead": "42", "n": 7, "vip": false}, "status_events": ["answered"]
    });
    let a = api.dial(&full).await;
    api.documented("/v1/calls", &a, 400);
    assert_eq!(a.body["error"]["code"], "no_trunk", "{}", a.body);
    assert_eq!(a.body["error"]["field"], "trunk");
    let a = api.dial(&valid()).await;
    api.documented("/v1/calls", &a, 400);
    assert_eq!(a.body["error"]["code"], "no_trunk", "{}", a.body);
    api.no_calls().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_is_checked_and_failures_are_not_remembered() {
    let gw = start((36820, 36829), false).await;
    let api = Api::new(&gw).await;
    let long = "k".repeat(256);
    for key in ["", "two words", long.as_str(), "tab\tkey"] {
        let req = api.http.post(api.url("/v1/calls")).bearer_auth(TOKEN);
        let a = api
            .send(req.header("idempotency-key", key).json(&valid()))
            .await;
        api.documented("/v1/calls", &a, 400);
        assert_eq!(
            a.body["error"]["field"], "Idempotency-Key",
            "{key:?}: {}",
            a.body
        );
    }
    let req = api.http.post(api.url("/v1/calls")).bearer_auth(TOKEN);
    let twice = req
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(&valid());
    let a = api.send(twice).await;
    assert_eq!(
        (a.status, &a.body["error"]["field"]),
        (400, &json!("Idempotency-Key"))
    );
    // A refused dial is not remembered: the same key with another request is not a conflict.
    let keyed = |body: Value| {
        let req = api.http.post(api.url("/v1/calls")).bearer_auth(TOKEN);
        api.send(req.header("idempotency-key", "order-42").json(&body))
    };
    for body in [valid(), valid(), with("timeout_s", json!(45))] {
        let a = keyed(body).await;
        api.documented("/v1/calls", &a, 400);
        assert_eq!(a.body["error"]["code"], "no_trunk", "{}", a.body);
        assert!(a.headers.get("idempotent-replayed").is_none());
    }
    api.no_calls().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_create_validation_and_auth() {
    let gw = start((36830, 36839), true).await;
    let api = Api::new(&gw).await;
    let base = [
        ("To", "+48123456789"),
        ("From", "+48600100200"),
        ("Url", "https://platform.example/twiml"),
    ];
    let form = |skip: &str, extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, &str)> = base.iter().copied().filter(|(k, _)| *k != skip).collect();
        for (k, v) in extra {
            f.retain(|(name, _)| name != k);
            f.push((k, v));
        }
        f
    };
    for (skip, extra, code) in [
        ("To", &[][..], 21201),
        ("From", &[], 21213),
        ("Url", &[], 21205),
        ("", &[("To", "+48 abc")], 21211),
        ("", &[("From", "a b")], 21212),
        ("", &[("Url", "ftp://x")], 21205),
        ("", &[("StatusCallback", "nope")], 21609),
        ("", &[("StatusCallbackMethod", "GET")], 21209),
        ("", &[("StatusCallbackEvent", "ringing exploded")], 21200),
        ("", &[("Timeout", "0")], 21208),
        ("", &[("Timeout", "601")], 21208),
        ("", &[("TimeLimit", "x")], 21200),
        ("", &[("Record", "maybe")], 21200),
    ] {
        let a = api.twilio(ACCOUNT, TOKEN, &form(skip, extra)).await;
        api.documented(CREATE, &a, 400);
        assert_eq!(a.body["code"], code, "{skip} {extra:?}: {}", a.body);
        assert_eq!(a.body["status"], 400);
        let more = format!("https://www.twilio.com/docs/errors/{code}");
        assert_eq!(a.body["more_info"], more.as_str());
    }
    // Not a form.
    let url = api.url(&format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json"));
    let req = api.http.post(&url).basic_auth(ACCOUNT, Some(TOKEN));
    let a = api.send(req.json(&valid())).await;
    api.documented(CREATE, &a, 400);
    assert_eq!(a.body["code"], 20001);
    // Credentials and account first.
    for (user, pass) in [
        (ACCOUNT, "wrong"),
        ("AC00112233445566778899aabbccddeefe", TOKEN),
    ] {
        let a = api.twilio(user, pass, &form("To", &[])).await;
        api.documented(CREATE, &a, 401);
        assert_eq!(a.body["code"], 20003);
    }
    let a = api.send(form_body(api.http.post(&url), &base)).await;
    assert_eq!(a.status, 401, "no credentials");
    // Valid, other Twilio fields ignored: no trunk here.
    let extra = [
        ("FriendlyName", "x"),
        ("MachineDetection", "Enable"),
        ("StatusCallbackEvent", "initiated completed"),
    ];
    let a = api.twilio(ACCOUNT, TOKEN, &form("", &extra)).await;
    api.documented(CREATE, &a, 400);
    assert_eq!(a.body["code"], 21214, "{}", a.body);
    api.no_calls().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_create_is_absent_without_twilio_compat() {
    let gw = start((36840, 36849), false).await;
    let api = Api::new(&gw).await;
    let a = api.twilio(ACCOUNT, TOKEN, &[("To", "+48123456789")]).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{}",
        a.body
    );
}
