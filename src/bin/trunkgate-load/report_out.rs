//! Outbound mode's figures as a table and as JSON, in the inbound report's style: setup time
//! from the API request to the 201, to the far end's 200 OK and to the agent's start message;
//! the achieved setup rate; failures by kind; the media round trip; the gateway's CPU and RSS.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::outbound::OutResults;
use crate::procfs::{Sample, TICKS_PER_SEC};
use crate::report::{fmt_sample, ms, percentiles, sample_json};
use crate::timeline::Event;
use crate::Args;

pub struct OutReport {
    offered: usize,
    completed: usize,
    failures: BTreeMap<String, usize>,
    /// API request → 201, → 200 OK sent, → agent start; 200 OK → agent start.
    api_201: [f64; 4],
    api_invite: [f64; 4],
    api_ok: [f64; 4],
    api_agent: [f64; 4],
    ok_agent: [f64; 4],
    /// Set-ups completed per second: agent starts over the span from the first to the last
    /// (a throughput: the ring time every call waits is not counted against it).
    setup_rate: f64,
    /// First request → last agent start, seconds.
    setup_span_s: f64,
    rtt_ms: [f64; 3],
    rtt_samples: usize,
    rtp: [u64; 4],
    call_seconds: f64,
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
        let posted = (0..n).filter_map(|i| t.at(i, Event::Posted)).min();
        let starts: Vec<_> = (0..n).filter_map(|i| t.at(i, Event::AgentStart)).collect();
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
        let call_seconds = outcomes.iter().map(|o| o.seconds).fold(0.0, |a, b| a + b);
        let rtts: Vec<f64> = outcomes
            .iter()
            .flat_map(|o| o.media.rtts.iter().map(ms))
            .collect();
        let sum = |f: fn(&crate::media::MediaStats) -> u32| -> u64 {
            outcomes.iter().map(|o| u64::from(f(&o.media))).sum()
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
            api_201: spread(between(Event::Posted, Event::Created)),
            api_invite: spread(between(Event::Posted, Event::Invite)),
            api_ok: spread(between(Event::Posted, Event::Answered)),
            api_agent: spread(between(Event::Posted, Event::AgentStart)),
            ok_agent: spread(between(Event::Answered, Event::AgentStart)),
            setup_rate,
            setup_span_s,
            rtt_samples: rtts.len(),
            rtt_ms: percentiles(rtts),
            rtp: [
                sum(|m| m.sent),
                sum(|m| m.received),
                sum(|m| m.lost),
                sum(|m| m.late),
            ],
            call_seconds,
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
        }
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |x| format!("{x:.3}{unit}"));
        let line = |s: &mut String, label: &str, [a, b, c, m]: [f64; 4]| {
            let _ = writeln!(s, "{label:<30}{a:.1} / {b:.1} / {c:.1}  (max {m:.1})");
        };
        let _ = writeln!(
            s,
            "calls offered / completed     {} / {}  (outbound, POST /v1/calls)",
            self.offered, self.completed
        );
        for (why, n) in &self.failures {
            let _ = writeln!(s, "  failed: {why:<24} {n}");
        }
        let _ = writeln!(
            s,
            "offered rate                  {:.1} calls/s over {:.1} s; set up {:.1} calls/s (first request → last agent start {:.2} s)",
            self.cps, self.wall_s, self.setup_rate, self.setup_span_s
        );
        line(&mut s, "setup API→201 ms p50/95/99", self.api_201);
        line(&mut s, "  API→INVITE ms p50/95/99", self.api_invite);
        line(&mut s, "setup API→200 OK ms p50/95/99", self.api_ok);
        line(&mut s, "setup API→agent ms p50/95/99", self.api_agent);
        line(&mut s, "  200 OK→agent ms p50/95/99", self.ok_agent);
        let [a, b, c] = self.rtt_ms;
        let _ = writeln!(
            s,
            "media round trip ms p50/95/99 {a:.1} / {b:.1} / {c:.1}  ({} bursts)",
            self.rtt_samples
        );
        let [sent, recv, lost, late] = self.rtp;
        let _ = writeln!(
            s,
            "RTP sent / received           {sent} / {recv}  lost {lost}  late {late}"
        );
        let [inv, unk, rin, rout, bad] = self.far_end;
        let _ = writeln!(
            s,
            "far end INVITEs               {inv} (unknown {unk}), retransmissions in {rin} out {rout}, unparsable {bad}"
        );
        let _ = writeln!(s, "call-seconds                  {:.1}", self.call_seconds);
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
        serde_json::json!({
            "mode": "outbound",
            "offered": self.offered,
            "completed": self.completed,
            "failures": self.failures,
            "rate_cps": self.cps,
            "setup_rate_cps": self.setup_rate,
            "setup_span_s": self.setup_span_s,
            "wall_s": self.wall_s,
            "setup_ms": {"api_201": p(&self.api_201), "api_invite": p(&self.api_invite), "api_200ok": p(&self.api_ok), "api_agent_start": p(&self.api_agent), "ok_agent_start": p(&self.ok_agent)},
            "rtt_ms": {"p50": self.rtt_ms[0], "p95": self.rtt_ms[1], "p99": self.rtt_ms[2], "samples": self.rtt_samples},
            "rtp": {"sent": self.rtp[0], "received": self.rtp[1], "lost": self.rtp[2], "late": self.rtp[3]},
            "far_end": {"invites": self.far_end[0], "unknown": self.far_end[1], "retransmitted_in": self.far_end[2], "retransmitted_out": self.far_end[3], "unparsable": self.far_end[4]},
            "call_seconds": self.call_seconds,
            "cpu_pct_per_call": self.cpu_pct_per_call,
            "load_tool_cpu_pct_per_call": self.load_cpu_pct_per_call,
            "rss_kb_per_call": self.rss_kb_per_call,
            "gateway": {"before": sample_json(&self.before), "peak": sample_json(&self.peak), "peak_active": self.peak_active, "after": sample_json(&self.after)},
        })
        .to_string()
    }
}
