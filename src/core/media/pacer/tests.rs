//! Pacer tests: padding and silence, mark release timing, clear, overflow, and a 10-minute
//! simulation with bursty agent audio that must come out exactly once, in order, on time.

use super::*;

const F: usize = 160;

fn ramp(start: i16, n: usize) -> Vec<i16> {
    (0..n).map(|i| start + i as i16).collect()
}

fn tick(p: &mut Pacer) -> (FrameKind, Vec<i16>, Vec<String>) {
    let mut out = vec![7i16; F];
    let kind = p.next_frame(&mut out);
    let marks = p.take_played_marks().collect();
    (kind, out, marks)
}

#[test]
fn empty_pacer_gives_silence_frames() {
    let mut p = Pacer::new(F, 1000);
    for _ in 0..3 {
        let (kind, out, marks) = tick(&mut p);
        assert_eq!(kind, FrameKind::Silence);
        assert!(out.iter().all(|&s| s == 0));
        assert!(marks.is_empty());
    }
}

#[test]
fn partial_audio_is_padded_and_large_pushes_are_split() {
    let mut p = Pacer::new(F, 10_000);
    p.push_audio(&ramp(1, 400));
    assert_eq!(p.queued_samples(), 400);
    let (k1, o1, _) = tick(&mut p);
    let (k2, o2, _) = tick(&mut p);
    let (k3, o3, _) = tick(&mut p);
    let (k4, _, _) = tick(&mut p);
    assert_eq!(
        (k1, k2, k3, k4),
        (
            FrameKind::Audio,
            FrameKind::Audio,
            FrameKind::Audio,
            FrameKind::Silence
        )
    );
    assert_eq!(o1, ramp(1, 160));
    assert_eq!(o2, ramp(161, 160));
    assert_eq!(&o3[..80], &ramp(321, 80)[..]);
    assert!(o3[80..].iter().all(|&s| s == 0));
    assert_eq!(p.queued_samples(), 0);
}

#[test]
fn mark_after_audio_is_released_with_the_frame_holding_its_last_sample() {
    let mut p = Pacer::new(F, 10_000);
    p.push_audio(&ramp(1, 330)); // ends 10 samples into the third frame
    p.push_mark("a".into());
    p.push_audio(&ramp(400, 160));
    p.push_mark("b".into());
    p.push_audio(&ramp(1000, 500));
    let (_, _, m1) = tick(&mut p);
    let (_, _, m2) = tick(&mut p);
    assert!(
        m1.is_empty() && m2.is_empty(),
        "released before its audio left"
    );
    let (_, o3, m3) = tick(&mut p);
    assert_eq!(o3[9], 330);
    assert_eq!(m3, vec!["a".to_string()]);
    let (_, o4, m4) = tick(&mut p);
    assert_eq!(o4[9], 400 + 159, "b's last sample leaves in frame 4");
    assert_eq!(m4, vec!["b".to_string()]);
}

#[test]
fn mark_on_an_empty_queue_is_released_by_the_next_tick() {
    let mut p = Pacer::new(F, 10_000);
    p.push_mark("now".into());
    assert_eq!(p.take_played_marks().count(), 0, "not before a tick");
    let (kind, _, marks) = tick(&mut p);
    assert_eq!(kind, FrameKind::Silence);
    assert_eq!(marks, vec!["now".to_string()]);
    // Same after audio has fully drained on an exact frame boundary.
    p.push_audio(&ramp(1, 160));
    tick(&mut p);
    p.push_mark("x".into());
    p.push_mark("y".into());
    assert_eq!(p.take_played_marks().count(), 0);
    let (_, _, marks) = tick(&mut p);
    assert_eq!(marks, vec!["x".to_string(), "y".to_string()]);
}

#[test]
fn mark_exactly_on_a_frame_boundary() {
    let mut p = Pacer::new(F, 10_000);
    p.push_audio(&ramp(1, 160));
    p.push_mark("m".into());
    p.push_audio(&ramp(1, 10));
    let (_, _, marks) = tick(&mut p);
    assert_eq!(marks, vec!["m".to_string()]);
}

#[test]
fn clear_mid_playback_returns_pending_marks_and_next_frame_is_silence() {
    let mut p = Pacer::new(F, 100_000);
    p.push_audio(&ramp(1, 100));
    p.push_mark("played".into());
    p.push_audio(&ramp(1, 1000));
    p.push_mark("p1".into());
    p.push_audio(&ramp(1, 1000));
    p.push_mark("p2".into());
    let (kind, _, marks) = tick(&mut p);
    assert_eq!(kind, FrameKind::Audio);
    assert_eq!(marks, vec!["played".to_string()]);
    tick(&mut p);
    let pending = p.clear();
    assert_eq!(pending, vec!["p1".to_string(), "p2".to_string()]);
    assert_eq!(p.queued_samples(), 0);
    let (kind, out, marks) = tick(&mut p);
    assert_eq!(kind, FrameKind::Silence);
    assert!(out.iter().all(|&s| s == 0));
    assert!(marks.is_empty());
    // The pacer keeps working after a clear; a new mark is positioned after new audio only.
    p.push_audio(&ramp(5, 200));
    p.push_mark("after".into());
    assert_eq!(tick(&mut p).1, ramp(5, 160));
    let (_, _, marks) = tick(&mut p);
    assert_eq!(marks, vec!["after".to_string()]);
}

#[test]
fn clear_keeps_released_but_untaken_marks_for_take() {
    let mut p = Pacer::new(F, 10_000);
    p.push_audio(&ramp(1, 10));
    p.push_mark("done".into());
    p.push_audio(&ramp(1, 500));
    p.push_mark("cut".into());
    let mut out = [0i16; F];
    p.next_frame(&mut out);
    assert_eq!(p.clear(), vec!["cut".to_string()]);
    assert_eq!(
        p.take_played_marks().collect::<Vec<_>>(),
        vec!["done".to_string()]
    );
    assert_eq!(p.pending_marks(), 0);
}

#[test]
fn overflow_refuses_the_tail_and_counts_it() {
    let mut p = Pacer::new(F, 500);
    assert_eq!(p.push_audio(&ramp(1, 400)), 0);
    assert_eq!(p.push_audio(&ramp(401, 300)), 200);
    assert_eq!(p.queued_samples(), 500);
    assert_eq!(p.dropped_samples(), 200);
    p.push_mark("end".into());
    let mut all = Vec::new();
    let mut got_mark = false;
    for _ in 0..4 {
        let (_, out, marks) = tick(&mut p);
        all.extend_from_slice(&out);
        got_mark |= !marks.is_empty();
    }
    assert_eq!(
        &all[..500],
        &ramp(1, 500)[..],
        "oldest audio kept, in order"
    );
    assert!(got_mark);
    // Space frees as frames leave.
    assert_eq!(p.push_audio(&ramp(1, 500)), 0);
}

#[test]
fn odd_out_buffers_do_not_drift_time() {
    let mut p = Pacer::new(F, 10_000);
    p.push_audio(&ramp(1, 400));
    let mut short = [0i16; 100];
    assert_eq!(p.next_frame(&mut short), FrameKind::Audio);
    assert_eq!(
        p.queued_samples(),
        240,
        "a tick is a frame of time whatever the buffer"
    );
    let mut long = [9i16; 200];
    p.next_frame(&mut long);
    assert_eq!(long[0], 161);
    assert!(long[160..].iter().all(|&s| s == 0));
    let mut none: [i16; 0] = [];
    p.next_frame(&mut none);
    assert_eq!(p.queued_samples(), 0);
    // Degenerate construction does not panic.
    let mut z = Pacer::new(0, 0);
    assert_eq!(z.push_audio(&[1, 2]), 2);
    assert_eq!(z.next_frame(&mut short), FrameKind::Silence);
}

/// xorshift64*, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn ten_minutes_of_bursty_audio_comes_out_exactly_once_in_order() {
    const TICKS: usize = 30_000; // 10 min of 20 ms
    let mut p = Pacer::new(F, 480_000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut next_value: u32 = 0;
    // Sample values encode their sequence number (never 0, so padding is distinguishable).
    let value = |k: u32| (k % 32_000 + 1) as i16;
    let mut pushed: u64 = 0;
    let mut out_seq: u64 = 0;
    let (mut frames, mut audio_frames) = (0usize, 0usize);
    let mut marks_pushed: Vec<(u64, String)> = Vec::new();
    let mut marks_seen = 0usize;
    let mut buf = vec![0i16; F];
    let mut chunk = Vec::new();
    for t in 0..TICKS {
        // Agent: idle periods, then bursts far faster than real time, in random chunk sizes,
        // stopping 30 s before the end so everything drains.
        if t < TICKS - 1500 && rng.below(1000) < 25 {
            let bursts = 1 + rng.below(6);
            for _ in 0..bursts {
                let n = 1 + rng.below(3000) as usize;
                chunk.clear();
                chunk.extend((0..n).map(|i| value(next_value + i as u32)));
                next_value += n as u32;
                assert_eq!(p.push_audio(&chunk), 0);
                pushed += n as u64;
                if rng.below(4) == 0 {
                    let name = format!("m{}", marks_pushed.len());
                    marks_pushed.push((pushed, name.clone()));
                    p.push_mark(name);
                }
            }
        }
        let queued_before = p.queued_samples();
        let seq_before = out_seq;
        let kind = p.next_frame(&mut buf);
        frames += 1;
        let n_audio = buf.iter().take_while(|&&s| s != 0).count();
        assert_eq!(
            n_audio,
            queued_before.min(F),
            "no gap while audio is queued"
        );
        assert!(
            buf[n_audio..].iter().all(|&s| s == 0),
            "padding only at the end"
        );
        assert_eq!(kind == FrameKind::Audio, n_audio > 0);
        audio_frames += usize::from(n_audio > 0);
        for &s in &buf[..n_audio] {
            assert_eq!(s, value(out_seq as u32), "sample {out_seq} out of order");
            out_seq += 1;
        }
        for name in p.take_played_marks() {
            let (pos, expected) = &marks_pushed[marks_seen];
            assert_eq!(&name, expected);
            assert!(*pos <= out_seq, "mark {name} before its audio");
            assert!(*pos >= seq_before, "mark {name} released a tick late");
            marks_seen += 1;
        }
        let due = marks_pushed
            .iter()
            .take_while(|(pos, _)| *pos <= out_seq)
            .count();
        assert_eq!(marks_seen, due, "a due mark was held back at t={t}");
    }
    assert_eq!(frames, 30_000);
    assert_eq!(out_seq, pushed, "every sample exactly once");
    assert_eq!(p.queued_samples(), 0);
    assert_eq!(marks_seen, marks_pushed.len());
    assert!(
        pushed > 1_000_000 && audio_frames > 5000 && audio_frames < 29_000,
        "{pushed} {audio_frames}"
    );
    println!("10-min pacer sim: {pushed} samples, {audio_frames} audio frames, {marks_seen} marks");
}

#[test]
fn pending_marks_are_bounded() {
    let mut p = Pacer::new(160, 8000);
    p.push_audio(&[1; 320]);
    for i in 0..MAX_MARKS {
        assert!(p.push_mark(format!("m{i}")), "mark {i}");
    }
    assert!(!p.push_mark("one too many".into()));
    assert_eq!(p.pending_marks(), MAX_MARKS);
    assert_eq!(
        p.clear().len(),
        MAX_MARKS,
        "every accepted mark is answered"
    );
    assert!(p.push_mark("after clear".into()));
}
