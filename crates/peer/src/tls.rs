//! TLS with rustls: listening and dialing over TLS, optionally with client
//! certificates (mutual TLS), from PEM files or in-memory configs.

use std::path::Path;
use std::sync::Arc;

use jaunt_socket::Status;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::peer::Upgrade;
use crate::{Addr, Peer, PeerError, Session, ToAddr};

pub use tokio_rustls::rustls;

fn tls_err(e: impl std::fmt::Display) -> PeerError {
    PeerError::Tls(e.to_string())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(pem: &Path) -> Result<Vec<CertificateDer<'static>>, PeerError> {
    let certs = CertificateDer::pem_file_iter(pem)
        .map_err(|e| tls_err(format!("{}: {e}", pem.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(format!("{}: {e}", pem.display())))?;
    if certs.is_empty() {
        return Err(tls_err(format!("{}: no certificate found", pem.display())));
    }
    Ok(certs)
}

fn load_key(pem: &Path) -> Result<PrivateKeyDer<'static>, PeerError> {
    PrivateKeyDer::from_pem_file(pem).map_err(|e| tls_err(format!("{}: {e}", pem.display())))
}

fn roots(certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore, PeerError> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(tls_err)?;
    }
    Ok(roots)
}

/// A server config from PEM certificate chain and key; with `client_ca`,
/// clients must present a certificate signed by it (mutual TLS).
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<Vec<CertificateDer<'static>>>,
) -> Result<Arc<ServerConfig>, PeerError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(tls_err)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(
        builder.with_single_cert(certs, key).map_err(tls_err)?,
    ))
}

/// [`server_config`] from PEM files.
pub fn server_config_from_pem(
    cert_chain: impl AsRef<Path>,
    key: impl AsRef<Path>,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, PeerError> {
    let ca = client_ca.map(load_certs).transpose()?;
    server_config(
        load_certs(cert_chain.as_ref())?,
        load_key(key.as_ref())?,
        ca,
    )
}

/// A client config trusting `ca`; with `identity` (certificate chain and
/// key), the client authenticates itself (mutual TLS).
pub fn client_config(
    ca: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, PeerError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots(ca)?);
    let config = match identity {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(tls_err)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// [`client_config`] from PEM files.
pub fn client_config_from_pem(
    ca: impl AsRef<Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, PeerError> {
    let identity = identity
        .map(|(certs, key)| Ok::<_, PeerError>((load_certs(certs)?, load_key(key)?)))
        .transpose()?;
    client_config(load_certs(ca.as_ref())?, identity)
}

impl Peer {
    /// Listens like [`listen`](Peer::listen), serving TLS.
    pub async fn listen_tls(
        &self,
        addr: impl ToAddr,
        config: Arc<ServerConfig>,
    ) -> Result<Addr, PeerError> {
        let proto = self.proto_config_default();
        self.listen_inner(
            addr.to_addr()?,
            proto,
            Upgrade::TlsServer(TlsAcceptor::from(config)),
        )
        .await
    }

    /// Dials like [`dial`](Peer::dial), over TLS, checking that the server's
    /// certificate is valid for `server_name`. A failed handshake (wrong CA,
    /// wrong name) is status 105 with the reason.
    pub async fn dial_tls(
        &self,
        addr: impl ToAddr,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> Result<Session, Status> {
        let addr = addr
            .to_addr()
            .map_err(|e| Status::dial_failed(e.to_string()))?;
        let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
            Status::dial_failed(format!("invalid server name {server_name:?}: {e}"))
        })?;
        self.pre_dial(&addr, false).await?;
        let redial = self.redial_plan(
            &addr,
            crate::redial::Dialer::Tls {
                name: name.clone(),
                config: config.clone(),
            },
        );
        let (conn, local) = self.connect(&addr).await?;
        let connector = TlsConnector::from(config);
        let timeout = self.config().dial_timeout;
        let tls_failed = |e: std::io::Error| {
            Status::dial_failed(format!("tls handshake with {addr} failed: {e}"))
        };
        let proto = self.proto_config_default();
        let session = match conn {
            crate::peer::Conn::Tcp(tcp) => {
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| Status::dial_failed("tls handshake timed out"))?
                    .map_err(tls_failed)?;
                let conn = crate::peer::Conn::Other(Box::new(tls));
                self.start_dialed(conn, proto, local, addr.clone(), redial)
                    .await?
            }
            crate::peer::Conn::Unix(unix) => {
                let tls = tokio::time::timeout(timeout, connector.connect(name, unix))
                    .await
                    .map_err(|_| Status::dial_failed("tls handshake timed out"))?
                    .map_err(tls_failed)?;
                let conn = crate::peer::Conn::Other(Box::new(tls));
                self.start_dialed(conn, proto, local, addr.clone(), redial)
                    .await?
            }
            crate::peer::Conn::Other(_) => {
                return Err(Status::dial_failed(
                    "tls over this connection is not supported",
                ))
            }
        };
        // A server that rejects our certificate (mutual TLS) does so after the
        // client's side of the handshake completed; that shows up as the
        // connection closing at once.
        Ok(session)
    }
}
