//! `--check-config`'s second half: every file the configuration names (API token, webhook
//! secret, trunk passwords, transcription key, SMTP password, CA bundle, TLS certificate and
//! key) is read and parsed by the same rules the daemon applies at start, and each failure is
//! reported with its key path. Owns no state; must not open sockets, start tasks or print a
//! file's content.

use std::path::Path;

use crate::config::{read_secret_file, Config};
use crate::io::tls;

/// One line per file that would stop the daemon from starting, `key.path: why`; empty → all
/// named files are usable.
pub fn referenced_files(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let mut secret = |key: String, path: Option<&Path>| {
        if let Some(path) = path {
            if let Err(e) = read_secret_file(path) {
                problems.push(format!("{key}: {e}"));
            }
        }
    };
    secret("api.token_file".into(), config.api.token_file.as_deref());
    secret(
        "webhook.secret_file".into(),
        config.webhook.secret_file.as_deref(),
    );
    secret(
        "transcription.api_key_file".into(),
        config.transcription.api_key_file.as_deref(),
    );
    secret(
        "smtp.password_file".into(),
        config.smtp.password_file.as_deref(),
    );
    for (i, trunk) in config.trunks.iter().enumerate() {
        let path = trunk
            .outbound
            .as_ref()
            .and_then(|o| o.password_file.as_deref());
        secret(format!("trunk[{i}].outbound.password_file"), path);
    }
    for (i, trunk) in config.trunks.iter().enumerate() {
        if let Some(ca) = trunk.tls_client_ca.as_deref() {
            let rule = crate::io::client_cert::ClientAuth::load(ca, Vec::new());
            if let Err(e) = rule {
                problems.push(format!("trunk[{i}].tls_client_ca: {e}"));
            }
        }
    }
    if let Err(errors) = config.read_users() {
        problems.extend(errors);
    }
    if let Some(path) = config.agent.extra_ca_file.as_deref() {
        tls::install_default_provider();
        if let Err(e) = tls::client_config(Some(path)) {
            problems.push(format!("agent.extra_ca_file: {e}"));
        }
    }
    if let Some(files) = &config.sip.tls {
        let chain = tls::read_cert_chain(&files.cert_file);
        if let Err(e) = &chain {
            problems.push(format!("sip.tls.cert_file: {e}"));
        }
        match tls::read_private_key(&files.key_file) {
            Err(e) => problems.push(format!("sip.tls.key_file: {e}")),
            Ok(_) if chain.is_ok() => {
                // Both parse: the key must also belong to the certificate.
                let timeout = config.sip.tls_handshake_timeout;
                let cas = super::trunk_certs::client_cas(config);
                let loaded = crate::io::sip_tls::ServerTls::load(
                    &files.cert_file,
                    &files.key_file,
                    &cas,
                    timeout,
                );
                if let Err(e) = loaded {
                    problems.push(format!("sip.tls: {e}"));
                }
            }
            Ok(_) => {}
        }
    }
    if let Some(path) = config.sip.tls_ca_file.as_deref() {
        if let Err(e) = crate::io::sip_tls::ClientTls::new(Some(path)) {
            problems.push(format!("sip.tls.ca_file: {e}"));
        }
    }
    problems
}
