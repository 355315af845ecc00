//! The gzip transfer filter (id `g` by the Go erpc convention).
//!
//! Packing writes exactly one gzip member (RFC 1952), as Go's
//! `compress/gzip` writer does. Unpacking accepts one or more concatenated
//! members, like Go's reader in its default multistream mode, and never
//! produces more than the caller's size limit.

use std::cmp;
use std::fmt;
use std::io::{Read, Write};

use bytes::Bytes;
use flate2::Compression;

use crate::{XferError, XferFilter};

/// The highest gzip compression level; larger levels are clamped to it.
const MAX_LEVEL: u32 = 9;

/// Size of the scratch buffer the decompressor writes into.
const CHUNK: usize = 16 * 1024;

/// Compresses payloads with gzip.
///
/// The default filter has id `g` (as in Go erpc) and flate2's default
/// compression level (6, the same as Go's `gzip.DefaultCompression`).
///
/// [`on_unpack`](XferFilter::on_unpack) decodes one or more concatenated
/// gzip members and fails with [`XferError::CorruptGzip`] if the input is
/// truncated, fails its CRC/length check, or is followed by bytes that are not
/// another gzip member. It fails with [`XferError::TooLarge`] as soon as the
/// output would exceed `max_len`, without ever allocating more than `max_len`
/// bytes for it (the size recorded in the gzip trailer is not trusted).
#[derive(Clone)]
pub struct GzipFilter {
    id: u8,
    level: Compression,
}

impl Default for GzipFilter {
    fn default() -> Self {
        Self {
            id: b'g',
            level: Compression::default(),
        }
    }
}

impl fmt::Debug for GzipFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GzipFilter")
            .field("id", &char::from(self.id))
            .field("level", &self.level.level())
            .finish()
    }
}

impl GzipFilter {
    /// A gzip filter with the given id and compression level.
    ///
    /// `level` goes from 0 (no compression, stored blocks) to 9 (best
    /// compression); a larger value is clamped to 9 rather than rejected.
    pub fn new(id: u8, level: u32) -> Self {
        Self {
            id,
            level: Compression::new(cmp::min(level, MAX_LEVEL)),
        }
    }

    /// A gzip filter with the conventional id `g` and the given compression
    /// level (clamped to 0..=9, as in [`new`](Self::new)).
    pub fn with_level(level: u32) -> Self {
        Self::new(b'g', level)
    }

    /// The compression level used when packing (0..=9).
    pub fn level(&self) -> u32 {
        self.level.level()
    }
}

impl XferFilter for GzipFilter {
    fn id(&self) -> u8 {
        self.id
    }

    fn name(&self) -> &'static str {
        "gzip"
    }

    fn on_pack(&self, data: Bytes) -> Result<Bytes, XferError> {
        // A gzip member has an 18-byte envelope (10-byte header, 8-byte trailer).
        let out = Vec::with_capacity(data.len() / 2 + 64);
        let mut encoder = flate2::write::GzEncoder::new(out, self.level);
        encoder.write_all(&data).map_err(XferError::Compress)?;
        let out = encoder.finish().map_err(XferError::Compress)?;
        Ok(Bytes::from(out))
    }

    fn on_unpack(&self, data: Bytes, max_len: usize) -> Result<Bytes, XferError> {
        let too_large = || XferError::TooLarge {
            filter: "gzip",
            limit: max_len,
        };
        let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
        // `bufread` so that the decoder consumes exactly the bytes of each
        // member from the slice and can tell whether anything follows it.
        let mut decoder = flate2::bufread::MultiGzDecoder::new(&data[..]).take(limit);

        // The capacity grows under our control and never beyond `max_len`.
        let mut out: Vec<u8> = Vec::with_capacity(cmp::min(data.len().saturating_mul(4), max_len));
        let mut chunk = [0u8; CHUNK];
        loop {
            let n = match decoder.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(XferError::CorruptGzip(e)),
            };
            let len = out.len() + n;
            if len > max_len {
                return Err(too_large());
            }
            if out.capacity() < len {
                let target = cmp::min(cmp::max(out.capacity().saturating_mul(2), len), max_len);
                out.reserve_exact(target - out.len());
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Ok(Bytes::from(out))
    }
}
