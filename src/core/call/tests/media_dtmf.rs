//! DTMF both ways: the caller's RFC 4733 events reach the agent once each; digits from the API
//! or the agent go to the caller as RFC 4733 packets on the following ticks, replacing audio.

use serde_json::json;

use super::harness::*;
use crate::core::call::{Command, Input, Notice, Route};
use crate::core::media::dtmf::EventPayload;

fn dtmf_notices(evs: &[Ev]) -> Vec<char> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Notice(Notice::Dtmf(d)) => Some(*d),
            _ => None,
        })
        .collect()
}

#[test]
fn caller_dtmf_reaches_the_agent_once_per_key_press() {
    let mut h = answered_raw();
    h.caller_audio(&tone(160));
    h.take();
    h.caller_digit('5');
    h.caller_audio(&tone(160));
    h.caller_digit('#');
    let evs = h.take();
    assert_eq!(
        agent_json(&evs),
        vec![
            json!({"type": "dtmf", "digit": "5", "duration_ms": 100}),
            json!({"type": "dtmf", "digit": "#", "duration_ms": 100}),
        ]
    );
    assert_eq!(dtmf_notices(&evs), vec!['5', '#']);
    // The event packets are not audio for the agent.
    assert_eq!(agent_binaries(&evs).len(), 1);
}

#[test]
fn api_dtmf_goes_out_as_rfc4733_on_the_following_ticks() {
    let mut h = answered_raw();
    h.advance_to(ms(100));
    assert_eq!(packets(&h.take()).len(), 6);
    h.input(Input::Command(Command::Dtmf {
        digits: "1#".into(),
    }));
    assert_eq!(h.take(), vec![], "nothing leaves before the next tick");
    h.advance_to(ms(100 + 20 * 16));
    let sent = packets(&h.take());
    assert_eq!(sent.len(), 16);
    let start = SEED_TS + 6 * 160;
    for (k, p) in sent.iter().enumerate() {
        assert_eq!(p.header.sequence, SEED_SEQ + 6 + k as u16);
        assert_eq!(p.at, ms(120 + 20 * k as u64));
    }
    for (digit, event, pkts) in [('1', 1u8, &sent[..7]), ('#', 11, &sent[7..14])] {
        let ts = if digit == '1' { start } else { start + 7 * 160 };
        let blocks: Vec<EventPayload> = pkts
            .iter()
            .map(|p| EventPayload::parse(&p.payload).unwrap())
            .collect();
        assert!(pkts.iter().all(|p| p.header.payload_type == 101), "{digit}");
        assert!(pkts.iter().all(|p| p.header.timestamp == ts), "{digit}");
        let markers: Vec<bool> = pkts.iter().map(|p| p.header.marker).collect();
        assert_eq!(markers, [true, false, false, false, false, false, false]);
        assert!(blocks.iter().all(|b| b.event == event));
        let durations: Vec<u16> = blocks.iter().map(|b| b.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = blocks.iter().map(|b| b.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
    }
    // Audio resumes where the events' time ends.
    for (k, p) in sent[14..].iter().enumerate() {
        assert_eq!(p.header.payload_type, 0);
        assert_eq!(p.header.timestamp, start + (14 + k as u32) * 160);
        assert!(!p.header.marker);
    }
}

#[test]
fn agent_dtmf_is_sent_to_the_caller() {
    let mut h = answered_raw();
    h.advance_to(ms(0));
    h.take();
    h.agent_text(r#"{"type":"dtmf","digits":"9"}"#);
    h.advance_to(ms(140));
    let sent = packets(&h.take());
    assert_eq!(sent.len(), 7);
    assert!(sent.iter().all(|p| p.header.payload_type == 101));
    assert_eq!(EventPayload::parse(&sent[0].payload).unwrap().event, 9);
}

#[test]
fn dtmf_without_telephone_event_or_before_the_answer_is_dropped() {
    let mut s = setup(Route::Static(raw_agent()));
    s.offer = Some(
        OFFER
            .replace("RTP/AVP 0 101", "RTP/AVP 0")
            .replace(
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
                "",
            )
            .into_bytes(),
    );
    let mut h = H::new(s, settings());
    h.take();
    h.input(Input::Command(Command::Dtmf { digits: "1".into() }));
    assert_eq!(h.take(), vec![Ev::Notice(Notice::DtmfDropped)], "ringing");
    h.agent_up();
    h.lease(Some(PORT));
    let formats = answer_sdp(&h.take()).media[0].formats.clone();
    assert_eq!(formats, vec!["0"]);
    h.input(Input::Command(Command::Dtmf { digits: "1".into() }));
    assert_eq!(h.take(), vec![Ev::Notice(Notice::DtmfDropped)], "answered");
    h.advance_to(ms(200));
    assert!(packets(&h.take())
        .iter()
        .all(|p| p.header.payload_type == 0));
}

/// RFC 4733 end packets all lost: the digit is reported once the caller's audio has moved
/// 250 ms past the event's last known end, and only once.
#[test]
fn a_caller_digit_whose_end_was_lost_is_reported_once_audio_moves_on() {
    let mut h = answered_raw();
    h.caller_event('3', false);
    // The updates reach 640 ticks; audio follows from 800 on, 160 per packet.
    for _ in 0..12 {
        h.caller_audio(&tone(160));
    }
    let evs = h.take();
    assert!(
        dtmf_notices(&evs).is_empty(),
        "still within 250 ms of its end"
    );
    h.caller_audio(&tone(160));
    let evs = h.take();
    assert_eq!(dtmf_notices(&evs), vec!['3']);
    assert_eq!(agent_json(&evs)[0]["digit"], "3");
    for _ in 0..20 {
        h.caller_audio(&tone(160));
    }
    assert!(dtmf_notices(&h.take()).is_empty());
}
