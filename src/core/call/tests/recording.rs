//! The recording tap through the machine on a virtual clock: a recorded call's chunks are
//! stereo with the caller left and what the caller hears right, and a sound that starts on
//! both sides in the same instant starts within 20 ms (160 samples) in both channels; a
//! call not recorded yields nothing.

use super::harness::*;
use crate::core::call::Route;
use crate::core::media::tone::detect_tone;
use crate::core::sip::endpoint::CallEvent;

/// An answered raw-agent call, recorded or not.
fn call(record: bool) -> H {
    let mut s = setup(Route::Static(raw_agent()));
    s.record = record;
    let mut h = H::new(s, settings());
    h.agent_up();
    h.lease(Some(PORT));
    h.sip(CallEvent::Acked { sdp: None });
    h.take();
    h
}

fn recorded(h: &mut H) -> Vec<i16> {
    let mut all = Vec::new();
    while let Some(chunk) = h.call.take_recording(false) {
        all.extend(chunk);
    }
    all
}

/// The first 10 ms block (80 samples) of `pcm` that carries a 400 Hz tone.
fn onset(pcm: &[i16]) -> Option<usize> {
    pcm.chunks(80)
        .position(|c| c.len() == 80 && detect_tone(c, 8000, 400.0) > 0.5)
        .map(|i| i * 80)
}

#[test]
fn both_sides_of_a_sound_start_within_20_ms_of_each_other() {
    let mut h = call(true);
    assert!(h.call.is_recorded());
    let mut all = Vec::new();
    // Half a second of silence both ways, then the caller and the agent start together:
    // the caller's packet lands mid-frame, the agent's audio waits for the next tick.
    for _ in 0..25 {
        h.caller_audio(&[0; 160]);
        h.advance(ms(20));
        all.extend(recorded(&mut h));
    }
    h.advance(ms(7));
    h.agent_pcm(&tone(8000));
    for _ in 0..50 {
        h.caller_audio(&tone(160));
        h.advance(ms(20));
        all.extend(recorded(&mut h));
    }
    if let Some(rest) = h.call.take_recording(true) {
        all.extend(rest);
    }
    let left: Vec<i16> = all.iter().step_by(2).copied().collect();
    let right: Vec<i16> = all.iter().skip(1).step_by(2).copied().collect();
    let (l, r) = (onset(&left), onset(&right));
    let (Some(l), Some(r)) = (l, r) else {
        panic!("both channels carry the tone: left {l:?}, right {r:?}");
    };
    assert!(
        l.abs_diff(r) <= 160,
        "left starts at {l}, right at {r} samples: more than 20 ms apart"
    );
    assert!(l >= 25 * 160 - 160, "the silence came first ({l})");
}

#[test]
fn a_call_not_recorded_yields_no_chunks() {
    let mut h = call(false);
    for _ in 0..30 {
        h.caller_audio(&tone(160));
        h.advance(ms(20));
    }
    assert!(!h.call.is_recorded());
    assert!(h.call.take_recording(false).is_none());
    assert!(h.call.take_recording(true).is_none());
}
