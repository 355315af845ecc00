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
//! A frame that is malformed but was consumed whole
//! ([`ProtoError::is_stream_intact`]: a failed filter, a bad field) is an
//! inner `Err`, so the read loop can drop it and go on; an outer `Err` (the
//! stream cannot be resynchronised, or the socket failed) is the last item.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use jaunt_socket::{Packet, PacketCodec, Proto, ProtoError};
use tokio::io::AsyncRead;
use tokio_util::codec::Decoder;

use crate::spare;

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
    /// The socket reported end of stream.
    eof: bool,
    /// An outer error or the end was returned: nothing more comes.
    done: bool,
}

impl FrameReader {
    /// A reader of `half` framed by `proto`; it holds no buffer yet.
    pub(crate) fn new(half: ReadHalf, proto: Arc<dyn Proto>) -> FrameReader {
        FrameReader {
            half,
            codec: PacketCodec::from_arc(proto),
            buf: BytesMut::new(),
            eof: false,
            done: false,
        }
    }

    /// Whether bytes of another frame are already buffered (the rest of a
    /// burst).
    pub(crate) fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next frame; `None` once the stream has ended.
    ///
    /// Cancel safe: everything read is kept in the reader, so a `select!`
    /// may drop this future and call again.
    pub(crate) async fn next(&mut self) -> Option<FrameItem> {
        if self.done {
            return None;
        }
        loop {
            let decoded = if self.eof {
                self.codec.decode_eof(&mut self.buf)
            } else {
                self.codec.decode(&mut self.buf)
            };
            match decoded {
                Ok(Some(packet)) => return Some(Ok(Ok(packet))),
                Ok(None) if self.eof => {
                    self.done = true;
                    return None;
                }
                Ok(None) => {}
                Err(e) if e.is_stream_intact() => return Some(Ok(Err(e))),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            match self.fill().await {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(ProtoError::Io(e)));
                }
            }
        }
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
                buf.reserve(READ_BUF);
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
