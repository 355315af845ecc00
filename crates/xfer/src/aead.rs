//! The ChaCha20-Poly1305 authenticated-encryption transfer filter.
//!
//! There is no Go erpc counterpart: both peers must register it under the
//! same id with the same key.

use std::fmt;

use bytes::Bytes;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit, Nonce, Tag};

use crate::{XferError, XferFilter};

/// Length of a key in bytes.
const KEY_LEN: usize = 32;
/// Length of the nonce that starts every packed payload.
const NONCE_LEN: usize = 12;
/// Length of the Poly1305 tag that ends every packed payload.
const TAG_LEN: usize = 16;

/// A 256-bit ChaCha20-Poly1305 key.
///
/// Its [`Debug`](fmt::Debug) output never shows the key bytes.
#[derive(Clone)]
pub struct AeadKey([u8; KEY_LEN]);

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

impl AeadKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A key from a slice, which must be exactly 32 bytes long; otherwise
    /// fails with [`XferError::InvalidKeyLength`].
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, XferError> {
        <[u8; KEY_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| XferError::InvalidKeyLength { len: bytes.len() })
    }

    /// A fresh random key from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes.
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        OsRng
            .try_fill_bytes(&mut key)
            .expect("the operating system random number generator failed");
        Self(key)
    }

    /// The key's bytes, e.g. to store a [`generate`](Self::generate)d key or
    /// hand it to the peer.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl From<[u8; KEY_LEN]> for AeadKey {
    fn from(bytes: [u8; KEY_LEN]) -> Self {
        Self::from_bytes(bytes)
    }
}

impl TryFrom<&[u8]> for AeadKey {
    type Error = XferError;

    fn try_from(bytes: &[u8]) -> Result<Self, XferError> {
        Self::try_from_slice(bytes)
    }
}

/// Encrypts and authenticates payloads with ChaCha20-Poly1305 (RFC 8439).
///
/// Packed format:
///
/// ```text
/// nonce (12 bytes, random, fresh for every payload) || ciphertext (same length as the payload) || tag (16 bytes)
/// ```
///
/// No associated data is used. A packed payload is therefore 28 bytes longer
/// than the plain one. Random 96-bit nonces are safe for up to about 2^32
/// payloads per key; rotate keys well before that.
///
/// [`on_unpack`](XferFilter::on_unpack) fails with
/// [`XferError::DecryptFailed`] if the input is shorter than 28 bytes, was
/// modified in any way, or was encrypted with another key.
#[derive(Clone)]
pub struct AeadFilter {
    id: u8,
    cipher: ChaCha20Poly1305,
}

impl fmt::Debug for AeadFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadFilter")
            .field("id", &char::from(self.id))
            .finish_non_exhaustive()
    }
}

impl AeadFilter {
    /// A ChaCha20-Poly1305 filter with the given id and key.
    pub fn new(id: u8, key: AeadKey) -> Self {
        Self {
            id,
            cipher: ChaCha20Poly1305::new(&key.0.into()),
        }
    }
}

impl XferFilter for AeadFilter {
    fn id(&self) -> u8 {
        self.id
    }

    fn name(&self) -> &'static str {
        "chacha20poly1305"
    }

    fn on_pack(&self, data: Bytes) -> Result<Bytes, XferError> {
        let mut nonce = Nonce::default();
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| XferError::EncryptFailed)?;
        let mut out = Vec::with_capacity(NONCE_LEN + data.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, b"", &mut out[NONCE_LEN..])
            .map_err(|_| XferError::EncryptFailed)?;
        out.extend_from_slice(&tag);
        Ok(Bytes::from(out))
    }

    fn on_unpack(&self, data: Bytes, max_len: usize) -> Result<Bytes, XferError> {
        let Some(plain_len) = data.len().checked_sub(NONCE_LEN + TAG_LEN) else {
            return Err(XferError::DecryptFailed);
        };
        if plain_len > max_len {
            return Err(XferError::TooLarge {
                filter: "chacha20poly1305",
                limit: max_len,
            });
        }
        let (nonce, rest) = data.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(plain_len);
        let mut out = ciphertext.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                b"",
                &mut out,
                Tag::from_slice(tag),
            )
            .map_err(|_| XferError::DecryptFailed)?;
        Ok(Bytes::from(out))
    }
}
