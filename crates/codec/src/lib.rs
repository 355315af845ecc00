//! Body codecs of the Jaunt RPC framework: turning a typed value into the body bytes of a
//! packet and back.
//!
//! Every frame names the codec of its body with a one-byte id (see [`ids`]), so a receiver
//! decodes a body with whichever codec the incoming frame names. The set of codecs is a
//! [`Registry`] value, pluggable: the built-in ones are JSON, protobuf, plain, form and XML
//! (each but plain behind a cargo feature), and users add their own by implementing
//! [`Codec`].
//!
//! Codecs are object-safe and see values through type erasure: a value to encode is a
//! `&dyn` [`EncodeBody`] (every serde type, and protobuf messages wrapped in [`Pb`]); a value
//! to decode is any [`DecodeBody`] type, filled through a [`DecodeSink`]. A codec that cannot
//! carry a type says so with [`CodecError::UnsupportedType`].
//!
//! Encoding appends to a caller-provided `Vec<u8>` so buffers can be reused
//! ([`Registry::encode_into`]); decoding reads from [`Bytes`](bytes::Bytes), and the plain
//! codec hands a body to a `Bytes` value without copying.
//!
//! ```
//! # #[cfg(all(feature = "json", feature = "protobuf"))] {
//! use bytes::Bytes;
//! use jaunt_codec::{ids, Pb, Registry};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Greeting {
//!     name: String,
//!     times: u32,
//! }
//!
//! let registry = Registry::with_defaults();
//!
//! // A serde value with JSON, chosen by id.
//! let body: Bytes = registry.encode(ids::JSON, &Greeting { name: "Ada".into(), times: 2 })?;
//! assert_eq!(&body[..], br#"{"name":"Ada","times":2}"#);
//! let back: Greeting = registry.decode(ids::JSON, &body)?;
//! assert_eq!(back, Greeting { name: "Ada".into(), times: 2 });
//!
//! // A prost message with protobuf, wrapped in `Pb`.
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct Ping {
//!     #[prost(uint64, tag = "1")]
//!     seq: u64,
//! }
//!
//! let mut buf = Vec::new(); // reusable
//! registry.encode_into(ids::PROTOBUF, &Pb(Ping { seq: 7 }), &mut buf)?;
//! let ping: Pb<Ping> = registry.decode(ids::PROTOBUF, &Bytes::from(buf))?;
//! assert_eq!(ping.seq, 7);
//!
//! // A codec that cannot carry a type says so.
//! let err = registry.encode(ids::PROTOBUF, &"text").unwrap_err();
//! assert_eq!(err.to_string(), "codec protobuf cannot carry type &str");
//! # }
//! # Ok::<(), jaunt_codec::CodecError>(())
//! ```
#![forbid(unsafe_code)]
// Docs link to `Pb` and prost, which only exist with the `protobuf` feature.
#![cfg_attr(not(feature = "protobuf"), allow(rustdoc::broken_intra_doc_links))]

mod body;
mod codec;
mod error;
mod plain;
mod registry;

#[cfg(feature = "form")]
mod form;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "protobuf")]
mod protobuf;
#[cfg(feature = "xml")]
mod xml;

#[cfg(feature = "protobuf")]
pub use body::Pb;
pub use body::{DecodeBody, DecodeSink, EncodeBody, MessageEncode, RawBody, Slot};
pub use codec::{decode_with, Codec};
pub use error::{BoxError, CodecError, SinkError};
#[cfg(feature = "form")]
pub use form::FormCodec;
#[cfg(feature = "json")]
pub use json::JsonCodec;
pub use plain::PlainCodec;
#[cfg(feature = "protobuf")]
pub use protobuf::ProtobufCodec;
pub use registry::{CodecRef, Registry};
#[cfg(feature = "xml")]
pub use xml::XmlCodec;

/// The erased-serde version this crate's traits use, for writing custom codecs.
pub use erased_serde;

/// Body codec ids, as carried in byte 13 of a frame.
pub mod ids {
    /// No body (error replies, empty bodies).
    pub const NONE: u8 = 0;
    /// JSON (`j`, 106), the default codec.
    pub const JSON: u8 = b'j';
    /// Protobuf (`p`, 112).
    pub const PROTOBUF: u8 = b'p';
    /// Plain string or raw bytes (`s`, 115).
    pub const PLAIN: u8 = b's';
    /// URL-encoded form (`f`, 102).
    pub const FORM: u8 = b'f';
    /// XML (`x`, 120).
    pub const XML: u8 = b'x';
    /// Thrift (`t`, 116). Reserved for wire compatibility; no built-in codec.
    pub const THRIFT: u8 = b't';
    /// The codec used when nothing else is asked for: [`JSON`].
    pub const DEFAULT: u8 = JSON;
}
