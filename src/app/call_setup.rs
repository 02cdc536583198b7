//! What a call's machine is given: its [`Setup`] (who calls whom, as admission fixed it; the
//! route — webhook, static agent or echo — from the configuration) and its [`Settings`].
//!
//! Must not: decide anything about the call (the machine does) or touch sockets.

use std::net::IpAddr;
use std::time::Duration;

use super::call_srtp::CallSrtp;
use super::{routing, Admitted};
use crate::config::{AgentConfig, Config, Dialect as CfgDialect, OnDisconnect, TransferMode};
use crate::core::agent::{AudioEncoding, Dialect};
use crate::core::call::leg::{AgentTarget, Answerer};
use crate::core::call::media::RtpSeed;
use crate::core::call::{transfer, Direction, Route, Settings, Setup};
use crate::core::hooks::request;
use crate::core::sip::endpoint::IncomingCall;
use crate::core::sip::sdp::{AnswerParams, Codec};

/// What admission decided, and how this call is routed.
pub fn setup(config: &Config, info: &IncomingCall, admitted: &Admitted) -> Setup {
    let number = routing::find_number_by_did(config, admitted.dialled.as_deref());
    let fallback = number.and_then(|n| n.agent.as_ref()).map(answerer);
    let route = match &config.webhook.url {
        Some(_) => Route::Webhook {
            request: Box::new(webhook_request(info, admitted)),
            fallback,
        },
        None => fallback.map_or(Route::None, Route::Static),
    };
    Setup {
        id: admitted.call_id.clone(),
        direction: Direction::Inbound,
        started_wall: jiff::Timestamp::now(),
        from: admitted.caller.clone(),
        to: admitted.dialled.clone(),
        did: info.did.clone(),
        crt: info.crt.clone(),
        headers: info.headers.clone(),
        offer: info.offer.clone(),
        route,
        transfer: transfer_policy(
            config,
            admitted.trunk.as_deref(),
            &ip_host(info.source.ip()),
            &info.local_host,
        ),
        record: config.recording.enabled,
        seed: RtpSeed {
            seq: fastrand::u16(..),
            ts: fastrand::u32(..),
            ssrc: fastrand::u32(..),
        },
        stream_id: format!("MZ{:032x}", fastrand::u128(..)),
    }
}

/// `local_host`: the address the peer reaches us at (for SDP `c=` when nothing more specific
/// is configured); `srtp`: what [`super::call_srtp`] decided for the call's legs.
pub fn settings(config: &Config, local_host: &str, srtp: CallSrtp) -> Settings {
    Settings {
        rtp_timeout: config.rtp.rtp_timeout,
        reconnect_agent: config.agent.on_disconnect == OnDisconnect::Reconnect,
        answer: AnswerParams {
            prefs: vec![Codec::Pcmu, Codec::Pcma],
            address: advertised_ip(
                config.rtp.bind,
                local_host,
                config.sip.public_address.is_some(),
            ),
            port: 0,
            ptime_ms: config.rtp.ptime_ms,
            session_id: fastrand::u64(1..u64::MAX / 2),
            session_version: 1,
            user: "trunkgate".to_string(),
            srtp: super::call_srtp::params(srtp),
        },
        bridge_srtp: srtp.bridged,
        checkpoint_every: Some(config.callbacks.checkpoint),
        account_id: config.api.account_sid.clone(),
        billing: super::record::rule(&config.billing),
    }
}

fn webhook_request(info: &IncomingCall, admitted: &Admitted) -> request::IncomingCall {
    let header = |name: &str| {
        info.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    request::IncomingCall {
        call_id: admitted.call_id.to_string(),
        sip_call_id: info.sip_call_id.clone(),
        from_number: admitted.caller.clone(),
        to_number: admitted.dialled.clone(),
        did: info.did.clone(),
        crt: info.crt.clone(),
        workspace_id: header("X-Workspace-ID"),
        trunk: admitted.trunk.clone(),
        source_ip: Some(info.source.ip().to_string()),
        headers: info.headers.clone(),
        outbound_url: None,
    }
}

/// The answering leg a `[[number]]`'s static agent describes.
fn answerer(agent: &AgentConfig) -> Answerer {
    if agent.url.starts_with("builtin:") {
        return Answerer::Echo {
            answer_delay: answer_delay(&agent.url),
        };
    }
    Answerer::Agent(AgentTarget {
        url: agent.url.clone(),
        dialect: map_dialect(agent.dialect),
        sample_rate: agent.sample_rate,
        encoding: AudioEncoding::L16,
        parameters: Vec::new(),
        extra_headers: None,
    })
}

pub(super) fn map_dialect(d: CfgDialect) -> Dialect {
    match d {
        CfgDialect::Twilio => Dialect::Twilio,
        CfgDialect::Plivo => Dialect::Plivo,
        CfgDialect::Raw => Dialect::Raw,
    }
}

/// `builtin:echo?answer_delay_ms=N` → ring for N ms before answering.
fn answer_delay(url: &str) -> Option<Duration> {
    let query = url.strip_prefix("builtin:")?.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "answer_delay_ms").then(|| v.parse().ok().map(Duration::from_millis))?
    })
}

/// The address for SDP `c=`: the public address when configured, else the RTP bind
/// address when specific, else the local address the INVITE reached.
fn advertised_ip(bind: IpAddr, local_host: &str, public: bool) -> IpAddr {
    if !public && !bind.is_unspecified() {
        return bind;
    }
    local_host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .unwrap_or(if bind.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            bind
        })
}

/// How this call's transfers go: its trunk's `transfer = {…}` (else REFER), a number
/// becoming a SIP URI on the trunk's outbound host, or else on the host the call came from.
pub fn transfer_policy(
    config: &Config,
    trunk: Option<&str>,
    peer_host: &str,
    local_host: &str,
) -> transfer::Policy {
    let trunk = trunk.and_then(|name| config.trunks.iter().find(|t| t.name == name));
    let mut policy = transfer::Policy {
        refer_host: trunk
            .and_then(|t| t.outbound.as_ref())
            .map_or_else(|| peer_host.to_string(), |o| o.address.host.clone()),
        referred_by: Some(format!("sip:trunkgate@{local_host}")),
        ..transfer::Policy::default()
    };
    if let Some(t) = trunk.and_then(|t| t.transfer.as_ref()) {
        policy.mode = match t.mode {
            TransferMode::Refer => transfer::Mode::Refer,
            TransferMode::Bridge => transfer::Mode::Bridge,
            TransferMode::Notify => transfer::Mode::Notify,
        };
        policy.await_bye = t.await_bye;
        policy.notify_configured = t.url.is_some();
    }
    policy
}

/// An address as it goes into a SIP URI (IPv6 bracketed).
fn ip_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}
