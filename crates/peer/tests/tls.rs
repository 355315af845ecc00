//! TLS with certificates generated at run time: server authentication, a
//! client trusting another CA, a wrong server name, mutual TLS with and
//! without a client certificate, and the PEM-file helpers.
#![cfg(feature = "tls")]

mod common;

use std::time::Duration;

use common::{tcp_server, wait_sessions, within};
use jaunt_peer::tls::rustls;
use jaunt_peer::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use jaunt_peer::tls::{
    client_config, client_config_from_pem, server_config, server_config_from_pem,
};
use jaunt_peer::{Addr, Peer, PeerError, PullCtx, Router};
use jaunt_socket::{code, Status};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// A certificate authority generated for the test.
struct Ca {
    cert: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A leaf certificate for `names`, for a server or a client.
    fn leaf(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert, key }
    }
}

struct Leaf {
    cert: Certificate,
    key: KeyPair,
}

impl Leaf {
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert.der().clone()]
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

/// Answers with the text it got and the server-side session id.
fn hello_routes() -> Router {
    let mut routes = Router::new();
    routes
        .pull("/hello", |ctx: PullCtx, name: String| async move {
            Ok::<_, Status>(format!("hello {name} via {}", ctx.session().id()))
        })
        .unwrap();
    routes
}

async fn tls_server(config: std::sync::Arc<jaunt_peer::tls::rustls::ServerConfig>) -> (Peer, Addr) {
    let server = Peer::new(hello_routes());
    let addr = server.listen_tls("127.0.0.1:0", config).await.unwrap();
    (server, addr)
}

/// A client trusting the CA reaches a server with a certificate for
/// "localhost"; a client trusting another CA, or checking another name,
/// fails to dial with 105 and a reason naming the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_authentication() {
    within(async {
        let ca = Ca::new("Jaunt test CA");
        let server_leaf = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let (server, addr) =
            tls_server(server_config(server_leaf.chain(), server_leaf.key(), None).unwrap()).await;

        let client = Peer::new(Router::new());
        let trusting = client_config(vec![ca.der()], None).unwrap();
        let s = client
            .dial_tls(&addr, "localhost", trusting.clone())
            .await
            .unwrap();
        let text: String = s.pull("/hello", &"tls").await.unwrap().decode().unwrap();
        assert_eq!(text, format!("hello tls via {}", s.local_addr()));
        let s2 = client
            .dial_tls(&addr, "localhost", trusting.clone())
            .await
            .unwrap();
        let text: String = s2.pull("/hello", &"again").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello again via "), "{text}");
        wait_sessions(&server, 2).await;

        // A client that trusts another CA.
        let other = Ca::new("Some other CA");
        let distrusting = client_config(vec![other.der()], None).unwrap();
        let err = client
            .dial_tls(&addr, "localhost", distrusting)
            .await
            .unwrap_err();
        println!("dialing with another CA: {err}");
        assert_eq!(err.code(), code::DIAL_FAILED);
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );

        // The right CA but another name than the certificate's.
        let err = client
            .dial_tls(&addr, "example.com", trusting)
            .await
            .unwrap_err();
        println!("dialing with another server name: {err}");
        assert_eq!(err.code(), code::DIAL_FAILED);
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );

        // Failed handshakes leave no session behind on either side, and the
        // good sessions still work.
        assert_eq!(client.session_count(), 2);
        wait_sessions(&server, 2).await;
        let text: String = s.pull("/hello", &"still").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello still"));

        // A plain-TCP client talking to the TLS port gets nothing useful back.
        let plain = Peer::new(Router::new());
        let p = plain.dial(&addr).await.unwrap();
        let outcome =
            tokio::time::timeout(Duration::from_secs(3), p.pull("/hello", &"clear")).await;
        assert!(
            !matches!(outcome, Ok(Ok(_))),
            "a clear-text pull was answered over TLS"
        );

        plain.close().await;
        client.close().await;
        server.close().await;
    })
    .await;
}

/// Mutual TLS: a client with a certificate from the CA is served; a client
/// without one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls() {
    within(async {
        let ca = Ca::new("Jaunt mTLS CA");
        let server_leaf = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let client_leaf = ca.leaf(&["client-1"], ExtendedKeyUsagePurpose::ClientAuth);
        let cfg =
            server_config(server_leaf.chain(), server_leaf.key(), Some(vec![ca.der()])).unwrap();
        let (server, addr) = tls_server(cfg).await;

        let client = Peer::new(Router::new());
        let with_cert = client_config(
            vec![ca.der()],
            Some((client_leaf.chain(), client_leaf.key())),
        )
        .unwrap();
        let s = client
            .dial_tls(&addr, "localhost", with_cert)
            .await
            .unwrap();
        let text: String = s.pull("/hello", &"mtls").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello mtls via "), "{text}");
        wait_sessions(&server, 1).await;

        // A certificate from another CA is refused as well as none at all.
        let stranger_ca = Ca::new("Stranger CA");
        let stranger = stranger_ca.leaf(&["client-2"], ExtendedKeyUsagePurpose::ClientAuth);
        let configs = [
            (
                "no client certificate",
                client_config(vec![ca.der()], None).unwrap(),
            ),
            (
                "a certificate from another CA",
                client_config(vec![ca.der()], Some((stranger.chain(), stranger.key()))).unwrap(),
            ),
        ];
        for (what, config) in configs {
            // The server's verdict comes after the client's side of a TLS 1.3
            // handshake: the dial waits for it and fails with the alert.
            let err = client
                .dial_tls(&addr, "localhost", config)
                .await
                .expect_err("a client without an accepted certificate dialed");
            println!("mTLS with {what}: {err}");
            assert_eq!(err.code(), code::DIAL_FAILED, "{what}: {err}");
            let cause = err.cause().unwrap_or_default();
            assert!(cause.contains("received fatal alert"), "{what}: {cause}");
        }
        assert_eq!(client.session_count(), 1);
        // Only the authenticated session exists on the server.
        wait_sessions(&server, 1).await;
        let text: String = s.pull("/hello", &"still").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello still"));

        client.close().await;
        server.close().await;
    })
    .await;
}

/// `server_config_from_pem` and `client_config_from_pem` read PEM files;
/// missing or empty files are errors naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_configs_from_pem_files() {
    within(async {
        let ca = Ca::new("Jaunt PEM CA");
        let server_leaf = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let client_leaf = ca.leaf(&["client-pem"], ExtendedKeyUsagePurpose::ClientAuth);

        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(path("server.pem"), server_leaf.cert.pem()).unwrap();
        std::fs::write(path("server.key"), server_leaf.key.serialize_pem()).unwrap();
        std::fs::write(path("client.pem"), client_leaf.cert.pem()).unwrap();
        std::fs::write(path("client.key"), client_leaf.key.serialize_pem()).unwrap();
        std::fs::write(path("empty.pem"), "").unwrap();

        let server_cfg = server_config_from_pem(
            path("server.pem"),
            path("server.key"),
            Some(&path("ca.pem")),
        )
        .unwrap();
        let (server, addr) = tls_server(server_cfg).await;
        let client = Peer::new(Router::new());
        let client_cfg = client_config_from_pem(
            path("ca.pem"),
            Some((path("client.pem").as_path(), path("client.key").as_path())),
        )
        .unwrap();
        let s = client
            .dial_tls(&addr, "localhost", client_cfg)
            .await
            .unwrap();
        let text: String = s.pull("/hello", &"pem").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello pem via "), "{text}");

        // Errors name the file.
        let missing = path("missing.pem");
        match server_config_from_pem(&missing, path("server.key"), None) {
            Err(PeerError::Tls(msg)) => assert!(msg.contains("missing.pem"), "{msg}"),
            other => panic!("expected a TLS error, got {other:?}"),
        }
        match client_config_from_pem(path("empty.pem"), None) {
            Err(PeerError::Tls(msg)) => {
                assert!(
                    msg.contains("empty.pem") && msg.contains("no certificate"),
                    "{msg}"
                )
            }
            other => panic!("expected a TLS error, got {other:?}"),
        }
        // A certificate file where the key should be.
        assert!(matches!(
            server_config_from_pem(path("server.pem"), path("server.pem"), None),
            Err(PeerError::Tls(_))
        ));

        client.close().await;
        server.close().await;
    })
    .await;
}

/// A TLS listener and a plain one on the same peer serve the same routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_plain_listeners_on_one_peer() {
    within(async {
        let ca = Ca::new("Jaunt dual CA");
        let leaf = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let (server, plain_addr) = tcp_server(hello_routes()).await;
        let tls_addr = server
            .listen_tls(
                "127.0.0.1:0",
                server_config(leaf.chain(), leaf.key(), None).unwrap(),
            )
            .await
            .unwrap();
        let client = Peer::new(Router::new());
        let a = client.dial(&plain_addr).await.unwrap();
        let b = client
            .dial_tls(
                &tls_addr,
                "localhost",
                client_config(vec![ca.der()], None).unwrap(),
            )
            .await
            .unwrap();
        let ta: String = a.pull("/hello", &"a").await.unwrap().decode().unwrap();
        let tb: String = b.pull("/hello", &"b").await.unwrap().decode().unwrap();
        assert!(ta.starts_with("hello a via ") && tb.starts_with("hello b via "));
        wait_sessions(&server, 2).await;

        client.close().await;
        server.close().await;
    })
    .await;
}

/// TLS from `PeerConfig::tls` (PEM files): plain `listen` and `dial` speak
/// TLS; a client without TLS cannot talk to that server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_the_peer_config() {
    within(async {
        let ca = Ca::new("Jaunt config CA");
        let leaf = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(path("server.pem"), leaf.cert.pem()).unwrap();
        std::fs::write(path("server.key"), leaf.key.serialize_pem()).unwrap();

        let server_cfg: jaunt_peer::PeerConfig = serde_json::from_value(serde_json::json!({
            "tls": { "cert": path("server.pem"), "key": path("server.key") }
        }))
        .unwrap();
        let server = Peer::builder(hello_routes())
            .config(server_cfg)
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();

        let client_cfg: jaunt_peer::PeerConfig = serde_json::from_value(serde_json::json!({
            "tls": { "ca": path("ca.pem"), "server_name": "localhost" }
        }))
        .unwrap();
        let client = Peer::builder(Router::new())
            .config(client_cfg)
            .build()
            .unwrap();
        let s = client.dial(&addr).await.unwrap();
        let text: String = s.pull("/hello", &"cfg").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello cfg via "), "{text}");

        // Without TLS the same server does not answer.
        let plain = Peer::new(Router::new());
        let failed = match plain.dial(&addr).await {
            Err(status) => status,
            Ok(s) => s
                .pull_with(
                    "/hello",
                    &"plain",
                    jaunt_peer::PullOptions::new().timeout(Duration::from_secs(3)),
                )
                .await
                .unwrap_err(),
        };
        assert!(
            [code::CONN_CLOSED, code::HANDLE_TIMEOUT, code::DIAL_FAILED].contains(&failed.code()),
            "{failed}"
        );

        // A key without a certificate is a configuration error.
        let half: jaunt_peer::PeerConfig = serde_json::from_value(serde_json::json!({
            "tls": { "key": path("server.key") }
        }))
        .unwrap();
        assert!(matches!(
            Peer::builder(Router::new()).config(half).build(),
            Err(PeerError::Tls(_))
        ));

        plain.close().await;
        client.close().await;
        server.close().await;
    })
    .await;
}

/// A mutual-TLS server and its CA, and a client CA it does not trust.
struct Mtls {
    ca: Ca,
    server_leaf: Leaf,
    client_leaf: Leaf,
    stranger: Leaf,
}

impl Mtls {
    fn new() -> Self {
        let ca = Ca::new("Jaunt mTLS CA 1");
        let stranger_ca = Ca::new("Jaunt mTLS CA 2");
        Self {
            server_leaf: ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth),
            client_leaf: ca.leaf(&["client-good"], ExtendedKeyUsagePurpose::ClientAuth),
            stranger: stranger_ca.leaf(&["client-bad"], ExtendedKeyUsagePurpose::ClientAuth),
            ca,
        }
    }

    fn server(&self) -> std::sync::Arc<rustls::ServerConfig> {
        server_config(
            self.server_leaf.chain(),
            self.server_leaf.key(),
            Some(vec![self.ca.der()]),
        )
        .unwrap()
    }

    /// A server that sends no TLS 1.3 session tickets.
    fn server_without_tickets(&self) -> std::sync::Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::clone(&self.server());
        config.send_tls13_tickets = 0;
        std::sync::Arc::new(config)
    }

    /// A server speaking TLS 1.2 only.
    fn server_tls12(&self) -> std::sync::Arc<rustls::ServerConfig> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.server_leaf.chain(), self.server_leaf.key())
            .unwrap();
        std::sync::Arc::new(config)
    }

    fn good(&self) -> std::sync::Arc<rustls::ClientConfig> {
        client_config(
            vec![self.ca.der()],
            Some((self.client_leaf.chain(), self.client_leaf.key())),
        )
        .unwrap()
    }

    fn other_ca_client(&self) -> std::sync::Arc<rustls::ClientConfig> {
        client_config(
            vec![self.ca.der()],
            Some((self.stranger.chain(), self.stranger.key())),
        )
        .unwrap()
    }

    fn without_cert(&self) -> std::sync::Arc<rustls::ClientConfig> {
        client_config(vec![self.ca.der()], None).unwrap()
    }
}

/// A TLS 1.3 server requiring client certificates from CA 1 refuses a
/// client whose certificate is from CA 2, and one without a certificate:
/// `dial_tls` (and `dial` from a `PeerConfig`) fails with 105 naming the
/// alert, and no session is left on either side. A good client dials and
/// pulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refusal_fails_the_dial_with_the_alert() {
    within(async {
        let mtls = Mtls::new();
        let (server, addr) = tls_server(mtls.server()).await;
        let client = Peer::new(Router::new());

        let err = client
            .dial_tls(&addr, "localhost", mtls.other_ca_client())
            .await
            .expect_err("a certificate from another CA was accepted");
        println!("a certificate from another CA: {err}");
        assert_eq!(err.code(), code::DIAL_FAILED);
        let cause = err.cause().unwrap();
        assert!(
            cause.contains("received fatal alert")
                && (cause.contains("UnknownCA") || cause.contains("BadCertificate")),
            "{cause}"
        );

        let err = client
            .dial_tls(&addr, "localhost", mtls.without_cert())
            .await
            .expect_err("a client without a certificate was accepted");
        println!("no certificate: {err}");
        assert_eq!(err.code(), code::DIAL_FAILED);
        assert!(
            err.cause().unwrap().contains("CertificateRequired"),
            "{err}"
        );
        assert_eq!(client.session_count(), 0);
        wait_sessions(&server, 0).await;

        let good = client
            .dial_tls(&addr, "localhost", mtls.good())
            .await
            .unwrap();
        let text: String = good.pull("/hello", &"ok").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello ok via "), "{text}");
        wait_sessions(&server, 1).await;

        client.close().await;
        server.close().await;
    })
    .await;
}

/// The same through `PeerConfig::tls` and plain `dial`: a client whose
/// certificate the server's CA did not sign fails to dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refusal_fails_a_configured_dial() {
    within(async {
        let mtls = Mtls::new();
        let (server, addr) = tls_server(mtls.server()).await;
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), mtls.ca.cert.pem()).unwrap();
        std::fs::write(path("bad.pem"), mtls.stranger.cert.pem()).unwrap();
        std::fs::write(path("bad.key"), mtls.stranger.key.serialize_pem()).unwrap();
        let config: jaunt_peer::PeerConfig = serde_json::from_value(serde_json::json!({
            "tls": {
                "ca": path("ca.pem"), "cert": path("bad.pem"), "key": path("bad.key"),
                "server_name": "localhost"
            }
        }))
        .unwrap();
        let client = Peer::builder(Router::new()).config(config).build().unwrap();
        let err = client.dial(&addr).await.unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED);
        assert!(
            err.cause().unwrap().contains("received fatal alert"),
            "{err}"
        );
        client.close().await;
        server.close().await;
    })
    .await;
}

/// Waiting for the server's verdict costs about a round trip, not a timer:
/// ten good mutual-TLS dials take far less than one `CLIENT_AUTH_WAIT`
/// each (the wait ends on the server's session ticket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_dials_are_not_slowed_by_the_verdict_wait() {
    within(async {
        let mtls = Mtls::new();
        let (server, addr) = tls_server(mtls.server()).await;
        let client = Peer::new(Router::new());
        let config = mtls.good();
        let dials = 10;
        let start = std::time::Instant::now();
        for _ in 0..dials {
            let s = client
                .dial_tls(&addr, "localhost", config.clone())
                .await
                .unwrap();
            s.close();
        }
        let took = start.elapsed();
        println!("{dials} mTLS dials took {took:?}");
        assert!(
            took < jaunt_peer::tls::CLIENT_AUTH_WAIT * dials / 3,
            "{dials} dials took {took:?}: the wait did not end on the session ticket"
        );
        client.close().await;
        server.close().await;
    })
    .await;
}

/// A server that sends no session ticket: a good client is taken as
/// accepted after at most `CLIENT_AUTH_WAIT` and pulls work; a refused one
/// is refused by the alert within that wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_server_without_tickets() {
    within(async {
        let mtls = Mtls::new();
        let (server, addr) = tls_server(mtls.server_without_tickets()).await;
        let client = Peer::new(Router::new());
        let start = std::time::Instant::now();
        let s = client
            .dial_tls(&addr, "localhost", mtls.good())
            .await
            .unwrap();
        let took = start.elapsed();
        assert!(
            took < jaunt_peer::tls::CLIENT_AUTH_WAIT + Duration::from_secs(2),
            "{took:?}"
        );
        let text: String = s.pull("/hello", &"t").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello t via "), "{text}");

        let err = client
            .dial_tls(&addr, "localhost", mtls.without_cert())
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED);
        assert!(
            err.cause().unwrap().contains("CertificateRequired"),
            "{err}"
        );
        client.close().await;
        server.close().await;
    })
    .await;
}

struct Welcome;

#[async_trait::async_trait]
impl jaunt_peer::RoutePlugin for Welcome {
    fn name(&self) -> &str {
        "welcome"
    }
}

#[async_trait::async_trait]
impl jaunt_peer::Plugin for Welcome {
    async fn post_accept(&self, session: &jaunt_peer::Session) -> Result<(), Status> {
        session.push("/welcome", &"first words").await
    }
}

/// A server that speaks first (a push as soon as the connection is up) and
/// sends no ticket: its message ends the dial's wait and is not lost — the
/// client's push route gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_data_read_while_waiting_is_kept() {
    within(async {
        let mtls = Mtls::new();
        let server = Peer::builder(hello_routes())
            .plugin(Welcome)
            .build()
            .unwrap();
        let addr = server
            .listen_tls("127.0.0.1:0", mtls.server_without_tickets())
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let mut routes = Router::new();
        routes
            .push("/welcome", move |_: jaunt_peer::PushCtx, text: String| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(text).await;
                }
            })
            .unwrap();
        let client = Peer::new(routes);
        let start = std::time::Instant::now();
        let s = client
            .dial_tls(&addr, "localhost", mtls.good())
            .await
            .unwrap();
        let took = start.elapsed();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the server's first push was lost");
        assert_eq!(got.as_deref(), Some("first words"));
        assert!(
            took < jaunt_peer::tls::CLIENT_AUTH_WAIT,
            "the dial took {took:?}: the server's data did not end the wait"
        );
        let text: String = s.pull("/hello", &"after").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello after via "), "{text}");
        client.close().await;
        server.close().await;
    })
    .await;
}

/// TLS 1.2: the handshake itself carries the server's verdict; a refused
/// client fails to dial, a good one dials and pulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_over_tls12() {
    within(async {
        let mtls = Mtls::new();
        let (server, addr) = tls_server(mtls.server_tls12()).await;
        let client = Peer::new(Router::new());
        for config in [mtls.other_ca_client(), mtls.without_cert()] {
            let err = client
                .dial_tls(&addr, "localhost", config)
                .await
                .unwrap_err();
            println!("TLS 1.2 refusal: {err}");
            assert_eq!(err.code(), code::DIAL_FAILED);
        }
        let s = client
            .dial_tls(&addr, "localhost", mtls.good())
            .await
            .unwrap();
        let text: String = s.pull("/hello", &"12").await.unwrap().decode().unwrap();
        assert!(text.starts_with("hello 12 via "), "{text}");
        client.close().await;
        server.close().await;
    })
    .await;
}

/// Over TLS the wire counters count the frames inside the encryption: both
/// sides agree, frame for frame and byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sessions_count_their_frames() {
    within(async {
        let ca = Ca::new("Jaunt test CA");
        let leaf = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let (server, addr) =
            tls_server(server_config(leaf.chain(), leaf.key(), None).unwrap()).await;
        let client = Peer::new(Router::new());
        let config = client_config(vec![ca.der()], None).unwrap();
        let session = client.dial_tls(&addr, "localhost", config).await.unwrap();
        for n in 0..3 {
            let name = "n".repeat(n * 5000);
            let _: String = session
                .pull("/hello", &name)
                .await
                .unwrap()
                .decode()
                .unwrap();
        }
        wait_sessions(&server, 1).await;
        let served = server.sessions().remove(0);
        let mut same = false;
        for _ in 0..400 {
            let (c, s) = (session.stats(), served.stats());
            if (
                c.sent_bytes,
                c.received_bytes,
                c.sent_frames,
                c.received_frames,
            ) == (
                s.received_bytes,
                s.sent_bytes,
                s.received_frames,
                s.sent_frames,
            ) {
                same = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (c, s) = (session.stats(), served.stats());
        assert!(same, "client {c:?} vs server {s:?}");
        assert_eq!((c.sent_frames, c.received_frames), (3, 3));
        assert!(c.sent_bytes > 10_000 && c.received_bytes > 10_000);
        client.close().await;
        server.close().await;
    })
    .await;
}
