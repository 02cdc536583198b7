//! Client certificates per trunk (`[[trunk]] tls_client_ca`, `tls_client_names`): the CAs the
//! TLS listeners ask for, and each trunk's rule, loaded for the endpoint task, which checks an
//! admitted inbound call's connection against its trunk's rule.
//!
//! Owns: reading the CA files into rules (a file that cannot be used leaves its trunk refusing
//! every call: fail closed, and said so in the log; `--check-config` reports it before a
//! start). Must not: decide admission otherwise, or read files on the endpoint task's hot path
//! (rules are built at start and reload).

use std::collections::HashMap;
use std::path::Path;

use crate::config::Config;
use crate::io::client_cert::{ClientAuth, PeerCerts};

/// The CA files the listeners ask client certificates of (every trunk's).
pub fn client_cas(config: &Config) -> Vec<&Path> {
    config
        .trunks
        .iter()
        .filter_map(|t| t.tls_client_ca.as_deref())
        .collect()
}

/// Each trunk's rule, by trunk name; `None` for a trunk whose CA could not be loaded.
#[derive(Debug, Default)]
pub struct TrunkCerts {
    rules: HashMap<String, Option<ClientAuth>>,
}

impl TrunkCerts {
    pub fn load(config: &Config) -> TrunkCerts {
        let mut rules = HashMap::new();
        for t in &config.trunks {
            let Some(ca) = t.tls_client_ca.as_deref() else {
                continue;
            };
            let rule = match ClientAuth::load(ca, t.tls_client_names.clone()) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!(trunk = %t.name, error = %e, "tls_client_ca unusable: the trunk's calls are refused");
                    None
                }
            };
            rules.insert(t.name.clone(), rule);
        }
        TrunkCerts { rules }
    }

    /// Whether a call from `trunk` on a connection that presented `peer` may proceed; else
    /// why not. Trunks without `tls_client_ca` ask nothing.
    pub fn check(&self, trunk: Option<&str>, peer: Option<&PeerCerts>) -> Result<(), &'static str> {
        match trunk.and_then(|t| self.rules.get(t)) {
            None => Ok(()),
            Some(None) => Err("the trunk's tls_client_ca could not be loaded"),
            Some(Some(rule)) => rule.check(peer),
        }
    }
}
