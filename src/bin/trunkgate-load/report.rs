//! The run's figures as a table and as JSON. Besides the round trip's total, its two
//! directions on the wire from the marks in the echoed audio ([`EchoSummary`]), and what the
//! callers' shaping did (dropped packets are the tool's, never counted as the gateway's loss).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::caller::Results;
use crate::marks::EchoStats;
use crate::procfs::{Sample, TICKS_PER_SEC};
use crate::shape::Shape;
use crate::Args;

/// The echoes' direction split and the callers' shaping, over a run's calls.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoSummary {
    /// Caller RTP sent → frame at the agent, ms p50/95/99, and how many frames.
    pub to_agent_ms: [f64; 3],
    pub to_agent_samples: usize,
    /// Frame at the agent → the agent's message carrying it back.
    pub hold_ms: [f64; 3],
    /// Agent message sent → its first frame's RTP at the caller, and how many messages.
    pub to_caller_ms: [f64; 3],
    pub to_caller_samples: usize,
    pub dropped: u64,
    pub reordered: u64,
    pub echoed: u64,
    pub missing: u64,
    pub shape: String,
    pub agent: String,
}

impl EchoSummary {
    pub fn new<'a>(args: &Args, calls: impl Iterator<Item = &'a EchoStats> + Clone) -> EchoSummary {
        let ms_of = |f: fn(&EchoStats) -> &Vec<u32>| -> Vec<f64> {
            calls
                .clone()
                .flat_map(|e| f(e).iter().map(|&us| f64::from(us) / 1000.0))
                .collect()
        };
        let to_agent = ms_of(|e| &e.to_agent_us);
        let to_caller = ms_of(|e| &e.to_caller_us);
        let sum = |f: fn(&EchoStats) -> u32| calls.clone().map(|e| u64::from(f(e))).sum();
        EchoSummary {
            to_agent_samples: to_agent.len(),
            to_agent_ms: percentiles(to_agent),
            hold_ms: percentiles(ms_of(|e| &e.hold_us)),
            to_caller_samples: to_caller.len(),
            to_caller_ms: percentiles(to_caller),
            dropped: sum(|e| e.dropped),
            reordered: sum(|e| e.reordered),
            echoed: sum(|e| e.echoed),
            missing: sum(|e| e.missing),
            shape: Shape::from_args(args).describe(),
            agent: crate::reply_of(args).describe(),
        }
    }

    /// The table's lines, under the round trip's (`agent`: the split has an agent of ours).
    pub fn table(&self, s: &mut String, agent: bool) {
        if agent {
            let line = |s: &mut String, label: &str, v: [f64; 3], what: String| {
                let _ = writeln!(s, "  {label:<28}{:.1} / {:.1}  {what}", v[0], v[2]);
            };
            if self.to_agent_samples == 0 {
                let _ = writeln!(
                    s,
                    "  caller→agent / agent→caller n/a (no frame came back stamped by our agent)"
                );
            } else {
                line(
                    s,
                    "caller→agent ms p50/99",
                    self.to_agent_ms,
                    format!("({} frames)", self.to_agent_samples),
                );
                line(
                    s,
                    "agent hold ms p50/99",
                    self.hold_ms,
                    format!("({})", self.agent),
                );
                line(
                    s,
                    "agent→caller ms p50/99",
                    self.to_caller_ms,
                    format!("({} agent messages)", self.to_caller_samples),
                );
            }
        }
        let _ = writeln!(
            s,
            "caller shaping                {}: dropped {}, swapped {}",
            self.shape, self.dropped, self.reordered
        );
        if agent {
            let _ = writeln!(
                s,
                "echoed frames                 {} came back, {} missing (sent, never came back)",
                self.echoed, self.missing
            );
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let p = |v: &[f64; 3], n: usize| serde_json::json!({"p50": v[0], "p95": v[1], "p99": v[2], "samples": n});
        serde_json::json!({
            "caller_to_agent_ms": p(&self.to_agent_ms, self.to_agent_samples),
            "agent_hold_ms": p(&self.hold_ms, self.to_agent_samples),
            "agent_to_caller_ms": p(&self.to_caller_ms, self.to_caller_samples),
            "echoed_frames": self.echoed,
            "missing_frames": self.missing,
            "shaping": {"description": self.shape, "dropped": self.dropped, "reordered": self.reordered},
            "agent": self.agent,
        })
    }
}

pub struct Report {
    pub offered: usize,
    pub completed: usize,
    pub failures: BTreeMap<String, usize>,
    pub setup_ms: [f64; 3],
    pub setup_max_ms: f64,
    pub bye_ms: [f64; 3],
    pub call_max_s: f64,
    pub rtt_ms: [f64; 3],
    pub rtt_samples: usize,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub late: u64,
    pub call_seconds: f64,
    pub wall_s: f64,
    pub cps: f64,
    pub cpu_pct_per_call: Option<f64>,
    /// This tool's own CPU (callers' RTP, echo agent, webhook) per call, same unit.
    pub load_cpu_pct_per_call: Option<f64>,
    pub rss_kb_per_call: Option<f64>,
    pub before: Option<Sample>,
    pub peak: Option<Sample>,
    pub peak_active: usize,
    pub after: Option<Sample>,
    pub echo: EchoSummary,
    /// The calls were answered by our echo agent (not the gateway's own).
    pub our_agent: bool,
}

pub fn percentiles(mut v: Vec<f64>) -> [f64; 3] {
    if v.is_empty() {
        return [0.0; 3];
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    [at(0.50), at(0.95), at(0.99)]
}

pub fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Report {
    pub fn new(
        args: &Args,
        r: &Results,
        before: Option<Sample>,
        after: Option<Sample>,
        own_cpu_ticks: Option<u64>,
    ) -> Report {
        let mut failures = BTreeMap::new();
        for c in r.calls.iter().filter(|c| !c.ok()) {
            let key = match (c.status, &c.error) {
                (Some(s), _) if s != 200 => format!("SIP {s}"),
                (_, Some(e)) => e.clone(),
                _ => "unknown".into(),
            };
            *failures.entry(key).or_default() += 1;
        }
        let call_seconds: f64 = r.calls.iter().map(|c| c.seconds).sum();
        let cpu_pct_per_call = match (&before, &after) {
            (Some(b), Some(a)) if call_seconds > 0.0 => {
                let cpu_s = a.cpu_ticks.saturating_sub(b.cpu_ticks) as f64 / TICKS_PER_SEC;
                Some(cpu_s / call_seconds * 100.0)
            }
            _ => None,
        };
        let load_cpu_pct_per_call = match own_cpu_ticks {
            Some(t) if call_seconds > 0.0 => Some(t as f64 / TICKS_PER_SEC / call_seconds * 100.0),
            _ => None,
        };
        let rss_kb_per_call = match (&before, &r.peak) {
            (Some(b), Some(p)) if r.peak_active > 0 => {
                Some(p.rss_kb.saturating_sub(b.rss_kb) as f64 / r.peak_active as f64)
            }
            _ => None,
        };
        let rtts: Vec<f64> = r.calls.iter().flat_map(|c| c.rtts.iter().map(ms)).collect();
        Report {
            offered: args.calls,
            completed: r.completed(),
            failures,
            setup_ms: percentiles(
                r.calls
                    .iter()
                    .filter_map(|c| c.setup.as_ref().map(ms))
                    .collect(),
            ),
            setup_max_ms: r
                .calls
                .iter()
                .filter_map(|c| c.setup.as_ref().map(ms))
                .fold(0.0, f64::max),
            bye_ms: percentiles(
                r.calls
                    .iter()
                    .filter_map(|c| c.bye.as_ref().map(ms))
                    .collect(),
            ),
            call_max_s: r
                .calls
                .iter()
                .filter_map(|c| c.total.map(|t| t.as_secs_f64()))
                .fold(0.0, f64::max),
            rtt_samples: rtts.len(),
            rtt_ms: percentiles(rtts),
            sent: r.calls.iter().map(|c| u64::from(c.sent)).sum(),
            received: r.calls.iter().map(|c| u64::from(c.received)).sum(),
            lost: r.calls.iter().map(|c| u64::from(c.lost)).sum(),
            late: r.calls.iter().map(|c| u64::from(c.late)).sum(),
            call_seconds,
            wall_s: r.wall.as_secs_f64(),
            cps: args.rate,
            cpu_pct_per_call,
            load_cpu_pct_per_call,
            rss_kb_per_call,
            before,
            peak: r.peak.clone(),
            peak_active: r.peak_active,
            after,
            echo: EchoSummary::new(args, r.calls.iter().map(|c| &c.echo)),
            our_agent: args.serve.is_some(),
        }
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |x| format!("{x:.3}{unit}"));
        let _ = writeln!(
            s,
            "calls offered / completed     {} / {}",
            self.offered, self.completed
        );
        for (why, n) in &self.failures {
            let _ = writeln!(s, "  failed: {why:<24} {n}");
        }
        let _ = writeln!(
            s,
            "offered rate                  {:.1} calls/s over {:.1} s",
            self.cps, self.wall_s
        );
        let [a, b, c] = self.setup_ms;
        let _ = writeln!(
            s,
            "setup INVITE→200 ms p50/95/99 {a:.1} / {b:.1} / {c:.1}  (max {:.1})",
            self.setup_max_ms
        );
        let [a, b, c] = self.bye_ms;
        let _ = writeln!(
            s,
            "BYE→200 ms p50/95/99          {a:.1} / {b:.1} / {c:.1}  (longest call {:.1} s)",
            self.call_max_s
        );
        let [a, b, c] = self.rtt_ms;
        let _ = writeln!(
            s,
            "media round trip ms p50/95/99 {a:.1} / {b:.1} / {c:.1}  ({} bursts)",
            self.rtt_samples
        );
        self.echo.table(&mut s, self.our_agent);
        let _ = writeln!(
            s,
            "RTP sent / received           {} / {}  lost {}  late {}",
            self.sent, self.received, self.lost, self.late
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
        let fmt = fmt_sample;
        let _ = writeln!(s, "gateway before                {}", fmt(&self.before));
        let _ = writeln!(
            s,
            "gateway at peak ({:>5} calls) {}",
            self.peak_active,
            fmt(&self.peak)
        );
        let _ = writeln!(s, "gateway after drain           {}", fmt(&self.after));
        s
    }

    pub fn json(&self) -> String {
        let sample = sample_json;
        let mut out = serde_json::json!({
            "offered": self.offered,
            "completed": self.completed,
            "failures": self.failures,
            "rate_cps": self.cps,
            "wall_s": self.wall_s,
            "setup_ms": {"p50": self.setup_ms[0], "p95": self.setup_ms[1], "p99": self.setup_ms[2]},
            "rtt_ms": {"p50": self.rtt_ms[0], "p95": self.rtt_ms[1], "p99": self.rtt_ms[2], "samples": self.rtt_samples},
            "rtp": {"sent": self.sent, "received": self.received, "lost": self.lost, "late": self.late},
            "call_seconds": self.call_seconds,
            "cpu_pct_per_call": self.cpu_pct_per_call,
            "load_tool_cpu_pct_per_call": self.load_cpu_pct_per_call,
            "rss_kb_per_call": self.rss_kb_per_call,
            "gateway": {"before": sample(&self.before), "peak": sample(&self.peak), "peak_active": self.peak_active, "after": sample(&self.after)},
        });
        if let Some(o) = out.as_object_mut() {
            o.insert("echo".into(), self.echo.json());
            if let Some(rtp) = o.get_mut("rtp").and_then(|r| r.as_object_mut()) {
                rtp.insert("dropped_by_tool".into(), self.echo.dropped.into());
            }
        }
        out.to_string()
    }
}

/// A gateway sample as the tables show it.
pub fn fmt_sample(x: &Option<Sample>) -> String {
    x.as_ref().map_or("n/a".into(), |s| {
        format!(
            "fds {} (tcp {}) udp {} rss {} KiB",
            s.fds, s.tcp_established, s.udp_sockets, s.rss_kb
        )
    })
}

/// A gateway sample in the JSON reports.
pub fn sample_json(x: &Option<Sample>) -> Option<serde_json::Value> {
    x.as_ref().map(|s| serde_json::json!({"fds": s.fds, "tcp_established": s.tcp_established, "udp_sockets": s.udp_sockets, "rss_kb": s.rss_kb, "cpu_ticks": s.cpu_ticks}))
}
