//! The echo agent: frame codec, handshake, twilio echo, a real client over loopback, and the
//! per-call notes of outbound mode.

use super::*;
use crate::agent_echo::MAX_CHUNK_MS;
use crate::marks::Mark;

/// A client frame: masked, as RFC 6455 requires of clients.
fn masked(opcode: u8, payload: &[u8], fin: bool) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[test]
fn frames_of_every_length_form_unmask_and_round_trip() {
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let wire = masked(2, &payload, true);
        let (op, got, used) = next_frame(&wire).expect("complete frame");
        assert_eq!((op, used), (2, wire.len()), "len {len}");
        assert_eq!(got, payload, "len {len}");
        // Every strict prefix is incomplete, not an error or a wrong frame.
        for cut in [0, 1, 2, wire.len() / 2, wire.len() - 1] {
            assert!(next_frame(&wire[..cut]).is_none(), "len {len} cut {cut}");
        }
        // What we send back parses as an unmasked frame with the same payload.
        let mut out = Vec::new();
        write_frame(&mut out, 2, &payload);
        assert_eq!(next_frame(&out), Some((2, payload, out.len())));
    }
}

#[test]
fn fragments_come_back_as_opcode_zero() {
    let wire = masked(1, b"half", false);
    assert_eq!(next_frame(&wire).map(|(op, _, _)| op), Some(0));
}

#[test]
fn handshake_answers_with_the_rfc_6455_accept_key() {
    let req = "GET /agent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13";
    let reply = handshake(req.as_bytes()).expect("upgrade");
    assert!(reply.starts_with("HTTP/1.1 101 "));
    // RFC 6455 §1.3's example.
    assert!(reply.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(handshake(b"GET / HTTP/1.1\r\nHost: x").is_none());
}

#[test]
fn twilio_media_is_echoed_with_the_stream_sid_from_start() {
    let mut sid = String::new();
    let start = r#"{"event":"start","streamSid":"MZ1","start":{"streamSid":"MZ1"}}"#;
    assert_eq!(twilio_audio(start, &mut sid), None);
    assert_eq!(sid, "MZ1");
    let media =
        r#"{"event":"media","streamSid":"MZ1","media":{"track":"inbound","payload":"/w=="}}"#;
    let audio = twilio_audio(media, &mut sid).expect("audio");
    assert_eq!(audio, vec![0xFF]);
    let v: serde_json::Value = serde_json::from_str(&twilio_media(&sid, &audio)).expect("json");
    assert_eq!(v["event"], "media");
    assert_eq!(v["streamSid"], "MZ1");
    assert_eq!(v["media"]["payload"], "/w==");
}

fn reply(chunk: Option<u32>, burst: bool) -> Reply {
    Reply::new(chunk, burst).expect("valid")
}

/// Message sizes out of `take` as 20 ms frames of `audio` arrive one by one.
fn sizes(r: Reply, audio: Audio, frames: usize) -> Vec<usize> {
    let mut held = Vec::new();
    let mut out = Vec::new();
    for _ in 0..frames {
        held.extend(std::iter::repeat_n(0xFFu8, audio.frame_bytes()));
        out.extend(r.take(&mut held, audio).iter().map(Vec::len));
    }
    out
}

#[test]
fn chunked_replies_are_whole_chunks_of_the_asked_length() {
    // Default: each message back as it came.
    assert_eq!(sizes(reply(None, false), Audio::Ulaw, 3), vec![160; 3]);
    // 100 ms: five frames per message, nothing sent before the fifth.
    assert_eq!(
        sizes(reply(Some(100), false), Audio::Ulaw, 12),
        vec![800; 2]
    );
    assert_eq!(
        sizes(reply(Some(100), false), Audio::Pcm16, 10),
        vec![1600; 2]
    );
    assert_eq!(sizes(reply(Some(20), false), Audio::Pcm16, 4), vec![320; 4]);
    // Not whole frames, or too long: refused.
    assert!(Reply::new(Some(30), false).is_err());
    assert!(Reply::new(Some(MAX_CHUNK_MS + 20), false).is_err());
    assert!(Reply::new(Some(0), false).is_ok_and(|r| r.is_plain()));
}

#[test]
fn a_burst_is_two_seconds_at_once() {
    // One message of 2 s (16,000 μ-law bytes) after the 100th frame, not before.
    let r = reply(None, true);
    assert_eq!(sizes(r, Audio::Ulaw, 99), Vec::<usize>::new());
    assert_eq!(sizes(r, Audio::Ulaw, 100), vec![16_000]);
    assert_eq!(sizes(r, Audio::Pcm16, 250), vec![32_000; 2]);
    // With chunks: the same 2 s as 20 messages of 100 ms, all at once.
    let mut held = vec![0xFFu8; 16_000];
    let msgs = reply(Some(100), true).take(&mut held, Audio::Ulaw);
    assert_eq!(msgs.iter().map(Vec::len).collect::<Vec<_>>(), vec![800; 20]);
    assert!(held.is_empty());
}

/// A real client: 100 ms chunks come back as one binary message per five frames, each frame
/// stamped in and out, the first of each message at position 0.
#[test]
fn a_chunking_agent_answers_a_client_in_chunks_with_stamps() {
    let stats = Arc::new(AgentStats::default());
    let addr = serve(
        "127.0.0.1:0".parse().expect("addr"),
        "raw",
        reply(Some(100), false),
        stats.clone(),
    )
    .expect("agent");
    let (mut ws, _) =
        tokio_tungstenite::tungstenite::connect(format!("ws://{addr}/agent")).expect("connect");
    for k in 0..10u32 {
        let mut frame = vec![0u8; 320];
        Mark {
            idx: k,
            sent: marks::us(Instant::now()),
            ..Mark::default()
        }
        .write_pcm16(&mut frame);
        ws.send(tokio_tungstenite::tungstenite::Message::binary(frame))
            .expect("send");
    }
    for chunk in 0..2u32 {
        let back = ws.read().expect("read").into_data().to_vec();
        assert_eq!(back.len(), 1600);
        for (j, f) in back.chunks_exact(320).enumerate() {
            let m = Mark::read_pcm16(f).expect("marked");
            assert_eq!((m.idx, m.pos), (chunk * 5 + j as u32, j as u8));
            assert!(m.agent_in != 0 && m.agent_out != 0);
            assert!(m.agent_out.wrapping_sub(m.agent_in) < 1_000_000);
        }
    }
    assert_eq!(stats.frames.load(Ordering::Relaxed), 2);
}

/// A real client (tungstenite) talks to the agent thread over loopback.
#[test]
fn a_tungstenite_client_gets_its_binary_frames_back() {
    let stats = Arc::new(AgentStats::default());
    let addr = serve(
        "127.0.0.1:0".parse().expect("addr"),
        "raw",
        Reply::default(),
        stats.clone(),
    )
    .expect("agent");
    let (mut ws, _) =
        tokio_tungstenite::tungstenite::connect(format!("ws://{addr}/agent")).expect("connect");
    for k in 0..20u8 {
        let frame = vec![k; 320];
        ws.send(tokio_tungstenite::tungstenite::Message::binary(
            frame.clone(),
        ))
        .expect("send");
        let back = ws.read().expect("read");
        assert_eq!(back.into_data().to_vec(), frame);
    }
    assert_eq!(stats.frames.load(Ordering::Relaxed), 20);
    assert_eq!(stats.connections.load(Ordering::Relaxed), 1);
}

/// Outbound mode: the call named by the WebSocket path gets its connection and its start
/// message (with the callSid) recorded; media before and after changes nothing.
#[test]
fn an_outbound_calls_connection_and_start_are_recorded() {
    let calls = Arc::new(Timeline::new(8));
    let stats = Arc::new(AgentStats {
        calls: Some(calls.clone()),
        ..AgentStats::default()
    });
    let addr = serve(
        "127.0.0.1:0".parse().expect("addr"),
        "twilio",
        Reply::default(),
        stats,
    )
    .expect("agent");
    let (mut ws, _) =
        tokio_tungstenite::tungstenite::connect(format!("ws://{addr}/agent/000000005"))
            .expect("connect");
    let text = |s: &str| tokio_tungstenite::tungstenite::Message::text(s.to_string());
    ws.send(text(r#"{"event":"connected","protocol":"Call"}"#))
        .expect("send");
    ws.send(text(
        r#"{"event":"start","streamSid":"MZ5","start":{"callSid":"CA5","streamSid":"MZ5","mediaFormat":{"encoding":"audio/x-mulaw"}}}"#,
    ))
    .expect("send");
    ws.send(text(
        r#"{"event":"media","streamSid":"MZ5","media":{"payload":"/w=="}}"#,
    ))
    .expect("send");
    let back = ws.read().expect("echo");
    assert!(back.into_text().expect("text").contains("MZ5"));
    assert!(calls.at(5, Event::AgentConnected).is_some());
    assert!(calls
        .between(5, Event::AgentConnected, Event::AgentStart)
        .is_some());
    assert_eq!(calls.agent_call_id(5), Some("CA5"));
    assert_eq!(
        request_path(b"GET /agent/000000005 HTTP/1.1\r\nHost: x"),
        Some("/agent/000000005")
    );
}
