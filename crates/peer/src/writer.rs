//! The write side of a link: frames go straight to the socket when nothing
//! is ahead of them, and through the writer task's queue otherwise.
//!
//! A frame is written whole or not at all by whoever holds [`Direct`]'s
//! lock, so frames never interleave on the wire. A sender that finds the
//! queue empty (and the link not corked) writes its frame itself with one
//! non-blocking `send`, which spares the hop to the writer task, its wake-up
//! and a copy. When the socket is full, or frames are already queued, the
//! frame joins the queue and the writer task writes it, several per system
//! call. The read loop corks the link while it still holds frames of the
//! same burst, so the replies of a burst go out together.
//!
//! TCP and Unix sockets can be written without `&mut` (`try_write`), so they
//! get the direct path; other streams (TLS) use the queue only.

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::AsyncWrite;
use tokio::net::{tcp, unix};

use crate::wire::SessionWire;

/// A connection's write half.
pub(crate) enum WriteHalf {
    /// A socket that senders may write to themselves.
    Direct(Direct),
    /// Any other stream: written by the writer task only.
    Other(Box<dyn AsyncWrite + Send + Unpin>),
}

/// A socket written by whoever holds its lock.
pub(crate) enum Socket {
    /// TCP.
    Tcp(Arc<tcp::OwnedWriteHalf>),
    /// Unix socket.
    Unix(Arc<unix::OwnedWriteHalf>),
}

impl Socket {
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(tcp) => tcp.try_write(bytes),
            Socket::Unix(unix) => unix.try_write(bytes),
        }
    }

    async fn writable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(tcp) => tcp.writable().await,
            Socket::Unix(unix) => unix.writable().await,
        }
    }

    /// Ends the write direction (the other side reads end of stream).
    pub(crate) fn shutdown(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(tcp) => {
                socket2::SockRef::from(tcp.as_ref().as_ref()).shutdown(Shutdown::Write)
            }
            Socket::Unix(unix) => {
                socket2::SockRef::from(unix.as_ref().as_ref()).shutdown(Shutdown::Write)
            }
        }
    }
}

/// The direct path of a socket: the lock that orders writes, and how many
/// queued frames are not on the wire yet.
pub(crate) struct Direct {
    socket: Socket,
    order: Mutex<Order>,
    /// Set by the read loop while it holds more frames of one burst: replies
    /// queue up and leave in one write.
    corked: AtomicBool,
}

/// What the lock guards.
pub(crate) struct Order {
    /// Frames queued for the writer task and not yet fully written.
    pub(crate) queued: usize,
}

/// What a direct attempt did with a frame.
pub(crate) enum Attempt<'a> {
    /// The whole frame is on the wire.
    Written,
    /// These bytes (all of the frame, or its unwritten rest) must be queued
    /// while the lock is still held.
    Queue(MutexGuard<'a, Order>, usize),
}

impl Direct {
    /// A direct path to `socket`.
    pub(crate) fn new(socket: Socket) -> Direct {
        Direct {
            socket,
            order: Mutex::new(Order { queued: 0 }),
            corked: AtomicBool::new(false),
        }
    }

    /// Corks or uncorks the link (see the module docs).
    pub(crate) fn cork(&self, corked: bool) {
        if self.corked.load(Ordering::Relaxed) != corked {
            self.corked.store(corked, Ordering::Relaxed);
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Order> {
        self.order.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `frame` now if nothing is ahead of it. Otherwise (or for what
    /// the socket did not take) the caller queues it, from the returned
    /// offset, under the returned lock.
    ///
    /// What goes onto the socket is counted in `wire`: its bytes as they
    /// go, the frame once it is whole.
    pub(crate) fn attempt(&self, frame: &[u8], wire: &SessionWire) -> io::Result<Attempt<'_>> {
        let order = self.lock();
        if order.queued > 0 || self.corked.load(Ordering::Relaxed) {
            return Ok(Attempt::Queue(order, 0));
        }
        let mut written = 0;
        if self.write_until_full(frame, &mut written, wire)? {
            wire.sent_frames(1);
            Ok(Attempt::Written)
        } else {
            Ok(Attempt::Queue(order, written))
        }
    }

    /// The writer task's write of `batch`, which holds `frames` queued
    /// frames: whole, under the lock, waiting for room as needed; counted
    /// in `wire` as [`attempt`](Self::attempt) does.
    pub(crate) async fn write_queued(
        &self,
        batch: &[u8],
        frames: usize,
        wire: &SessionWire,
    ) -> io::Result<()> {
        let mut written = 0;
        loop {
            {
                let mut order = self.lock();
                if self.write_until_full(batch, &mut written, wire)? {
                    order.queued -= frames;
                    wire.sent_frames(frames);
                    return Ok(());
                }
            }
            self.socket.writable().await?;
        }
    }

    /// Writes `bytes[*written..]` until all of it is written (`true`) or the
    /// socket is full (`false`); `written` counts what went, and so does
    /// `wire`. The caller holds the lock.
    fn write_until_full(
        &self,
        bytes: &[u8],
        written: &mut usize,
        wire: &SessionWire,
    ) -> io::Result<bool> {
        while *written < bytes.len() {
            match self.socket.try_write(&bytes[*written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    *written += n;
                    wire.sent_bytes(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Ends the write direction.
    pub(crate) fn shutdown(&self) -> io::Result<()> {
        self.socket.shutdown()
    }
}
