//! How every command dials: the address, credentials, heartbeat, TLS and a `PeerConfig`
//! file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use jaunt::tls::rustls::pki_types::CertificateDer;
use jaunt::{Peer, PeerConfig, Plugin, RoutePlugin, Router, Session, Status};
use jaunt_plugins::auth::Bearer;
use jaunt_plugins::heartbeat::{self, Ping};

use crate::exit::Failure;

/// The options every command dials with.
#[derive(Debug, Clone, Args)]
pub struct ConnectOpts {
    /// Authenticate with this token: Go erpc's auth handshake, the token sent as a JSON
    /// string (codec j).
    #[arg(long, value_name = "TOKEN", conflicts_with = "auth_json")]
    pub auth: Option<String>,
    /// Authenticate with these JSON credentials (any JSON value) instead of a token.
    #[arg(long, value_name = "JSON")]
    pub auth_json: Option<String>,
    /// Send a heartbeat after every SECS seconds of silence (Go erpc's heartbeat plugin).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat: Option<u64>,
    /// Speak TLS. The server's certificate must be signed by --ca, or else by a CA the
    /// system trusts.
    #[arg(long)]
    pub tls: bool,
    /// Trust servers whose certificate this CA (PEM) signed.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,
    /// Present this certificate chain (PEM) to the server (mutual TLS; needs --key and --ca).
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key", "ca"])]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "cert"])]
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host of ADDR).
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub server_name: Option<String>,
    /// Read the peer's settings (a Jaunt `PeerConfig`: timeouts, limits, TLS files...) from
    /// a TOML file, or JSON when the name ends in .json.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A client peer set up from [`ConnectOpts`], ready to dial.
pub struct Client {
    peer: Peer,
    opts: ConnectOpts,
    /// What the server answered to the credentials, when it refused them.
    auth_refusal: Arc<Mutex<Option<Status>>>,
}

impl ConnectOpts {
    /// Builds the client peer: `router` serves what the other side sends (the heartbeat
    /// routes are added to it).
    pub fn client(&self, mut router: Router) -> Result<Client, Failure> {
        let config = match &self.config {
            Some(path) => read_config(path)?,
            None => PeerConfig::default(),
        };
        heartbeat::routes(&mut router)
            .map_err(|e| Failure::Input(format!("cannot add the heartbeat routes: {e}")))?;
        let auth_refusal = Arc::new(Mutex::new(None));
        let mut builder = Peer::builder(router).config(config);
        if let Some(bearer) = self.bearer()? {
            builder = builder.plugin(AuthProbe {
                bearer,
                refusal: auth_refusal.clone(),
            });
        }
        if let Some(secs) = self.heartbeat {
            builder = builder.plugin(Ping::new(Duration::from_secs(secs)));
        }
        let peer = builder
            .build()
            .map_err(|e| Failure::Input(format!("bad peer configuration: {e}")))?;
        Ok(Client {
            peer,
            opts: self.clone(),
            auth_refusal,
        })
    }

    fn bearer(&self) -> Result<Option<Bearer>, Failure> {
        match (&self.auth, &self.auth_json) {
            (Some(token), _) => Ok(Some(Bearer::new(token.as_str()))),
            (None, Some(json)) => {
                let value: serde_json::Value = serde_json::from_str(json)
                    .map_err(|e| Failure::Input(format!("--auth-json is not JSON: {e}")))?;
                Ok(Some(Bearer::new(value)))
            }
            (None, None) => Ok(None),
        }
    }
}

impl Client {
    /// The client peer.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Dials `addr` (`host:port` or `unix:/path`), over TLS with `--tls`.
    pub async fn dial(&self, addr: &str) -> Result<Session, Failure> {
        let dialed = if self.opts.tls {
            let config = self.tls_config()?;
            let name = match &self.opts.server_name {
                Some(name) => name.clone(),
                None => host_of(addr),
            };
            self.peer.dial_tls(addr, &name, config).await
        } else {
            self.peer.dial(addr).await
        };
        dialed.map_err(
            |status| match self.auth_refusal.lock().expect("not poisoned").take() {
                Some(refusal) => Failure::Unauthorized(refusal),
                None => Failure::Status(status),
            },
        )
    }

    fn tls_config(&self) -> Result<Arc<jaunt::tls::rustls::ClientConfig>, Failure> {
        let tls_error = |e: jaunt::PeerError| Failure::Input(format!("TLS: {e}"));
        match (&self.opts.ca, &self.opts.cert, &self.opts.key) {
            (Some(ca), Some(cert), Some(key)) => {
                jaunt::tls::client_config_from_pem(ca, Some((cert.as_path(), key.as_path())))
                    .map_err(tls_error)
            }
            (Some(ca), _, _) => jaunt::tls::client_config_from_pem(ca, None).map_err(tls_error),
            (None, _, _) => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    return Err(Failure::Input(format!(
                        "TLS: no --ca given and no trusted CA found on this system ({} errors)",
                        found.errors.len()
                    )));
                }
                let roots: Vec<CertificateDer<'static>> = found.certs;
                jaunt::tls::client_config(roots, None).map_err(tls_error)
            }
        }
    }

    /// Closes every session of the peer, flushing what is queued.
    pub async fn close(self) {
        self.peer.close().await;
    }
}

/// The host part of `host:port` (for the TLS server name); `localhost` for a Unix socket.
fn host_of(addr: &str) -> String {
    if addr.starts_with("unix:") {
        return "localhost".to_owned();
    }
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// Reads a `PeerConfig`: JSON for `*.json`, TOML otherwise.
fn read_config(path: &Path) -> Result<PeerConfig, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Input(format!("cannot read --config {}: {e}", path.display())))?;
    let parsed = if path.extension().is_some_and(|ext| ext == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| Failure::Input(format!("bad --config {}: {e}", path.display())))
}

/// The auth plugin's bearer, remembering the server's refusal: the dial reports it as a
/// failed dial (105), the command as "unauthorized".
struct AuthProbe {
    bearer: Bearer,
    refusal: Arc<Mutex<Option<Status>>>,
}

#[jaunt::async_trait]
impl RoutePlugin for AuthProbe {
    fn name(&self) -> &str {
        self.bearer.name()
    }
}

#[jaunt::async_trait]
impl Plugin for AuthProbe {
    async fn post_dial(&self, session: &Session, is_redial: bool) -> Result<(), Status> {
        let verdict = self.bearer.post_dial(session, is_redial).await;
        if let Err(status) = &verdict {
            if status.code() == jaunt::code::UNAUTHORIZED {
                *self.refusal.lock().expect("not poisoned") = Some(status.clone());
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host() {
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("127.0.0.1:9"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9"), "::1");
        assert_eq!(host_of("unix:/tmp/s"), "localhost");
    }
}
