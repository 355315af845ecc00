//! The JSON codec (`j`, 106), built on serde_json.

use bytes::Bytes;

use crate::body::{DecodeSink, EncodeBody};
use crate::codec::{encode_atomically, Codec};
use crate::error::{CodecError, SinkError};
use crate::ids;

/// The JSON codec: id [`ids::JSON`] (`j`, 106), name `"json"`; the default codec of the
/// protocol. Carries any serde type.
///
/// An **empty body decodes as JSON `null`**, as Go erpc tolerates empty bodies: `()` and
/// `Option<T>` (→ `None`) decode from it, other types fail with a
/// [`CodecError::Decode`] ("invalid type: null, expected …"). Trailing non-whitespace after
/// the value is a decode error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonCodec;

impl JsonCodec {
    const NAME: &'static str = "json";
}

impl Codec for JsonCodec {
    fn id(&self) -> u8 {
        ids::JSON
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn encode(&self, value: &dyn EncodeBody, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let ser = value
            .as_serialize()
            .ok_or_else(|| CodecError::unsupported(Self::NAME, value.type_name()))?;
        encode_atomically(out, |out| {
            serde_json::to_writer(out, ser)
                .map_err(|e| CodecError::encode(Self::NAME, value.type_name(), e))
        })
    }

    fn decode(&self, body: &Bytes, sink: &mut dyn DecodeSink) -> Result<(), CodecError> {
        let input: &[u8] = if body.is_empty() { b"null" } else { body };
        let mut de = serde_json::Deserializer::from_slice(input);
        sink.from_deserializer(&mut <dyn erased_serde::Deserializer<'_>>::erase(&mut de))
            .map_err(|e| match e {
                SinkError::Decode(source) if body.is_empty() => CodecError::decode(
                    Self::NAME,
                    sink.type_name(),
                    format!("empty body (read as null): {source}"),
                ),
                e => e.into_codec_error(Self::NAME, sink.type_name()),
            })?;
        de.end()
            .map_err(|e| CodecError::decode(Self::NAME, sink.type_name(), e))
    }
}
