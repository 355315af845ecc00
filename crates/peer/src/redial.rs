//! Redial: a dialed session that loses its connection dials again, with a
//! configurable number of attempts, interval and backoff, keeping its id and
//! data. Pulls issued meanwhile wait for the new connection within their
//! deadline; pulls pending when the connection was lost end with 102.

#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use jaunt_socket::Status;

use crate::config::RedialConfig;
use crate::peer::Conn;
use crate::{Addr, Peer, Session};

/// How a session dials again.
pub(crate) struct Redial {
    pub(crate) addr: Addr,
    pub(crate) dialer: Dialer,
    pub(crate) config: RedialConfig,
}

/// Plain or TLS.
pub(crate) enum Dialer {
    Plain,
    #[cfg(feature = "tls")]
    Tls {
        name: tokio_rustls::rustls::pki_types::ServerName<'static>,
        config: Arc<tokio_rustls::rustls::ClientConfig>,
    },
}

impl Redial {
    /// Opens a new connection to the same address, the same way.
    pub(crate) async fn connect(&self, peer: &Peer) -> Result<(Conn, Addr), Status> {
        let (conn, local) = peer.connect(&self.addr).await?;
        let conn = match &self.dialer {
            Dialer::Plain => conn,
            #[cfg(feature = "tls")]
            Dialer::Tls { name, config } => {
                crate::tls::connect(
                    config,
                    name.clone(),
                    conn,
                    &self.addr,
                    peer.config().dial_timeout,
                )
                .await?
            }
        };
        Ok((conn, local))
    }
}

/// Dials again until it works, the attempts run out (the session is then
/// closed), or the session or peer is closed.
pub(crate) async fn run(session: Session) {
    let Some(plan) = session.redial_plan() else {
        return;
    };
    let config = plan.config.clone();
    let mut delay = config.interval;
    let mut attempt: u32 = 0;
    loop {
        if session.is_closed() || session.shared().is_closed() {
            session.close();
            return;
        }
        attempt = attempt.saturating_add(1);
        match session.redial_once().await {
            Ok(()) => {
                tracing::info!(id = %session.id(), attempt, "reconnected");
                return;
            }
            Err(status) => {
                tracing::debug!(id = %session.id(), attempt, %status, "redial failed");
            }
        }
        if config.max_attempts.is_some_and(|max| attempt >= max) {
            tracing::warn!(id = %session.id(), attempt, "redial gave up: closing the session");
            session.close();
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = session.closed() => return,
        }
        delay = next_delay(delay, &config);
    }
}

fn next_delay(delay: Duration, config: &RedialConfig) -> Duration {
    delay
        .mul_f64(config.backoff.max(1.0))
        .min(config.max_interval)
}
