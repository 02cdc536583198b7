//! Outbound calls to a real SIP UA: `POST /v1/calls` through a `[[trunk]]` whose `outbound`
//! is a baresip (Debian package) listening on loopback with `answermode=auto`, over UDP (the
//! call dialled as an E.164 number, which becomes the Request-URI user baresip's account is
//! named after), over TCP (dialled as a `sip:` URI) and over TLS (baresip's certificate from
//! a test CA, checked for its address). baresip plays a 1000 Hz tone and the
//! agent a 440 Hz one on start; the test checks the agent hears baresip's tone and baresip's
//! recording holds the agent's, then hangs up through the API and reads `completed`.
//! Click-to-call with two phones (manager, client): each hears the other, the stereo
//! recording has the client left; and every failure branch — the client busy, not answering,
//! unreachable (the manager hears the tone, then BYE), the manager not answering (the client
//! never rings).
//! Skips (with a note) only when baresip is not installed; `scripts/test.sh` installs it.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use trunkgate::app::{Gateway, GatewayEvent};

use support::agent::{Action, AgentServer, Dialect, Script};
use support::baresip::{Baresip, BaresipOptions, TempDir, Transport};
use support::gw::{scratch_dir, wait_event};
use support::phone::{phone, phone_with, recorded_frames, tone_frames};
use support::wav;

const TOKEN: &str = "outbound-baresip-token";
const WAIT: Duration = Duration::from_secs(10);
/// baresip's tone (its play file) and the agent's.
const CALLEE_HZ: f32 = 1000.0;
const AGENT_HZ: f32 = 440.0;
const NUMBER: &str = "+48123456789";

/// A gateway with the API on and one trunk pointing at baresip, without credentials (over TLS
/// trusting `ca`, the CA of baresip's certificate).
async fn gateway(
    ports: (u16, u16),
    ua: &Baresip,
    transport: Transport,
    ca: &std::path::Path,
    trunk_extra: &str,
) -> (Gateway, String) {
    let dir = scratch_dir("outbound-baresip");
    let token_file = dir.join("api.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let api = format!(
        "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
        token_file.display()
    );
    let (tp, port) = match transport {
        Transport::Udp => ("udp", ua.ports().sip),
        Transport::Tcp => ("tcp", ua.ports().sip),
        Transport::Tls => ("tls", ua.ports().sip + 1),
    };
    let trunk = format!(
        "[sip.tls]\nca_file = \"{}\"\n\
         [[trunk]]\nname = \"baresip\"\noutbound = {{ address = \"127.0.0.1:{port}\", transport = \"{tp}\"{trunk_extra} }}\n",
        ca.display()
    );
    let text =
        support::gw::config_text(ports, "builtin:echo", &trunk).replace("listen = \"\"", &api);
    let cfg = trunkgate::config::parse(&text, "test").unwrap_or_else(|e| panic!("config: {e}"));
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let base = format!("http://{}", gw.api_addr.expect("API listening"));
    (gw, base)
}

async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    support::api::post(base, TOKEN, path, body).await
}

/// baresip's options, or `None` (with a note) when it is not installed.
fn callee(transport: Transport, dir: &TempDir) -> Option<BaresipOptions> {
    let play = dir.path().join("play.wav");
    // Longer than the call: baresip hangs up when its play file ends.
    let mut samples = wav::silence(200, 8000);
    samples.extend(wav::tone(f64::from(CALLEE_HZ), 20_000, 0.5, 8000));
    wav::write_wav_8k(&play, &samples).expect("write play.wav");
    let mut opts = BaresipOptions::new(transport, &play);
    if !opts.binary.exists() {
        eprintln!(
            "note: {} not installed; skipping (scripts/test.sh installs baresip)",
            opts.binary.display()
        );
        return None;
    }
    opts.user = NUMBER.into();
    opts.auto_answer = true;
    // The SIP trace shows which transport the INVITE came over (baresip listens on both).
    opts.sip_trace = true;
    opts.record_wav = Some(dir.path().join("heard.wav"));
    Some(opts)
}

/// With `srtp`, baresip takes only RTP/SAVP (`mediaenc=srtp-mand`), the trunk's
/// `outbound.srtp` is "optional" and the call asks for "required" (its own wins: an
/// optional offer is RTP/AVP, which baresip would refuse).
async fn call_baresip(transport: Transport, dialect: Dialect, ports: (u16, u16), srtp: bool) {
    let dir = TempDir::new("tg-outbound-baresip").expect("temp dir");
    let Some(mut opts) = callee(transport, &dir) else {
        return;
    };
    if srtp {
        opts.mediaenc = Some("srtp-mand");
    }
    // Over TLS baresip presents a certificate for 127.0.0.1 from a test CA (cert and key in
    // one file, as baresip reads it); the gateway trusts that CA and checks the address.
    let mut pki = support::pki::Pki::new();
    if transport == Transport::Tls {
        let leaf = pki.leaf(&["127.0.0.1"]);
        let both = dir.path().join("baresip-cert.pem");
        let pem = std::fs::read_to_string(&leaf.cert).expect("cert")
            + &std::fs::read_to_string(&leaf.key).expect("key");
        std::fs::write(&both, pem).expect("write baresip cert");
        opts.certificate = Some(both);
    }
    let mut ua = Baresip::start(opts).await.expect("baresip starts");
    let trunk_extra = if srtp { ", srtp = \"optional\"" } else { "" };
    let (gw, base) = gateway(ports, &ua, transport, &pki.ca_file(), trunk_extra).await;
    let mut events = gw.subscribe();
    let tone = Action::Tone {
        freq: AGENT_HZ,
        ms: 6000,
        chunk_ms: 20,
    };
    let script = Script {
        on_start: vec![tone],
        on_dtmf: None,
    };
    let mut agent = AgentServer::start(dialect, script).await;
    let (to, dialect_name) = match transport {
        Transport::Udp => (NUMBER.to_string(), "twilio"),
        Transport::Tcp => (format!("{};transport=tcp", ua_uri(&ua)), "raw"),
        Transport::Tls => (format!("{};transport=tls", ua_uri(&ua)), "plivo"),
    };
    let mut body = json!({"to": to, "from": "+48111222333", "websocket_url": agent.url,
                      "dialect": dialect_name, "sample_rate": 8000});
    if srtp {
        body["srtp"] = json!("required");
    }
    let (status, body) = post(&base, "/v1/calls", &body).await;
    assert_eq!(status, 201, "{body}");
    let id = body["call_id"].as_str().expect("call_id").to_string();

    ua.wait_established(WAIT).await.expect("baresip answers");
    let start = agent.start_msg(WAIT).await;
    assert!(start.to_string().contains(&id), "{start}");
    // A second of baresip's tone at the agent; the agent's tone flowed meanwhile.
    let heard = agent
        .wait_heard(WAIT, |h| tone_frames(&h.pcm, h.rate, CALLEE_HZ) >= 50)
        .await;
    let h = agent.heard();
    assert!(
        heard,
        "the agent hears baresip's {CALLEE_HZ} Hz tone ({} of {} frames at {} Hz)",
        tone_frames(&h.pcm, h.rate, CALLEE_HZ),
        h.pcm.len() / (h.rate / 50).max(1) as usize,
        h.rate
    );

    let (status, body) = post(&base, &format!("/v1/calls/{id}/hangup"), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    let ended = wait_event(
        &mut events,
        WAIT,
        |e| matches!(e, GatewayEvent::CallEnded { call_id, .. } if *call_id == id),
    )
    .await;
    let GatewayEvent::CallEnded {
        end_reason, record, ..
    } = ended
    else {
        unreachable!()
    };
    let record = serde_json::to_value(&record.call).expect("view");
    assert_eq!(end_reason, "api_hangup", "{record}");
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["direction"], "outbound", "{record}");

    let closed = ua
        .wait_event("CALL_CLOSED", WAIT)
        .await
        .expect("BYE reaches baresip");
    assert!(
        closed.raw.contains("peer"),
        "closed by the gateway's BYE: {}",
        closed.raw
    );
    let path = ua
        .save_recording(&dir.path().join("heard.wav"))
        .await
        .expect("baresip's recording");
    let rec = wav::read_wav(&path).expect("read recording");
    let frames = tone_frames(&rec.samples, rec.sample_rate, AGENT_HZ);
    eprintln!(
        "{transport:?}: baresip recorded {:.2} s, {frames} frames of {AGENT_HZ} Hz",
        rec.duration_secs()
    );
    assert!(
        frames >= 25,
        "baresip hears the agent's {AGENT_HZ} Hz tone ({frames} frames of {:.1} s)",
        rec.duration_secs()
    );
    let finished = ua.quit().await.expect("baresip quits");
    let via = match transport {
        Transport::Udp => "Via: SIP/2.0/UDP 127.0.0.1",
        Transport::Tcp => "Via: SIP/2.0/TCP 127.0.0.1",
        Transport::Tls => "Via: SIP/2.0/TLS 127.0.0.1",
    };
    let invite = finished
        .log
        .find("INVITE sip:")
        .expect("the INVITE in baresip's trace");
    assert!(
        finished.log[invite..].contains(via),
        "the INVITE came over {transport:?}"
    );
    if srtp {
        let offer = &finished.log[invite..];
        let offer = &offer[..offer.find("\n\n\n").unwrap_or(offer.len()).min(3000)];
        assert!(
            offer.contains("m=audio") && offer.contains("RTP/SAVP") && offer.contains("a=crypto:"),
            "our offer is RTP/SAVP with keys: {offer}"
        );
    }
    assert_eq!(gw.rtp_ports_in_use(), 0);
}

/// baresip's address as a `sip:` URI without the transport parameter.
fn ua_uri(ua: &Baresip) -> String {
    let uri = ua.local_uri();
    uri.split(';').next().unwrap_or(&uri).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_calls_baresip_over_udp() {
    call_baresip(Transport::Udp, Dialect::Twilio, (37300, 37319), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_calls_baresip_over_tcp() {
    call_baresip(Transport::Tcp, Dialect::Raw, (37320, 37339), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_calls_baresip_over_tls() {
    call_baresip(Transport::Tls, Dialect::Plivo, (39360, 39379), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_calls_baresip_on_srtp_over_tls() {
    call_baresip(Transport::Tls, Dialect::Plivo, (39490, 39509), true).await;
}

/// Click-to-call with two real phones: `POST /v1/calls` with `bridge_from` rings the
/// manager's baresip (through trunk `pbx`) first; once it answers, the client's baresip
/// (trunk `carrier`) is dialled and the two are bridged. Each hears the other's tone; the
/// stereo recording has the client left and the manager right; an API hangup ends both legs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_rings_the_manager_then_bridges_the_client() {
    const MANAGER: &str = "+380501112233";
    const MANAGER_HZ: f32 = 1000.0;
    const CLIENT_HZ: f32 = 700.0;
    let dir = TempDir::new("tg-click-to-call").expect("temp dir");
    let Some(mut manager) = phone(&dir, MANAGER, MANAGER_HZ).await else {
        return;
    };
    let Some(mut client) = phone(&dir, NUMBER, CLIENT_HZ).await else {
        return;
    };
    let rec_dir = dir.path().join("rec");
    let extra = format!(
        "[recording]\ndir = \"{}\"\n\
         [[trunk]]\nname = \"pbx\"\noutbound = {{ address = \"127.0.0.1:{}\" }}\n\
         [[trunk]]\nname = \"carrier\"\noutbound = {{ address = \"127.0.0.1:{}\" }}\n",
        rec_dir.display(),
        manager.ports().sip,
        client.ports().sip
    );
    let (gw, base) = gateway_with((38140, 38159), &extra).await;
    let mut events = gw.subscribe();
    let body = json!({"to": NUMBER, "from": "+48111222333", "bridge_from": MANAGER,
                      "bridge_from_trunk": "pbx", "trunk": "carrier", "record": true});
    let (status, body) = post(&base, "/v1/calls", &body).await;
    assert_eq!(status, 201, "{body}");
    let id = body["call_id"].as_str().expect("call_id").to_string();
    manager
        .wait_established(WAIT)
        .await
        .expect("the manager answers first");
    client
        .wait_established(WAIT)
        .await
        .expect("then the client is dialled and answers");
    // Two seconds of bridged audio in the recording (a bounded poll on the file).
    let part = rec_dir.join(format!("{id}.wav.part"));
    support::bridge::poll_until(
        "two seconds of bridged audio in the recording",
        WAIT,
        || std::fs::metadata(&part).is_ok_and(|m| m.len() > 44 + 2 * 8000 * 4),
    )
    .await;
    let (status, body) = post(&base, &format!("/v1/calls/{id}/hangup"), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    for ua in [&mut manager, &mut client] {
        ua.wait_event("CALL_CLOSED", WAIT)
            .await
            .expect("both legs get BYE");
    }
    let ended = wait_event(
        &mut events,
        WAIT,
        |e| matches!(e, GatewayEvent::CallEnded { call_id, .. } if *call_id == id),
    )
    .await;
    let GatewayEvent::CallEnded { record, .. } = ended else {
        unreachable!()
    };
    let record = serde_json::to_value(&record.call).expect("view");
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["end_reason"], "api_hangup", "{record}");
    assert_eq!(record["to"], NUMBER, "{record}");
    assert_eq!(record["bridge"]["to"], NUMBER, "{record}");
    assert_eq!(record["bridge"]["status"], "completed", "{record}");
    assert_eq!(record["recording_complete"], true, "{record}");
    // Each phone heard the other.
    let heard_by_manager = recorded_frames(&mut manager, &dir, CLIENT_HZ).await;
    let heard_by_client = recorded_frames(&mut client, &dir, MANAGER_HZ).await;
    assert!(
        heard_by_manager >= 25,
        "manager hears the client ({heard_by_manager})"
    );
    assert!(
        heard_by_client >= 25,
        "client hears the manager ({heard_by_client})"
    );
    // The recording: the client left, the manager right.
    let rec = wav::read_wav(&rec_dir.join(format!("{id}.wav"))).expect("the recording");
    assert_eq!((rec.sample_rate, rec.channels), (8000, 2));
    let left: Vec<i16> = rec.samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = rec.samples.iter().skip(1).step_by(2).copied().collect();
    assert!(
        tone_frames(&left, 8000, CLIENT_HZ) >= 25,
        "client on the left"
    );
    assert!(
        tone_frames(&right, 8000, MANAGER_HZ) >= 25,
        "manager on the right"
    );
    assert!(
        tone_frames(&left, 8000, MANAGER_HZ) < 5,
        "no manager on the left"
    );
    assert_eq!(gw.rtp_ports_in_use(), 0);
    let _ = manager.quit().await;
    let _ = client.quit().await;
}

/// A gateway with the API on and `extra` (trunks, sections) in its configuration.
async fn gateway_with(ports: (u16, u16), extra: &str) -> (Gateway, String) {
    let dir = scratch_dir("click-to-call");
    let token_file = dir.join("api.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let api = format!(
        "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
        token_file.display()
    );
    let text =
        support::gw::config_text(ports, "builtin:echo", extra).replace("listen = \"\"", &api);
    let cfg = trunkgate::config::parse(&text, "test").unwrap_or_else(|e| panic!("config: {e}"));
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let base = format!("http://{}", gw.api_addr.expect("API listening"));
    (gw, base)
}

/// The two phones' trunks and a gateway that rings them; the click-to-call POSTed.
async fn click_to_call(
    ports: (u16, u16),
    manager: &Baresip,
    client: &str,
    timeout_s: u64,
) -> (Gateway, String, String) {
    let extra = format!(
        "[[trunk]]\nname = \"pbx\"\noutbound = {{ address = \"127.0.0.1:{}\" }}\n\
         [[trunk]]\nname = \"carrier\"\noutbound = {{ {client} }}\n",
        manager.ports().sip,
    );
    let (gw, base) = gateway_with(ports, &extra).await;
    let body = json!({"to": NUMBER, "bridge_from": "+380501112233", "bridge_from_trunk": "pbx",
                      "trunk": "carrier", "timeout_s": timeout_s});
    let (status, body) = post(&base, "/v1/calls", &body).await;
    assert_eq!(status, 201, "{body}");
    let id = body["call_id"].as_str().expect("call_id").to_string();
    (gw, base, id)
}

async fn record_of(events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>, id: &str) -> Value {
    let ended = wait_event(
        events,
        WAIT,
        |e| matches!(e, GatewayEvent::CallEnded { call_id, .. } if call_id == id),
    )
    .await;
    let GatewayEvent::CallEnded { record, .. } = ended else {
        unreachable!()
    };
    serde_json::to_value(&record.call).expect("view")
}

/// The client rejects (486): the manager hears the failure tone for a moment, then our BYE;
/// the record says `target_busy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_with_a_busy_client_tones_then_hangs_up_the_manager() {
    let dir = TempDir::new("tg-c2c-busy").expect("temp dir");
    let Some(mut manager) = phone(&dir, "+380501112233", 1000.0).await else {
        return;
    };
    let Some(mut client) = phone_with(&dir, NUMBER, 700.0, false).await else {
        return;
    };
    let (gw, _base, id) = click_to_call((38100, 38119), &manager, &at(&client), 30).await;
    let mut events = gw.subscribe();
    manager
        .wait_established(WAIT)
        .await
        .expect("the manager answers");
    client
        .wait_event("CALL_INCOMING", WAIT)
        .await
        .expect("the client rings");
    client.hangup().await.expect("reject");
    let rejected = tokio::time::Instant::now();
    let record = manager_hung_up(&gw, &mut manager, &mut events, &id, "target_busy", "busy").await;
    assert!(
        rejected.elapsed() >= Duration::from_millis(1000),
        "the failure tone plays before the BYE ({:?})",
        rejected.elapsed()
    );
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["bridge"]["sip_status"], 486, "{record}");
    let _ = manager.quit().await;
    let _ = client.quit().await;
}

/// The manager never answers: `no-answer`, and the client is never dialled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_whose_manager_never_answers_never_dials_the_client() {
    let dir = TempDir::new("tg-c2c-noanswer").expect("temp dir");
    let Some(mut manager) = phone_with(&dir, "+380501112233", 1000.0, false).await else {
        return;
    };
    let Some(client) = phone(&dir, NUMBER, 700.0).await else {
        return;
    };
    let (gw, _base, id) = click_to_call((38120, 38139), &manager, &at(&client), 1).await;
    let mut events = gw.subscribe();
    manager
        .wait_event("CALL_INCOMING", WAIT)
        .await
        .expect("the manager rings");
    manager
        .wait_event("CALL_CLOSED", WAIT)
        .await
        .expect("the ring timeout cancels it");
    let record = record_of(&mut events, &id).await;
    assert_eq!(record["status"], "no-answer", "{record}");
    assert!(record.get("bridge").is_none(), "{record}");
    let finished = client.quit().await.expect("client quits");
    assert!(
        !finished.events.iter().any(|e| e.kind == "CALL_INCOMING"),
        "the client never rang"
    );
    assert_eq!(gw.rtp_ports_in_use(), 0);
    let _ = manager.quit().await;
}

/// A trunk's `outbound` toward a phone.
fn at(ua: &Baresip) -> String {
    format!("address = \"127.0.0.1:{}\"", ua.ports().sip)
}

/// The client rings past `timeout_s`: cancelled, the manager hears the tone, then BYE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_with_a_client_who_never_answers_tones_then_hangs_up() {
    let dir = TempDir::new("tg-c2c-client-noanswer").expect("temp dir");
    let Some(mut manager) = phone(&dir, "+380501112233", 1000.0).await else {
        return;
    };
    let Some(mut client) = phone_with(&dir, NUMBER, 700.0, false).await else {
        return;
    };
    let (gw, _base, id) = click_to_call((38160, 38179), &manager, &at(&client), 1).await;
    let mut events = gw.subscribe();
    manager
        .wait_established(WAIT)
        .await
        .expect("the manager answers");
    client
        .wait_event("CALL_INCOMING", WAIT)
        .await
        .expect("the client rings");
    client
        .wait_event("CALL_CLOSED", WAIT)
        .await
        .expect("the client's ringing is cancelled");
    manager_hung_up(
        &gw,
        &mut manager,
        &mut events,
        &id,
        "target_no_answer",
        "no-answer",
    )
    .await;
    let _ = manager.quit().await;
    let _ = client.quit().await;
}

/// The client's trunk cannot be reached (TCP refused): `target_failed`, after the tone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_whose_client_cannot_be_reached_fails_after_the_tone() {
    let dir = TempDir::new("tg-c2c-client-failed").expect("temp dir");
    let Some(mut manager) = phone(&dir, "+380501112233", 1000.0).await else {
        return;
    };
    // A port nothing listens on any more: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let client = format!("address = \"127.0.0.1:{closed}\", transport = \"tcp\"");
    let (gw, _base, id) = click_to_call((38180, 38199), &manager, &client, 5).await;
    let mut events = gw.subscribe();
    manager
        .wait_established(WAIT)
        .await
        .expect("the manager answers");
    manager_hung_up(
        &gw,
        &mut manager,
        &mut events,
        &id,
        "target_failed",
        "failed",
    )
    .await;
    let _ = manager.quit().await;
}

/// After a failed client leg: the manager gets BYE; the record ends with `end_reason` and the
/// client leg's `status`; no RTP port is left.
async fn manager_hung_up(
    gw: &Gateway,
    manager: &mut Baresip,
    events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>,
    id: &str,
    end_reason: &str,
    status: &str,
) -> Value {
    manager
        .wait_event("CALL_CLOSED", WAIT)
        .await
        .expect("the manager gets BYE");
    let record = record_of(events, id).await;
    assert_eq!(record["end_reason"], end_reason, "{record}");
    assert_eq!(record["bridge"]["status"], status, "{record}");
    assert_eq!(gw.rtp_ports_in_use(), 0);
    record
}
