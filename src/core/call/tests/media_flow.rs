//! Media between the legs: caller RTP to the agent as frames, agent audio paced out as RTP
//! (early start, one frame per 20 ms, silence when quiet), marks answered once their audio has
//! left, `clear` (barge-in), and a late offer whose answer comes in the ACK.

use serde_json::json;

use super::harness::*;
use crate::core::agent::Dialect;
use crate::core::call::leg::Answerer;
use crate::core::call::{Notice, Route};
use crate::core::media::g711;
use crate::core::sip::endpoint::{CallEvent, EndReason as SipEnd};

/// Sequence numbers and timestamps of everything we sent advance by one frame each.
fn assert_contiguous(sent: &[Pkt], first: usize) {
    for (k, p) in sent.iter().enumerate() {
        let n = (first + k) as u32;
        assert_eq!(
            p.header.sequence,
            SEED_SEQ.wrapping_add(n as u16),
            "packet {n}"
        );
        assert_eq!(p.header.timestamp, SEED_TS + 160 * n, "packet {n}");
        assert_eq!(p.header.ssrc, 0x1234_5678);
        assert_eq!(p.header.payload_type, 0);
        assert_eq!(p.header.marker, n == 0);
        assert_eq!(p.to, caller_addr());
        assert_eq!(p.payload.len(), 160);
    }
}

#[test]
fn caller_rtp_reaches_a_raw_agent_as_320_byte_frames() {
    let mut h = answered_raw();
    let pcm = tone(160);
    for _ in 0..5 {
        h.caller_audio(&pcm);
    }
    // Not ours to forward: another payload type, and a datagram that is no RTP.
    h.caller_datagram(&audio_packet(8, 77, 0, &pcm));
    h.caller_datagram(b"\x00garbage");
    let frames = agent_binaries(&h.take());
    assert_eq!(frames.len(), 5);
    let mut ulaw = vec![0u8; 160];
    g711::encode_ulaw(&pcm, &mut ulaw);
    let mut heard = vec![0i16; 160];
    g711::decode_ulaw(&ulaw, &mut heard);
    for f in &frames {
        assert_eq!(f.len(), 320);
        assert_eq!(*f, pcm16le(&heard));
    }
    let e = h.dialog_ends(SipEnd::RemoteBye);
    assert_eq!(e.rtp_in, 6);
}

#[test]
fn a_quiet_agent_still_gets_silence_sent_every_20_ms() {
    let mut h = answered_raw();
    h.advance_to(ms(1000));
    let sent = packets(&h.take());
    assert_eq!(sent.len(), 51);
    for (k, p) in sent.iter().enumerate() {
        assert_eq!(p.at, ms(20 * k as u64));
        assert!(p.is_silence());
    }
    assert_contiguous(&sent, 0);
}

#[test]
fn agent_audio_leaves_at_once_then_one_frame_per_20_ms() {
    let mut h = answered_raw();
    h.advance_to(ms(45));
    let before = packets(&h.take());
    assert_eq!(before.len(), 3); // 0, 20, 40 ms
    h.agent_pcm(&tone(8000));
    // Early start: the turn's first frame goes now, not at the 60 ms tick.
    let first = packets(&h.take());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].at, ms(45));
    assert!(!first[0].is_silence());
    h.advance_to(ms(1045));
    let rest = packets(&h.take());
    // One second of audio is 50 frames: the early one and 49 paced ones.
    assert_eq!(rest.len(), 49);
    assert!(rest.iter().all(|p| !p.is_silence()));
    assert_eq!(rest[0].at, ms(75));
    for w in rest.windows(2) {
        assert_eq!(w[1].at - w[0].at, ms(20));
    }
    // Then silence, and RTP goes on.
    h.advance_to(ms(2045));
    let after = packets(&h.take());
    assert!(after.len() >= 49 && after.len() <= 50, "{}", after.len());
    assert!(after.iter().all(Pkt::is_silence));
    let all: Vec<Pkt> = [before, first, rest, after].concat();
    assert_contiguous(&all, 0);
}

#[test]
fn a_mark_is_answered_only_after_its_audio_has_been_sent() {
    let mut h = answered_raw();
    h.advance_to(ms(45));
    h.take();
    h.agent_pcm(&tone(800)); // five frames; the first leaves now
    h.agent_text(r#"{"type":"mark","name":"m1"}"#);
    let evs = h.take();
    assert_eq!(packets(&evs).len(), 1);
    assert!(agent_json(&evs).is_empty());
    h.advance_to(ms(300));
    let evs = h.take();
    let at = evs
        .iter()
        .position(|e| matches!(e, Ev::Send(_)))
        .expect("the mark");
    assert_eq!(
        agent_json(&evs[at..]),
        vec![json!({"type": "mark", "name": "m1"})]
    );
    let before = packets(&evs[..at]);
    assert_eq!(before.len(), 4);
    assert!(before.iter().all(|p| !p.is_silence()));
    // Sent with the tick that carried the last of its audio (75, 95, 115, 135 ms).
    assert_eq!(before[3].at, ms(135));
    assert!(packets(&evs[at..]).iter().all(Pkt::is_silence));
    // A mark with nothing queued is answered by the next tick.
    h.agent_text(r#"{"type":"mark","name":"m2"}"#);
    assert_eq!(h.take(), vec![]);
    h.advance(ms(20));
    let evs = h.take();
    assert!(matches!(evs.as_slice(), [Ev::Rtp(_), Ev::Send(_)]));
    assert_eq!(agent_json(&evs)[0]["name"], "m2");
}

#[test]
fn clear_drops_queued_audio_and_answers_pending_marks_at_once() {
    let mut h = answered_raw();
    h.advance_to(ms(45));
    h.agent_pcm(&tone(8000));
    h.agent_text(r#"{"type":"mark","name":"a"}"#);
    h.advance_to(ms(245));
    assert!(agent_json(&h.take()).is_empty());
    h.agent_text(r#"{"type":"clear"}"#);
    assert_eq!(
        agent_json(&h.take()),
        vec![
            json!({"type": "mark", "name": "a"}),
            json!({"type": "cleared"})
        ]
    );
    h.advance_to(ms(545));
    let sent = packets(&h.take());
    assert_eq!(sent.len(), 15);
    assert!(sent.iter().all(Pkt::is_silence));
}

#[test]
fn twilio_clear_answers_marks_without_a_cleared_message() {
    let mut h = answered(Answerer::Agent(target(Dialect::Twilio)), settings());
    h.advance_to(ms(45));
    h.agent_text(&twilio_media(&tone(8000)));
    h.agent_text(r#"{"event":"mark","streamSid":"MZ0001","mark":{"name":"a"}}"#);
    h.advance_to(ms(105));
    let sent = packets(&h.take());
    assert!(
        sent[3..].iter().all(|p| !p.is_silence()),
        "twilio audio plays"
    );
    h.agent_text(r#"{"event":"clear","streamSid":"MZ0001"}"#);
    let msgs = agent_json(&h.take());
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["event"], "mark");
    assert_eq!(msgs[0]["streamSid"], "MZ0001");
    assert_eq!(msgs[0]["mark"]["name"], "a");
    h.advance_to(ms(205));
    assert!(packets(&h.take()).iter().all(Pkt::is_silence));
}

#[test]
fn late_offer_answers_with_our_offer_and_sends_where_the_ack_says() {
    let mut s = setup(Route::Static(echo(None)));
    s.offer = None;
    let mut h = H::new(s, settings());
    h.lease(Some(PORT));
    let ours = answer_sdp(&h.take());
    assert_eq!(ours.media[0].port, PORT);
    assert_eq!(ours.media[0].formats, vec!["0", "8", "101"]);
    // Nowhere to send until the ACK's answer, and no timeout for that silence.
    h.advance_to(ms(100));
    assert_eq!(packets(&h.take()).len(), 0);
    let answer = "v=0\r\no=c 1 1 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\n\
                  t=0 0\r\nm=audio 5004 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
                  a=rtpmap:101 telephone-event/8000\r\n";
    h.sip(CallEvent::Acked {
        sdp: Some(answer.as_bytes().to_vec()),
    });
    assert_eq!(h.take(), vec![Ev::Notice(Notice::Acked)]);
    h.advance_to(ms(200));
    let sent = packets(&h.take());
    assert_eq!(sent.len(), 5);
    for p in &sent {
        assert_eq!(p.to, "203.0.113.9:5004".parse().unwrap());
        assert_eq!(p.header.payload_type, 8);
        assert!(p.payload.iter().all(|b| *b == g711::ALAW_SILENCE));
    }
}

#[test]
fn a_16_khz_raw_agent_gets_640_byte_frames_and_is_resampled_to_8_khz() {
    let mut t = target(Dialect::Raw);
    t.sample_rate = 16000;
    let mut h = H::new(setup(Route::Static(Answerer::Agent(t))), settings());
    h.agent_up();
    h.lease(Some(PORT));
    let start = &agent_json(&h.take())[0];
    assert_eq!(start["audio"]["sample_rate"], 16000);
    h.sip(CallEvent::Acked { sdp: None });
    for _ in 0..5 {
        h.caller_audio(&tone(160));
    }
    let frames = agent_binaries(&h.take());
    assert_eq!(frames.len(), 5);
    assert!(frames.iter().all(|f| f.len() == 640));
    // One second at 16 kHz is one second at 8 kHz: 50 frames.
    h.advance_to(ms(45));
    h.take();
    let wide: Vec<i16> = tone(8000).iter().flat_map(|s| [*s, *s]).collect();
    h.agent_pcm(&wide);
    h.advance_to(ms(1045));
    let sent = packets(&h.take());
    assert_eq!(sent.iter().filter(|p| !p.is_silence()).count(), 50);
}

#[test]
fn caller_rtp_reaches_a_twilio_agent_as_media_messages() {
    let mut h = answered(Answerer::Agent(target(Dialect::Twilio)), settings());
    let pcm = tone(160);
    h.caller_audio(&pcm);
    h.caller_audio(&pcm);
    let msgs = agent_json(&h.take());
    assert_eq!(msgs.len(), 2);
    let mut ulaw = vec![0u8; 160];
    g711::encode_ulaw(&pcm, &mut ulaw);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&ulaw);
    for (k, m) in msgs.iter().enumerate() {
        assert_eq!(m["event"], "media");
        assert_eq!(m["streamSid"], "MZ0001");
        assert_eq!(m["media"]["chunk"], (k + 1).to_string());
        assert_eq!(m["media"]["payload"], b64.as_str());
    }
}

#[test]
fn rtp_latches_to_the_address_the_sdp_names_once_heard() {
    use crate::core::call::leg::CALLER;
    use crate::core::call::Input;
    let mut h = answered_raw();
    let stray: std::net::SocketAddr = "198.51.100.99:40000".parse().unwrap();
    let pcm = tone(160);
    // Before the SDP's address is heard from, any source is the caller (NAT): we answer it.
    let from_stray = audio_packet(0, 1, 0, &pcm);
    h.input(Input::Rtp {
        leg: CALLER,
        data: &from_stray,
        from: stray,
    });
    h.advance(ms(20));
    let evs = h.take();
    assert_eq!(agent_binaries(&evs).len(), 1, "the first stream is taken");
    assert!(packets(&evs).iter().all(|p| p.to == stray), "{evs:?}");
    // The SDP's own address speaks: from now on only it is the caller.
    h.caller_audio(&pcm);
    h.advance(ms(20));
    let evs = h.take();
    assert_eq!(agent_binaries(&evs).len(), 1);
    assert!(
        packets(&evs).iter().all(|p| p.to == caller_addr()),
        "{evs:?}"
    );
    for seq in 2..10u16 {
        let p = audio_packet(0, seq, u32::from(seq) * 160, &pcm);
        h.input(Input::Rtp {
            leg: CALLER,
            data: &p,
            from: stray,
        });
    }
    h.advance(ms(20));
    let evs = h.take();
    assert!(
        agent_binaries(&evs).is_empty(),
        "a stray stream is dropped: {evs:?}"
    );
    assert!(
        packets(&evs).iter().all(|p| p.to == caller_addr()),
        "{evs:?}"
    );
    // A stray stream does not keep a silent caller alive either.
    for k in 0..(RTP_TIMEOUT.as_millis() as u64 / 100) {
        let p = audio_packet(0, 100 + k as u16, 0, &pcm);
        h.input(Input::Rtp {
            leg: CALLER,
            data: &p,
            from: stray,
        });
        h.advance(ms(100));
    }
    assert!(
        sip_cmds(&h.take()).contains(&crate::core::sip::endpoint::CallCommand::Hangup),
        "the RTP timeout fires"
    );
}
