//! Session timers (RFC 4028) on outbound calls over real sockets: `POST /v1/calls` → the
//! scripted trunk answers with `Session-Expires: 4;refresher=uac` (the gateway refreshes) →
//! the gateway re-INVITEs every 2 s with its own SDP; when the trunk stops answering, the
//! gateway sends BYE and the record says `session_expired`. A 422 from the trunk is retried
//! with its Min-SE. Inbound too: a caller that refreshes nothing is hung up, and one that
//! makes us the refresher (and allows UPDATE) gets an UPDATE at half the interval. The gateway
//! runs with `[sip] session_expires = "4s"`, `min_se = "2s"`.

mod support;

use std::time::Duration;

use serde_json::json;
use trunkgate::app::{Gateway, GatewayEvent};

use support::gw::wait_event;
use support::leg::WAIT;
use support::placing::{self, Api, Setup};
use support::rtp::RtpPeer;
use support::trunk::{Refresher, Refreshes, Script, Transport, Trunk};
use support::ua::{offer, Msg, Ua};

/// Long enough for a few 2 s refreshes and a 4 s expiry.
const LONG: Duration = Duration::from_secs(15);

/// Places a call to the trunk; its id.
async fn dial(api: &Api) -> String {
    let (status, body) = api
        .post(
            "/v1/calls",
            &json!({"to": "+48123456789", "websocket_url": "builtin:echo"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["call_id"].as_str().expect("call_id").to_string()
}

/// A gateway with short session timers (4 s, Min-SE 2 s) whose trunk places calls at `trunk`.
async fn start(ports: (u16, u16), trunk: &Trunk) -> (Gateway, Api) {
    let password = placing::password_file();
    let setup = Setup {
        trunk_keys: &trunk.outbound_toml("alice", &password),
        sip_keys: SHORT_TIMERS,
        ..Setup::default()
    };
    placing::start(ports, setup).await
}

const SHORT_TIMERS: &str = "session_expires = \"4s\"\nmin_se = \"2s\"";

fn short_timers(config: String) -> String {
    config.replace("[sip]\n", &format!("[sip]\n{SHORT_TIMERS}\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refreshes_when_the_trunk_says_refresher_uac() {
    let script = Script::answer()
        .session_timer(4, Refresher::Uac)
        .require_timer()
        .refreshes(Refreshes::Answer);
    let trunk = Trunk::with_script(Transport::Udp, script).await;
    let (gw, api) = start((37300, 37319), &trunk).await;
    let mut events = gw.subscribe();
    let id = dial(&api).await;

    let invite = trunk.expect_request("INVITE", WAIT).await;
    assert_eq!(invite.header("Session-Expires"), Some("4"));
    assert_eq!(invite.header("Min-SE"), Some("2"));
    assert!(invite.headers("Supported").contains(&"timer"));
    let call = trunk
        .expect_call(0, LONG, "refreshed twice", |c| {
            c.refreshes.iter().filter(|r| r.answered).count() >= 2
        })
        .await;
    for r in &call.refreshes {
        assert_eq!(r.method, "INVITE", "no Allow: UPDATE from the trunk");
        assert!(r.has_sdp, "a re-INVITE offers the same SDP");
        assert_eq!(r.session_expires.as_deref(), Some("4;refresher=uac"));
    }
    // Refreshes every half interval, never early.
    let gap = call.refreshes[1].at - call.refreshes[0].at;
    assert!(
        gap >= Duration::from_millis(1900) && gap <= Duration::from_millis(3000),
        "{gap:?}"
    );
    assert!(call.problems.is_empty(), "{:?}", call.problems);
    assert!(call.bye_from.is_none(), "the call is still up");
    let view = api.get(&format!("/v1/calls/{id}")).await;
    assert_eq!(view["status"], "in-progress", "{view}");

    let (status, _) = api
        .post(&format!("/v1/calls/{id}/hangup"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let (reason, record) = placing::ended(&mut events, &id, WAIT).await;
    assert_eq!(reason, "api_hangup", "{record}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_byes_when_the_trunk_stops_answering_refreshes() {
    let script = Script::answer()
        .session_timer(4, Refresher::Uac)
        .refreshes(Refreshes::AnswerFirst(1));
    let trunk = Trunk::with_script(Transport::Udp, script).await;
    let (gw, api) = start((37320, 37339), &trunk).await;
    let mut events = gw.subscribe();
    let id = dial(&api).await;

    let (reason, record) = placing::ended(&mut events, &id, LONG).await;
    assert_eq!(reason, "session_expired", "{record}");
    assert_eq!(record["end_reason"], "session_expired", "{record}");
    assert_eq!(record["status"], "completed", "{record}");
    let call = trunk
        .expect_call(0, WAIT, "BYE from the gateway", |c| c.bye_from.is_some())
        .await;
    assert_eq!(call.bye_from, Some(support::trunk::Side::Gateway));
    let answered: Vec<bool> = call.refreshes.iter().map(|r| r.answered).collect();
    assert!(
        answered.len() >= 2 && answered[0] && !answered[1],
        "{:?}",
        call.refreshes
    );
    // The BYE came once the unanswered refresh's session ran out, about 4 s after the first.
    let bye = trunk.expect_request("BYE", WAIT).await;
    let since = bye.at - call.refreshes[0].at;
    assert!(
        since >= Duration::from_millis(3800) && since <= Duration::from_secs(6),
        "{since:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_422_is_retried_with_the_trunks_min_se() {
    let script = Script::answer()
        .min_se(120)
        .session_timer(120, Refresher::Uas);
    let trunk = Trunk::with_script(Transport::Udp, script).await;
    let (gw, api) = start((37340, 37359), &trunk).await;
    let mut events = gw.subscribe();
    let id = dial(&api).await;

    let call = trunk
        .expect_call(0, WAIT, "answered and acked", |c| {
            c.acked && c.final_status == Some(200)
        })
        .await;
    assert_eq!(call.sent.iter().filter(|s| **s == 422).count(), 1);
    assert_eq!(call.invites, 2, "one 422, one retry");
    assert!(call.problems.is_empty(), "{:?}", call.problems);
    let invites: Vec<_> = trunk
        .requests()
        .into_iter()
        .filter(|r| r.method == "INVITE")
        .collect();
    let retry = invites.last().expect("the retry");
    assert_eq!(retry.header("Session-Expires"), Some("120"));
    assert_eq!(retry.header("Min-SE"), Some("120"));
    let (status, _) = api
        .post(&format!("/v1/calls/{id}/hangup"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let (reason, _) = placing::ended(&mut events, &id, WAIT).await;
    assert_eq!(reason, "api_hangup");
}

/// An inbound call whose INVITE carries `timer_headers`; the gateway and our To tag.
async fn inbound(ports: (u16, u16), timer_headers: &str) -> (Gateway, Ua, RtpPeer, String, Msg) {
    let text = short_timers(support::gw::config_text(ports, "builtin:echo", ""));
    let cfg = trunkgate::config::parse(&text, "test").unwrap_or_else(|e| panic!("config: {e}"));
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let rtp = RtpPeer::bind().await;
    let invite = ua
        .request("INVITE", "inv1", 1, None, &offer(rtp.addr(), "0"))
        .replace("User-Agent: scripted-ua\r\n", timer_headers);
    ua.send(&invite).await;
    let ok = ua.expect_status(200).await;
    let tag = ok.to_tag().expect("to tag");
    ua.send(&ua.request("ACK", "ack1", 1, Some(&tag), "")).await;
    (gw, ua, rtp, tag, ok)
}

/// A 200 OK to a request the gateway sent.
fn ok_to(req: &Msg, extra: &str) -> String {
    let h = |n: &str| req.header(n).unwrap_or_default().to_string();
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         {extra}Content-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_caller_that_never_refreshes_is_hung_up() {
    let headers = "Supported: timer\r\nSession-Expires: 4;refresher=uac\r\n";
    let (gw, mut ua, _rtp, _tag, ok) = inbound((37360, 37379), headers).await;
    let mut events = gw.subscribe();
    assert_eq!(ok.header("Session-Expires"), Some("4;refresher=uac"));
    assert_eq!(ok.header("Require"), Some("timer"));
    // 4 - min(32, 4/3) = 3 s after the answer.
    let bye = ua.expect(LONG, "BYE", |m| m.method() == Some("BYE")).await;
    ua.send(&ok_to(&bye, "")).await;
    let ev = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded { end_reason, .. } = ev else {
        unreachable!()
    };
    assert_eq!(end_reason, "session_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_refreshes_an_inbound_call_by_update_when_asked() {
    let headers = "Allow: INVITE, ACK, BYE, CANCEL, UPDATE\r\nSupported: timer\r\n\
                   Session-Expires: 4;refresher=uas\r\n";
    let (gw, mut ua, _rtp, tag, ok) = inbound((37380, 37399), headers).await;
    let mut events = gw.subscribe();
    assert_eq!(ok.header("Session-Expires"), Some("4;refresher=uas"));
    for _ in 0..2 {
        let update = ua
            .expect(LONG, "UPDATE", |m| m.method() == Some("UPDATE"))
            .await;
        assert_eq!(update.header("Session-Expires"), Some("4;refresher=uac"));
        assert!(update.body.is_empty());
        ua.send(&ok_to(&update, "Session-Expires: 4;refresher=uac\r\n"))
            .await;
    }
    ua.send(&ua.request("BYE", "bye1", 2, Some(&tag), "")).await;
    ua.expect_status(200).await;
    let ev = wait_event(&mut events, WAIT, |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded { end_reason, .. } = ev else {
        unreachable!()
    };
    assert_eq!(end_reason, "caller_hangup");
}
