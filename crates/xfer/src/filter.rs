use bytes::Bytes;

use crate::XferError;

/// One transfer filter: a reversible transformation of a frame's payload.
///
/// Implementations must be deterministic in what [`on_unpack`](Self::on_unpack)
/// accepts: it must undo exactly what [`on_pack`](Self::on_pack) did, and must
/// return an error (never garbage, never a panic) for input it did not produce.
pub trait XferFilter: Send + Sync + 'static {
    /// The one-byte id written in the frame header. Never 0.
    fn id(&self) -> u8;
    /// A human-readable name, unique within a registry (e.g. `"gzip"`).
    fn name(&self) -> &'static str;
    /// Transforms an outgoing payload.
    fn on_pack(&self, data: Bytes) -> Result<Bytes, XferError>;
    /// Undoes [`on_pack`](Self::on_pack). `max_len` is the largest output the
    /// caller accepts: a filter that can grow its input (decompression) must
    /// stop with [`XferError::TooLarge`] before allocating beyond it.
    fn on_unpack(&self, data: Bytes, max_len: usize) -> Result<Bytes, XferError>;
}
