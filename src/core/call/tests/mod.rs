//! Scenario tests of the call machine with a virtual clock: one test per lifecycle path, each
//! asserting the SIP commands, agent messages and RTP packets the machine produces and the
//! call's end (its `EndReason` and view). The harness (`harness.rs`) plays the driver.

mod agent_leg;
mod bridge;
mod ending;
mod harness;
mod media_dtmf;
mod media_flow;
mod outbound;
mod recording;
mod rejections;
mod srtp;
mod static_route;
mod transfer;
mod webhook;

/// Call ids: minted ones inline, any string read back from a URL equal to the same text.
#[test]
fn call_ids_keep_their_text_inline_or_not() {
    use super::CallId;
    let minted = CallId::from_random(0xfeed);
    assert_eq!(minted.as_str(), "CA0000000000000000000000000000feed");
    assert_eq!(CallId::from_string(minted.as_str().to_string()), minted);
    let long = "CA".repeat(40);
    assert_eq!(CallId::from_string(long.clone()).as_str(), long);
    // 34 bytes of multi-byte characters, and 35: both round-trip.
    for s in [
        "ż".repeat(17),
        format!("x{}", "ż".repeat(17)),
        String::new(),
    ] {
        assert_eq!(CallId::from_string(s.clone()).as_str(), s);
    }
    assert!(CallId::from_string("a".into()) < CallId::from_string("b".into()));
}
