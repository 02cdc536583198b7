//! SIP over TLS (RFC 3261 §26.2, RFC 5630): listeners whose certificate is swapped on reload
//! without touching open connections, per-source connection and handshake limits with a
//! handshake timeout (so a slow or half-open client cannot pin the daemon), and connections
//! toward trunks (SNI, chain verified, host name checked unless a trunk turns it off).
//! Framing, keep-alives and the writer are `sip_tcp`'s, generic over the stream.
//!
//! Must not: parse SIP or decide anything about calls.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::conn_limit::ConnLimits;
use super::sip_tcp::{next_conn_id, serve, spawn_dial, CONNECT_TIMEOUT};
use super::tls::{read_cert_chain, read_private_key, roots, TlsError};
use super::TransportEvent;
use crate::core::sip::message::Limits;
use crate::core::{Flow, Transport};

/// Handshake buckets are swept of idle sources this often (checked on accept).
const EVICT_EVERY: Duration = Duration::from_secs(60);

/// The listeners' side: the acceptor in force and the handshake timeout, both swapped by
/// [`ServerTls::reload`]. A connection keeps the certificate it was accepted with.
pub struct ServerTls {
    current: RwLock<(TlsAcceptor, Duration)>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Reads and checks the certificate chain and key (errors name the file, never its
    /// content).
    /// `client_cas`: the CAs whose client certificates are asked for (none: not asked).
    pub fn load(
        cert: &Path,
        key: &Path,
        client_cas: &[&Path],
        handshake_timeout: Duration,
    ) -> Result<Self, TlsError> {
        Ok(ServerTls {
            current: RwLock::new((acceptor(cert, key, client_cas)?, handshake_timeout)),
        })
    }

    /// Swaps in the files' current content; on error the old certificate stays in force.
    pub fn reload(
        &self,
        cert: &Path,
        key: &Path,
        client_cas: &[&Path],
        handshake_timeout: Duration,
    ) -> Result<(), TlsError> {
        let next = acceptor(cert, key, client_cas)?;
        if let Ok(mut cur) = self.current.write() {
            *cur = (next, handshake_timeout);
        }
        Ok(())
    }

    fn current(&self) -> Option<(TlsAcceptor, Duration)> {
        self.current.read().ok().map(|c| c.clone())
    }
}

fn acceptor(cert: &Path, key: &Path, client_cas: &[&Path]) -> Result<TlsAcceptor, TlsError> {
    let chain = read_cert_chain(cert)?;
    let key = read_private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
    let builder = match super::client_cert::listener_verifier(client_cas)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections until the endpoint is gone. Before any handshake work a new
/// connection must fit its source's connection limit and handshake quota ([`ConnLimits`]);
/// otherwise it is closed unanswered. A handshake not done within the timeout is dropped.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    guard: Arc<ConnLimits>,
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) {
    let mut swept = Instant::now();
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let now = Instant::now();
                if now.duration_since(swept) >= EVICT_EVERY {
                    guard.evict_idle(now);
                    swept = now;
                }
                let Some(slot) = guard.admit(remote.ip()) else {
                    tracing::debug!(%remote, "tls connection over the per-source limit, closed");
                    continue;
                };
                if !guard.handshake_allowed(remote.ip(), now) {
                    tracing::debug!(%remote, "tls handshakes over the per-source quota, closed");
                    continue;
                }
                let Some((acceptor, timeout)) = tls.current() else {
                    continue;
                };
                let (limits, events) = (limits.clone(), events.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let _ = stream.set_nodelay(true);
                    let Ok(local) = stream.local_addr() else {
                        return;
                    };
                    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "tls handshake timed out");
                            return;
                        }
                    };
                    let flow = Flow {
                        transport: Transport::Tls,
                        local,
                        remote,
                        conn: Some(next_conn_id()),
                    };
                    let peer = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
                    serve(stream, flow, mpsc::channel(64), limits, events, peer).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "tls accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if events.is_closed() {
            return;
        }
    }
}

/// Client configs for connections toward trunks: one that checks the peer's name, one that
/// verifies the chain only (for trunks addressed by IP whose certificate names a host).
#[derive(Clone)]
pub struct ClientTls {
    checked: TlsConnector,
    chain_only: TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// System roots plus `extra_ca` (PEM).
    pub fn new(extra_ca: Option<&Path>) -> Result<ClientTls, TlsError> {
        let roots = Arc::new(roots(extra_ca)?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let checked = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        let chain_only = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
            .with_no_client_auth();
        Ok(ClientTls {
            checked: TlsConnector::from(Arc::new(checked)),
            chain_only: TlsConnector::from(Arc::new(chain_only)),
        })
    }
}

/// Opens a TLS connection toward `remote` (SNI and, with `check_name`, the certificate check
/// against `name`: a host name or an IP literal) and returns its id and writer at once, like
/// `sip_tcp::dial`. A failed connect or handshake is reported as the connection's close.
pub fn dial(
    remote: SocketAddr,
    name: &str,
    check_name: bool,
    tls: &ClientTls,
    limits: Limits,
    events: mpsc::Sender<TransportEvent>,
) -> (u64, mpsc::Sender<Vec<u8>>) {
    let connector = if check_name {
        tls.checked.clone()
    } else {
        tls.chain_only.clone()
    };
    let server_name =
        ServerName::try_from(name.to_owned()).unwrap_or_else(|_| ServerName::from(remote.ip()));
    let connect = async move {
        let connected = async {
            let tcp = TcpStream::connect(remote).await?;
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr()?;
            let tls = connector.connect(server_name, tcp).await?;
            Ok::<_, std::io::Error>((tls, local))
        };
        // Connect and handshake, each bounded like a TCP connect.
        let result = tokio::time::timeout(CONNECT_TIMEOUT + CONNECT_TIMEOUT, connected)
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "timed out",
                ))
            });
        // A certificate the trunk should not have is the operator's to see.
        if let Err(e) = &result {
            tracing::warn!(%remote, error = %e, "tls connection toward the trunk failed");
        }
        result
    };
    spawn_dial(remote, Transport::Tls, connect, limits, events)
}

/// Verifies the chain (and signatures) like the default verifier, but accepts a certificate
/// that does not name the peer. webpki checks the chain before the name, so a name mismatch
/// is only reported for an otherwise valid chain.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
