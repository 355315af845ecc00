//! The MD5 checksum transfer filter (id `m` by the Go erpc convention).
//!
//! Packing appends the 16-byte MD5 digest of the payload; unpacking checks
//! and strips it. This detects accidental corruption only: MD5 is not a MAC
//! and offers no protection against deliberate tampering (use
//! [`AeadFilter`](crate::AeadFilter) for that).

use std::fmt;

use ::md5::{Digest, Md5};
use bytes::Bytes;

use crate::{XferError, XferFilter};

/// Length of an MD5 digest in bytes.
const DIGEST_LEN: usize = 16;

/// Appends an MD5 checksum to payloads and verifies it on the way in.
///
/// Packed format: `payload || md5(payload)` (16 bytes). The default filter
/// has id `m`, as in Go erpc.
#[derive(Clone)]
pub struct Md5Filter {
    id: u8,
}

impl Default for Md5Filter {
    fn default() -> Self {
        Self { id: b'm' }
    }
}

impl fmt::Debug for Md5Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Md5Filter")
            .field("id", &char::from(self.id))
            .finish()
    }
}

impl Md5Filter {
    /// An MD5 checksum filter with the given id.
    pub fn new(id: u8) -> Self {
        Self { id }
    }
}

impl XferFilter for Md5Filter {
    fn id(&self) -> u8 {
        self.id
    }

    fn name(&self) -> &'static str {
        "md5"
    }

    fn on_pack(&self, data: Bytes) -> Result<Bytes, XferError> {
        let digest = Md5::digest(&data);
        let mut out = Vec::with_capacity(data.len() + DIGEST_LEN);
        out.extend_from_slice(&data);
        out.extend_from_slice(&digest);
        Ok(Bytes::from(out))
    }

    fn on_unpack(&self, mut data: Bytes, max_len: usize) -> Result<Bytes, XferError> {
        let Some(body_len) = data.len().checked_sub(DIGEST_LEN) else {
            return Err(XferError::ChecksumMismatch);
        };
        let (body, sum) = data.split_at(body_len);
        if Md5::digest(body).as_slice() != sum {
            return Err(XferError::ChecksumMismatch);
        }
        if body_len > max_len {
            return Err(XferError::TooLarge {
                filter: "md5",
                limit: max_len,
            });
        }
        data.truncate(body_len);
        Ok(data)
    }
}
