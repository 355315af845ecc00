//! [`FrameReader`]: a connection's incoming frames, read with a buffer that
//! exists only while there is something to read.
//!
//! A session spends most of its life waiting. tokio-util's `FramedRead`
//! holds an 8 KiB buffer through every wait, which is most of an idle
//! session's memory. This reader waits for the socket to become readable
//! with an empty buffer released, and only then takes a buffer and reads:
//! an idle session holds no read buffer, and a busy one reads each burst
//! with a single `recv` into a full-sized buffer, as before.
//!
//! What is buffered is counted in the session's byte budget (`limits/`):
//! the reader reads only while the session has room, so a session over its
//! budget is simply not read. The buffer grows with the bytes that arrive,
//! doubling, never to a frame's announced length alone (a header that
//! announces 16 MiB costs 5 bytes, not 16 MiB), and a buffer that cannot
//! grow is an error of this connection, never an abort of the process.
//! The reader notes when the frame in progress started; the read loop
//! closes a session whose frame takes longer than the frame timeout.
//!
//! Every byte read is counted in the session's wire counters as it arrives
//! (`wire.rs`), and every frame once it is decoded or dropped.
//!
//! A frame that is malformed but was consumed whole
//! ([`ProtoError::is_stream_intact`]: a failed filter, a bad field) is an
//! inner `Err`, so the read loop can drop it and go on; an outer `Err` (the
//! stream cannot be resynchronised, or the socket failed) is the last item.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use jaunt_socket::{Packet, PacketCodec, Proto, ProtoError};
use tokio::io::AsyncRead;
use tokio::time::Instant;
use tokio_util::codec::Decoder;

use crate::limits::{Held, SessionLimits};
use crate::spare;

/// Frames with transfer filters and more than this many bytes on the wire
/// are unpacked off the reading task (a small gzip frame can inflate to the
/// frame limit).
const INLINE_FILTERED: usize = 4 * 1024;

/// The room a read gets: the kernel hands over up to this many bytes per
/// `recv`.
const READ_BUF: usize = 8 * 1024;
/// Below this much free room, the buffer is grown before reading.
const MIN_READ_ROOM: usize = 1024;

/// One item: a frame, or a malformed frame that was skipped whole (inner
/// `Err`); an outer `Err` ends the stream.
pub(crate) type FrameItem = Result<Result<Packet, ProtoError>, ProtoError>;

/// A connection's read half.
pub(crate) enum ReadHalf {
    /// TCP: readiness can be awaited without a buffer.
    Tcp(tokio::net::tcp::OwnedReadHalf),
    /// Unix socket: readiness can be awaited without a buffer.
    Unix(tokio::net::unix::OwnedReadHalf),
    /// Any other stream (TLS, say): read through `AsyncRead`, with its buffer
    /// kept between reads.
    Other(Box<dyn AsyncRead + Send + Unpin>),
}

/// Decodes the frames of a read half, one at a time.
pub(crate) struct FrameReader {
    half: ReadHalf,
    codec: PacketCodec,
    buf: BytesMut,
    /// The session's accounting: `buf` and `last_frame` count as read.
    limits: Arc<SessionLimits>,
    /// Frames longer than this are decoded off the reading task.
    inline_limit: usize,
    /// Bytes of the last frame returned, still counted as read until the
    /// caller hands them to a handler (or the next frame is read).
    last_frame: usize,
    /// When the frame in progress (one that needed another read) started:
    /// the frame timeout's clock. Noted once per such frame, so a frame
    /// read whole costs no clock reading.
    frame_started: Option<Instant>,
    /// The socket reported end of stream.
    eof: bool,
    /// An outer error or the end was returned: nothing more comes.
    done: bool,
}

impl FrameReader {
    /// A reader of `half` framed by `proto`; it holds no buffer yet.
    pub(crate) fn new(
        half: ReadHalf,
        proto: Arc<dyn Proto>,
        limits: Arc<SessionLimits>,
        inline_limit: usize,
    ) -> FrameReader {
        FrameReader {
            half,
            codec: PacketCodec::from_arc(proto),
            buf: BytesMut::new(),
            limits,
            inline_limit,
            last_frame: 0,
            frame_started: None,
            eof: false,
            done: false,
        }
    }

    /// Whether bytes of another frame are already buffered (the rest of a
    /// burst).
    pub(crate) fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Hands the bytes of the frame just returned (`packet`) to the handler
    /// that will hold it, in one step. An unfiltered packet's fields are
    /// slices of its frame, so it holds the frame's bytes; an unpacked one
    /// (gzip) holds its body, which may be far larger.
    pub(crate) fn hand_to(&mut self, held: &mut Held, packet: &Packet) {
        let consumed = std::mem::take(&mut self.last_frame);
        let size = if packet.xfer.is_empty() {
            consumed
        } else {
            consumed.max(packet.body.len() + packet.uri.len())
        };
        held.hold_message(consumed, size);
    }

    /// The frame just returned is done with: its bytes leave the budget.
    fn settle_last_frame(&mut self) {
        let consumed = std::mem::take(&mut self.last_frame);
        if consumed > 0 {
            self.limits.bytes.read_done(consumed);
        }
    }

    /// The next frame; `None` once the stream has ended.
    ///
    /// Cancel safe: everything read is kept in the reader, so a `select!`
    /// may drop this future and call again.
    pub(crate) async fn next(&mut self) -> Option<FrameItem> {
        self.settle_last_frame();
        if self.done {
            return None;
        }
        let mut partial = false;
        loop {
            // A session over its budget is not read (nor are frames it has
            // sent already decoded: unpacking may inflate them).
            let budget = &self.limits.bytes;
            if !budget.read_room(partial) {
                budget.wait_read_room(partial).await;
                // Our own backpressure is not the sender's slowness.
                if self.frame_started.is_some() {
                    self.frame_started = Some(Instant::now());
                }
            }
            let before = self.buf.len();
            let decoded = self.decode();
            let consumed = before - self.buf.len();
            if consumed > 0 {
                self.last_frame = consumed;
                self.frame_started = None;
            }
            match decoded {
                Ok(Some(packet)) => {
                    self.limits.wire.received_frame();
                    return Some(Ok(Ok(packet)));
                }
                Ok(None) if self.eof => {
                    self.done = true;
                    return None;
                }
                Ok(None) => {
                    partial = !self.buf.is_empty();
                    if partial && self.frame_started.is_none() {
                        self.frame_started = Some(Instant::now());
                    }
                }
                Err(e) if e.is_stream_intact() => {
                    // Dropped, but it crossed the wire whole.
                    self.limits.wire.received_frame();
                    return Some(Ok(Err(e)));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            match self.fill_counted().await {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(ProtoError::Io(e)));
                }
            }
        }
    }

    /// Decodes the frame at the front of the buffer, if it is whole; a large
    /// one off the reading task.
    fn decode(&mut self) -> Result<Option<Packet>, ProtoError> {
        // A buffer this small holds no frame worth moving off the task.
        let small = self.buf.len() <= self.inline_limit.min(INLINE_FILTERED);
        let whole = (!small)
            .then(|| self.codec.proto().frame_len(&self.buf))
            .flatten()
            .filter(|&len| len <= self.buf.len() as u64);
        let heavy = whole.is_some_and(|len| {
            let filtered = self.buf.get(4).is_some_and(|&filters| filters > 0);
            len > self.inline_limit as u64 || (filtered && len > INLINE_FILTERED as u64)
        });
        let FrameReader {
            codec, buf, eof, ..
        } = self;
        let mut run = || {
            if *eof {
                codec.decode_eof(buf)
            } else {
                codec.decode(buf)
            }
        };
        if heavy {
            off_the_reading_task(run)
        } else {
            run()
        }
    }

    /// When the frame in progress started, if one is (see the field).
    pub(crate) fn frame_started(&self) -> Option<Instant> {
        self.frame_started
    }

    /// [`fill`](Self::fill), counting what was read in the budget.
    async fn fill_counted(&mut self) -> std::io::Result<usize> {
        let read = self.fill().await?;
        if read > 0 {
            self.limits.bytes.add_read(read);
            self.limits.wire.received_bytes(read);
        }
        Ok(read)
    }

    /// Reads once; `Ok(0)` is the end of the stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let FrameReader { half, buf, .. } = self;
        loop {
            if buf.is_empty() {
                // Between frames: if nothing is waiting, let the buffer go
                // and wait for readiness without one.
                match half {
                    ReadHalf::Tcp(tcp) => release_while_waiting(tcp.readable(), buf).await?,
                    ReadHalf::Unix(unix) => release_while_waiting(unix.readable(), buf).await?,
                    ReadHalf::Other(_) => {}
                }
            }
            if buf.capacity() == 0 {
                *buf = spare::take_read_buffer();
            }
            if buf.capacity() - buf.len() < MIN_READ_ROOM {
                grow(buf)?;
            }
            // One attempt; a readiness that held nothing (it happens) sends
            // an empty buffer back to waiting without it.
            let first = poll_fn(|cx| Poll::Ready(half.poll_read_buf(cx, buf))).await;
            match first {
                Poll::Ready(read) => return read,
                Poll::Pending if buf.is_empty() && !matches!(half, ReadHalf::Other(_)) => {}
                Poll::Pending => return poll_fn(|cx| half.poll_read_buf(cx, buf)).await,
            }
        }
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        // What is still buffered goes with the reader.
        let counted = self.buf.len() + self.last_frame;
        if counted > 0 {
            self.limits.bytes.read_done(counted);
        }
    }
}

/// Runs a CPU-heavy step (a large decode) so that the other tasks of this
/// worker thread are not held up: on a multi-threaded runtime the worker
/// hands its queue to another thread for the duration (`block_in_place`).
pub(crate) fn off_the_reading_task<R>(step: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let multi = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(step)
    } else {
        step()
    }
}

/// Makes room for at least `READ_BUF` more bytes: the capacity doubles (so a
/// large frame is copied O(log n) times, not once per read), and a failed
/// allocation is an error of this connection, not an abort.
fn grow(buf: &mut BytesMut) -> std::io::Result<()> {
    if buf.try_reclaim(READ_BUF) {
        return Ok(());
    }
    let want = buf
        .len()
        .saturating_add(READ_BUF)
        .max(buf.capacity().saturating_mul(2));
    let mut grown = Vec::new();
    grown.try_reserve_exact(want).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::OutOfMemory,
            format!("cannot grow a read buffer to {want} bytes"),
        )
    })?;
    grown.extend_from_slice(buf);
    // Bytes keeps the capacity, and BytesMut takes the Vec back whole: no copy.
    *buf = BytesMut::from(Bytes::from(grown));
    Ok(())
}

impl ReadHalf {
    /// Reads into the spare room of `buf` (tokio's short-read rule applies:
    /// a read that did not fill the room marks the socket drained, so no
    /// `recv` is spent learning it).
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<std::io::Result<usize>> {
        match self {
            ReadHalf::Tcp(tcp) => tokio_util::io::poll_read_buf(Pin::new(tcp), cx, buf),
            ReadHalf::Unix(unix) => tokio_util::io::poll_read_buf(Pin::new(unix), cx, buf),
            ReadHalf::Other(other) => tokio_util::io::poll_read_buf(Pin::new(other), cx, buf),
        }
    }
}

/// Polls `readable` once; if the socket has nothing to read yet, drops the
/// (empty) buffer before waiting.
async fn release_while_waiting(
    readable: impl Future<Output = std::io::Result<()>>,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    let mut readable = std::pin::pin!(readable);
    let first = poll_fn(|cx| Poll::Ready(readable.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(result) => result,
        Poll::Pending => {
            spare::give_back_read_buffer(std::mem::take(buf));
            readable.await
        }
    }
}
