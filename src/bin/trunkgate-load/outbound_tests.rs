//! The outbound driver end to end against a fake gateway: an HTTP API that answers
//! `POST /v1/calls` with 201 and then, like the real outbound path, INVITEs the far-end
//! trunk, ACKs its 200 OK, connects the agent named in `websocket_url` with a twilio start
//! message, and answers the far end's BYE. Every call must come out completed, with every
//! setup moment recorded. Click-to-call bodies get the gateway's bridge: the manager
//! (`bridge_from`) INVITEd and ACKed, then the client (`to`), RTP relayed between the two
//! legs until the far end's BYE on the client, then a BYE to the manager.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use futures_util::SinkExt;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message as Ws;
use trunkgate::core::sip::message::{Limits, Message};

use crate::timeline::Event;
use crate::trunk_msg as msg;
use crate::Args;

async fn recv(sip: &UdpSocket) -> Option<Message> {
    let mut buf = vec![0u8; 4096];
    let (len, _) = sip.recv_from(&mut buf).await.ok()?;
    Message::parse(&buf[..len], &Limits::default()).ok()
}

/// A request in the dialog (`user`, `call_id`) from `local` to the far end.
fn request(
    method: &str,
    (user, call_id): (&str, &str),
    local: SocketAddr,
    far_end: SocketAddr,
    to_tag: &str,
    cseq: u32,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:{user}@{far_end} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{method}{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+4800000000001@{local}>;tag=gw\r\nTo: <sip:{user}@{far_end}>{to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:gw@{local}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// INVITE `user` offering `rtp`, wait for the 200, ACK it: the To tag (`;tag=…`).
async fn dial(
    sip: &UdpSocket,
    rtp: &UdpSocket,
    far_end: SocketAddr,
    user: &str,
    call_id: &str,
) -> Option<String> {
    let local = sip.local_addr().ok()?;
    let sdp = crate::caller::sdp_offer(rtp.local_addr().ok()?);
    let invite = request("INVITE", (user, call_id), local, far_end, "", 1, &sdp);
    sip.send_to(invite.as_bytes(), far_end).await.ok()?;
    let tag = loop {
        let m = recv(sip).await?;
        if m.status() == Some(200) && m.call_id() == call_id {
            break format!(";tag={}", m.to_tag()?);
        }
    };
    let ack = request("ACK", (user, call_id), local, far_end, &tag, 1, "");
    sip.send_to(ack.as_bytes(), far_end).await.ok()?;
    Some(tag)
}

/// One click-to-call as the gateway would bridge it (see the module docs).
async fn fake_click(far_end: SocketAddr, body: serde_json::Value, call_id: String) -> Option<()> {
    let sip = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let (rtp_m, rtp_c) = (
        UdpSocket::bind("127.0.0.1:0").await.ok()?,
        UdpSocket::bind("127.0.0.1:0").await.ok()?,
    );
    let (mgr, client) = (body["bridge_from"].as_str()?, body["to"].as_str()?);
    let (mgr_id, client_id) = (format!("{call_id}-m"), format!("{call_id}-c"));
    let mgr_tag = dial(&sip, &rtp_m, far_end, mgr, &mgr_id).await?;
    dial(&sip, &rtp_c, far_end, client, &client_id).await?;
    let (mut a, mut b) = ([0u8; 512], [0u8; 512]);
    let local = sip.local_addr().ok()?;
    // Bounded: the far end hangs up within its --duration; the test's timeout bounds the rest.
    loop {
        tokio::select! {
            Ok((len, src)) = rtp_m.recv_from(&mut a) => { let _ = rtp_c.send_to(&a[..len], src).await; }
            Ok((len, src)) = rtp_c.recv_from(&mut b) => { let _ = rtp_m.send_to(&b[..len], src).await; }
            m = recv(&sip) => {
                let m = m?;
                if m.method().map(|x| x.as_str()) == Some("BYE") && m.call_id() == client_id {
                    let mut head = String::new();
                    msg::head_of(&m, None, &mut head);
                    let mut out = Vec::new();
                    msg::response(&mut out, 200, &head, None, "");
                    sip.send_to(&out, far_end).await.ok()?;
                    let bye = request("BYE", (mgr, &mgr_id), local, far_end, &mgr_tag, 2, "");
                    sip.send_to(bye.as_bytes(), far_end).await.ok()?;
                    return Some(());
                }
            }
        }
    }
}

/// One call as the gateway's outbound path would place it.
async fn fake_call(far_end: SocketAddr, body: serde_json::Value, call_id: String) -> Option<()> {
    let sip = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let (local, to) = (sip.local_addr().ok()?, body["to"].as_str()?.to_string());
    let sdp = crate::caller::sdp_offer(rtp.local_addr().ok()?);
    let req = |method: &str, tag: &str, body: &str| {
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:{to}@{far_end} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{method}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:+4800000000001@{local}>;tag=gw\r\nTo: <sip:{to}@{far_end}>{tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:gw@{local}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    sip.send_to(req("INVITE", "", &sdp).as_bytes(), far_end)
        .await
        .ok()?;
    let tag = loop {
        let m = recv(&sip).await?;
        if m.status() == Some(200) {
            break format!(";tag={}", m.to_tag()?);
        }
    };
    sip.send_to(req("ACK", &tag, "").as_bytes(), far_end)
        .await
        .ok()?;
    let (mut ws, _) = tokio_tungstenite::connect_async(body["websocket_url"].as_str()?)
        .await
        .ok()?;
    let start = serde_json::json!({"event":"start","sequenceNumber":"1","streamSid":"MZ1",
        "start":{"streamSid":"MZ1","callSid":call_id,"tracks":["inbound"]}});
    ws.send(Ws::text(r#"{"event":"connected"}"#)).await.ok()?;
    ws.send(Ws::text(start.to_string())).await.ok()?;
    loop {
        let m = recv(&sip).await?;
        if m.method().map(|x| x.as_str()) == Some("BYE") {
            let mut head = String::new();
            msg::head_of(&m, None, &mut head);
            let mut out = Vec::new();
            msg::response(&mut out, 200, &head, None, "");
            sip.send_to(&out, far_end).await.ok()?;
            return Some(());
        }
    }
}

async fn fake_api(far_end: SocketAddr) -> SocketAddr {
    let seq = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/v1/calls",
        post(move |Json(body): Json<serde_json::Value>| {
            let seq = seq.clone();
            async move {
                let call_id = format!("CA{:032x}", seq.fetch_add(1, Ordering::Relaxed));
                if body.get("bridge_from").is_some() {
                    tokio::spawn(fake_click(far_end, body, call_id.clone()));
                } else {
                    tokio::spawn(fake_call(far_end, body, call_id.clone()));
                }
                (
                    axum::http::StatusCode::CREATED,
                    Json(serde_json::json!({"call_id": call_id, "status": "queued"})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Runs the outbound mode against the fake gateway.
async fn run(
    calls: usize,
    rate: u32,
    concurrency: usize,
    duration: f64,
) -> (Args, super::OutResults) {
    run_with(calls, rate, concurrency, duration, &[]).await
}

async fn run_with(
    calls: usize,
    rate: u32,
    concurrency: usize,
    duration: f64,
    extra: &[&str],
) -> (Args, super::OutResults) {
    let far_end = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port");
    let api = fake_api(far_end).await;
    let mut argv = vec![
        "trunkgate-load".to_string(),
        "--mode=outbound".into(),
        format!("--api=http://{api}"),
        format!("--far-end={far_end}"),
        format!("--calls={calls}"),
        format!("--rate={rate}"),
        format!("--concurrency={concurrency}"),
        format!("--duration={duration}"),
        "--ring-ms=20".into(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let args = Args::parse_from(argv);
    let r = super::run_all(&args, None).await.expect("run");
    (args, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_placed_through_the_api_are_answered_bridged_and_hung_up() {
    let (args, r) = run(6, 50, 4, 0.3).await;
    let failures: Vec<_> = r.calls.iter().filter_map(|c| c.failure.clone()).collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(r.completed(), 6);
    for n in 0..6 {
        for (a, b) in [
            (Event::Posted, Event::Created),
            (Event::Posted, Event::Answered),
            (Event::Answered, Event::AgentStart),
            (Event::AgentStart, Event::Ended),
        ] {
            assert!(
                r.timeline.between(n, a, b).is_some(),
                "call {n}: {a:?} → {b:?}"
            );
        }
    }
    let rep = crate::report_out::OutReport::new(&args, &r, None, None, None);
    assert!(rep.table().contains("calls offered / completed     6 / 6"));
}

/// The load tool's own side keeps up with 500 new calls a second (the fake gateway runs in
/// the same process, so this bounds both): `cargo test --release --bin trunkgate-load --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 6 s throughput run"]
async fn five_hundred_calls_a_second_are_driven_without_failures() {
    let (args, r) = run(2000, 500, 1000, 1.0).await;
    let rep = crate::report_out::OutReport::new(&args, &r, None, None, None);
    println!("{}", rep.table());
    assert_eq!(r.completed(), 2000, "{}", rep.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_calls_bridge_two_legs_and_end_both() {
    let (args, r) = run_with(4, 50, 4, 1.6, &["--click-to-call"]).await;
    let failures: Vec<_> = r.calls.iter().filter_map(|c| c.failure.clone()).collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(r.completed(), 4);
    for n in 0..4 {
        for (a, b) in [
            (Event::Posted, Event::MgrInvite),
            (Event::MgrAnswered, Event::Invite),
            (Event::Answered, Event::ByeSent),
            (Event::ByeSent, Event::MgrEnded),
        ] {
            assert!(
                r.timeline.between(n, a, b).is_some(),
                "call {n}: {a:?} → {b:?}"
            );
        }
        assert_eq!(r.timeline.at(n, Event::AgentConnected), None, "no agent");
    }
    let rep = crate::report_out::OutReport::new(&args, &r, None, None, None);
    let table = rep.table();
    assert!(
        table.contains("calls offered / completed     4 / 4  (click-to-call"),
        "{table}"
    );
    assert!(rep.json().contains("\"rtp_manager\""));
}
