//! The [`Codec`] trait and the typed decode helper.

use bytes::Bytes;

use crate::body::{DecodeBody, DecodeSink, EncodeBody, Slot};
use crate::error::{CodecError, Message, SinkError};

/// A body codec: turns a value into body bytes and back.
///
/// Codecs are object-safe and live in a [`Registry`](crate::Registry) under a one-byte id
/// (the one a frame carries) and a name. They see values through [`EncodeBody`] and decode
/// into a [`DecodeSink`], so one codec instance serves every type.
///
/// # Writing a codec
///
/// Encode by asking the value for the representation the format understands and decode by
/// offering the body to the sink in that form; map "the type has no such representation" to
/// [`CodecError::UnsupportedType`]. A JSON codec that pretty-prints, under its own id:
///
/// ```
/// # #[cfg(feature = "json")] {
/// use bytes::Bytes;
/// use jaunt_codec::{Codec, CodecError, DecodeSink, EncodeBody, Registry};
///
/// struct PrettyJson;
///
/// impl Codec for PrettyJson {
///     fn id(&self) -> u8 {
///         b'J'
///     }
///     fn name(&self) -> &'static str {
///         "pretty-json"
///     }
///     fn encode(&self, value: &dyn EncodeBody, out: &mut Vec<u8>) -> Result<(), CodecError> {
///         let ser = value
///             .as_serialize()
///             .ok_or_else(|| CodecError::unsupported(self.name(), value.type_name()))?;
///         serde_json::to_writer_pretty(out, ser)
///             .map_err(|e| CodecError::encode(self.name(), value.type_name(), e))
///     }
///     fn decode(&self, body: &Bytes, sink: &mut dyn DecodeSink) -> Result<(), CodecError> {
///         let mut de = serde_json::Deserializer::from_slice(body);
///         sink.from_deserializer(&mut <dyn erased_serde::Deserializer<'_>>::erase(&mut de))
///             .map_err(|e| e.into_codec_error(self.name(), sink.type_name()))?;
///         de.end().map_err(|e| CodecError::decode(self.name(), sink.type_name(), e))
///     }
/// }
///
/// let mut registry = Registry::with_defaults();
/// registry.register(PrettyJson)?;
/// let body = registry.encode(b'J', &vec![1, 2])?;
/// assert_eq!(&body[..], b"[\n  1,\n  2\n]");
/// assert_eq!(registry.decode::<Vec<i32>>(b'J', &body)?, vec![1, 2]);
/// # }
/// # Ok::<(), jaunt_codec::CodecError>(())
/// ```
pub trait Codec: Send + Sync + 'static {
    /// The id frames carry for this codec (never 0).
    fn id(&self) -> u8;

    /// A short unique name (used in errors and for lookups by name).
    fn name(&self) -> &'static str;

    /// Appends the encoding of `value` to `out`.
    ///
    /// On error, `out` should be left as it was (the built-in codecs truncate it back;
    /// [`Registry::encode_into`](crate::Registry::encode_into) does so for every codec).
    fn encode(&self, value: &dyn EncodeBody, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes `body` into `sink`.
    fn decode(&self, body: &Bytes, sink: &mut dyn DecodeSink) -> Result<(), CodecError>;
}

/// Decodes `body` as a `T` with `codec`.
pub fn decode_with<T: DecodeBody>(codec: &dyn Codec, body: &Bytes) -> Result<T, CodecError> {
    let mut slot = Slot::<T>::new();
    codec.decode(body, &mut slot)?;
    slot.into_inner().ok_or_else(|| {
        CodecError::decode(
            codec.name(),
            T::type_name(),
            Message("the codec reported success but produced no value"),
        )
    })
}

/// Decodes a body that carries codec id 0 ("no body").
///
/// A non-empty body is [`CodecError::BodyWithoutCodec`]. An empty one is the absence of a
/// value: types that have one (`()`, `Option<T>`, protobuf messages, which decode to their
/// default) get it, the others [`CodecError::NoBody`].
pub(crate) fn decode_none<T: DecodeBody>(body: &Bytes) -> Result<T, CodecError> {
    if !body.is_empty() {
        return Err(CodecError::BodyWithoutCodec { len: body.len() });
    }
    let unit = serde::de::value::UnitDeserializer::<serde::de::value::Error>::new();
    let value = match T::from_deserializer(&mut <dyn erased_serde::Deserializer<'_>>::erase(unit)) {
        Err(SinkError::Unsupported) => T::from_message(body),
        other => other,
    };
    value.map_err(|_| CodecError::NoBody {
        type_name: T::type_name(),
    })
}

/// Runs an encode into `out`, truncating `out` back to its original length on error.
pub(crate) fn encode_atomically(
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let start = out.len();
    let result = f(out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}
