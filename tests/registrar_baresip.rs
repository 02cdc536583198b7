//! The registrar with a real phone: a baresip (Debian package) whose account registers with
//! the gateway as `[[user]]` alice (digest, over UDP and over TCP), then is rung by
//! click-to-call `bridge_from = "user:alice"` where its REGISTER came from (over TCP, on the
//! very connection it registered on) and bridged to a second baresip behind a trunk. A wrong
//! password never registers (and the call is refused with 409 `not_registered`); a phone
//! that unregisters (baresip quitting sends `Expires: 0`) cannot be rung any more.
//! Skips (with a note) only when baresip is not installed; `scripts/test.sh` installs it.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use trunkgate::app::Gateway;

use support::baresip::{Baresip, BaresipOptions, TempDir, Transport};
use support::gw::scratch_dir;
use support::phone::phone;

const TOKEN: &str = "registrar-baresip-token";
const WAIT: Duration = Duration::from_secs(10);
const NUMBER: &str = "+48123456789";
const PASSWORD: &str = "alice-s3cret-pw";

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    support::api::post(base, TOKEN, path, body).await
}

/// A gateway with the API on, user alice (password [`PASSWORD`]) and a trunk `carrier`
/// toward the client phone.
async fn gateway(ports: (u16, u16), client: &Baresip) -> (Gateway, String) {
    let dir = scratch_dir("registrar-baresip");
    let token_file = dir.join("api.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let password_file = dir.join("alice.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let extra = format!(
        "[[user]]\nname = \"alice\"\npassword_file = \"{}\"\nallow_cidrs = [\"127.0.0.0/8\"]\ndigest = [\"MD5\"]\n\
         [[trunk]]\nname = \"carrier\"\noutbound = {{ address = \"127.0.0.1:{}\" }}\n",
        password_file.display(),
        client.ports().sip
    );
    let api = format!(
        "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
        token_file.display()
    );
    let text =
        support::gw::config_text(ports, "builtin:echo", &extra).replace("listen = \"\"", &api);
    let cfg = trunkgate::config::parse(&text, "test").unwrap_or_else(|e| panic!("config: {e}"));
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let base = format!("http://{}", gw.api_addr.expect("API listening"));
    (gw, base)
}

/// Alice's phone, registering with the gateway over `transport` with `password`.
async fn alice(dir: &TempDir, gw: &Gateway, transport: Transport, password: &str) -> Baresip {
    let play = dir.path().join("alice.wav");
    let mut samples = support::wav::silence(200, 8000);
    samples.extend(support::wav::tone(1000.0, 20_000, 0.5, 8000));
    support::wav::write_wav_8k(&play, &samples).expect("write alice.wav");
    let mut opts = BaresipOptions::new(transport, &play);
    opts.user = "alice".into();
    opts.auto_answer = true;
    let port = match transport {
        Transport::Tcp => gw.tcp_addrs[0].port(),
        _ => gw.udp_addrs[0].port(),
    };
    opts.register = Some((port, password.into()));
    Baresip::start(opts).await.expect("baresip starts")
}

/// Waits (bounded poll) for the registration's outcome: `REGISTER_OK`/`REGISTER_FAIL`, or
/// baresip's log line for it — the event can come before the test's control connection
/// listens (on loopback the REGISTER round trip is that fast); the log line is never missed.
async fn registration(ua: &Baresip, ok: bool) -> Result<(), String> {
    let event = if ok { "REGISTER_OK" } else { "REGISTER_FAIL" };
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let log = ua.log();
        let logged = log.lines().any(|l| {
            l.contains("alice@")
                && match ok {
                    true => l.contains("200 OK"),
                    false => l.contains("401") || l.contains("403"),
                }
        });
        if logged || ua.events().iter().any(|e| e.kind == event) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!("no {event} within {WAIT:?}:\n{log}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn click_to_call_body() -> Value {
    json!({"to": NUMBER, "from": "+48111222333", "bridge_from": "user:alice", "trunk": "carrier"})
}

/// Registered over `transport`, alice is rung by click-to-call and bridged to the client;
/// once she has quit (unregistered), she cannot be rung.
async fn registered_phone_is_rung(transport: Transport, ports: (u16, u16)) {
    let dir = TempDir::new("tg-registrar").expect("temp dir");
    let Some(mut client) = phone(&dir, NUMBER, 700.0).await else {
        return;
    };
    let (gw, base) = gateway(ports, &client).await;
    // Before she registers: a known user without a phone.
    let (status, body) = post(&base, "/v1/calls", &click_to_call_body()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_registered", "{body}");
    let mut manager = alice(&dir, &gw, transport, PASSWORD).await;
    registration(&manager, true)
        .await
        .expect("alice registers with her password");
    let (status, body) = post(&base, "/v1/calls", &click_to_call_body()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["call_id"].as_str().expect("call_id").to_string();
    manager
        .wait_established(WAIT)
        .await
        .expect("alice's registered phone rings and answers");
    client
        .wait_established(WAIT)
        .await
        .expect("then the client is dialled and answers");
    let (status, body) = post(&base, &format!("/v1/calls/{id}/hangup"), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    for ua in [&mut manager, &mut client] {
        ua.wait_event("CALL_CLOSED", WAIT)
            .await
            .expect("both legs get BYE");
    }
    // Quitting, baresip unregisters (Expires: 0): a bounded poll until she is gone.
    let _ = manager.quit().await;
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = post(&base, "/v1/calls", &click_to_call_body()).await;
        if status == 409 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "alice still reachable after unregistering: {status} {body}"
        );
        if status == 201 {
            if let Some(id) = body["call_id"].as_str() {
                let _ = post(&base, &format!("/v1/calls/{id}/hangup"), &json!({})).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = client.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_over_udp_is_rung_by_click_to_call() {
    registered_phone_is_rung(Transport::Udp, (38240, 38259)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_over_tcp_is_rung_by_click_to_call() {
    registered_phone_is_rung(Transport::Tcp, (38260, 38279)).await;
}

/// A wrong password never registers: baresip reports the failure, the call is refused, and
/// an unknown user is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_never_registers() {
    let dir = TempDir::new("tg-registrar-wrong").expect("temp dir");
    let Some(client) = phone(&dir, NUMBER, 700.0).await else {
        return;
    };
    let (gw, base) = gateway((38280, 38299), &client).await;
    let manager = alice(&dir, &gw, Transport::Udp, "not-the-password").await;
    registration(&manager, false)
        .await
        .expect("the registration fails");
    let (status, body) = post(&base, "/v1/calls", &click_to_call_body()).await;
    assert_eq!(status, 409, "{body}");
    let mut body = click_to_call_body();
    body["bridge_from"] = json!("user:bob");
    let (status, body) = post(&base, "/v1/calls", &body).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "bridge_from", "{body}");
    let _ = manager.quit().await;
    let _ = client.quit().await;
}
