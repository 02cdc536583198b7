//! A `bridge` transfer over real sockets with a real baresip as the transfer target: the agent
//! asks for the transfer; the gateway dials the target through the trunk's `outbound` (a
//! baresip on loopback, auto-answering, playing a 700 Hz tone); on its answer the agent's
//! stream stops and the two SIP legs are bridged. Checked by content both ways: the caller
//! hears the target's tone, baresip's recording holds the caller's; DTMF passes both ways.
//! The caller's BYE reaches the target; the record says how the transfer and the leg went.
//! Skips (with a note) only when baresip is not installed; `scripts/test.sh` installs it.

use super::support::agent::{Action, Dialect, Script, Seen};
use super::support::baresip::TempDir;
use super::support::leg::WAIT;
use super::support::phone::{phone, recorded_frames};
use super::transfer::{agent_outcomes, ended, transfer_outcomes};
use super::{connected, CALLER_HZ};

const TARGET_HZ: f32 = 700.0;
const TARGET: &str = "+4930123456";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_transfer_connects_the_caller_to_a_real_phone_both_ways() {
    let dir = TempDir::new("tg-xfer-bridge").expect("temp dir");
    let Some(mut target) = phone(&dir, TARGET, TARGET_HZ).await else {
        return;
    };
    let trunk = format!(
        "[[trunk]]\nname = \"pbx\"\nmatch_cidrs = [\"127.0.0.0/8\"]\n\
         outbound = {{ address = \"127.0.0.1:{}\" }}\ntransfer = {{ mode = \"bridge\" }}\n",
        target.ports().sip
    );
    let mut live = connected(
        (38000, 38049),
        Dialect::Twilio,
        Script::default(),
        &dir,
        |s| {
            s.extra = trunk;
        },
    )
    .await;
    live.agent.start_msg(WAIT).await;
    live.agent.act(Action::Transfer(TARGET.into()));
    target
        .wait_established(WAIT)
        .await
        .expect("the target answers");
    // The agent is told, then its stream stops.
    live.agent
        .expect("closed", WAIT, |s| matches!(s, Seen::Closed { .. }))
        .await;
    // The caller hears the target (a second of its tone).
    let heard = live
        .call
        .caller
        .wait_until(WAIT, |h| h.tone_times(TARGET_HZ).len() >= 50)
        .await;
    assert!(heard, "the caller hears the target's {TARGET_HZ} Hz tone");
    // DTMF is passed both ways (RFC 4733 in, RFC 4733 out on the other leg).
    target.send_dtmf("5").await.expect("target DTMF");
    let got = live
        .call
        .caller
        .wait_until(WAIT, |h| h.digits().contains('5'))
        .await;
    assert!(got, "the caller gets the target's digit");
    live.call.caller.dtmf("7");
    let digit = target
        .wait_event("CALL_DTMF_START", WAIT)
        .await
        .expect("the target gets the caller's digit");
    assert_eq!(digit.param.as_deref(), Some("7"), "{}", digit.raw);
    live.call.hangup().await;
    target
        .wait_event("CALL_CLOSED", WAIT)
        .await
        .expect("the caller's BYE reaches the target");
    let (record, seen) = ended(&mut live).await;
    // A callback per state of the target's leg, and the transfer's.
    let legs: Vec<&str> = seen
        .iter()
        .filter(|d| d["event"] == "call.leg")
        .filter_map(|d| d["bridge"]["status"].as_str())
        .collect();
    assert_eq!(legs.last(), Some(&"in-progress"), "{seen:?}");
    assert_eq!(transfer_outcomes(&seen), vec!["trying", "succeeded"]);
    assert_eq!(record["end_reason"], "caller_hangup", "{record}");
    assert_eq!(record["transfer"]["mode"], "bridge", "{record}");
    assert_eq!(record["transfer"]["outcome"], "succeeded", "{record}");
    assert_eq!(record["bridge"]["to"], TARGET, "{record}");
    assert_eq!(record["bridge"]["status"], "completed", "{record}");
    let frames = recorded_frames(&mut target, &dir, CALLER_HZ).await;
    assert!(
        frames >= 25,
        "the target hears the caller's {CALLER_HZ} Hz tone ({frames} frames)"
    );
    assert_eq!(live.gw.rtp_ports_in_use(), 0);
    let _ = target.quit().await;
}

/// A transfer target is a call we place: the trunk's outbound policy applies. A blocked
/// prefix is refused (403) before anything is dialled, and the agent keeps the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_transfer_to_a_blocked_prefix_is_refused_and_the_agent_keeps_the_call() {
    let dir = TempDir::new("tg-xfer-blocked").expect("temp dir");
    // Nothing listens on the discard port: a dialled INVITE would time out, not be refused.
    let trunk = "[[trunk]]\nname = \"pbx\"\nmatch_cidrs = [\"127.0.0.0/8\"]\n\
         outbound = { address = \"127.0.0.1:9\" }\n\
         outbound_policy = { blocked_prefixes = [\"+4930\"] }\ntransfer = { mode = \"bridge\" }\n";
    let mut live = connected(
        (38050, 38099),
        Dialect::Twilio,
        Script::default(),
        &dir,
        |s| {
            s.extra = trunk.to_string();
        },
    )
    .await;
    live.agent.start_msg(WAIT).await;
    live.agent.act(Action::Transfer(TARGET.into()));
    live.agent
        .expect("the failed transfer", WAIT, |s| {
            matches!(s, Seen::Other(v) if v["event"] == "transfer"
                && v["transfer"]["outcome"] == "failed")
        })
        .await;
    assert_eq!(agent_outcomes(&live), vec!["trying", "failed"]);
    live.call.hangup().await;
    let (record, seen) = ended(&mut live).await;
    assert_eq!(record["end_reason"], "caller_hangup", "{record}");
    assert_eq!(record["transfer"]["outcome"], "failed", "{record}");
    assert_eq!(record["transfer"]["sip_status"], 403, "{record}");
    assert_eq!(transfer_outcomes(&seen), vec!["trying", "failed"]);
}
