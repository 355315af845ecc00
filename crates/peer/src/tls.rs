//! TLS with rustls: listening and dialing over TLS, optionally with client
//! certificates (mutual TLS), from PEM files or in-memory configs.

use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use jaunt_socket::Status;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{
    ClientConfig, ProtocolVersion, RootCertStore, ServerConfig, SignatureScheme,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::peer::{Conn, Upgrade};
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
    ///
    /// With mutual TLS, a server that refuses this client's certificate (or
    /// its lack of one) fails the dial too, with status 105 whose cause
    /// names the TLS alert (`received fatal alert: CertificateRequired`,
    /// `UnknownCA`, `BadCertificate`...). Under TLS 1.3 the client's side of
    /// the handshake ends before the server has judged the certificate, so
    /// when the server asked for one, the dial waits until the server shows
    /// it accepted the client: a session ticket (rustls and Go servers send
    /// them right after checking the certificate, so this costs about one
    /// round trip), application data (kept for the session), or an alert
    /// or end of stream (the dial fails). A server that sends neither
    /// tickets nor data is taken to have accepted after
    /// [`CLIENT_AUTH_WAIT`] (within the dial timeout); a refusal then shows
    /// as the session closing (102). TLS 1.2 and servers that ask for no
    /// certificate need no wait: the handshake itself carries the verdict.
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
        let conn = connect(&config, name, conn, &addr, self.config().dial_timeout).await?;
        let proto = self.proto_config_default();
        self.start_dialed(conn, proto, local, addr.clone(), redial)
            .await
    }
}

/// The longest a TLS 1.3 dial that was asked for a client certificate
/// waits for the server to show that it accepted it (see
/// [`Peer::dial_tls`]), when the server sends no session ticket. Within the
/// dial timeout.
pub const CLIENT_AUTH_WAIT: Duration = Duration::from_secs(1);

/// Runs the client side of a TLS handshake on `conn` within `timeout`,
/// and, when the server asked for a client certificate under TLS 1.3, waits
/// for its verdict (see [`Peer::dial_tls`]).
pub(crate) async fn connect(
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    conn: Conn,
    addr: &Addr,
    timeout: Duration,
) -> Result<Conn, Status> {
    let deadline = Instant::now() + timeout;
    // A copy of the config (its session cache is shared) whose certificate
    // resolver notes whether the server asked for a certificate.
    let asked = Arc::new(AtomicBool::new(false));
    let mut watched = ClientConfig::clone(config);
    watched.client_auth_cert_resolver = Arc::new(AskedFor {
        inner: watched.client_auth_cert_resolver.clone(),
        asked: asked.clone(),
    });
    let connector = TlsConnector::from(Arc::new(watched));
    match conn {
        Conn::Tcp(tcp) => handshake(connector, name, tcp, &asked, addr, deadline).await,
        Conn::Unix(unix) => handshake(connector, name, unix, &asked, addr, deadline).await,
        Conn::Other(_) => Err(Status::dial_failed(
            "tls over this connection is not supported",
        )),
    }
}

async fn handshake<IO>(
    connector: TlsConnector,
    name: ServerName<'static>,
    io: IO,
    asked: &AtomicBool,
    addr: &Addr,
    deadline: Instant,
) -> Result<Conn, Status>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let failed =
        |e: std::io::Error| Status::dial_failed(format!("tls handshake with {addr} failed: {e}"));
    let mut tls = tokio::time::timeout_at(deadline, connector.connect(name, io))
        .await
        .map_err(|_| Status::dial_failed(format!("tls handshake with {addr} timed out")))?
        .map_err(failed)?;
    let tls13 = tls.get_ref().1.protocol_version() == Some(ProtocolVersion::TLSv1_3);
    if !(tls13 && asked.load(Ordering::Acquire)) {
        return Ok(Conn::Other(Box::new(tls)));
    }
    let wait_until = deadline.min(Instant::now() + CLIENT_AUTH_WAIT);
    match tokio::time::timeout_at(wait_until, accepted(&mut tls)).await {
        Ok(Ok(early)) if early.is_empty() => Ok(Conn::Other(Box::new(tls))),
        Ok(Ok(early)) => Ok(Conn::Other(Box::new(Replay {
            early,
            pos: 0,
            inner: tls,
        }))),
        Ok(Err(e)) => Err(Status::dial_failed(format!(
            "tls handshake with {addr} failed: the server refused the client after asking for its certificate: {e}"
        ))),
        Err(_) => {
            tracing::debug!(%addr, "no session ticket from the server: its client-certificate verdict is not known yet");
            Ok(Conn::Other(Box::new(tls)))
        }
    }
}

/// Reads until the server shows it accepted the client: a TLS 1.3 session
/// ticket (returns no bytes) or application data (returns it). An alert or
/// the end of the stream is the error.
async fn accepted<IO>(tls: &mut tokio_rustls::client::TlsStream<IO>) -> std::io::Result<Vec<u8>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 << 10];
    let n = std::future::poll_fn(|cx| {
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(&mut *tls).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )))
            }
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Everything readable was processed; a ticket may have been.
            Poll::Pending if tls.get_ref().1.tls13_tickets_received() > 0 => Poll::Ready(Ok(0)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await?;
    buf.truncate(n);
    Ok(buf)
}

/// A client-certificate resolver that notes whether it was asked (the
/// server sent a CertificateRequest).
#[derive(Debug)]
struct AskedFor {
    inner: Arc<dyn ResolvesClientCert>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for AskedFor {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Release);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// A stream that first yields the bytes read from it while the dial waited
/// for the server's verdict, then reads on.
struct Replay<S> {
    early: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.early.len() {
            let n = buf.remaining().min(this.early.len() - this.pos);
            buf.put_slice(&this.early[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.early.len() {
                this.early = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
