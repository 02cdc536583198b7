//! What the gateway needs before it runs, derived from the configuration: the start errors,
//! secrets read by the one rule, the callback spool and CDR file, the inbound and outbound
//! admission policies and the SIP endpoint's settings. Pure set-up; it starts no task and
//! holds no state.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, DidPattern};
use crate::core::policy::{NumberLayer, Policy, TrunkLayer};
use crate::core::sip::endpoint::Settings;
use crate::core::sip::message::Limits;
use crate::io::spool::{Spool, SpoolSettings};
use crate::io::tls;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{key}: {source}")]
    Secret {
        key: &'static str,
        source: crate::config::SecretError,
    },
    #[error("cannot start the call worker or record writer threads: {0}")]
    Workers(std::io::Error),
    #[error("cannot bind SIP {transport} listener {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A secret file by the one rule (`config::read_secret_file`: trailing whitespace trimmed,
/// empty refused), its error naming the key, never the content.
pub(super) fn read_secret(key: &'static str, path: &std::path::Path) -> Result<String, StartError> {
    crate::config::read_secret_file(path)
        .map(|s| s.expose().to_owned())
        .map_err(|source| StartError::Secret { key, source })
}

pub(super) fn open_spool(
    config: &Config,
    http: &reqwest::Client,
    secret: Option<Arc<Vec<u8>>>,
) -> Option<Spool> {
    let settings = SpoolSettings {
        dir: config.callbacks.spool_dir.clone(),
        max_attempts: config.callbacks.max_attempts,
        backoff: config.callbacks.retry_backoff,
        max_backoff: std::time::Duration::from_secs(300),
        secret,
    };
    match Spool::open(settings, http.clone()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(dir = %config.callbacks.spool_dir.display(), error = %e, "cannot open the callback spool; callbacks disabled");
            None
        }
    }
}

pub(super) fn open_cdr(path: &std::path::Path) -> Option<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot open the CDR file");
            None
        }
    }
}

/// The admission policy of `config`: global layer, trunks by source CIDR, numbers by DID.
pub fn policy(config: &Config) -> Policy {
    let trunks = config
        .trunks
        .iter()
        .map(|t| TrunkLayer {
            name: t.name.clone(),
            match_cidrs: t.match_cidrs.clone(),
            require_headers: t.require_headers.clone(),
            policy: t.policy.clone(),
        })
        .collect();
    let numbers = config
        .numbers
        .iter()
        .map(|n| NumberLayer {
            did: match &n.did {
                DidPattern::Exact(d) => Some(d.clone()),
                DidPattern::Any => None,
            },
            policy: n.policy.clone(),
        })
        .collect();
    let policy = Policy::new(config.policy.clone(), trunks, numbers);
    for zone in policy.unknown_zones() {
        tracing::warn!(%zone, "unknown time zone in policy hours; read as UTC");
    }
    policy
}

pub fn endpoint_settings(config: &Config) -> Settings {
    Settings {
        user_agent: config.sip.user_agent.clone(),
        public_address: public_host(config),
        limits: Limits {
            max_message: config.sip.max_message_size,
            max_headers: config.sip.max_headers,
            max_header_len: config.sip.max_header_len,
        },
        blocked_user_agents: config
            .policy
            .user_agent_blocklist
            .clone()
            .unwrap_or_default(),
        session_expires: secs_u32(config.sip.session_expires),
        min_se: secs_u32(config.sip.min_se),
        registrar: !config.users.is_empty(),
        ..Settings::default()
    }
}

/// Whole seconds for the endpoint (validated to fit).
fn secs_u32(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The outbound admission policy of a configuration (global, then per trunk).
pub(super) fn outbound_policy(config: &Config) -> crate::core::policy::OutboundPolicy {
    let p = crate::core::policy::OutboundPolicy::new(
        config.outbound_policy.clone(),
        config.outbound_trunk_layers(),
    );
    for zone in p.unknown_zones() {
        tracing::warn!(%zone, "outbound_policy.hours names an unknown time zone; treated as closed");
    }
    p
}

/// `[sip] public_address` as a host for SIP URIs (IPv6 in brackets).
pub(super) fn public_host(config: &Config) -> Option<String> {
    config.sip.public_address.as_ref().map(|a| match a {
        crate::config::PublicAddress::Ip(ip) => crate::core::sip::endpoint::uri_host(*ip),
        crate::config::PublicAddress::Host(h) => h.clone(),
    })
}

/// How fast one source may start TLS handshakes: the global `flood_per_source` quota (its
/// default when unset), counted apart from the source's SIP requests.
pub(super) fn handshake_quota(config: &Config) -> crate::core::policy::Flood {
    policy(config)
        .global()
        .flood_per_source
        .unwrap_or(crate::core::policy::Flood {
            burst: 0,
            per_second: 0,
        })
}
