//! Outbound mode's figures as a table and as JSON, in the inbound report's style: setup time
//! from the API request to the 201, to the far end's 200 OK and to the agent's start message;
//! the achieved setup rate; failures by kind; the media round trip; the gateway's CPU and RSS.
//! Click-to-call runs time API → manager INVITE, manager 200 OK → client INVITE, API → client
//! 200 OK (the bridge) and our client BYE → the gateway's manager BYE instead, the media as
//! the one-way delay leg → gateway → other leg, and RTP per leg; CPU is per bridged
//! call-second (client leg answered → ended). Like the inbound report, the round trip's two
//! directions (far end → agent, agent → far end) and what the far end's shaping did.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::outbound::OutResults;
use crate::procfs::{Sample, TICKS_PER_SEC};
use crate::report::{fmt_sample, ms, percentiles, sample_json, EchoSummary};
use crate::timeline::{Event, Leg};
use crate::Args;

pub struct OutReport {
    offered: usize,
    completed: usize,
    failures: BTreeMap<String, usize>,
    click_to_call: bool,
    /// (table label, JSON key, p50/95/99/max ms) per setup interval: outbound API request →
    /// 201, → INVITE, → 200 OK sent, → agent start, 200 OK → agent start; click-to-call see
    /// the module docs.
    setup: Vec<(&'static str, &'static str, [f64; 4])>,
    /// Set-ups completed per second: agent starts (click-to-call: client 200 OKs) over the
    /// span from the first to the last (a throughput: the ring time every call waits is not
    /// counted against it).
    setup_rate: f64,
    /// First request → last agent start (client 200 OK), seconds.
    setup_span_s: f64,
    rtt_ms: [f64; 3],
    rtt_samples: usize,
    rtp: [u64; 4],
    /// Click-to-call: sent, received, lost, late on the manager legs and the client legs.
    leg_rtp: Option<[[u64; 4]; 2]>,
    call_seconds: f64,
    /// Click-to-call: the manager legs' seconds (answered → ended).
    manager_seconds: f64,
    wall_s: f64,
    cps: f64,
    cpu_pct_per_call: Option<f64>,
    load_cpu_pct_per_call: Option<f64>,
    rss_kb_per_call: Option<f64>,
    far_end: [u64; 5],
    before: Option<Sample>,
    peak: Option<Sample>,
    peak_active: usize,
    after: Option<Sample>,
    echo: EchoSummary,
}

/// p50, p95, p99 and max of `v` in ms.
fn spread(v: Vec<f64>) -> [f64; 4] {
    let max = v.iter().copied().fold(0.0, f64::max);
    let [a, b, c] = percentiles(v);
    [a, b, c, max]
}

impl OutReport {
    pub fn new(
        args: &Args,
        r: &OutResults,
        before: Option<Sample>,
        after: Option<Sample>,
        own_cpu_ticks: Option<u64>,
    ) -> OutReport {
        let t = &r.timeline;
        let n = r.calls.len();
        let mut failures = BTreeMap::new();
        for c in &r.calls {
            if let Some(f) = &c.failure {
                *failures.entry(f.clone()).or_default() += 1;
            }
        }
        let between = |from: Event, to: Event| -> Vec<f64> {
            (0..n)
                .filter_map(|i| t.between(i, from, to))
                .map(|d| ms(&d))
                .collect()
        };
        let c2c = args.click_to_call;
        let posted = (0..n).filter_map(|i| t.at(i, Event::Posted)).min();
        let set_up = if c2c {
            Event::Answered
        } else {
            Event::AgentStart
        };
        let starts: Vec<_> = (0..n).filter_map(|i| t.at(i, set_up)).collect();
        let (first, last) = (starts.iter().min(), starts.iter().max());
        let setup_rate = match (first, last) {
            (Some(a), Some(b)) if b > a => (starts.len() - 1) as f64 / (*b - *a).as_secs_f64(),
            _ => 0.0,
        };
        let setup_span_s = match (posted, last) {
            (Some(a), Some(b)) if *b > a => (*b - a).as_secs_f64(),
            _ => 0.0,
        };
        let outcomes: Vec<_> = (0..n).filter_map(|i| t.outcome(i)).collect();
        let managers: Vec<_> = (0..n)
            .filter_map(|i| t.outcome_of(i, Leg::Manager))
            .collect();
        let call_seconds = outcomes.iter().map(|o| o.seconds).fold(0.0, |a, b| a + b);
        let manager_seconds = managers.iter().map(|o| o.seconds).fold(0.0, |a, b| a + b);
        let both: Vec<_> = outcomes.iter().chain(managers.iter()).copied().collect();
        let rtts: Vec<f64> = both
            .iter()
            .flat_map(|o| o.media.rtts.iter().map(ms))
            .collect();
        let sum_of = |os: &[&crate::timeline::Outcome]| -> [u64; 4] {
            let f = |g: fn(&crate::media::MediaStats) -> u32| -> u64 {
                os.iter().map(|o| u64::from(g(&o.media))).sum()
            };
            [
                f(|m| m.sent),
                f(|m| m.received),
                f(|m| m.lost),
                f(|m| m.late),
            ]
        };
        let leg_rtp = c2c.then(|| [sum_of(&managers), sum_of(&outcomes)]);
        let setup = if c2c {
            vec![
                (
                    "setup API→201 ms p50/95/99",
                    "api_201",
                    spread(between(Event::Posted, Event::Created)),
                ),
                (
                    "  API→manager INVITE ms",
                    "api_manager_invite",
                    spread(between(Event::Posted, Event::MgrInvite)),
                ),
                (
                    "  mgr 200 OK→client INVITE ms",
                    "manager_ok_client_invite",
                    spread(between(Event::MgrAnswered, Event::Invite)),
                ),
                (
                    "setup API→bridge ms p50/95/99",
                    "api_client_200ok",
                    spread(between(Event::Posted, Event::Answered)),
                ),
                (
                    "teardown BYE→mgr BYE ms",
                    "client_bye_manager_bye",
                    spread(between(Event::ByeSent, Event::MgrEnded)),
                ),
            ]
        } else {
            vec![
                (
                    "setup API→201 ms p50/95/99",
                    "api_201",
                    spread(between(Event::Posted, Event::Created)),
                ),
                (
                    "  API→INVITE ms p50/95/99",
                    "api_invite",
                    spread(between(Event::Posted, Event::Invite)),
                ),
                (
                    "setup API→200 OK ms p50/95/99",
                    "api_200ok",
                    spread(between(Event::Posted, Event::Answered)),
                ),
                (
                    "setup API→agent ms p50/95/99",
                    "api_agent_start",
                    spread(between(Event::Posted, Event::AgentStart)),
                ),
                (
                    "  200 OK→agent ms p50/95/99",
                    "ok_agent_start",
                    spread(between(Event::Answered, Event::AgentStart)),
                ),
            ]
        };
        let per_call = |ticks: u64| ticks as f64 / TICKS_PER_SEC / call_seconds * 100.0;
        let cpu_pct_per_call = match (&before, &after) {
            (Some(b), Some(a)) if call_seconds > 0.0 => {
                Some(per_call(a.cpu_ticks.saturating_sub(b.cpu_ticks)))
            }
            _ => None,
        };
        let load_cpu_pct_per_call = own_cpu_ticks.filter(|_| call_seconds > 0.0).map(per_call);
        let rss_kb_per_call = match (&before, &r.peak) {
            (Some(b), Some(p)) if r.peak_active > 0 => {
                Some(p.rss_kb.saturating_sub(b.rss_kb) as f64 / r.peak_active as f64)
            }
            _ => None,
        };
        let fe = &r.trunk;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        OutReport {
            offered: args.calls,
            completed: r.completed(),
            failures,
            click_to_call: c2c,
            setup,
            setup_rate,
            setup_span_s,
            rtt_samples: rtts.len(),
            rtt_ms: percentiles(rtts),
            rtp: sum_of(&both),
            leg_rtp,
            call_seconds,
            manager_seconds,
            wall_s: r.wall.as_secs_f64(),
            cps: args.rate,
            cpu_pct_per_call,
            load_cpu_pct_per_call,
            rss_kb_per_call,
            far_end: [
                load(&fe.invites),
                load(&fe.unknown),
                load(&fe.retransmitted_in),
                load(&fe.retransmitted_out),
                load(&fe.unparsable),
            ],
            before,
            peak: r.peak.clone(),
            peak_active: r.peak_active,
            after,
            echo: EchoSummary::new(args, both.iter().map(|o| &o.media.echo)),
        }
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |x| format!("{x:.3}{unit}"));
        let line = |s: &mut String, label: &str, [a, b, c, m]: [f64; 4]| {
            let _ = writeln!(s, "{label:<30}{a:.1} / {b:.1} / {c:.1}  (max {m:.1})");
        };
        let kind = if self.click_to_call {
            "click-to-call, POST /v1/calls bridge_from"
        } else {
            "outbound, POST /v1/calls"
        };
        let _ = writeln!(
            s,
            "calls offered / completed     {} / {}  ({kind})",
            self.offered, self.completed
        );
        for (why, n) in &self.failures {
            let _ = writeln!(s, "  failed: {why:<24} {n}");
        }
        let last = if self.click_to_call {
            "bridge"
        } else {
            "agent start"
        };
        let _ = writeln!(
            s,
            "offered rate                  {:.1} calls/s over {:.1} s; set up {:.1} calls/s (first request → last {last} {:.2} s)",
            self.cps, self.wall_s, self.setup_rate, self.setup_span_s
        );
        for (label, _, v) in &self.setup {
            line(&mut s, label, *v);
        }
        let [a, b, c] = self.rtt_ms;
        let media = if self.click_to_call {
            "media leg→leg ms p50/95/99"
        } else {
            "media round trip ms p50/95/99"
        };
        let _ = writeln!(
            s,
            "{media:<30}{a:.1} / {b:.1} / {c:.1}  ({} bursts)",
            self.rtt_samples
        );
        self.echo.table(&mut s, !self.click_to_call);
        let [sent, recv, lost, late] = self.rtp;
        let _ = writeln!(
            s,
            "RTP sent / received           {sent} / {recv}  lost {lost}  late {late}"
        );
        if let Some(legs) = &self.leg_rtp {
            for (name, [sent, recv, lost, late]) in ["manager", "client"].iter().zip(legs) {
                let _ = writeln!(
                    s,
                    "  {name:<8} legs              {sent} / {recv}  lost {lost}  late {late}"
                );
            }
        }
        let [inv, unk, rin, rout, bad] = self.far_end;
        let _ = writeln!(
            s,
            "far end INVITEs               {inv} (unknown {unk}), retransmissions in {rin} out {rout}, unparsable {bad}"
        );
        if self.click_to_call {
            let _ = writeln!(
                s,
                "call-seconds                  {:.1} bridged (client legs; manager legs {:.1})",
                self.call_seconds, self.manager_seconds
            );
        } else {
            let _ = writeln!(s, "call-seconds                  {:.1}", self.call_seconds);
        }
        let _ = writeln!(
            s,
            "gateway CPU per call          {}",
            opt(self.cpu_pct_per_call, " % of one core")
        );
        let _ = writeln!(
            s,
            "load tool CPU per call        {}",
            opt(self.load_cpu_pct_per_call, " % of one core")
        );
        let _ = writeln!(
            s,
            "gateway RSS per active call   {}",
            opt(self.rss_kb_per_call, " KiB")
        );
        let _ = writeln!(
            s,
            "gateway before                {}",
            fmt_sample(&self.before)
        );
        let _ = writeln!(
            s,
            "gateway at peak ({:>5} calls) {}",
            self.peak_active,
            fmt_sample(&self.peak)
        );
        let _ = writeln!(
            s,
            "gateway after drain           {}",
            fmt_sample(&self.after)
        );
        s
    }

    pub fn json(&self) -> String {
        let p =
            |v: &[f64; 4]| serde_json::json!({"p50": v[0], "p95": v[1], "p99": v[2], "max": v[3]});
        let setup: serde_json::Map<String, serde_json::Value> = self
            .setup
            .iter()
            .map(|(_, key, v)| ((*key).to_string(), p(v)))
            .collect();
        let media = serde_json::json!({"p50": self.rtt_ms[0], "p95": self.rtt_ms[1], "p99": self.rtt_ms[2], "samples": self.rtt_samples});
        let rtp = |v: &[u64; 4]| serde_json::json!({"sent": v[0], "received": v[1], "lost": v[2], "late": v[3]});
        let mut out = serde_json::json!({
            "mode": if self.click_to_call { "outbound-click-to-call" } else { "outbound" },
            "offered": self.offered,
            "completed": self.completed,
            "failures": self.failures,
            "rate_cps": self.cps,
            "setup_rate_cps": self.setup_rate,
            "setup_span_s": self.setup_span_s,
            "wall_s": self.wall_s,
            "setup_ms": setup,
            "rtp": rtp(&self.rtp),
            "far_end": {"invites": self.far_end[0], "unknown": self.far_end[1], "retransmitted_in": self.far_end[2], "retransmitted_out": self.far_end[3], "unparsable": self.far_end[4]},
            "call_seconds": self.call_seconds,
            "cpu_pct_per_call": self.cpu_pct_per_call,
            "load_tool_cpu_pct_per_call": self.load_cpu_pct_per_call,
            "rss_kb_per_call": self.rss_kb_per_call,
            "gateway": {"before": sample_json(&self.before), "peak": sample_json(&self.peak), "peak_active": self.peak_active, "after": sample_json(&self.after)},
        });
        if let Some(o) = out.as_object_mut() {
            o.insert("echo".into(), self.echo.json());
            if let Some(rtp) = o.get_mut("rtp").and_then(|r| r.as_object_mut()) {
                rtp.insert("dropped_by_tool".into(), self.echo.dropped.into());
            }
            if let Some([mgr, cli]) = &self.leg_rtp {
                o.insert("relay_ms".into(), media);
                o.insert("rtp_manager".into(), rtp(mgr));
                o.insert("rtp_client".into(), rtp(cli));
                o.insert("manager_seconds".into(), self.manager_seconds.into());
            } else {
                o.insert("rtt_ms".into(), media);
            }
        }
        out.to_string()
    }
}
