//! The [`Proto`] trait: how packets are framed on a byte stream, and the
//! framings Jaunt ships.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use jaunt_xfer::{XferError, XferRegistry, MAX_FILTERS};

use crate::Packet;

#[cfg(feature = "json-proto")]
mod json;
#[cfg(feature = "pb-proto")]
mod pb;
mod raw;

#[cfg(feature = "json-proto")]
pub use json::JsonProto;
#[cfg(feature = "pb-proto")]
pub use pb::PbProto;
pub use raw::RawProto;

/// The default largest frame: 16 MiB. (Go erpc allows 1 GiB, which lets one
/// frame exhaust a small server's memory.)
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// A framing of packets on a byte stream.
///
/// `decode` is incremental: it is called with whatever has been read so far,
/// returns `Ok(None)` when a frame is not complete yet (without reserving
/// room for it: the caller's buffer grows with what arrives), and consumes exactly one frame when it returns a packet, so
/// several frames in one read are found by calling it again. The length
/// prefix is checked against the size limit before anything is allocated.
pub trait Proto: Send + Sync + 'static {
    /// The protocol's id byte.
    fn id(&self) -> u8;
    /// The protocol's name.
    fn name(&self) -> &'static str;
    /// Appends one framed packet to `dst`. On error `dst` is left as it was.
    fn encode(&self, packet: &Packet, dst: &mut BytesMut) -> Result<(), ProtoError>;
    /// Takes one packet off the front of `src`, if a whole frame is there.
    fn decode(&self, src: &mut BytesMut) -> Result<Option<Packet>, ProtoError>;
    /// The length in bytes, length prefix included, of the frame at the front
    /// of `src`, once its length prefix is there (used to report a truncated
    /// frame). The default reads a big-endian `u32` that counts itself.
    fn frame_len(&self, src: &[u8]) -> Option<u64> {
        let prefix: [u8; 4] = src.get(..4)?.try_into().ok()?;
        Some(u64::from(u32::from_be_bytes(prefix)))
    }
}

impl<P: Proto + ?Sized> Proto for Arc<P> {
    fn id(&self) -> u8 {
        (**self).id()
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn encode(&self, packet: &Packet, dst: &mut BytesMut) -> Result<(), ProtoError> {
        (**self).encode(packet, dst)
    }
    fn decode(&self, src: &mut BytesMut) -> Result<Option<Packet>, ProtoError> {
        (**self).decode(src)
    }
    fn frame_len(&self, src: &[u8]) -> Option<u64> {
        (**self).frame_len(src)
    }
}

/// What every framing needs: the transfer filters it may apply, and the
/// largest frame it accepts or produces.
#[derive(Debug, Clone)]
pub struct ProtoConfig {
    /// The filters a frame may name.
    pub xfer: Arc<XferRegistry>,
    /// The largest frame, in bytes, length prefix included.
    pub max_frame_len: usize,
}

impl Default for ProtoConfig {
    /// gzip (`g`) and md5 (`m`) as available, and [`DEFAULT_MAX_FRAME_LEN`].
    fn default() -> Self {
        Self {
            xfer: Arc::new(XferRegistry::with_defaults()),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

impl ProtoConfig {
    /// Sets the largest frame.
    #[must_use]
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// Sets the filter registry.
    #[must_use]
    pub fn with_xfer(mut self, xfer: Arc<XferRegistry>) -> Self {
        self.xfer = xfer;
        self
    }
}

/// Why a packet could not be framed or unframed.
///
/// [`ProtoError::is_stream_intact`] tells whether the offending frame was
/// consumed whole, so that the connection can go on, or whether the byte
/// stream can no longer be trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// Reading from or writing to the stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended inside a frame.
    #[error("truncated frame: stream ended with {have} of {need} bytes")]
    Truncated {
        /// Bytes received.
        have: usize,
        /// Bytes the frame needs (or the length prefix, if not complete).
        need: usize,
    },
    /// The length prefix is smaller than the smallest possible frame.
    #[error("frame length {len} is smaller than the {min}-byte header")]
    LengthTooSmall {
        /// The announced length.
        len: usize,
        /// The smallest valid length.
        min: usize,
    },
    /// The frame (announced or produced) is larger than the size limit.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The frame's length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// A count or inner length runs past the end of the frame.
    #[error("the {field} field runs past the end of the frame")]
    FieldOverrun {
        /// The field.
        field: &'static str,
    },
    /// An outgoing field is longer than its length prefix can say.
    #[error("the {field} field is {len} bytes, more than the {max} the framing allows")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The seq is not base-36 ASCII.
    #[error("sequence number is not base-36")]
    InvalidSeq,
    /// The seq does not fit an i32.
    #[error("sequence number does not fit in an i32")]
    SeqOutOfRange,
    /// The packet type byte is not one of the known types.
    #[error("unknown packet type {0}")]
    UnknownPacketType(u8),
    /// A `%` escape in the status or meta is malformed.
    #[error("invalid percent-encoding in {field}")]
    InvalidPercentEncoding {
        /// The field.
        field: &'static str,
    },
    /// The status code is not a decimal i32.
    #[error("status code is not a 32-bit integer")]
    InvalidStatusCode,
    /// A text field is not UTF-8.
    #[error("the {field} field is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A transfer filter failed (unknown id, corrupt gzip, bad checksum,
    /// failed decryption, output over the limit).
    #[error("transfer filter: {0}")]
    Xfer(#[from] XferError),
    /// The payload of a JSON or protobuf frame is malformed.
    #[error("malformed {framing} payload: {source}")]
    Payload {
        /// The framing.
        framing: &'static str,
        /// What the parser said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ProtoError {
    /// Whether the frame that caused this error was consumed whole, so the
    /// stream is still in step and the next frame can be read. False for I/O
    /// errors and for errors in the length prefix.
    pub fn is_stream_intact(&self) -> bool {
        !matches!(
            self,
            Self::Io(_)
                | Self::Truncated { .. }
                | Self::LengthTooSmall { .. }
                | Self::FrameTooLarge { .. }
        )
    }
}

/// The outer framing shared by every proto: a u32 length prefix, the filter
/// count and ids in clear, then the (filtered) payload.
#[derive(Debug, Clone, Copy)]
struct Envelope {
    /// Whether the length prefix counts its own four bytes (raw) or not
    /// (JSON, protobuf).
    prefix_counts_itself: bool,
    /// The smallest frame (prefix included) whose payload is unfiltered.
    min_unfiltered_len: usize,
}

impl Envelope {
    /// Length prefix plus filter count.
    const MIN_LEN: usize = 5;

    /// The whole length of the frame at the front of `src`, prefix included.
    fn frame_len(&self, src: &[u8]) -> Option<u64> {
        let prefix: [u8; 4] = src.get(..4)?.try_into().ok()?;
        let announced = u64::from(u32::from_be_bytes(prefix));
        let prefix_len = if self.prefix_counts_itself { 0 } else { 4 };
        Some(announced + prefix_len)
    }

    /// Splits one frame off `src`: its filter ids and its unfiltered payload.
    fn decode(
        &self,
        cfg: &ProtoConfig,
        src: &mut BytesMut,
    ) -> Result<Option<(Vec<u8>, Bytes)>, ProtoError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let announced = u64::from(u32::from_be_bytes([src[0], src[1], src[2], src[3]]));
        let total = if self.prefix_counts_itself {
            announced
        } else {
            announced + 4
        };
        if total > cfg.max_frame_len as u64 {
            return Err(ProtoError::FrameTooLarge {
                len: total,
                limit: cfg.max_frame_len,
            });
        }
        // Below the limit, so it fits a usize.
        let total = total as usize;
        if total < Self::MIN_LEN {
            return Err(ProtoError::LengthTooSmall {
                len: total,
                min: Self::MIN_LEN,
            });
        }
        if src.len() < Self::MIN_LEN {
            return Ok(None);
        }
        let filters = usize::from(src[4]);
        if filters == 0 && total < self.min_unfiltered_len {
            return Err(ProtoError::LengthTooSmall {
                len: total,
                min: self.min_unfiltered_len,
            });
        }
        if src.len() < total {
            // No reserving for the announced length: the reader's buffer
            // grows with the bytes that actually arrive (a 5-byte header
            // announcing 16 MiB must not cost 16 MiB).
            return Ok(None);
        }
        let mut frame = src.split_to(total).freeze();
        frame.advance(Self::MIN_LEN);
        if frame.len() < filters {
            return Err(ProtoError::FieldOverrun {
                field: "filter ids",
            });
        }
        let ids = frame.split_to(filters).to_vec();
        let payload = if ids.is_empty() {
            frame
        } else {
            cfg.xfer.unpack(&ids, frame, cfg.max_frame_len)?
        };
        Ok(Some((ids, payload)))
    }

    /// Appends one frame to `dst`, the payload written by `write_payload`
    /// (about `size_hint` bytes before filtering). On error `dst` is truncated
    /// back to where it was.
    fn encode(
        &self,
        cfg: &ProtoConfig,
        ids: &[u8],
        dst: &mut BytesMut,
        size_hint: usize,
        write_payload: impl FnOnce(&mut BytesMut) -> Result<(), ProtoError>,
    ) -> Result<(), ProtoError> {
        let start = dst.len();
        let result = self.encode_inner(cfg, ids, dst, size_hint, write_payload);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn encode_inner(
        &self,
        cfg: &ProtoConfig,
        ids: &[u8],
        dst: &mut BytesMut,
        size_hint: usize,
        write_payload: impl FnOnce(&mut BytesMut) -> Result<(), ProtoError>,
    ) -> Result<(), ProtoError> {
        let start = dst.len();
        if ids.len() > MAX_FILTERS {
            return Err(XferError::TooMany { count: ids.len() }.into());
        }
        dst.put_u32(0);
        dst.put_u8(ids.len() as u8);
        dst.put_slice(ids);
        if ids.is_empty() {
            write_payload(dst)?;
        } else {
            cfg.xfer.check(ids)?;
            let mut plain = BytesMut::with_capacity(size_hint);
            write_payload(&mut plain)?;
            // The receiving side refuses any unpacked (intermediate) result
            // over the limit, so never produce one: a frame that compresses
            // under the limit but inflates over it would be undecodable.
            let mut payload = plain.freeze();
            for &id in ids.iter().rev() {
                if payload.len() > cfg.max_frame_len {
                    return Err(ProtoError::FrameTooLarge {
                        len: payload.len() as u64,
                        limit: cfg.max_frame_len,
                    });
                }
                payload = cfg.xfer.get(id)?.on_pack(payload)?;
            }
            dst.put_slice(&payload);
        }
        let total = dst.len() - start;
        if total > cfg.max_frame_len {
            return Err(ProtoError::FrameTooLarge {
                len: total as u64,
                limit: cfg.max_frame_len,
            });
        }
        let prefix = if self.prefix_counts_itself {
            total
        } else {
            total - 4
        };
        let prefix = u32::try_from(prefix).map_err(|_| ProtoError::FrameTooLarge {
            len: total as u64,
            limit: u32::MAX as usize,
        })?;
        dst[start..start + 4].copy_from_slice(&prefix.to_be_bytes());
        Ok(())
    }
}
