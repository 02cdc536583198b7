//! Configuration tests for status events, the crash journal's checkpoint and billing
//! (`[callbacks] events` / `checkpoint`, `[billing] exclude_silence`): defaults, typed values,
//! and each problem's exact text, key path and line.

use std::time::Duration;

use super::tests::{errors, ok};
use crate::core::hooks::callback::{CallbackEvent, EventSet};

#[test]
fn defaults() {
    let c = ok("");
    assert_eq!(c.callbacks.events, EventSet::COMPLETED);
    assert_eq!(c.callbacks.checkpoint, Duration::from_secs(5));
    assert!(!c.billing.exclude_silence);
}

#[test]
fn values_are_typed() {
    let c = ok(concat!(
        "[callbacks]\nevents = [\"ringing\", \"completed\", \"answered\"]\ncheckpoint = \"500ms\"\n",
        "[billing]\nexclude_silence = true\n",
    ));
    assert_eq!(c.callbacks.events, EventSet::ALL);
    assert_eq!(c.callbacks.checkpoint, Duration::from_millis(500));
    assert!(c.billing.exclude_silence);
    let c = ok("[callbacks]\nevents = [\"answered\"]\n");
    assert!(c.callbacks.events.contains(CallbackEvent::Answered));
    assert!(!c.callbacks.events.contains(CallbackEvent::Completed));
    // An empty list sends none (the CDR still gets every ended call).
    assert_eq!(
        ok("[callbacks]\nevents = []\n").callbacks.events,
        EventSet::NONE
    );
}

#[test]
fn problems_name_key_and_line() {
    let text = concat!(
        "[callbacks]\n",
        "events = [\"completed\", \"transfer\", \"call.ringing\"]\n",
        "checkpoint = \"0s\"\n",
        "[billing]\n",
        "exclude_silence = \"yes\"\n",
    );
    let got = errors(text);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "t.toml:2: callbacks.events[1]: \"transfer\" is not one of \"ringing\", \"answered\", \"completed\"",
            "t.toml:2: callbacks.events[2]: \"call.ringing\" is not one of \"ringing\", \"answered\", \"completed\"",
            "t.toml:3: callbacks.checkpoint: must be more than 0s",
        ],
        "{got}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("t.toml:5: billing.exclude_silence:")),
        "{got}"
    );
    assert_eq!(
        errors("[callbacks]\ncheckpoint = 5\n"),
        "t.toml:2: callbacks.checkpoint: 5 has no unit; write e.g. \"5s\" (units: ms, s, m, h)"
    );
    assert!(
        errors("[callbacks]\nevents = \"completed\"\n").contains("callbacks.events"),
        "a list, not a string"
    );
}
