//! Hours of operation through `admit`: midnight-crossing windows, DST change days in
//! Europe/Warsaw (2026-03-29, 2026-10-25) and America/New_York (2026-03-08, 2026-11-01),
//! windows starting in a gap or a fold, Retry-After until the window opens (capped at a day).

use super::*;

fn outside(retry: u32) -> Outcome {
    Err((480, "outside_hours", Some(retry)))
}

fn check(window: (u16, u16, &str), cases: &[(&str, Outcome)]) {
    for (wall, want) in cases {
        let mut adm = only(PolicyConfig {
            hours: hours(window.0, window.1, window.2),
            ..PolicyConfig::default()
        });
        let d = adm.admit(&plain(), &start(wall));
        assert_eq!(outcome(&d), *want, "{window:?} at {wall}");
    }
}

#[test]
fn midnight_crossing_window() {
    check(
        (22 * 60, 6 * 60, "UTC"),
        &[
            ("2026-06-01T21:59:59Z", outside(1)),
            ("2026-06-01T21:59:59.5Z", outside(1)),
            ("2026-06-01T22:00:00Z", Ok(())),
            ("2026-06-01T23:59:59Z", Ok(())),
            ("2026-06-02T00:00:00Z", Ok(())),
            ("2026-06-02T05:59:59Z", Ok(())),
            ("2026-06-02T06:00:00Z", outside(57_600)),
            ("2026-06-02T12:00:00Z", outside(36_000)),
        ],
    );
}

#[test]
fn end_of_day_and_whole_day() {
    check(
        (20 * 60, 1440, "UTC"),
        &[
            ("2026-06-01T23:59:59Z", Ok(())),
            ("2026-06-02T00:00:00Z", outside(72_000)),
        ],
    );
    // start == end: open around the clock.
    check(
        (480, 480, "Europe/Warsaw"),
        &[
            ("2026-03-29T01:30:00Z", Ok(())),
            ("2026-10-25T01:30:00Z", Ok(())),
            ("2026-06-01T06:00:00Z", Ok(())),
        ],
    );
}

#[test]
fn warsaw_dst_days() {
    check(
        (8 * 60, 20 * 60, "Europe/Warsaw"),
        &[
            // Saturday before spring-forward: CET (+01).
            ("2026-03-28T06:59:00Z", outside(60)),
            ("2026-03-28T07:00:00Z", Ok(())),
            // 20:30 CET → 08:00 CEST next morning is 10.5 h away, not 11.5.
            ("2026-03-28T19:30:00Z", outside(37_800)),
            // Sunday 2026-03-29 in CEST (+02).
            ("2026-03-29T05:59:00Z", outside(60)),
            ("2026-03-29T06:00:00Z", Ok(())),
            ("2026-03-29T17:59:00Z", Ok(())),
            ("2026-03-29T18:00:00Z", outside(43_200)),
            // Saturday before fall-back, 21:00 CEST → 08:00 CET is 12 h away, not 11.
            ("2026-10-24T19:00:00Z", outside(43_200)),
            // Sunday 2026-10-25 in CET: 06:30Z is 07:30 local, still closed.
            ("2026-10-25T06:30:00Z", outside(1_800)),
            ("2026-10-25T07:00:00Z", Ok(())),
            ("2026-10-25T18:59:59Z", Ok(())),
            ("2026-10-25T19:00:00Z", outside(43_200)),
        ],
    );
}

#[test]
fn new_york_dst_days() {
    check(
        (9 * 60, 17 * 60, "America/New_York"),
        &[
            ("2026-03-07T13:59:00Z", outside(60)),
            ("2026-03-07T14:00:00Z", Ok(())),
            // 17:00 EST Saturday → 09:00 EDT Sunday: 15 h.
            ("2026-03-07T22:00:00Z", outside(54_000)),
            ("2026-03-08T12:59:00Z", outside(60)),
            ("2026-03-08T13:00:00Z", Ok(())),
            // 17:00 EDT Saturday → 09:00 EST Sunday: 17 h.
            ("2026-10-31T21:00:00Z", outside(61_200)),
            ("2026-11-01T13:30:00Z", outside(1_800)),
            ("2026-11-01T14:00:00Z", Ok(())),
        ],
    );
}

#[test]
fn retry_after_is_capped_at_a_day() {
    // 00:01 EDT on the 25-hour day: the next 00:00 (EST) is 24 h 59 min away.
    check(
        (0, 1, "America/New_York"),
        &[
            ("2026-11-01T04:00:30Z", Ok(())),
            ("2026-11-01T04:01:00Z", outside(86_400)),
        ],
    );
}

#[test]
fn window_starting_in_gap_or_fold() {
    // 02:30 does not exist on 2026-03-29 in Warsaw: the window opens at the jump (01:00Z).
    check(
        (150, 300, "Europe/Warsaw"),
        &[
            ("2026-03-29T00:59:00Z", outside(60)),
            ("2026-03-29T01:00:00Z", Ok(())),
        ],
    );
    // 02:30-02:45 happens twice on 2026-10-25 in Warsaw.
    check(
        (150, 165, "Europe/Warsaw"),
        &[
            ("2026-10-25T00:35:00Z", Ok(())),
            ("2026-10-25T00:50:00Z", outside(2_400)),
            ("2026-10-25T01:30:00Z", Ok(())),
            ("2026-10-25T01:45:00Z", outside(85_500)),
        ],
    );
}
