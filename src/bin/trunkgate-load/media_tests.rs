//! One stream's shaping and accounting, without sockets: packets are taken from `emit` and
//! echoed back by hand the way the gateway and the echo agent would.

use super::*;
use crate::marks::Audio;
use crate::shape::Shape;

fn stream(frames: u32, jitter_ms: u32, loss: f64, reorder: f64) -> CallMedia {
    let shape = Shape {
        jitter_ms,
        loss,
        reorder,
        seed: 11,
    };
    let shaper = Shaper::new(&shape, shape.stream_seed(0), 0);
    let remote = "127.0.0.1:4000".parse().expect("addr");
    CallMedia::new(remote, frames, false, false, None, shaper)
}

/// Every packet the stream sends, in order (dropped ones are not there).
fn run(c: &mut CallMedia) -> Vec<Vec<u8>> {
    run_at(c, Instant::now())
}

/// [`run`], every packet sent at `now`.
fn run_at(c: &mut CallMedia, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while c.streaming() {
        let mut buf = Vec::new();
        if c.emit(now, &mut buf) {
            out.push(buf);
        }
    }
    out
}

/// The gateway's RTP back to the caller with `payload` (its own sequence numbers).
fn echo(c: &mut CallMedia, gw_seq: u16, payload: &[u8], at: Instant) {
    let h = rtp::RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: gw_seq,
        timestamp: u32::from(gw_seq) * 160,
        ssrc: 9,
    };
    let mut pkt = Vec::new();
    rtp::write(&h, payload, &mut pkt);
    c.on_packet(&pkt, at, None);
}

fn seqs(packets: &[Vec<u8>]) -> Vec<u16> {
    packets
        .iter()
        .map(|p| rtp::parse(p).expect("rtp").header.sequence)
        .collect()
}

#[test]
fn deliberate_loss_is_not_the_gateways_loss() {
    let mut c = stream(1000, 0, 0.2, 0.0);
    let sent = run(&mut c);
    let dropped = c.stats.echo.dropped;
    assert_eq!(sent.len() as u32 + dropped, 1000);
    assert!((150..250).contains(&dropped), "{dropped}");
    assert_eq!(c.stats.sent, sent.len() as u32);
    // The gateway streams on regardless (its own sequence), echoing what arrived; it loses
    // three of our frames in the middle.
    let now = Instant::now();
    for (g, p) in sent.iter().enumerate() {
        if [100, 200, 300].contains(&g) {
            continue;
        }
        let payload = &rtp::parse(p).expect("rtp").payload.to_vec();
        echo(&mut c, g as u16, payload, now);
    }
    let stats = c.finish();
    assert_eq!(stats.lost, 3, "the gateway's sequence gaps");
    assert_eq!(stats.echo.dropped, dropped);
    assert_eq!(
        stats.echo.missing, 3,
        "only frames that left and never came back"
    );
    assert_eq!(stats.echo.echoed, sent.len() as u32 - 3);
}

#[test]
fn frames_before_the_first_echo_and_after_the_last_are_not_missing() {
    let mut c = stream(200, 0, 0.0, 0.0);
    let sent = run(&mut c);
    let now = Instant::now();
    // The agent was not up for the first 30 frames; the last 40 are still held by it.
    for (g, p) in sent.iter().enumerate().take(160).skip(30) {
        let payload = rtp::parse(p).expect("rtp").payload.to_vec();
        echo(&mut c, g as u16, &payload, now);
    }
    let stats = c.finish();
    assert_eq!((stats.echo.echoed, stats.echo.missing), (130, 0));
}

#[test]
fn without_reorder_packets_leave_in_sequence_even_with_jitter_and_loss() {
    let mut c = stream(2000, 40, 0.05, 0.0);
    let s = seqs(&run(&mut c));
    assert!(s
        .windows(2)
        .all(|w| w[1].wrapping_sub(w[0]) >= 1 && w[1].wrapping_sub(w[0]) < 100));
    assert_eq!(c.stats.echo.reordered, 0);
}

#[test]
fn reorder_swaps_a_packet_with_the_next_one_only() {
    let mut c = stream(5000, 0, 0.0, 0.05);
    let s = seqs(&run(&mut c));
    assert_eq!(s.len(), 5000, "a swap loses nothing");
    let back = s
        .windows(2)
        .filter(|w| w[1].wrapping_sub(w[0]) > 0x8000)
        .count() as u32;
    assert_eq!(back, c.stats.echo.reordered);
    assert!((150..350).contains(&back), "{back}");
    // No packet is more than one place from its own (a swap is with the next one only).
    let base = if s[1] == s[0].wrapping_sub(1) {
        s[1]
    } else {
        s[0]
    };
    for (i, x) in s.iter().enumerate() {
        let natural = i64::from(x.wrapping_sub(base));
        assert!((natural - i as i64).abs() <= 1, "packet {i} is seq {x}");
    }
    // Each sequence number exactly once.
    let mut sorted = s.clone();
    sorted.sort_by_key(|x| x.wrapping_sub(s[0]));
    assert!(sorted.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 1));
}

#[test]
fn marked_echoes_split_the_round_trip_and_time_onsets_by_their_own_send_time() {
    let mut c = stream(100, 0, 0.0, 0.0);
    let t0 = Instant::now();
    let sent = run_at(&mut c, t0);
    // The agent got each frame 3 ms after t0 and sent it back in 100 ms chunks (the first of
    // five frames is the one whose wire time counts); the caller hears it 50 ms after t0.
    let stamp_in = marks::us(t0 + Duration::from_millis(3));
    let stamp_out = marks::us(t0 + Duration::from_millis(13));
    for (g, p) in sent.iter().enumerate() {
        let mut payload = rtp::parse(p).expect("rtp").payload.to_vec();
        Audio::Ulaw.stamp_in(&mut payload, stamp_in);
        let mut m = Mark::read_ulaw(&payload).expect("marked");
        m.agent_out = stamp_out;
        m.pos = (g % 5) as u8;
        m.write_ulaw(&mut payload);
        echo(&mut c, g as u16, &payload, t0 + Duration::from_millis(50));
    }
    let stats = c.finish();
    assert_eq!(stats.echo.to_agent_us.len(), 100);
    assert!(stats.echo.to_agent_us.iter().all(|&u| u == 3_000));
    assert!(stats.echo.hold_us.iter().all(|&u| u == 10_000));
    assert_eq!(stats.echo.to_caller_us, vec![37_000; 20]);
    // Two bursts (frames 0 and 50), each timed against its own mark: 50 ms.
    assert_eq!(stats.rtts.len(), 2);
    assert!(
        stats.rtts.iter().all(|r| r.as_millis() == 50),
        "{:?}",
        stats.rtts
    );
}
