//! Outbound mode: the load tool is the far-end trunk ([`trunk`]) and the agent ([`agent`]),
//! and places calls through the gateway's control API, `POST /v1/calls` (PROTOCOLS.md §3), at
//! `--rate` per second up to `--calls`, at most `--concurrency` at once, over one keep-alive
//! HTTP client. Call `n` dials `+4812` + `n` in 9 digits and names the agent
//! `ws://<agent>/agent/<n in 9 digits>`, so the far end and the agent know which call they see.
//!
//! `--click-to-call`: call `n` posts `bridge_from` `+4813` + `n` (the manager) and `to`
//! `+4812` + `n` (the client), no agent; the far end is both phones. A call is good when both
//! legs were answered, each received RTP and heard the other's audio, the far end's BYE on
//! the client leg was answered and the gateway then BYEd the manager ([`click_verdict`]).
//!
//! Owns: the API requests and the per-call verdict (which failure kind, if any). Must not:
//! speak SIP or WebSocket (trunk, agent) or format the figures (`report_out`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};

use crate::timeline::{End, Event, Leg, Timeline};
use crate::trunk::{Settings, Trunk, TrunkStats};
use crate::{agent, caller, media, procfs, Args};

/// What the driver saw of one call; the rest is in the [`Timeline`].
#[derive(Debug, Default, Clone)]
pub struct OutCall {
    pub http_status: Option<u16>,
    pub call_id: Option<String>,
    /// `None`: the call was set up, bridged to the agent and ended by the far end's BYE.
    pub failure: Option<String>,
}

pub struct OutResults {
    pub calls: Vec<OutCall>,
    pub timeline: Arc<Timeline>,
    pub trunk: Arc<TrunkStats>,
    pub wall: Duration,
    pub peak: Option<procfs::Sample>,
    pub peak_active: usize,
}

impl OutResults {
    pub fn completed(&self) -> usize {
        self.calls.iter().filter(|c| c.failure.is_none()).count()
    }
}

struct Ctx {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    agent: SocketAddr,
    dialect: String,
    trunk: String,
    click_to_call: bool,
    /// Click-to-call: whether a leg must have heard the other's tone bursts (one a second;
    /// only asked of calls long enough to carry one).
    need_audio: bool,
    timeline: Arc<Timeline>,
    /// How long after its 201 a call may take to end before it counts as lost.
    patience: Duration,
}

pub async fn run_all(args: &Args, pid: Option<u32>) -> Result<OutResults, String> {
    trunkgate::io::tls::install_default_provider();
    let timeline = Arc::new(Timeline::new(args.calls));
    let stats = Arc::new(agent::AgentStats {
        calls: Some(timeline.clone()),
        ..agent::AgentStats::default()
    });
    let agent = agent::serve(
        SocketAddr::new(args.bind, 0),
        &args.dialect,
        crate::reply_of(args),
        stats,
    )
    .map_err(|e| format!("echo agent: {e}"))?;
    let engine = media::Engine::start_shaped(args.bind, crate::shape::Shape::from_args(args))
        .map_err(|e| format!("rtp engine: {e}"))?;
    let settings = Settings {
        ring: Duration::from_millis(args.ring_ms),
        duration: Duration::from_secs_f64(args.duration),
        click_to_call: args.click_to_call,
    };
    let trunk = Trunk::start(args.far_end, settings, engine.clone(), timeline.clone())
        .map_err(|e| format!("far-end trunk on {}: {e}", args.far_end))?;
    if args.click_to_call {
        eprintln!(
            "far-end trunk (manager +4813…, client +4812…) on udp {}, click-to-call via {}/v1/calls",
            trunk.local, args.api
        );
    } else {
        eprintln!(
            "far-end trunk on udp {}, echo agent on ws://{agent}/agent/…, calls via {}/v1/calls",
            trunk.local, args.api
        );
    }
    let token = match &args.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("token file {}: {e}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let ctx = Arc::new(Ctx {
        client,
        url: format!("{}/v1/calls", args.api.trim_end_matches('/')),
        token,
        agent,
        dialect: args.dialect.clone(),
        trunk: args.trunk.clone(),
        click_to_call: args.click_to_call,
        need_audio: args.duration >= 1.5,
        timeline: timeline.clone(),
        // Click-to-call rings twice (manager, then client).
        patience: Duration::from_millis(args.ring_ms) * 2
            + Duration::from_secs_f64(args.duration)
            + Duration::from_secs(45),
    });
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let active = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(caller::sample_peak(pid, active.clone(), done.clone()));
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    pace.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(args.calls);
    for n in 0..args.calls {
        pace.tick().await;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (ctx, active) = (ctx.clone(), active.clone());
        handles.push(tokio::spawn(async move {
            active.fetch_add(1, Ordering::Relaxed);
            let r = one_call(&ctx, n).await;
            active.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            r
        }));
    }
    let mut calls = Vec::with_capacity(handles.len());
    for h in handles {
        calls.push(h.await.unwrap_or_else(|e| OutCall {
            failure: Some(format!("task: {e}")),
            ..OutCall::default()
        }));
    }
    let wall = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let (peak, peak_active) = sampler.await.ok().flatten().unwrap_or((None, 0));
    trunk.shutdown();
    engine.shutdown();
    Ok(OutResults {
        calls,
        timeline,
        trunk: trunk.stats.clone(),
        wall,
        peak,
        peak_active,
    })
}

/// The API request for call `n`.
fn body(ctx: &Ctx, n: usize) -> serde_json::Value {
    if ctx.click_to_call {
        return serde_json::json!({
            "to": format!("+4812{n:09}"),
            "from": "+4800000000001",
            "bridge_from": format!("+{}{n:09}", crate::trunk_msg::MANAGER_PREFIX),
            "bridge_from_trunk": ctx.trunk,
            "trunk": ctx.trunk,
            "timeout_s": 30,
        });
    }
    serde_json::json!({
        "to": format!("+4812{n:09}"),
        "from": "+4800000000001",
        "websocket_url": format!("ws://{}/agent/{n:09}", ctx.agent),
        "dialect": ctx.dialect,
        "trunk": ctx.trunk,
        "timeout_s": 30,
    })
}

async fn one_call(ctx: &Ctx, n: usize) -> OutCall {
    let mut out = OutCall::default();
    let mut req = ctx.client.post(&ctx.url).json(&body(ctx, n));
    if let Some(t) = &ctx.token {
        req = req.bearer_auth(t);
    }
    ctx.timeline.mark(n, Event::Posted);
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            out.failure = Some(http_error_kind(&e));
            return out;
        }
    };
    let status = resp.status().as_u16();
    out.http_status = Some(status);
    let text = resp.text().await.unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    if status != 201 {
        let code = json
            .as_ref()
            .and_then(|v| v.pointer("/error/code"))
            .and_then(|c| c.as_str())
            .unwrap_or("?");
        out.failure = Some(format!("HTTP {status} {code}"));
        return out;
    }
    ctx.timeline.mark(n, Event::Created);
    out.call_id = json
        .as_ref()
        .and_then(|v| v.get("call_id"))
        .and_then(|c| c.as_str())
        .map(str::to_string);
    if ctx.click_to_call {
        let both = async {
            ctx.timeline.ended_leg(n, Leg::Called).await;
            ctx.timeline.ended_leg(n, Leg::Manager).await;
        };
        out.failure = match tokio::time::timeout(ctx.patience, both).await {
            Ok(()) => click_verdict(&ctx.timeline, n, ctx.need_audio),
            Err(_) => Some(click_lost(&ctx.timeline, n).into()),
        };
        return out;
    }
    if tokio::time::timeout(ctx.patience, ctx.timeline.ended(n))
        .await
        .is_err()
    {
        out.failure = Some(if ctx.timeline.at(n, Event::Invite).is_none() {
            "no INVITE".into()
        } else {
            "no end at the far end".into()
        });
        return out;
    }
    out.failure = verdict(&ctx.timeline, n, out.call_id.as_deref());
    out
}

/// The failure kind of an ended call, or `None` when it went as it should.
fn verdict(t: &Timeline, n: usize, call_id: Option<&str>) -> Option<String> {
    let end = t.outcome(n).map(|o| o.end.clone());
    match end {
        Some(End::Cancelled) => return Some("SIP CANCEL (487 sent)".into()),
        Some(End::NoAck) => return Some("SIP no ACK for 200".into()),
        _ => {}
    }
    if t.at(n, Event::AgentConnected).is_none() {
        return Some("no agent".into());
    }
    if t.at(n, Event::AgentStart).is_none() {
        return Some("no agent start".into());
    }
    if call_id.is_some() && t.agent_call_id(n) != call_id {
        return Some("agent call id ≠ 201 call_id".into());
    }
    match end {
        Some(End::ByeOk) => None,
        Some(End::ByeAnswered(s)) => Some(format!("SIP BYE answered {s}")),
        Some(End::ByeTimeout) => Some("SIP BYE unanswered".into()),
        Some(End::GatewayBye) => Some("SIP BYE from gateway".into()),
        _ => Some("no outcome".into()),
    }
}

/// Why a click-to-call call that did not end in time got stuck: the first step missing.
fn click_lost(t: &Timeline, n: usize) -> &'static str {
    let at = |e| t.at(n, e).is_some();
    if !at(Event::MgrInvite) {
        "no manager INVITE"
    } else if !at(Event::MgrAnswered) {
        "manager not answered"
    } else if !at(Event::Invite) {
        "no client INVITE after the manager answered"
    } else if t.outcome_of(n, Leg::Called).is_none() {
        "no end on the client leg"
    } else {
        "no gateway BYE on the manager leg"
    }
}

/// The failure kind of an ended click-to-call call, or `None` when it went as it should: the
/// client leg ended by the far end's BYE (answered 200), then the manager leg by the gateway's
/// BYE; each leg received RTP and (`need_audio`) heard the other leg's bursts.
fn click_verdict(t: &Timeline, n: usize, need_audio: bool) -> Option<String> {
    let mut legs = Vec::with_capacity(2);
    for (leg, expected) in [(Leg::Manager, End::GatewayBye), (Leg::Called, End::ByeOk)] {
        let name = leg.name();
        let Some(o) = t.outcome_of(n, leg) else {
            return Some(format!("{name}: no outcome"));
        };
        let wrong = match &o.end {
            e if *e == expected => None,
            End::Cancelled => Some("SIP CANCEL (487 sent)".to_string()),
            End::NoAck => Some("SIP no ACK for 200".into()),
            End::ByeOk => Some("ended by our BYE".into()),
            End::ByeAnswered(s) => Some(format!("SIP BYE answered {s}")),
            End::ByeTimeout => Some("SIP BYE unanswered".into()),
            End::GatewayBye => Some("SIP BYE from gateway".into()),
        };
        if let Some(w) = wrong {
            return Some(format!("{name}: {w}"));
        }
        legs.push((leg, o));
    }
    // The manager's BYE must follow the client's hang-up, not precede it.
    match (t.at(n, Event::ByeSent), t.at(n, Event::MgrEnded)) {
        (Some(bye), Some(mgr)) if mgr >= bye => {}
        _ => return Some("manager: BYE from gateway before the client hung up".into()),
    }
    for (leg, o) in &legs {
        if o.media.received == 0 {
            return Some(format!("{}: no RTP received", leg.name()));
        }
    }
    if need_audio {
        for (leg, o) in &legs {
            if o.media.rtts.is_empty() {
                let other = match leg {
                    Leg::Called => Leg::Manager,
                    Leg::Manager => Leg::Called,
                };
                return Some(format!(
                    "{}: no audio from the {}",
                    leg.name(),
                    other.name()
                ));
            }
        }
    }
    None
}

fn http_error_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "HTTP timeout".into()
    } else if e.is_connect() {
        "HTTP connect failed".into()
    } else {
        "HTTP error".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MediaStats;
    use crate::timeline::Outcome;

    fn ended(t: &Timeline, n: usize, end: End) {
        t.finish(
            n,
            Outcome {
                end,
                media: MediaStats::default(),
                seconds: 1.0,
            },
        );
    }

    /// Leg `leg` of call `n` ends with `end`, having received `received` packets and heard
    /// `bursts` bursts of the other leg.
    fn leg_ended(t: &Timeline, n: usize, leg: Leg, end: End, received: u32, bursts: usize) {
        let media = MediaStats {
            received,
            rtts: vec![Duration::from_millis(30); bursts],
            ..MediaStats::default()
        };
        t.finish_leg(
            n,
            leg,
            Outcome {
                end,
                media,
                seconds: 1.0,
            },
        );
    }

    /// A click-to-call call that went as it should: our BYE on the client leg, then the
    /// gateway's on the manager leg.
    fn good_call(t: &Timeline, n: usize) {
        t.mark(n, Event::ByeSent);
        leg_ended(t, n, Leg::Called, End::ByeOk, 250, 5);
        leg_ended(t, n, Leg::Manager, End::GatewayBye, 260, 5);
    }

    #[test]
    fn a_click_to_call_call_is_good_with_both_legs_hung_up_and_heard() {
        let t = Timeline::new(8);
        good_call(&t, 0);
        assert_eq!(click_verdict(&t, 0, true), None);
        // The gateway hung up the client instead of answering our BYE.
        leg_ended(&t, 1, Leg::Called, End::GatewayBye, 250, 5);
        leg_ended(&t, 1, Leg::Manager, End::GatewayBye, 250, 5);
        assert_eq!(
            click_verdict(&t, 1, true).as_deref(),
            Some("client: SIP BYE from gateway")
        );
        // The manager leg cancelled (it never answered).
        leg_ended(&t, 2, Leg::Manager, End::Cancelled, 0, 0);
        assert_eq!(
            click_verdict(&t, 2, true).as_deref(),
            Some("manager: SIP CANCEL (487 sent)")
        );
        // The manager's BYE came before ours to the client.
        leg_ended(&t, 3, Leg::Manager, End::GatewayBye, 250, 5);
        std::thread::sleep(Duration::from_millis(2));
        t.mark(3, Event::ByeSent);
        leg_ended(&t, 3, Leg::Called, End::ByeOk, 250, 5);
        assert_eq!(
            click_verdict(&t, 3, true).as_deref(),
            Some("manager: BYE from gateway before the client hung up")
        );
        // No RTP on the client leg; no relayed audio on the manager leg.
        t.mark(4, Event::ByeSent);
        leg_ended(&t, 4, Leg::Called, End::ByeOk, 0, 0);
        leg_ended(&t, 4, Leg::Manager, End::GatewayBye, 250, 5);
        assert_eq!(
            click_verdict(&t, 4, true).as_deref(),
            Some("client: no RTP received")
        );
        t.mark(5, Event::ByeSent);
        leg_ended(&t, 5, Leg::Called, End::ByeOk, 250, 5);
        leg_ended(&t, 5, Leg::Manager, End::GatewayBye, 250, 0);
        assert_eq!(
            click_verdict(&t, 5, true).as_deref(),
            Some("manager: no audio from the client")
        );
        assert_eq!(
            click_verdict(&t, 5, false),
            None,
            "short calls: packets suffice"
        );
        // Only one leg ended.
        leg_ended(&t, 6, Leg::Called, End::ByeOk, 250, 5);
        assert_eq!(
            click_verdict(&t, 6, true).as_deref(),
            Some("manager: no outcome")
        );
    }

    #[test]
    fn a_stuck_click_to_call_call_names_the_first_missing_step() {
        let t = Timeline::new(4);
        assert_eq!(click_lost(&t, 0), "no manager INVITE");
        t.mark(1, Event::MgrInvite);
        t.mark(1, Event::MgrAnswered);
        assert_eq!(
            click_lost(&t, 1),
            "no client INVITE after the manager answered"
        );
        t.mark(2, Event::MgrInvite);
        t.mark(2, Event::MgrAnswered);
        t.mark(2, Event::Invite);
        leg_ended(&t, 2, Leg::Called, End::ByeOk, 1, 1);
        assert_eq!(click_lost(&t, 2), "no gateway BYE on the manager leg");
    }

    #[test]
    fn a_call_is_good_only_with_its_agent_and_the_far_ends_bye() {
        let t = Timeline::new(4);
        for n in 0..4 {
            t.mark(n, Event::AgentConnected);
        }
        t.mark(0, Event::AgentStart);
        t.set_agent_call_id(0, "CA1");
        ended(&t, 0, End::ByeOk);
        assert_eq!(verdict(&t, 0, Some("CA1")), None);
        assert_eq!(
            verdict(&t, 0, Some("CA2")).as_deref(),
            Some("agent call id ≠ 201 call_id")
        );
        ended(&t, 1, End::ByeOk);
        assert_eq!(verdict(&t, 1, None).as_deref(), Some("no agent start"));
        ended(&t, 2, End::Cancelled);
        assert_eq!(
            verdict(&t, 2, None).as_deref(),
            Some("SIP CANCEL (487 sent)")
        );
        t.mark(3, Event::AgentStart);
        ended(&t, 3, End::ByeAnswered(481));
        assert_eq!(
            verdict(&t, 3, None).as_deref(),
            Some("SIP BYE answered 481")
        );
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod end_to_end;
