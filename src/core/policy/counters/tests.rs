//! Window edges and cap exhaustion, on instants taken once as a base.

use super::*;

#[test]
fn window_edges_are_strict() {
    let t = Instant::now();
    let mut w = Window::default();
    for _ in 0..3 {
        assert_eq!(w.check(t, HOUR, 3), Ok(()));
        w.record(t, HOUR, 3);
    }
    let cases = [
        (Duration::ZERO, Err(3600)),
        (Duration::from_millis(1), Err(3600)),
        (Duration::from_secs(1800), Err(1800)),
        (Duration::from_millis(3_599_999), Err(1)),
        (Duration::from_secs(3600), Ok(())),
    ];
    for (after, want) in cases {
        assert_eq!(w.check(t + after, HOUR, 3), want, "{after:?}");
    }
    // A lowered limit (reload) waits for the older entries too.
    let mut w = Window::default();
    for i in 0..3 {
        w.record(t + Duration::from_secs(i * 10), HOUR, 3);
    }
    assert_eq!(w.check(t + Duration::from_secs(20), HOUR, 2), Err(3590));
    assert_eq!(w.check(t + Duration::from_secs(20), HOUR, 1), Err(3600));
}

#[test]
fn exhaustion_rounds_up() {
    let epoch = Instant::now();
    let mut s = ScopeState::new(Scope::Global);
    s.running = 3;
    s.start_sum = 0;
    // 10 ns of cap shared by 3 calls started at the epoch: used ≥ 10 at 4 ns.
    assert_eq!(
        s.exhausted_at(10, epoch),
        Some(epoch + Duration::from_nanos(4))
    );
    assert!(s.used_ns(epoch + Duration::from_nanos(4), epoch) >= 10);
    assert!(s.used_ns(epoch + Duration::from_nanos(3), epoch) < 10);
}
