//! Graceful restart: a new process takes over the listening sockets and the
//! old one drains and exits, without refusing a connection.
//!
//! The old process (on SIGUSR2, see [`Peer::restart_on_signal`]) starts its
//! own executable again with the same arguments, handing it its listening
//! sockets as inherited file descriptors (the systemd `LISTEN_FDS`
//! convention, without `LISTEN_PID`). The new process builds its peer as
//! usual but listens with [`Peer::listen_inherited`], which takes the
//! inherited socket for the same address instead of binding, then calls
//! [`Inherited::ready`]. Only then does the old process stop accepting: the
//! kernel's accept queue is shared, so every connection is accepted by one
//! process or the other. The old process keeps serving its sessions until
//! they close, or until the drain timeout, then shuts down.
//!
//! ```no_run
//! use std::time::Duration;
//! use jaunt_peer::{Inherited, Peer, Router};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut inherited = Inherited::from_env();
//! let peer = Peer::new(Router::new());
//! let addr = peer.listen_inherited(&mut inherited, "127.0.0.1:9000").await?;
//! inherited.ready()?; // tell the old process (if any) to drain
//! println!("serving on {addr}");
//! peer.restart_on_signal(Duration::from_secs(30))?.await?; // returns in the old process
//! # Ok(()) }
//! ```

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use tokio::signal::unix::{signal, SignalKind};

use crate::peer::{Listener, Upgrade};
use crate::{Addr, Peer, PeerError, ToAddr};

/// The environment variable listing the handed-over addresses, one per
/// line, in the order of the inherited descriptors.
pub const INHERITED_ADDRS_ENV: &str = "JAUNT_INHERITED_ADDRS";
/// The environment variable naming the old process, which waits for
/// [`Inherited::ready`].
pub const RESTART_PARENT_ENV: &str = "JAUNT_RESTART_PARENT";

/// How long the old process waits for the new one to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The first inherited descriptor (systemd's convention).
const FIRST_FD: i32 = 3;

/// The listening sockets a peer can hand over.
#[derive(Default)]
pub(crate) struct Handover {
    sockets: Mutex<Vec<(String, OwnedFd)>>,
    handed_over: AtomicBool,
}

impl Handover {
    /// Keeps a duplicate of a listener's descriptor under the address it was
    /// asked for.
    pub(crate) fn keep(&self, addr: &Addr, listener: &Listener) -> io::Result<()> {
        let fd = match listener {
            Listener::Tcp(l) => l.as_fd().try_clone_to_owned()?,
            Listener::Unix(l) => l.as_fd().try_clone_to_owned()?,
        };
        self.lock().push((addr.to_string(), fd));
        Ok(())
    }

    pub(crate) fn is_handed_over(&self) -> bool {
        self.handed_over.load(Ordering::Acquire)
    }

    /// Closes the kept descriptors (the peer stopped listening; after a
    /// handover the new process has its own).
    pub(crate) fn release(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, OwnedFd)>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The listening sockets this process inherited from the process it
/// replaces (empty when it was started normally).
pub struct Inherited {
    fds: listenfd::ListenFd,
    addrs: Vec<String>,
}

impl std::fmt::Debug for Inherited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inherited")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl Inherited {
    /// Reads the inherited sockets from the environment.
    pub fn from_env() -> Self {
        let addrs = std::env::var(INHERITED_ADDRS_ENV)
            .map(|v| v.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        Self {
            fds: listenfd::ListenFd::from_env(),
            addrs,
        }
    }

    /// Whether this process was started by a graceful restart.
    pub fn is_restart(&self) -> bool {
        !self.addrs.is_empty()
    }

    /// Takes the inherited listener for `addr`, if there is one.
    fn take(&mut self, addr: &Addr) -> io::Result<Option<Listener>> {
        let key = addr.to_string();
        let Some(index) = self.addrs.iter().position(|a| *a == key) else {
            return Ok(None);
        };
        let listener = match addr {
            Addr::Unix(_) => self
                .fds
                .take_unix_listener(index)?
                .map(|l| {
                    l.set_nonblocking(true)?;
                    tokio::net::UnixListener::from_std(l).map(Listener::Unix)
                })
                .transpose()?,
            _ => self
                .fds
                .take_tcp_listener(index)?
                .map(|l| {
                    l.set_nonblocking(true)?;
                    tokio::net::TcpListener::from_std(l).map(Listener::Tcp)
                })
                .transpose()?,
        };
        Ok(listener)
    }

    /// Tells the process being replaced that this one is serving, so it
    /// stops accepting and drains. Does nothing after a normal start.
    pub fn ready(&self) -> io::Result<()> {
        let Ok(parent) = std::env::var(RESTART_PARENT_ENV) else {
            return Ok(());
        };
        let pid: i32 = parent
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad parent pid"))?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .map_err(io::Error::from)
    }
}

impl Peer {
    /// Listens like [`listen`](Peer::listen), but takes over the socket of
    /// the same address from the process this one replaces, if any.
    pub async fn listen_inherited(
        &self,
        inherited: &mut Inherited,
        addr: impl ToAddr,
    ) -> Result<Addr, PeerError> {
        let addr = addr.to_addr()?;
        match inherited.take(&addr)? {
            Some(listener) => {
                tracing::info!(%addr, "listening on an inherited socket");
                self.serve_listener(addr, listener, self.proto_config_default(), Upgrade::None)
                    .await
            }
            None => self.listen(addr).await,
        }
    }

    /// Registers for SIGUSR2 now (so a signal sent after this call is not
    /// lost) and returns a future that waits for it, then
    /// [`graceful_restart`](Self::graceful_restart)s and yields the new
    /// process's pid once this peer has drained.
    pub fn restart_on_signal(
        &self,
        drain: Duration,
    ) -> io::Result<impl std::future::Future<Output = io::Result<u32>> + Send + 'static> {
        let mut usr2 = signal(SignalKind::user_defined2())?;
        let peer = self.clone();
        Ok(async move {
            usr2.recv().await;
            tracing::info!("SIGUSR2: restarting");
            peer.graceful_restart(drain).await
        })
    }

    /// Starts this executable again with the same arguments, hands it the
    /// listening sockets, waits until it is ready, then stops accepting,
    /// lets the sessions finish (up to `drain`) and shuts down. Returns the
    /// new process's pid. If the new process does not become ready, this
    /// peer keeps serving and the error is returned.
    pub async fn graceful_restart(&self, drain: Duration) -> io::Result<u32> {
        let handover = &self.shared().handover;
        let (addrs, mappings) = {
            let sockets = handover.lock();
            let mut addrs = String::new();
            let mut mappings = Vec::new();
            for (i, (addr, fd)) in sockets.iter().enumerate() {
                addrs.push_str(addr);
                addrs.push('\n');
                mappings.push(FdMapping {
                    parent_fd: fd.try_clone()?,
                    child_fd: FIRST_FD + i as i32,
                });
            }
            (addrs, mappings)
        };
        let count = mappings.len();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(std::env::args_os().skip(1))
            .env("LISTEN_FDS", count.to_string())
            .env_remove("LISTEN_PID")
            .env(INHERITED_ADDRS_ENV, addrs)
            .env(RESTART_PARENT_ENV, std::process::id().to_string())
            .fd_mappings(mappings)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // Listen for the new process's signal before it can send it.
        let mut ready = signal(SignalKind::user_defined1())?;
        let mut child = command.spawn()?;
        let pid = child.id();
        tokio::select! {
            _ = ready.recv() => {}
            () = tokio::time::sleep(READY_TIMEOUT) => {
                let _ = child.kill();
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the new process did not become ready"));
            }
        }
        tracing::info!(pid, "the new process is serving: draining");
        handover.handed_over.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + drain;
        self.stop_listening().await;
        while self.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.shutdown(left.max(Duration::from_millis(100))).await;
        Ok(pid)
    }
}
