//! Test certificates for SIP over TLS: a CA and the leaf certificates it issues, written as
//! PEM files into a scratch directory (rcgen with ring), and TLS client/server configs that
//! trust that CA. Must not: trust anything else, or write outside the scratch directory.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    issued: u32,
}

/// A leaf certificate's files.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Leaf {
    /// The certificate chain and key from the files.
    fn read(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .expect("cert file")
            .collect::<Result<_, _>>()
            .expect("cert pem");
        let key = PrivateKeyDer::from_pem_file(&self.key).expect("key pem");
        (chain, key)
    }
}

impl Pki {
    /// A new CA (`ca.pem` in a fresh scratch directory).
    pub fn new() -> Pki {
        trunkgate::io::tls::install_default_provider();
        let dir = super::gw::scratch_dir("pki");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "trunkgate test CA");
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
        Pki { dir, ca, issued: 0 }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a certificate for `names` (DNS names or IP literals) into new files.
    pub fn leaf(&mut self, names: &[&str]) -> Leaf {
        self.issued += 1;
        let n = self.issued;
        let leaf = Leaf {
            cert: self.dir.join(format!("leaf{n}.pem")),
            key: self.dir.join(format!("leaf{n}.key")),
        };
        self.reissue(&leaf, names);
        leaf
    }

    /// Writes a new certificate and key for `names` over `leaf`'s files (a renewal).
    pub fn reissue(&self, leaf: &Leaf, names: &[&str]) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, "trunkgate test leaf");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("leaf certificate");
        std::fs::write(&leaf.cert, cert.pem()).expect("write cert");
        std::fs::write(&leaf.key, key.serialize_pem()).expect("write key");
    }

    /// A client config that trusts only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::new(self.client_builder().with_no_client_auth())
    }

    /// A client config that trusts only this CA and presents `leaf` as its certificate.
    pub fn client_config_with(&self, leaf: &Leaf) -> Arc<rustls::ClientConfig> {
        let (chain, key) = leaf.read();
        let config = self
            .client_builder()
            .with_client_auth_cert(chain, key)
            .expect("client certificate");
        Arc::new(config)
    }

    fn client_builder(
        &self,
    ) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("CA into roots");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
    }

    /// A server config presenting `leaf`.
    pub fn server_config(&self, leaf: &Leaf) -> Arc<rustls::ServerConfig> {
        let (chain, key) = leaf.read();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Arc::new(config)
    }
}
