//! Where SRTP keys would travel in clear: SDES (RFC 4568 §8.3) puts the master key in the
//! SDP, so SRTP is only as secret as the SIP that carries it.
//!
//! Owns the refusal, unless `rtp.srtp_allow_plain_sip = true`, of `srtp = "required"`
//! (globally, per trunk, per number) while a plain SIP listener (`listen_udp`, `listen_tcp`)
//! can bring such calls, and of a trunk's `outbound.srtp` other than `"off"` over UDP or TCP.
//! `optional` on listeners stays valid: calls signalled in clear then run plain
//! (`app::call_setup` applies that). Must not: decide a call's mode (the shell does).

use super::error::Problems;
use super::schema::{RawNumber, RawRtp, RawTrunk};
use super::types::{SipConfig, SrtpMode, Transport, TrunkConfig};
use super::validate::key;

const FIX: &str = "or set rtp.srtp_allow_plain_sip = true";

pub(crate) fn check(
    ctx: &mut Problems<'_>,
    sip: &SipConfig,
    raw_rtp: Option<&RawRtp>,
    raw_trunks: &[(usize, RawTrunk)],
    trunks: &[TrunkConfig],
    raw_numbers: &[(usize, RawNumber)],
) {
    if raw_rtp.and_then(|r| r.srtp_allow_plain_sip) == Some(true) {
        return;
    }
    let plain = match (sip.listen_udp.is_empty(), sip.listen_tcp.is_empty()) {
        (false, _) => Some("sip.listen_udp"),
        (true, false) => Some("sip.listen_tcp"),
        (true, true) => None,
    };
    if let Some(listener) = plain {
        let mut required = |path: String, span| {
            let msg = format!(
                "\"required\" while {listener} takes SIP in clear would send the SRTP keys \
                 in clear; listen on TLS only, {FIX}"
            );
            ctx.push(path, span, msg);
        };
        if let Some(sp) = raw_rtp.and_then(|r| r.srtp.as_ref()) {
            if sp.value == SrtpMode::Required {
                required("rtp.srtp".into(), &sp.span);
            }
        }
        for (i, t) in raw_trunks {
            if let Some(sp) = t.srtp.as_ref().filter(|sp| sp.value == SrtpMode::Required) {
                required(format!("trunk[{i}].srtp"), &sp.span);
            }
        }
        for (i, n) in raw_numbers {
            if let Some(sp) = n.srtp.as_ref().filter(|sp| sp.value == SrtpMode::Required) {
                required(format!("number[{i}].srtp"), &sp.span);
            }
        }
    }
    for ((i, raw), trunk) in raw_trunks.iter().zip(trunks) {
        let Some(out) = &trunk.outbound else { continue };
        let transport = match out.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => continue,
        };
        let span = raw
            .outbound
            .as_ref()
            .and_then(|o| o.value.srtp.as_ref())
            .and_then(|sp| sp.span.clone());
        if out.srtp != SrtpMode::Off {
            let path = key(&format!("trunk[{i}].outbound"), "srtp");
            let msg = format!(
                "SRTP over transport \"{transport}\" would send its keys in clear; use \
                 transport = \"tls\", {FIX}"
            );
            ctx.push(path, &span, msg);
        }
    }
}
