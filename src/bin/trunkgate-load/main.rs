//! `trunkgate-load`: places N concurrent calls at a set rate against a running gateway,
//! streams real 20 ms G.711 audio with tone bursts, measures setup latency and the media round
//! trip caller → agent → caller, optionally sends DTMF, and reports the gateway's CPU, memory,
//! fds and UDP ports from /proc. Bounded by count and time; loopback by default.
//!
//! It also runs the peers a bridged call needs: an echo agent (WebSocket server, raw or twilio
//! dialect) and a webhook responder that points the gateway at it.
//!
//! Realism: the callers' RTP can be jittered, dropped and reordered (`--jitter`, `--loss`,
//! `--reorder`, seeded by `--seed`: [`shape`]) and the echo agent can answer in chunks or in
//! 2 s bursts (`--agent-chunk`, `--agent-burst`: [`agent_echo`]). Marks in the audio
//! ([`marks`]) split each echo's round trip into caller → agent and agent → caller.
//!
//! `--mode outbound` turns it around: it is the far-end trunk (a SIP UAS that rings, answers
//! and streams the same audio) and the agent, and places the calls through the gateway's
//! `POST /v1/calls` ([`outbound`]); with `--click-to-call` it is both phones of a
//! click-to-call (manager and client), bridged by the gateway, and no agent.

mod agent;
mod agent_echo;
mod caller;
mod marks;
mod media;
mod media_call;
mod outbound;
mod procfs;
mod report;
mod report_out;
mod shape;
mod timeline;
mod trunk;
mod trunk_msg;
mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "trunkgate-load",
    about = "Load generator for trunkgate (SIP + RTP + echo agent)"
)]
pub struct Args {
    /// inbound: place SIP calls into the gateway. outbound: be the far-end trunk and the
    /// agent, and place calls through the gateway's POST /v1/calls.
    #[arg(long, default_value = "inbound", value_parser = ["inbound", "outbound"])]
    pub mode: String,
    /// Gateway SIP address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub target: SocketAddr,
    /// udp or tcp.
    #[arg(long, default_value = "udp")]
    pub transport: String,
    /// Total calls to place.
    #[arg(long, default_value_t = 10)]
    pub calls: usize,
    /// Calls up at the same time at most.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// New calls per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Seconds each call lasts once answered.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Send one DTMF digit per call.
    #[arg(long)]
    pub dtmf: bool,
    /// Inbound: offer RTP/SAVP with an SDES key (AES_CM_128_HMAC_SHA1_80) and run the
    /// call's media on SRTP both ways (the gateway must take SRTP: `scripts/load.sh --srtp`).
    #[arg(long)]
    pub srtp: bool,
    /// PID of the gateway, for CPU/RSS/fd figures (default: found by name `trunkgate`).
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// Serve an echo agent and a webhook here (point the gateway's [webhook] url at
    /// http://<this>/webhook). Off → the gateway answers with its own agent.
    #[arg(long)]
    pub serve: Option<SocketAddr>,
    /// Agent dialect served: raw or twilio.
    #[arg(long, default_value = "twilio")]
    pub dialect: String,
    /// Local address for callers' SIP and RTP sockets.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Print the report as JSON too.
    #[arg(long)]
    pub json: bool,
    /// Outbound: the gateway's control API base URL (loopback).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Outbound: file holding the API bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Outbound: the `[[trunk]]` named in each POST /v1/calls.
    #[arg(long, default_value = "load")]
    pub trunk: String,
    /// Outbound: where the far-end trunk listens (UDP); the trunk's `outbound.address`.
    #[arg(long, default_value = "127.0.0.1:5090")]
    pub far_end: SocketAddr,
    /// Outbound: how long the far end rings (180) before its 200 OK, ms.
    #[arg(long, default_value_t = 200)]
    pub ring_ms: u64,
    /// Outbound: click-to-call. Call `n` posts `bridge_from` `+4813`+n (the manager, rung
    /// first) and `to` `+4812`+n (the client), no agent; the far end answers both legs,
    /// streams on both, hangs up the client after `--duration` and expects the gateway's BYE
    /// on the manager leg.
    #[arg(long)]
    pub click_to_call: bool,
    /// Hard limit on the whole run, seconds.
    #[arg(long, default_value_t = 600)]
    pub max_seconds: u64,
    /// Callers' RTP: each packet leaves up to ±MS off its 20 ms grid (uniform, 1 ms steps, at
    /// most 100); jitter alone never reorders packets.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub jitter: u32,
    /// Callers' RTP: the probability a packet is not sent (reported as dropped, not as the
    /// gateway's loss).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub loss: f64,
    /// Callers' RTP: the probability a packet is swapped with the next one.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub reorder: f64,
    /// Seed of the callers' jitter, loss, reordering, phases and SSRCs: the same seed, the same
    /// streams.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// Echo agent: send back what it received in chunks of MS ms of audio (a multiple of 20),
    /// as agent frameworks send 100 ms chunks.
    #[arg(long, value_name = "MS")]
    pub agent_chunk: Option<u32>,
    /// Echo agent: hold 2 s of received audio, then send those 2 s back at once, faster than
    /// real time, as TTS does (in --agent-chunk chunks back to back, if given; else one message).
    #[arg(long)]
    pub agent_burst: bool,
}

/// What of the realism options is out of range, if anything.
fn check_realism(args: &Args) -> Result<agent_echo::Reply, String> {
    if args.jitter > shape::MAX_JITTER_MS {
        return Err(format!("--jitter is at most {} ms", shape::MAX_JITTER_MS));
    }
    for (name, p) in [("--loss", args.loss), ("--reorder", args.reorder)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("{name} is a probability (0 to 1)"));
        }
    }
    let reply = agent_echo::Reply::new(args.agent_chunk, args.agent_burst)?;
    if !reply.is_plain() && args.mode == "inbound" && args.serve.is_none() {
        return Err(
            "--agent-chunk and --agent-burst shape our echo agent: they need --serve".into(),
        );
    }
    if !reply.is_plain() && args.click_to_call {
        return Err("--agent-chunk and --agent-burst: a click-to-call has no agent".into());
    }
    Ok(reply)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.calls == 0 || args.concurrency == 0 || args.rate <= 0.0 || args.duration <= 0.0 {
        eprintln!("calls, concurrency, rate and duration must be positive");
        return ExitCode::FAILURE;
    }
    if let Err(e) = check_realism(&args) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    if args.click_to_call && args.mode != "outbound" {
        eprintln!("--click-to-call is an outbound mode (--mode outbound)");
        return ExitCode::FAILURE;
    }
    if args.mode == "outbound" && !(args.far_end.ip().is_loopback() && loopback_url(&args.api)) {
        eprintln!("refusing a non-loopback --api or --far-end: this tool only loads this machine");
        return ExitCode::FAILURE;
    }
    if !args.target.ip().is_loopback() {
        eprintln!(
            "refusing a non-loopback target {}: this tool only loads this machine",
            args.target
        );
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    // One clock for both ends of every echo (the marks' stamps).
    marks::epoch();
    if let Some(addr) = args.serve {
        let stats = Arc::new(agent::AgentStats::default());
        match agent::serve(addr, &args.dialect, reply_of(&args), stats) {
            Ok(agent_addr) => {
                if let Err(e) = webhook::serve(addr, agent_addr, &args.dialect).await {
                    eprintln!("webhook responder: {e}");
                    return ExitCode::FAILURE;
                }
                eprintln!(
                    "echo agent on ws://{agent_addr}/agent, webhook on http://{addr}/webhook"
                );
            }
            Err(e) => {
                eprintln!("echo agent: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let pid = args.gateway_pid.or_else(procfs::find_gateway);
    if args.mode == "outbound" {
        let Some(m) = measured(&args, pid, outbound::run_all(&args, pid)).await else {
            return ExitCode::FAILURE;
        };
        let rep = report_out::OutReport::new(&args, &m.result, m.before, m.after, m.own_ticks);
        print!("{}", rep.table());
        if args.json {
            println!("{}", rep.json());
        }
        return exit(m.result.completed(), args.calls);
    }
    let Some(m) = measured(&args, pid, caller::run_all(&args, pid)).await else {
        return ExitCode::FAILURE;
    };
    let rep = report::Report::new(&args, &m.result, m.before, m.after, m.own_ticks);
    print!("{}", rep.table());
    if args.json {
        println!("{}", rep.json());
    }
    exit(m.result.completed(), args.calls)
}

/// The echo agent's reply mode (checked in `main`).
pub fn reply_of(args: &Args) -> agent_echo::Reply {
    agent_echo::Reply::new(args.agent_chunk, args.agent_burst).unwrap_or_default()
}

fn exit(completed: usize, offered: usize) -> ExitCode {
    if completed == offered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `http://127.0.0.1:…`, `http://[::1]:…` or `http://localhost:…`.
fn loopback_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = u.host_str().unwrap_or("");
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A run's result with the gateway sampled before and after it, and this tool's own CPU.
struct Measured<T> {
    result: T,
    before: Option<procfs::Sample>,
    after: Option<procfs::Sample>,
    own_ticks: Option<u64>,
}

async fn measured<T>(
    args: &Args,
    pid: Option<u32>,
    run: impl Future<Output = Result<T, String>>,
) -> Option<Measured<T>> {
    let before = pid.and_then(procfs::sample);
    let own = std::process::id();
    let own_before = procfs::cpu_ticks(own);
    let deadline = Duration::from_secs(args.max_seconds);
    let result = match tokio::time::timeout(deadline, run).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            eprintln!("{e}");
            return None;
        }
        Err(_) => {
            eprintln!("run exceeded --max-seconds; stopping");
            return None;
        }
    };
    // Let the gateway finish its teardown before the "after" sample.
    let after = match pid {
        Some(p) => procfs::settle(p, before.as_ref()).await,
        None => None,
    };
    let own_ticks = match (own_before, procfs::cpu_ticks(own)) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    Some(Measured {
        result,
        before,
        after,
        own_ticks,
    })
}
