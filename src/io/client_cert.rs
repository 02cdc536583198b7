//! Client certificates on SIP over TLS: what the listeners ask of a client (a certificate
//! issued by any trunk's `tls_client_ca`, optional so that other peers still connect) and the
//! per-trunk rule checked at admission: the chain verified against that trunk's own CA (a
//! certificate from another trunk's CA does not pass), and, when the trunk names them, one of
//! its DNS names on the leaf.
//!
//! Must not: decide anything about calls (admission refuses, with the reason this returns), or
//! put certificate contents into an error.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};

use super::tls::{ca_roots, TlsError};

/// A client's certificate chain, leaf first, as its TLS handshake presented it.
pub type PeerCerts = Arc<[CertificateDer<'static>]>;

/// The listeners' verifier: any of `cas` may have issued a client's certificate, and a client
/// may send none. `None` when no CA is given (then no certificate is asked for).
pub fn listener_verifier(cas: &[&Path]) -> Result<Option<Arc<dyn ClientCertVerifier>>, TlsError> {
    if cas.is_empty() {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(ca_roots(cas)?), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
    Ok(Some(verifier))
}

/// One trunk's rule.
pub struct ClientAuth {
    verifier: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl ClientAuth {
    /// The trunk's CA file and the names its clients' certificates may carry (empty: any).
    pub fn load(ca: &Path, names: Vec<String>) -> Result<ClientAuth, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(ca_roots(&[ca])?), provider)
                .build()
                .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        Ok(ClientAuth { verifier, names })
    }

    /// Whether `peer` satisfies the rule; else why not (for the log and the record).
    pub fn check(&self, peer: Option<&PeerCerts>) -> Result<(), &'static str> {
        let Some((leaf, intermediates)) = peer.and_then(|p| p.split_first()) else {
            return Err("no client certificate");
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|_| "client certificate not issued by the trunk's CA")?;
        if self.names.is_empty() {
            return Ok(());
        }
        let parsed =
            ParsedCertificate::try_from(leaf).map_err(|_| "client certificate unreadable")?;
        let named = self.names.iter().any(|n| {
            ServerName::try_from(n.as_str())
                .is_ok_and(|name| rustls::client::verify_server_name(&parsed, &name).is_ok())
        });
        match named {
            true => Ok(()),
            false => Err("client certificate names none of the trunk's tls_client_names"),
        }
    }
}
