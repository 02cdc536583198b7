//! Transfers asked by the agent, over real sockets: `notify` (the PBX hand-back: the trunk's
//! template POSTed to an in-process PBX stand-in that checks body and headers; then the
//! PBX's BYE, or ours after `await_bye`) and `refer` (the scripted caller answers the REFER
//! 202 and reports the outcome by NOTIFY sipfrag). Every outcome reaches the agent, the
//! `call.transfer` callbacks and the record.

use serde_json::Value;

use super::support::agent::{Action, Dialect, Script, Seen};
use super::support::baresip::TempDir;
use super::support::gw::wait_event;
use super::support::http::CallbackServer;
use super::support::leg::WAIT;
use super::support::ua::Msg;
use super::{connected, Live};
use trunkgate::app::GatewayEvent;

fn trunk(transfer: &str) -> String {
    format!("[[trunk]]\nname = \"pbx\"\nmatch_cidrs = [\"127.0.0.0/8\"]\ntransfer = {transfer}\n")
}

/// The call's record once it ended, and every callback delivered for it, in `seq` order.
pub(super) async fn ended(live: &mut Live) -> (Value, Vec<Value>) {
    let ended = wait_event(&mut live.events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded { record, .. } = ended else {
        unreachable!()
    };
    let record = serde_json::to_value(&record).expect("record JSON");
    let mut seen = Vec::new();
    loop {
        seen.push(live.cb.success(WAIT).await.json());
        // Every event up to the completed one's `seq` has come (they may overtake each other).
        let last = seen
            .iter()
            .find(|d| d["event"] == "call.completed")
            .and_then(|d| d["seq"].as_u64());
        if last == Some(seen.len() as u64) {
            // Deliveries may overtake each other; a receiver orders them by `seq`.
            seen.sort_by_key(|d| d["seq"].as_u64());
            return (record, seen);
        }
    }
}

pub(super) fn transfer_outcomes(seen: &[Value]) -> Vec<String> {
    seen.iter()
        .filter(|d| d["event"] == "call.transfer")
        .map(|d| d["transfer"]["outcome"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The agent's transfer messages (twilio `event: transfer`), by outcome.
pub(super) fn agent_outcomes(live: &Live) -> Vec<String> {
    live.agent
        .history
        .iter()
        .filter_map(|n| match &n.seen {
            Seen::Other(v) if v["event"] == "transfer" => {
                Some(v["transfer"]["outcome"].as_str().unwrap_or("").to_string())
            }
            _ => None,
        })
        .collect()
}

async fn notify_call(
    ports: (u16, u16),
    dir: &TempDir,
    pbx: &CallbackServer,
    await_bye: &str,
) -> Live {
    let transfer = format!(
        "{{ mode = \"notify\", url = \"{}\", headers = {{ Authorization = \"Bearer pbx-token\", \"policy-name\" = \"token\" }}, body = {{ notificationId = \"95\", uniqueId = \"{{crt}}\", callResponse = true, sessionId = \"na\", properties = {{ did = \"{{did}}\" }} }}, await_bye = \"{await_bye}\" }}",
        pbx.url
    );
    let mut live = connected(ports, Dialect::Twilio, Script::default(), dir, |s| {
        s.extra = trunk(&transfer);
    })
    .await;
    live.agent.start_msg(WAIT).await;
    live.agent.act(Action::Transfer("+4930123456".into()));
    live
}

/// The PBX got the template filled from the call, with the trunk's headers.
async fn check_notification(pbx: &mut CallbackServer) {
    let n = pbx.success(WAIT).await;
    assert_eq!(n.header("Authorization"), Some("Bearer pbx-token"));
    assert_eq!(n.header("policy-name"), Some("token"));
    assert_eq!(
        n.json(),
        serde_json::json!({"notificationId": "95", "uniqueId": "crt-77", "callResponse": true,
            "sessionId": "na", "properties": {"did": "+919990152080"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_hands_back_and_the_pbx_bye_ends_it_transferred() {
    let dir = TempDir::new("tg-xfer-notify").expect("temp dir");
    let mut pbx = CallbackServer::start(0).await;
    let mut live = notify_call((37500, 37549), &dir, &pbx, "30s").await;
    check_notification(&mut pbx).await;
    // The agent hears it went through, then its stream stops.
    live.agent
        .expect("closed", WAIT, |s| matches!(s, Seen::Closed { .. }))
        .await;
    assert_eq!(agent_outcomes(&live), vec!["trying", "succeeded"]);
    // The PBX (the caller's side) takes the call and hangs up.
    live.call.hangup().await;
    let (record, seen) = ended(&mut live).await;
    assert_eq!(record["end_reason"], "transferred", "{record}");
    assert_eq!(record["transfer"]["mode"], "notify", "{record}");
    assert_eq!(record["transfer"]["outcome"], "succeeded", "{record}");
    assert_eq!(transfer_outcomes(&seen), vec!["trying", "succeeded"]);
    assert_eq!(live.gw.rtp_ports_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_without_the_pbx_bye_is_our_bye_after_await_bye() {
    let dir = TempDir::new("tg-xfer-await").expect("temp dir");
    let mut pbx = CallbackServer::start(0).await;
    let mut live = notify_call((37550, 37599), &dir, &pbx, "1s").await;
    check_notification(&mut pbx).await;
    live.call.expect_bye(WAIT).await;
    let (record, _) = ended(&mut live).await;
    assert_eq!(record["end_reason"], "transferred", "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pbx_leaves_the_call_with_the_agent() {
    let dir = TempDir::new("tg-xfer-fail").expect("temp dir");
    // Every notification answered 500.
    let pbx = CallbackServer::start(usize::MAX).await;
    let mut live = notify_call((37600, 37649), &dir, &pbx, "30s").await;
    live.agent
        .expect(
            "failed transfer",
            WAIT,
            |s| matches!(s, Seen::Other(v) if v["transfer"]["outcome"] == "failed"),
        )
        .await;
    // The call goes on; the caller ends it.
    live.call.hangup().await;
    let (record, seen) = ended(&mut live).await;
    assert_eq!(record["end_reason"], "caller_hangup", "{record}");
    assert_eq!(record["transfer"]["outcome"], "failed", "{record}");
    assert_eq!(record["transfer"]["sip_status"], 500, "{record}");
    assert_eq!(transfer_outcomes(&seen), vec!["trying", "failed"]);
}

/// A response to the gateway's `req` with `status`.
fn answer(req: &Msg, status: u16, reason: &str) -> String {
    super::support::leg::ok_for(req).replacen("200 OK", &format!("{status} {reason}"), 1)
}

/// A call on a trunk that transfers by REFER, the agent asking for `to`; the REFER the
/// scripted caller got.
async fn referred(ports: (u16, u16), dir: &TempDir, to: &str) -> (Live, Msg) {
    let mut live = connected(ports, Dialect::Twilio, Script::default(), dir, |s| {
        s.extra = trunk("{ mode = \"refer\" }");
    })
    .await;
    live.agent.start_msg(WAIT).await;
    live.agent.act(Action::Transfer(to.into()));
    let refer = live
        .call
        .ua
        .expect(WAIT, "REFER", |m| m.method() == Some("REFER"))
        .await;
    (live, refer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_accepted_and_completed_is_bye_and_transferred() {
    let dir = TempDir::new("tg-xfer-refer").expect("temp dir");
    let (mut live, refer) = referred((37650, 37699), &dir, "+4930123456").await;
    let refer_to = refer.header("Refer-To").unwrap_or_default().to_string();
    assert!(
        refer_to.starts_with("<sip:+4930123456@127.0.0.1"),
        "{refer_to}"
    );
    assert!(refer.header("Referred-By").is_some());
    live.call.ua.send(&answer(&refer, 202, "Accepted")).await;
    let frag = "SIP/2.0 200 OK\r\n";
    let notify = live.call.ua.request("NOTIFY", "ntf1", 2, Some(&live.call.tag), "").replacen(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag\r\nContent-Length: {}\r\n\r\n{frag}",
            frag.len()
        ),
        1,
    );
    live.call.ua.send(&notify).await;
    live.call
        .ua
        .expect(WAIT, "200 to NOTIFY", |m| {
            m.status() == Some(200) && m.header("CSeq").is_some_and(|c| c.ends_with("NOTIFY"))
        })
        .await;
    live.call.expect_bye(WAIT).await;
    live.agent
        .expect("closed", WAIT, |s| matches!(s, Seen::Closed { .. }))
        .await;
    let (record, seen) = ended(&mut live).await;
    assert_eq!(record["end_reason"], "transferred", "{record}");
    assert_eq!(record["transfer"]["mode"], "refer", "{record}");
    assert_eq!(record["transfer"]["sip_status"], 200, "{record}");
    assert_eq!(transfer_outcomes(&seen), vec!["trying", "succeeded"]);
    let seen_by_agent: Vec<_> = live
        .agent
        .history
        .iter()
        .map(|n| format!("{:?}", n.seen))
        .collect();
    assert_eq!(
        agent_outcomes(&live),
        vec!["trying", "succeeded"],
        "{seen_by_agent:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refer_leaves_the_call_with_the_agent() {
    let dir = TempDir::new("tg-xfer-403").expect("temp dir");
    let (mut live, refer) = referred((37700, 37749), &dir, "sip:desk@127.0.0.1").await;
    assert_eq!(refer.header("Refer-To"), Some("<sip:desk@127.0.0.1>"));
    live.call.ua.send(&answer(&refer, 403, "Forbidden")).await;
    live.agent
        .expect(
            "failed transfer",
            WAIT,
            |s| matches!(s, Seen::Other(v) if v["transfer"]["outcome"] == "failed"),
        )
        .await;
    live.call.hangup().await;
    let (record, _) = ended(&mut live).await;
    assert_eq!(record["end_reason"], "caller_hangup", "{record}");
    assert_eq!(record["transfer"]["sip_status"], 403, "{record}");
}
