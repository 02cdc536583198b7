//! A call's SRTP: which mode each of its legs uses (the number's `srtp`, else the trunk's,
//! else `rtp.srtp` for an inbound caller; the call's own, else the trunk's `outbound.srtp`
//! toward a callee or a bridged leg) and the random bytes its keys are cut from.
//!
//! One rule in one place: SDES keys over plain SIP (UDP, TCP) would be readable on the path,
//! so unless `rtp.srtp_allow_plain_sip` an `optional` leg signalled in clear runs plain
//! (`required` over plain SIP is refused by the configuration check and the API).
//! Must not: negotiate (the SDP layer does) or log key material.

use crate::config::{Config, SrtpMode, Transport as CfgTransport, TrunkConfig};
use crate::core::sip::sdp::{SrtpParams, SrtpUse};
use crate::core::Transport;

/// The modes of a call's legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSrtp {
    /// The caller's leg (inbound) or the callee's (outbound).
    pub leg: SrtpUse,
    /// A bridged leg placed later (a `bridge` transfer, click-to-call's client).
    pub bridged: SrtpUse,
}

/// An inbound call from `trunk` to `number`, signalled over `transport`.
pub fn inbound(
    config: &Config,
    trunk: Option<&str>,
    number: Option<&crate::config::NumberConfig>,
    transport: Transport,
) -> CallSrtp {
    let trunk_cfg = trunk.and_then(|n| config.trunks.iter().find(|t| t.name == n));
    let mode = number
        .and_then(|n| n.srtp)
        .or_else(|| trunk_cfg.and_then(|t| t.srtp))
        .unwrap_or(config.rtp.srtp);
    CallSrtp {
        leg: effective(config, mode, transport == Transport::Tls),
        bridged: bridged(config, trunk),
    }
}

/// An outbound call through `trunk`, with the call's own `srtp` if it asked for one.
pub fn outbound(config: &Config, trunk: &TrunkConfig, requested: Option<SrtpMode>) -> CallSrtp {
    let leg = trunk.outbound.as_ref().map_or(SrtpUse::Off, |out| {
        let mode = requested.unwrap_or(out.srtp);
        effective(config, mode, out.transport == CfgTransport::Tls)
    });
    CallSrtp {
        leg,
        bridged: bridged(config, Some(&trunk.name)),
    }
}

/// Why a call cannot have the SRTP it asked for through `trunk` (`None`: it can).
pub fn refusal(config: &Config, trunk: &TrunkConfig, requested: SrtpMode) -> Option<String> {
    let out = trunk.outbound.as_ref()?;
    let plain = out.transport != CfgTransport::Tls && !config.rtp.srtp_allow_plain_sip;
    (requested != SrtpMode::Off && plain).then(|| {
        format!(
            "trunk {:?} signals in clear (not TLS): SRTP keys would be readable on the path \
             (rtp.srtp_allow_plain_sip is false)",
            trunk.name
        )
    })
}

/// The first leg's SRTP with the call's key material: 32 random bytes from the system's
/// CSPRNG when any leg uses SRTP (a bridged leg's are derived from them). Should the system
/// refuse random bytes, all zeros: the SDP layer then neither offers nor takes keys
/// (`required` legs refuse every offer) — never a predictable key.
pub fn params(srtp: CallSrtp) -> SrtpParams {
    use ring::rand::SecureRandom;
    let mut key_material = [0u8; 32];
    let keyed = srtp.leg != SrtpUse::Off || srtp.bridged != SrtpUse::Off;
    if keyed
        && ring::rand::SystemRandom::new()
            .fill(&mut key_material)
            .is_err()
    {
        tracing::error!("the system gave no random bytes: this call cannot use SRTP");
        key_material = [0; 32];
    }
    SrtpParams {
        mode: srtp.leg,
        key_material,
    }
}

fn bridged(config: &Config, trunk: Option<&str>) -> SrtpUse {
    super::routing::bridge_trunk(config, trunk)
        .and_then(|t| t.outbound.as_ref())
        .map_or(SrtpUse::Off, |out| {
            effective(config, out.srtp, out.transport == CfgTransport::Tls)
        })
}

fn effective(config: &Config, mode: SrtpMode, secure: bool) -> SrtpUse {
    match mode {
        SrtpMode::Off => SrtpUse::Off,
        SrtpMode::Optional if !secure && !config.rtp.srtp_allow_plain_sip => SrtpUse::Off,
        SrtpMode::Optional => SrtpUse::Optional,
        SrtpMode::Required => SrtpUse::Required,
    }
}
