//! The XML codec (`x`, 120), built on quick-xml's serde support.

use std::fmt;

use bytes::Bytes;

use crate::body::{DecodeSink, EncodeBody};
use crate::codec::{encode_atomically, Codec};
use crate::error::CodecError;
use crate::ids;

/// The XML codec: id [`ids::XML`] (`x`, 120), name `"xml"`.
///
/// Carries structs (and enums); the root element is named after the struct, like Go's
/// `encoding/xml` (`struct Point { x: i32 }` → `<Point><x>1</x></Point>`). Types without a
/// name, such as a bare `String` or a map, have no root element and fail to encode
/// ([`CodecError::Encode`]). The body must be UTF-8. An empty body is not a document and fails
/// to decode for types that need an element.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XmlCodec;

impl XmlCodec {
    const NAME: &'static str = "xml";
}

/// Lets quick-xml's `fmt::Write`-based serializer write straight into the output buffer.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Codec for XmlCodec {
    fn id(&self) -> u8 {
        ids::XML
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn encode(&self, value: &dyn EncodeBody, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let ser = value
            .as_serialize()
            .ok_or_else(|| CodecError::unsupported(Self::NAME, value.type_name()))?;
        encode_atomically(out, |out| {
            let mut writer = VecWriter(out);
            erased_serde::serialize(ser, quick_xml::se::Serializer::new(&mut writer))
                .map(drop)
                .map_err(|e| CodecError::encode(Self::NAME, value.type_name(), e))
        })
    }

    fn decode(&self, body: &Bytes, sink: &mut dyn DecodeSink) -> Result<(), CodecError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| CodecError::decode(Self::NAME, sink.type_name(), e))?;
        let mut de = quick_xml::de::Deserializer::from_str(text);
        sink.from_deserializer(&mut <dyn erased_serde::Deserializer<'_>>::erase(&mut de))
            .map_err(|e| e.into_codec_error(Self::NAME, sink.type_name()))
    }
}
