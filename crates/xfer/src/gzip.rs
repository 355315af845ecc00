//! The gzip transfer filter (id `g` by the Go erpc convention).
//!
//! Packing writes exactly one gzip member (RFC 1952), as Go's
//! `compress/gzip` writer does. Unpacking accepts one or more concatenated
//! members, like Go's reader in its default multistream mode, and never
//! produces more than the caller's size limit.

use std::cmp;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};

use crate::{XferError, XferFilter};

/// The highest gzip compression level; larger levels are clamped to it.
const MAX_LEVEL: u32 = 9;

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
///
/// The filter keeps the (de)compression state of finished frames for the next
/// ones, since setting up a compressor costs more than compressing a small
/// frame: at most 8 idle compressors (about 300 KiB each) and as many
/// decompressors (about 45 KiB each), shared by the clones of a filter and
/// freed with the last of them.
#[derive(Clone)]
pub struct GzipFilter {
    id: u8,
    level: Compression,
    pool: Arc<Pool>,
}

/// How many idle compressors, and decompressors, a filter keeps.
const MAX_IDLE: usize = 8;

/// Idle (de)compressors, ready for the next frame (reset after use).
#[derive(Default)]
struct Pool {
    compressors: Mutex<Vec<Compress>>,
    decompressors: Mutex<Vec<Decompress>>,
}

impl Default for GzipFilter {
    fn default() -> Self {
        Self {
            id: b'g',
            level: Compression::default(),
            pool: Arc::default(),
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
            pool: Arc::default(),
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

impl GzipFilter {
    /// Runs `f` with an idle compressor (or a new one), and keeps it, reset,
    /// for the next frame.
    fn with_compressor<T>(&self, f: impl FnOnce(&mut Compress) -> T) -> T {
        let idle = lock(&self.pool.compressors).pop();
        let mut compress = idle.unwrap_or_else(|| Compress::new(self.level, false));
        let result = f(&mut compress);
        compress.reset();
        let mut idle = lock(&self.pool.compressors);
        if idle.len() < MAX_IDLE {
            idle.push(compress);
        }
        result
    }

    /// Runs `f` with an idle decompressor (or a new one), and keeps it,
    /// reset, for the next frame.
    fn with_decompressor<T>(&self, f: impl FnOnce(&mut Decompress) -> T) -> T {
        let idle = lock(&self.pool.decompressors).pop();
        let mut decompress = idle.unwrap_or_else(|| Decompress::new(false));
        let result = f(&mut decompress);
        decompress.reset(false);
        let mut idle = lock(&self.pool.decompressors);
        if idle.len() < MAX_IDLE {
            idle.push(decompress);
        }
        result
    }
}

/// Locks a pool list. Nothing can panic while it is held, but a poisoned lock
/// would still hold valid, reset (de)compressors.
fn lock<T>(list: &Mutex<Vec<T>>) -> MutexGuard<'_, Vec<T>> {
    list.lock().unwrap_or_else(PoisonError::into_inner)
}

impl XferFilter for GzipFilter {
    fn id(&self) -> u8 {
        self.id
    }

    fn name(&self) -> &'static str {
        "gzip"
    }

    fn on_pack(&self, data: Bytes) -> Result<Bytes, XferError> {
        let level = self.level.level();
        // The header and trailer take 18 bytes; deflate usually halves a
        // frame, and the output grows if it does not.
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        out.extend_from_slice(&header(level));
        self.with_compressor(|compress| deflate(compress, &data, &mut out))?;
        let mut crc = Crc::new();
        crc.update(&data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952).
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(Bytes::from(out))
    }

    fn on_unpack(&self, data: Bytes, max_len: usize) -> Result<Bytes, XferError> {
        // The capacity grows under our control and never beyond `max_len`; a
        // failed allocation drops the frame, it does not abort the process.
        let mut out: Vec<u8> = Vec::new();
        let first = cmp::min(data.len().saturating_mul(4), max_len);
        out.try_reserve_exact(first)
            .map_err(|_| XferError::OutOfMemory {
                filter: "gzip",
                wanted: first,
            })?;
        self.with_decompressor(|decompress| {
            let mut pos = 0;
            // One or more members; anything after a member must be another one.
            loop {
                if pos > 0 {
                    decompress.reset(false);
                }
                pos += parse_header(&data[pos..])?;
                let start = out.len();
                pos += inflate(decompress, &data[pos..], &mut out, max_len)?;
                let trailer = data
                    .get(pos..pos + TRAILER_LEN)
                    .ok_or_else(|| corrupt("truncated gzip trailer"))?;
                let mut crc = Crc::new();
                crc.update(&out[start..]);
                // ISIZE is the length modulo 2^32.
                let isize = (out.len() - start) as u32;
                if le_u32(&trailer[..4]) != crc.sum() || le_u32(&trailer[4..]) != isize {
                    return Err(corrupt(
                        "corrupt gzip stream does not have a matching checksum",
                    ));
                }
                pos += TRAILER_LEN;
                if pos == data.len() {
                    return Ok(());
                }
            }
        })
        .map_err(|e| match e {
            Failure::TooLarge => XferError::TooLarge {
                filter: "gzip",
                limit: max_len,
            },
            Failure::OutOfMemory(wanted) => XferError::OutOfMemory {
                filter: "gzip",
                wanted,
            },
            Failure::Corrupt(e) => XferError::CorruptGzip(e),
        })?;
        Ok(Bytes::from(out))
    }
}

// ------------------------------------------------------------------ packing

/// The 10-byte gzip header flate2's `GzEncoder` writes: no flags, no mtime,
/// XFL from the level, OS 255 (unknown).
fn header(level: u32) -> [u8; 10] {
    let xfl = if level >= Compression::best().level() {
        2
    } else if level <= Compression::fast().level() {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Compresses all of `data` as one raw deflate stream (final block included)
/// appended to `out`, growing `out` as needed.
fn deflate(compress: &mut Compress, data: &[u8], out: &mut Vec<u8>) -> Result<(), XferError> {
    let start = compress.total_in();
    loop {
        // Deflate may expand incompressible data by a few bytes per block.
        if out.capacity() - out.len() < 64 {
            out.reserve(cmp::max(out.capacity(), 256));
        }
        let consumed = (compress.total_in() - start) as usize;
        let status = compress
            .compress_vec(&data[consumed..], out, FlushCompress::Finish)
            .map_err(|e| XferError::Compress(std::io::Error::other(e)))?;
        if status == Status::StreamEnd {
            return Ok(());
        }
        // Ok or BufError: the output is full; the next round makes room.
        out.reserve(cmp::max(out.capacity(), 256));
    }
}

// ---------------------------------------------------------------- unpacking

/// Why unpacking failed, before the limit is attached to it.
enum Failure {
    TooLarge,
    /// The output buffer could not grow to this many bytes.
    OutOfMemory(usize),
    Corrupt(std::io::Error),
}

fn corrupt(msg: &'static str) -> Failure {
    Failure::Corrupt(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;
/// The longest file name or comment accepted, as in flate2.
const MAX_HEADER_FIELD: usize = 65535;
const TRAILER_LEN: usize = 8;

/// Checks the gzip member header at the front of `src` (RFC 1952, with the
/// optional fields and header CRC); returns its length.
fn parse_header(src: &[u8]) -> Result<usize, Failure> {
    let truncated = || corrupt("truncated gzip header");
    let fixed = src.get(..10).ok_or_else(truncated)?;
    if fixed[0] != 0x1f || fixed[1] != 0x8b || fixed[2] != 8 {
        return Err(corrupt("invalid gzip header"));
    }
    let flags = fixed[3];
    if flags & FRESERVED != 0 {
        return Err(corrupt("invalid gzip header"));
    }
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let xlen = src.get(pos..pos + 2).ok_or_else(truncated)?;
        pos += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        if src.len() < pos {
            return Err(truncated());
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = src[pos..]
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(truncated)?;
            if nul > MAX_HEADER_FIELD {
                return Err(corrupt("gzip header field too long"));
            }
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = src.get(pos..pos + 2).ok_or_else(truncated)?;
        let mut crc = Crc::new();
        crc.update(&src[..pos]);
        if u16::from_le_bytes([stored[0], stored[1]]) != crc.sum() as u16 {
            return Err(corrupt(
                "corrupt gzip stream does not have a matching checksum",
            ));
        }
        pos += 2;
    }
    Ok(pos)
}

/// Inflates the raw deflate stream at the front of `src` onto `out`, which
/// never grows beyond `max_len` bytes; returns how many bytes of `src` the
/// stream took. `decompress` must be fresh or reset.
fn inflate(
    decompress: &mut Decompress,
    src: &[u8],
    out: &mut Vec<u8>,
    max_len: usize,
) -> Result<usize, Failure> {
    let bad = |e: flate2::DecompressError| Failure::Corrupt(std::io::Error::other(e));
    let truncated = || corrupt("truncated deflate stream");
    let start_in = decompress.total_in();
    loop {
        let consumed = (decompress.total_in() - start_in) as usize;
        let input = &src[consumed..];
        if out.len() == out.capacity() {
            if out.len() >= max_len {
                // At the limit: one more byte of output is one too many.
                let mut probe = [0u8; 1];
                let before = (decompress.total_in(), decompress.total_out());
                let status = decompress
                    .decompress(input, &mut probe, FlushDecompress::None)
                    .map_err(bad)?;
                if decompress.total_out() != before.1 {
                    return Err(Failure::TooLarge);
                }
                if status == Status::StreamEnd {
                    return Ok((decompress.total_in() - start_in) as usize);
                }
                if decompress.total_in() == before.0 {
                    return Err(truncated());
                }
                continue;
            }
            let len = out.len();
            let target = cmp::min(cmp::max(len.saturating_mul(2), len + 256), max_len);
            out.try_reserve_exact(target - len)
                .map_err(|_| Failure::OutOfMemory(target))?;
        }
        let before = (decompress.total_in(), decompress.total_out());
        let status = decompress
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(bad)?;
        if status == Status::StreamEnd {
            return Ok((decompress.total_in() - start_in) as usize);
        }
        // No progress with room left in `out`: the stream needs more input.
        if (decompress.total_in(), decompress.total_out()) == before && out.len() < out.capacity() {
            return Err(truncated());
        }
    }
}
