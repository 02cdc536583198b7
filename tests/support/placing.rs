//! Placing calls in daemon tests: a gateway with the control API on and a `[[trunk]]` named
//! `carrier`, a small API client (bearer token), and waiting for a call's end.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use trunkgate::app::{Gateway, GatewayEvent};

use super::gw::{scratch_dir, wait_event};
use super::leg::WAIT;

/// The API's bearer token (also the Twilio-compatible API's Basic password).
pub const TOKEN: &str = "placing-token";

/// An answer: status, headers, body (JSON when it parses, else the text).
pub type Got = (u16, reqwest::header::HeaderMap, Value);

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Got {
        let resp = tokio::time::timeout(WAIT, req.send())
            .await
            .expect("API answers in time")
            .expect("HTTP request");
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }

    /// `POST path` with a JSON body and the token.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let req = self.http.post(format!("{}{path}", self.base));
        let (status, _, body) = self.send(req.bearer_auth(TOKEN).json(body)).await;
        (status, body)
    }

    pub async fn get(&self, path: &str) -> Value {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req.bearer_auth(TOKEN)).await.2
    }
}

/// What a test gateway gets beyond the defaults of `support::gw::config_text`.
#[derive(Default)]
pub struct Setup<'a> {
    /// More `[api]` keys (e.g. `twilio_compat = true`).
    pub api_keys: &'a str,
    /// More sections (e.g. `[webhook]`), before the trunk.
    pub sections: &'a str,
    /// The `carrier` trunk's keys, its `outbound` among them.
    pub trunk_keys: &'a str,
    /// More `[sip]` keys (e.g. short session timers).
    pub sip_keys: &'a str,
}

/// A gateway on `ports` (RTP) with the API on loopback.
pub async fn start(ports: (u16, u16), s: Setup<'_>) -> (Gateway, Api) {
    let token_file = scratch_dir("placing").join("api.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let api = format!(
        "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n{}",
        token_file.display(),
        s.api_keys
    );
    let extra = format!(
        "{}\n[[trunk]]\nname = \"carrier\"\n{}\n",
        s.sections, s.trunk_keys
    );
    let text = super::gw::config_text(ports, "builtin:echo", &extra)
        .replace("listen = \"\"", &api)
        .replace("[sip]\n", &format!("[sip]\n{}\n", s.sip_keys));
    let cfg = trunkgate::config::parse(&text, "test").unwrap_or_else(|e| panic!("config: {e}"));
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let base = format!("http://{}", gw.api_addr.expect("API listening"));
    let http = reqwest::Client::new();
    (gw, Api { base, http })
}

/// A trunk password file holding `s3cret`.
pub fn password_file() -> PathBuf {
    let path = scratch_dir("placing").join("trunk.password");
    std::fs::write(&path, "s3cret\n").expect("password file");
    path
}

/// The call's end, within `wait`: its `end_reason` and record.
pub async fn ended(
    events: &mut broadcast::Receiver<GatewayEvent>,
    id: &str,
    wait: Duration,
) -> (String, Value) {
    let is_it =
        |e: &GatewayEvent| matches!(e, GatewayEvent::CallEnded { call_id, .. } if call_id == id);
    match wait_event(events, wait, is_it).await {
        GatewayEvent::CallEnded {
            end_reason, record, ..
        } => (
            end_reason,
            serde_json::to_value(&record.call).expect("view"),
        ),
        _ => unreachable!(),
    }
}
