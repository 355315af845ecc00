//! The URL-encoded form codec (`f`, 102), built on serde_urlencoded.

use bytes::Bytes;

use crate::body::{DecodeSink, EncodeBody};
use crate::codec::Codec;
use crate::error::CodecError;
use crate::ids;

/// The form codec: id [`ids::FORM`] (`f`, 102), name `"form"`:
/// `application/x-www-form-urlencoded`, as in `a=1&b=hello+world`.
///
/// Carries structs and maps whose values are scalars or strings (and sequences of pairs);
/// serde_urlencoded reports anything else as an encode error. An empty body is an empty
/// form: it decodes to an empty map, or a struct whose fields are all optional or defaulted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FormCodec;

impl FormCodec {
    const NAME: &'static str = "form";
}

impl Codec for FormCodec {
    fn id(&self) -> u8 {
        ids::FORM
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn encode(&self, value: &dyn EncodeBody, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let ser = value
            .as_serialize()
            .ok_or_else(|| CodecError::unsupported(Self::NAME, value.type_name()))?;
        // serde_urlencoded only writes into a `String`; copy it over once it is complete, so
        // `out` is untouched on error.
        let encoded = serde_urlencoded::to_string(ser)
            .map_err(|e| CodecError::encode(Self::NAME, value.type_name(), e))?;
        out.extend_from_slice(encoded.as_bytes());
        Ok(())
    }

    fn decode(&self, body: &Bytes, sink: &mut dyn DecodeSink) -> Result<(), CodecError> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(body));
        sink.from_deserializer(&mut <dyn erased_serde::Deserializer<'_>>::erase(de))
            .map_err(|e| e.into_codec_error(Self::NAME, sink.type_name()))
    }
}
