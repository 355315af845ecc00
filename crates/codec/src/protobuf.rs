//! The protobuf codec (`p`, 112), built on prost.

use bytes::Bytes;

use crate::body::{DecodeSink, EncodeBody};
use crate::codec::Codec;
use crate::error::CodecError;
use crate::ids;

/// The protobuf codec: id [`ids::PROTOBUF`] (`p`, 112), name `"protobuf"`.
///
/// Carries only protobuf messages, wrapped in [`Pb`](crate::Pb) (encode `&Pb(msg)`, decode
/// `Pb<Msg>`); any other type is [`CodecError::UnsupportedType`]. An empty body decodes to
/// the default message, as in protobuf itself. Decoding reads from the body's [`Bytes`], so
/// `bytes` fields declared as [`Bytes`] share the body instead of copying it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtobufCodec;

impl ProtobufCodec {
    const NAME: &'static str = "protobuf";
}

impl Codec for ProtobufCodec {
    fn id(&self) -> u8 {
        ids::PROTOBUF
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn encode(&self, value: &dyn EncodeBody, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let message = value
            .as_message()
            .ok_or_else(|| CodecError::unsupported(Self::NAME, value.type_name()))?;
        // Encoding into a growable `Vec` cannot fail.
        message.encode_to(out);
        Ok(())
    }

    fn decode(&self, body: &Bytes, sink: &mut dyn DecodeSink) -> Result<(), CodecError> {
        sink.from_message(body)
            .map_err(|e| e.into_codec_error(Self::NAME, sink.type_name()))
    }
}
