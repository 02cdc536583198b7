//! The call machine's per-frame path, as a driver feeds it: one 20 ms caller RTP packet in
//! (decode → agent media message out), one twilio agent media message in (→ pacer), one tick
//! (→ the RTP packet out), for a call answered by a twilio agent.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use trunkgate::core::agent::{Dialect, WsIn};
use trunkgate::core::call::leg::{AgentTarget, Answerer, ANSWERER, CALLER};
use trunkgate::core::call::media::RtpSeed;
use trunkgate::core::call::{Call, CallId, Direction, Input, Output, Route, Settings, Setup};
use trunkgate::core::media::rtp;
use trunkgate::core::sip::sdp::{AnswerParams, Codec};

fn answered_call(now: Instant, offer: &str) -> Call {
    let setup = Setup {
        id: CallId::from_random(1),
        direction: Direction::Inbound,
        started_wall: jiff::Timestamp::UNIX_EPOCH,
        from: Some("+48111".into()),
        to: Some("+48222".into()),
        did: None,
        crt: None,
        headers: Vec::new(),
        offer: Some(offer.as_bytes().to_vec()),
        transfer: trunkgate::core::call::transfer::Policy::default(),
        record: false,
        route: Route::Static(Answerer::Agent(AgentTarget {
            url: "ws://127.0.0.1:1/agent".into(),
            dialect: Dialect::Twilio,
            sample_rate: 8000,
            encoding: Default::default(),
            parameters: Vec::new(),
            extra_headers: None,
        })),
        seed: RtpSeed::default(),
        stream_id: "MZ1".into(),
    };
    let settings = Settings {
        rtp_timeout: Duration::from_secs(30),
        reconnect_agent: false,
        answer: AnswerParams {
            prefs: vec![Codec::Pcmu, Codec::Pcma],
            address: [127, 0, 0, 1].into(),
            port: 0,
            ptime_ms: 20,
            session_id: 1,
            session_version: 1,
            user: "trunkgate".into(),
            srtp: Default::default(),
        },
        bridge_srtp: Default::default(),
        checkpoint_every: None,
        account_id: "AC1".into(),
        billing: trunkgate::core::call::billing::Rule {
            minimum_s: 60,
            increment_s: 1,
            exclude_silence: false,
        },
    };
    let mut call = Call::new(now, setup, settings);
    call.handle(now, Input::AgentConnected { leg: ANSWERER });
    call.handle(
        now,
        Input::Port {
            leg: CALLER,
            port: Some(40000),
        },
    );
    while call.poll_output().is_some() {}
    assert!(call.is_answered(), "the benchmark call must be answered");
    call
}

/// Nanoseconds per 20 ms frame both ways through the machine.
/// How the bench harness runs one measurement: name, operations per iteration, unit, body.
pub type Bench<'a> = &'a mut dyn FnMut(&str, u64, &str, &mut dyn FnMut());

pub fn run(offer: &str, bench: Bench<'_>) {
    let start = Instant::now();
    let mut call = answered_call(start, offer);
    let from: SocketAddr = "127.0.0.1:40002"
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1)));
    let payload = [0x55u8; 160];
    let mut packet = Vec::with_capacity(172);
    let b64 = "VVVV".repeat(160 / 3) + "VQ==";
    let agent_msg = format!(
        "{{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{{\"payload\":\"{b64}\"}}}}"
    );
    let mut k: u32 = 0;
    bench(
        "call machine: one frame both ways",
        1,
        "frames",
        &mut || {
            k = k.wrapping_add(1);
            let now = start + Duration::from_millis(20 * u64::from(k));
            packet.clear();
            let header = rtp::RtpHeader {
                marker: false,
                payload_type: 0,
                sequence: k as u16,
                timestamp: k.wrapping_mul(160),
                ssrc: 7,
            };
            rtp::write(&header, &payload, &mut packet);
            call.handle(
                now,
                Input::Rtp {
                    leg: CALLER,
                    data: &packet,
                    from,
                },
            );
            call.handle(
                now,
                Input::AgentMessage {
                    leg: ANSWERER,
                    msg: WsIn::Text(&agent_msg),
                },
            );
            call.handle_timeout(now);
            if let Some((_, to, bytes)) = call.poll_transmit() {
                black_box((to, bytes.len()));
            }
            while let Some(out) = call.poll_output() {
                if let Output::AgentSend { msg, .. } = out {
                    black_box(msg);
                }
            }
        },
    );
}
