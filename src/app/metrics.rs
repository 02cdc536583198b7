//! The Prometheus exposition of the gateway's counters (`GET /metrics`).
//!
//! Owns: metric names, kinds and help texts. Must not: count anything itself (the tasks own
//! the counters in [`super::Stats`] and the spool's stats) or know about HTTP.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::Ctx;

/// The Prometheus exposition of the gateway's counters.
pub fn render(ctx: &Ctx) -> String {
    let s = &ctx.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP trunkgate_{name} {help}");
        let _ = writeln!(out, "# TYPE trunkgate_{name} {kind}");
        let _ = writeln!(out, "trunkgate_{name} {value}");
    };
    metric(
        "calls_started_total",
        "counter",
        "Calls admitted and started.",
        load(&s.calls_started),
    );
    metric(
        "calls_ended_total",
        "counter",
        "Calls ended (any reason).",
        load(&s.calls_ended),
    );
    metric(
        "calls_active",
        "gauge",
        "Calls in progress.",
        s.active_calls(),
    );
    metric(
        "rtp_ports_in_use",
        "gauge",
        "RTP ports leased by calls.",
        ctx.ports.in_use() as u64,
    );
    metric(
        "sip_malformed_total",
        "counter",
        "SIP messages that failed to parse.",
        load(&s.malformed),
    );
    metric(
        "sip_flood_dropped_total",
        "counter",
        "SIP messages dropped by the per-source flood limit.",
        load(&s.flood_dropped),
    );
    metric(
        "sip_blocked_user_agent_total",
        "counter",
        "SIP requests dropped for a blocked User-Agent.",
        load(&s.blocked_user_agent),
    );
    metric(
        "api_auth_failures_total",
        "counter",
        "API requests refused for missing or wrong credentials.",
        load(&s.api_auth_failures),
    );
    metric(
        "policy_rejected_total",
        "counter",
        "INVITEs refused by admission policy.",
        load(&s.policy_rejected),
    );
    metric(
        "policy_dropped_total",
        "counter",
        "INVITEs dropped silently by admission policy.",
        load(&s.policy_dropped),
    );
    metric(
        "agent_dropped_frames_total",
        "counter",
        "Agent frames dropped (agent or queue full).",
        load(&s.agent_dropped_frames),
    );
    metric(
        "agent_frame_errors_total",
        "counter",
        "Malformed agent messages.",
        load(&s.agent_frame_errors),
    );
    metric(
        "agent_ignored_events_total",
        "counter",
        "Agent messages with events we do not use.",
        load(&s.agent_ignored_events),
    );
    metric(
        "heap_trims_total",
        "counter",
        "Times freed heap memory was given back to the system after a burst.",
        load(&s.heap_trims),
    );
    metric(
        "transcripts_sent_total",
        "counter",
        "Calls transcribed (call.transcript with turns).",
        load(&s.transcripts_sent),
    );
    metric(
        "transcripts_failed_total",
        "counter",
        "Transcriptions that failed (call.transcript with an error).",
        load(&s.transcripts_failed),
    );
    if let Some(spool) = &ctx.spool {
        let st = &spool.stats;
        metric(
            "callbacks_submitted_total",
            "counter",
            "Call records spooled for delivery.",
            load(&st.submitted),
        );
        metric(
            "callbacks_delivered_total",
            "counter",
            "Callbacks acknowledged with a 2xx.",
            load(&st.delivered),
        );
        metric(
            "callbacks_failed_attempts_total",
            "counter",
            "Callback attempts that failed.",
            load(&st.failed_attempts),
        );
        metric(
            "callbacks_dead_total",
            "counter",
            "Callbacks given up (kept in dead/).",
            load(&st.dead),
        );
        metric(
            "callbacks_pending",
            "gauge",
            "Callbacks waiting in the spool.",
            spool.pending() as u64,
        );
    }
    metric(
        "draining",
        "gauge",
        "1 while draining for shutdown.",
        u64::from(ctx.draining.load(Ordering::Relaxed)),
    );
    metric(
        "rtp_packets_received_total",
        "counter",
        "RTP packets received on ended calls' legs.",
        load(&s.calls.rtp_in),
    );
    metric(
        "rtp_packets_sent_total",
        "counter",
        "RTP packets sent on ended calls' legs.",
        load(&s.calls.rtp_out),
    );
    metric(
        "rtp_packets_lost_total",
        "counter",
        "Callers' RTP packets lost on the way in (sequence gaps), over ended calls.",
        load(&s.calls.rtp_lost),
    );
    metric(
        "srtp_refused_total",
        "counter",
        "Packets SRTP refused on ended calls (forged, replayed, wrongly keyed, malformed).",
        load(&s.calls.srtp_refused),
    );
    trunks(&mut out, ctx);
    by_reason(&mut out, ctx);
    setup(&mut out, ctx);
    out
}

/// Ended calls by `end_reason` and refused INVITEs / dials by the rule (reasons are the end
/// reason table's snake_case names: no quoting needed, but quotes and backslashes are escaped).
fn by_reason(out: &mut String, ctx: &Ctx) {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    for (name, help, rows) in [
        (
            "calls_ended_by_reason_total",
            "Calls that ran, by how they ended (the record's end_reason).",
            ctx.stats.calls.ended_by_reason(),
        ),
        (
            "calls_refused_total",
            "Calls refused before they ran, by the rule (the record's end_reason).",
            ctx.stats.calls.refused_by_reason(),
        ),
    ] {
        let _ = writeln!(out, "# HELP trunkgate_{name} {help}");
        let _ = writeln!(out, "# TYPE trunkgate_{name} counter");
        for (reason, n) in rows {
            let _ = writeln!(
                out,
                "trunkgate_{name}{{end_reason=\"{}\"}} {n}",
                escape(&reason)
            );
        }
    }
}

/// Admission to answer of answered calls, as a histogram.
fn setup(out: &mut String, ctx: &Ctx) {
    let h = ctx.stats.calls.setup();
    let name = "trunkgate_call_setup_seconds";
    let _ = writeln!(out, "# HELP {name} Admission to answer, answered calls.");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (bound, n) in super::call_stats::SETUP_BUCKETS.iter().zip(&h.cumulative) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let count = h.cumulative.last().copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {}", h.sum_seconds);
    let _ = writeln!(out, "{name}_count {count}");
}

/// One labelled gauge per registering trunk (names are validated: no quoting needed).
fn trunks(out: &mut String, ctx: &Ctx) {
    let trunks = ctx.trunks.snapshot();
    if trunks.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP trunkgate_trunk_registered 1 while the trunk's REGISTER binding is in force."
    );
    let _ = writeln!(out, "# TYPE trunkgate_trunk_registered gauge");
    for t in trunks {
        let _ = writeln!(
            out,
            "trunkgate_trunk_registered{{trunk=\"{}\"}} {}",
            t.name,
            u8::from(t.registered)
        );
    }
}
