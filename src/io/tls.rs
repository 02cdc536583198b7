//! TLS client configuration shared by every outgoing connection (agent WebSockets, webhooks,
//! callbacks, SIP toward trunks): rustls with the ring provider, the system's root certificates, and optionally
//! an extra CA file (private PKI, tests).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot use {what} {path}: {reason}")]
    Pem {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain (PEM, leaf first) for a TLS listener: at least one certificate.
pub fn read_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    read_pem_certs("certificate file", path)
}

/// The certificates of a PEM file (at least one), errors naming `what` and the file.
fn read_pem_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Pem {
        what,
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in file".into()));
    }
    Ok(certs)
}

/// The private key (PEM: PKCS#8, PKCS#1 or SEC1) for a TLS listener. Errors name the file,
/// never its content.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        what: "private key file",
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Builds the client config: system roots (those that parse) plus `extra_ca` (PEM, one or
/// more certificates).
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = roots(extra_ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Trust anchors from CA files only (PEM, one or more each): client-certificate CAs.
pub(crate) fn ca_roots(files: &[&Path]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for path in files {
        add_ca_file(&mut roots, path)?;
    }
    Ok(roots)
}

/// Every certificate of a CA file (PEM, at least one) into `roots`; errors name the file.
fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    for cert in read_pem_certs("CA file", path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            what: "CA file",
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// The trust anchors: system roots (those that parse) plus `extra_ca` (PEM, one or more).
pub(crate) fn roots(extra_ca: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in native_roots() {
        let _ = roots.add(cert.clone());
    }
    if let Some(path) = extra_ca {
        add_ca_file(&mut roots, path)?;
    }
    Ok(roots)
}

/// The system's root certificates, read and parsed once per process (about 18 M instructions
/// for Debian's bundle; every client config shares them).
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// Installs ring as the process-wide default provider (for libraries that ask for it).
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
