//! Marks: encoding, validation, the codecs the gateway puts them through, and the direction
//! split's arithmetic.

use super::*;

fn sample() -> Mark {
    Mark {
        idx: 0x12_3456,
        sent: 0xDEAD_BEEF,
        agent_in: 7,
        agent_out: u32::MAX,
        pos: 3,
    }
}

#[test]
fn a_mark_reads_back_from_ulaw_and_pcm16() {
    let m = sample();
    let mut ulaw = [0xFFu8; 160];
    m.write_ulaw(&mut ulaw);
    assert_eq!(Mark::read_ulaw(&ulaw), Some(m));
    assert!(
        ulaw[MARK_LEN..].iter().all(|&b| b == 0xFF),
        "only the mark's bytes change"
    );
    let mut pcm = vec![0u8; 320];
    m.write_pcm16(&mut pcm);
    assert_eq!(Mark::read_pcm16(&pcm), Some(m));
    // Too short: no mark, and writing does nothing.
    assert_eq!(Mark::read_ulaw(&ulaw[..MARK_LEN - 1]), None);
    let mut short = [0xFFu8; 10];
    m.write_ulaw(&mut short);
    assert_eq!(short, [0xFF; 10]);
}

#[test]
fn silence_tone_and_damaged_marks_are_not_marks() {
    assert_eq!(Mark::read_ulaw(&[0xFF; 160]), None);
    assert_eq!(Mark::read_ulaw(&[0x00; 160]), None);
    let mut ulaw = [0xFFu8; 160];
    sample().write_ulaw(&mut ulaw);
    for i in 0..MARK_LEN {
        let mut bad = ulaw;
        bad[i] ^= 0x01;
        assert_eq!(Mark::read_ulaw(&bad), None, "nibble {i} changed");
    }
}

/// The gateway turns μ-law into PCM and back (and the raw dialect hands the agent PCM16): every
/// code a mark uses survives, and stays quiet.
#[test]
fn mark_codes_survive_g711_and_are_quiet() {
    for n in 0..16u8 {
        let code = 0xF0 | n;
        let lin = g711::ulaw_to_linear(code);
        assert_eq!(g711::linear_to_ulaw(lin), code, "code {code:#x}");
        assert!(lin.abs() <= 120, "code {code:#x} is {lin}");
    }
}

#[test]
fn the_agent_stamps_every_marked_frame_of_a_message() {
    for audio in [Audio::Ulaw, Audio::Pcm16] {
        let fb = audio.frame_bytes();
        let mut msg = vec![0u8; fb * 3];
        for (i, f) in msg.chunks_exact_mut(fb).enumerate() {
            let m = Mark {
                idx: i as u32,
                sent: 100,
                ..Mark::default()
            };
            match audio {
                Audio::Ulaw => m.write_ulaw(f),
                Audio::Pcm16 => m.write_pcm16(f),
            }
        }
        audio.stamp_in(&mut msg, 200);
        audio.stamp_out(&mut msg, 300);
        for (j, f) in msg.chunks_exact(fb).enumerate() {
            let m = audio.read(f).expect("still marked");
            assert_eq!(
                (m.idx, m.sent, m.agent_in, m.agent_out),
                (j as u32, 100, 200, 300)
            );
            assert_eq!(m.pos, j as u8);
        }
    }
}

#[test]
fn the_direction_split_adds_up_to_the_round_trip() {
    let m = Mark {
        idx: 1,
        sent: 1_000_000,
        agent_in: 1_003_500,
        agent_out: 1_043_500,
        pos: 0,
    };
    let s = Split::of(&m, 1_055_000).expect("stamped");
    assert_eq!(s.to_agent, 3.5);
    assert_eq!(s.hold, 40.0);
    assert_eq!(s.to_caller, 11.5);
    assert_eq!(s.total(), ms_between(m.sent, 1_055_000));
    // Across the clock's wrap.
    let w = Mark {
        sent: u32::MAX - 999,
        agent_in: 1_000,
        agent_out: 2_000,
        ..m
    };
    let s = Split::of(&w, 5_000).expect("stamped");
    assert_eq!((s.to_agent, s.hold, s.to_caller), (2.0, 1.0, 3.0));
    // Not through our agent: no split.
    assert_eq!(Split::of(&Mark { agent_in: 0, ..m }, 5), None);
}

#[test]
fn echo_stats_time_the_wire_only_on_a_messages_first_frame() {
    let mut e = EchoStats::default();
    let m = Mark {
        idx: 0,
        sent: 10_000,
        agent_in: 12_000,
        agent_out: 52_000,
        pos: 0,
    };
    e.note(&m, 60_000);
    e.note(&Mark { pos: 1, ..m }, 80_000);
    // A frame the gateway's own echo sent back: counted, not split.
    e.note(
        &Mark {
            agent_in: 0,
            agent_out: 0,
            ..m
        },
        30_000,
    );
    assert_eq!(e.echoed, 3);
    assert_eq!(e.to_agent_us, vec![2_000, 2_000]);
    assert_eq!(e.hold_us, vec![40_000, 40_000]);
    assert_eq!(e.to_caller_us, vec![8_000]);
}

#[test]
fn stamps_are_never_zero() {
    assert_ne!(us(epoch()), 0);
    assert!(us(Instant::now()) >= us(epoch()));
}
