use thiserror::Error;

/// Why a transfer filter, or the registry, failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum XferError {
    /// Filter id 0 is reserved and cannot be registered.
    #[error("transfer filter id 0 is reserved")]
    ReservedId,
    /// Another filter is already registered under this id.
    #[error("transfer filter id {id} ({:?}) is already registered", char::from(*.id))]
    DuplicateId {
        /// The id that is taken.
        id: u8,
    },
    /// Another filter is already registered under this name.
    #[error("transfer filter name {name:?} is already registered")]
    DuplicateName {
        /// The name that is taken.
        name: String,
    },
    /// A frame names a filter that is not registered here.
    #[error("unknown transfer filter id {id} ({:?})", char::from(*.id))]
    UnknownId {
        /// The unknown id.
        id: u8,
    },
    /// More than [`crate::MAX_FILTERS`] filters on one frame.
    #[error("too many transfer filters: {count} (at most 255)")]
    TooMany {
        /// How many were asked for.
        count: usize,
    },
    /// Unpacking would produce more bytes than the frame size limit allows.
    #[error("transfer filter {filter:?} output exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The filter's name.
        filter: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// Memory for the filter's output could not be had (the frame is
    /// dropped; the process goes on).
    #[error("transfer filter {filter:?} could not allocate {wanted} bytes for its output")]
    OutOfMemory {
        /// The filter.
        filter: &'static str,
        /// The bytes it asked for.
        wanted: usize,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("corrupt gzip data: {0}")]
    CorruptGzip(#[source] std::io::Error),
    /// The checksum does not match the data (or the data is too short to carry one).
    #[error("checksum mismatch: the payload was corrupted in transit")]
    ChecksumMismatch,
    /// Authenticated decryption failed: the frame was tampered with, truncated,
    /// or encrypted with another key.
    #[error("decryption failed: frame tampered with or wrong key")]
    DecryptFailed,
    /// Encryption failed (only when the payload is too large for the cipher).
    #[error("encryption failed")]
    EncryptFailed,
    /// An encryption key has the wrong length.
    #[error("invalid key length: {len} bytes")]
    InvalidKeyLength {
        /// The length that was given.
        len: usize,
    },
    /// Compressing failed (an I/O error from the compressor).
    #[error("compression failed: {0}")]
    Compress(#[source] std::io::Error),
}
