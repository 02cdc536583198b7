//! The outbound driver end to end against a fake gateway: an HTTP API that answers
//! `POST /v1/calls` with 201 and then, like the real outbound path, INVITEs the far-end
//! trunk, ACKs its 200 OK, connects the agent named in `websocket_url` with a twilio start
//! message, and answers the far end's BYE. Every call must come out completed, with every
//! setup moment recorded.

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
                tokio::spawn(fake_call(far_end, body, call_id.clone()));
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
    let far_end = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port");
    let api = fake_api(far_end).await;
    let args = Args::parse_from([
        "trunkgate-load".to_string(),
        "--mode=outbound".into(),
        format!("--api=http://{api}"),
        format!("--far-end={far_end}"),
        format!("--calls={calls}"),
        format!("--rate={rate}"),
        format!("--concurrency={concurrency}"),
        format!("--duration={duration}"),
        "--ring-ms=20".into(),
    ]);
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
