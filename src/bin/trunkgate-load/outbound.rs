//! Outbound mode: the load tool is the far-end trunk ([`trunk`]) and the agent ([`agent`]),
//! and places calls through the gateway's control API, `POST /v1/calls` (PROTOCOLS.md §3), at
//! `--rate` per second up to `--calls`, at most `--concurrency` at once, over one keep-alive
//! HTTP client. Call `n` dials `+4812` + `n` in 9 digits and names the agent
//! `ws://<agent>/agent/<n in 9 digits>`, so the far end and the agent know which call they see.
//!
//! Owns: the API requests and the per-call verdict (which failure kind, if any). Must not:
//! speak SIP or WebSocket (trunk, agent) or format the figures (`report_out`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};

use crate::timeline::{End, Event, Timeline};
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
    let agent = agent::serve(SocketAddr::new(args.bind, 0), &args.dialect, stats)
        .map_err(|e| format!("echo agent: {e}"))?;
    let engine = media::Engine::start(args.bind).map_err(|e| format!("rtp engine: {e}"))?;
    let settings = Settings {
        ring: Duration::from_millis(args.ring_ms),
        duration: Duration::from_secs_f64(args.duration),
    };
    let trunk = Trunk::start(args.far_end, settings, engine.clone(), timeline.clone())
        .map_err(|e| format!("far-end trunk on {}: {e}", args.far_end))?;
    eprintln!(
        "far-end trunk on udp {}, echo agent on ws://{agent}/agent/…, calls via {}/v1/calls",
        trunk.local, args.api
    );
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
        timeline: timeline.clone(),
        patience: Duration::from_millis(args.ring_ms)
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
