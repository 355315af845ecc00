//! TLS: the quickstart over TLS, then mutual TLS (client certificates).
//!
//! At start the example makes its own certificates with rcgen: a CA, a
//! server certificate for `localhost` and a client certificate, all signed
//! by that CA. Then:
//!
//! 1. a server listens with `listen_tls`, a client dials it with `dial_tls`
//!    trusting the CA, and both pull and push as in the quickstart;
//! 2. dialing with the wrong server name, or trusting another CA, fails
//!    (status 105, dial failed);
//! 3. a second server requires client certificates: a client that presents
//!    one signed by the CA is served, one without is refused.
//!
//! In a real deployment the certificates come from files:
//! `jaunt::tls::server_config_from_pem` and `client_config_from_pem`.
//!
//! ```text
//! cargo run --example tls
//! ```

use std::error::Error;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::sync::mpsc;

// ----- certificates -----------------------------------------------------------

/// A certificate authority that signs the others.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and its key, as rustls wants them.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    /// The CA's certificate, for the other side to trust.
    fn cert(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A certificate for `names` (DNS names), for a server or a client.
    fn issue(
        &self,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<Identity, rcgen::Error> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            chain: vec![cert.der().clone(), self.cert()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

// ----- the peers, as in the quickstart ------------------------------------------

async fn add(_: PullCtx, numbers: Vec<i64>) -> Result<i64, Status> {
    Ok(numbers.iter().sum())
}

/// Push `/chat/msg`: answers with a push to `/notice`.
async fn chat_msg(ctx: PushCtx, text: String) -> Result<(), Status> {
    ctx.session()
        .push("/notice", &format!("got '{text}' over TLS"))
        .await
}

fn server() -> Result<Peer, Box<dyn Error>> {
    let mut routes = Router::new();
    routes.pull("/math/add", add)?.push("/chat/msg", chat_msg)?;
    Ok(Peer::new(routes))
}

fn client(notices: mpsc::Sender<String>) -> Result<Peer, Box<dyn Error>> {
    let mut routes = Router::new();
    routes.push("/notice", move |_: PushCtx, text: String| {
        let notices = notices.clone();
        async move {
            let _ = notices.send(text).await;
        }
    })?;
    Ok(Peer::new(routes))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The peers log refused handshakes at WARN; this example provokes some on
    // purpose, so by default it shows errors only (RUST_LOG=warn shows them).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();

    let ca = Ca::new("Jaunt example CA")?;
    let server_id = ca.issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth)?;
    let client_id = ca.issue(&["ann.example"], ExtendedKeyUsagePurpose::ClientAuth)?;
    println!("made a CA, a certificate for localhost and one for a client");

    // 1. TLS: the server proves who it is, the client trusts the CA.
    println!("\n1. TLS");
    let tls_server = server()?;
    let config =
        jaunt::tls::server_config(server_id.chain.clone(), server_id.key.clone_key(), None)?;
    let addr = tls_server.listen_tls("127.0.0.1:0", config).await?;
    println!("server: listening with TLS on {addr}");

    let (notice_tx, mut notices) = mpsc::channel(4);
    let peer = client(notice_tx.clone())?;
    let trusting = jaunt::tls::client_config(vec![ca.cert()], None)?;
    let session = peer.dial_tls(&addr, "localhost", trusting.clone()).await?;
    let sum: i64 = session.pull("/math/add", &vec![1, 2, 3]).await?.decode()?;
    println!("client: 1 + 2 + 3 = {sum}");
    session.push("/chat/msg", &"hello").await?;
    let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await?;
    println!("client: got push /notice {:?}", notice.unwrap_or_default());

    // 2. What TLS refuses.
    println!("\n2. refused dials");
    match peer.dial_tls(&addr, "example.com", trusting.clone()).await {
        Ok(_) => return Err("a certificate for localhost was accepted for example.com".into()),
        Err(status) => println!("client: wrong server name -> {status}"),
    }
    let other_ca = Ca::new("Some other CA")?;
    let untrusting = jaunt::tls::client_config(vec![other_ca.cert()], None)?;
    match peer.dial_tls(&addr, "localhost", untrusting).await {
        Ok(_) => return Err("a certificate of an untrusted CA was accepted".into()),
        Err(status) => println!("client: untrusted CA -> {status}"),
    }

    // 3. Mutual TLS: the server wants a client certificate signed by the CA.
    println!("\n3. mutual TLS");
    let mtls_server = server()?;
    let config = jaunt::tls::server_config(server_id.chain, server_id.key, Some(vec![ca.cert()]))?;
    let mtls_addr = mtls_server.listen_tls("127.0.0.1:0", config).await?;
    println!("server: listening with mutual TLS on {mtls_addr}");

    let with_cert =
        jaunt::tls::client_config(vec![ca.cert()], Some((client_id.chain, client_id.key)))?;
    let session = peer.dial_tls(&mtls_addr, "localhost", with_cert).await?;
    let sum: i64 = session.pull("/math/add", &vec![40, 2]).await?.decode()?;
    println!("client with a certificate: 40 + 2 = {sum}");

    // The server refuses a client without a certificate: the dial waits for
    // the server's verdict and fails with 105, naming the TLS alert.
    match peer.dial_tls(&mtls_addr, "localhost", trusting).await {
        Ok(_) => return Err("a client without a certificate was served".into()),
        Err(status) => println!("client without a certificate: {status}"),
    }

    peer.close().await;
    tls_server.close().await;
    mtls_server.close().await;
    println!("\ndone");
    Ok(())
}
