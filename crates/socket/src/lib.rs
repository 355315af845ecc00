//! The packet layer of Jaunt: what a message is and how it is framed.
//!
//! - [`Packet`] — one message: seq, [`PacketType`], uri, [`Meta`],
//!   [`Status`], body codec id, body and transfer-filter ids.
//! - [`Proto`] — a framing of packets on a byte stream, decoded
//!   incrementally. [`RawProto`] (the default) is byte-compatible with Go
//!   erpc; [`JsonProto`] and [`PbProto`] are erpc's two other framings.
//! - [`PacketCodec`] — frames any `AsyncRead`/`AsyncWrite` with a `Proto`
//!   through tokio-util.
//!
//! Decoding never panics and never allocates beyond the frame size limit of
//! [`ProtoConfig`]: every malformed input is a [`ProtoError`].
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use jaunt_socket::{Packet, PacketType, Proto, RawProto};
//!
//! let proto = RawProto::default();
//! let mut pull = Packet::new(PacketType::Pull, 1, "/math/add");
//! pull.meta.add("author", "erpc-interop");
//! pull.body_codec = b'j';
//! pull.body = Bytes::from_static(b"[1,2,3]");
//! pull.xfer = vec![b'g']; // gzip the payload
//!
//! let mut wire = BytesMut::new();
//! proto.encode(&pull, &mut wire).unwrap();
//! proto.encode(&pull, &mut wire).unwrap(); // two frames in one buffer
//! assert_eq!(proto.decode(&mut wire).unwrap().unwrap(), pull);
//! assert_eq!(proto.decode(&mut wire).unwrap().unwrap(), pull);
//! assert!(proto.decode(&mut wire).unwrap().is_none()); // need more
//! ```
#![forbid(unsafe_code)]

mod framed;
mod meta;
mod packet;
mod proto;
mod query;
mod seq;
mod status;

pub use framed::PacketCodec;
pub use meta::Meta;
pub use packet::{Packet, PacketType};
#[cfg(feature = "json-proto")]
pub use proto::JsonProto;
#[cfg(feature = "pb-proto")]
pub use proto::PbProto;
pub use proto::{Proto, ProtoConfig, ProtoError, RawProto, DEFAULT_MAX_FRAME_LEN};
pub use status::{code, Status};

/// Re-exported so users name the same filter types the framings use.
pub use jaunt_xfer as xfer;
