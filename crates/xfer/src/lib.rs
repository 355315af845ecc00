//! Transfer filters: the byte-level layer of Jaunt.
//!
//! A transfer filter ("xfer") transforms the payload of a frame after it is
//! framed and before it is written (compression, checksums, encryption), and
//! undoes that on the way in. Each filter has a one-byte id that travels in
//! clear in the frame header, so both peers must register the same filter
//! under the same id. The Go erpc ecosystem uses `g` for gzip and `m` for an
//! MD5 checksum; [`XferRegistry::with_defaults`] registers those two.
//!
//! The order follows the erpc wire format: when packing, the filter named
//! *last* in the frame's id list runs first; when unpacking, the filter named
//! *first* runs first.
//!
//! ```
//! # #[cfg(all(feature = "gzip", feature = "md5"))] {
//! use bytes::Bytes;
//! use jaunt_xfer::XferRegistry;
//!
//! let registry = XferRegistry::with_defaults();
//! let payload = Bytes::from_static(b"hello hello hello hello");
//! // gzip, then checksum the compressed bytes (ids are listed outer-most first).
//! let packed = registry.pack(b"mg", payload.clone()).unwrap();
//! let unpacked = registry.unpack(b"mg", packed, 1 << 20).unwrap();
//! assert_eq!(unpacked, payload);
//! # }
//! ```
#![forbid(unsafe_code)]

mod error;
mod filter;
mod registry;

#[cfg(feature = "aead")]
mod aead;
#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "md5")]
mod md5;

#[cfg(feature = "aead")]
pub use aead::{AeadFilter, AeadKey};
pub use error::XferError;
pub use filter::XferFilter;
#[cfg(feature = "gzip")]
pub use gzip::GzipFilter;
#[cfg(feature = "md5")]
pub use md5::Md5Filter;
pub use registry::{XferRegistry, MAX_FILTERS};
