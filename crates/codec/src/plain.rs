//! The plain codec (`s`, 115): the body is the value's own text or bytes.

use std::cell::Cell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Visitor};
use serde::ser::{self, Impossible};

use crate::body::{DecodeSink, EncodeBody};
use crate::codec::{encode_atomically, Codec};
use crate::error::CodecError;
use crate::ids;

/// The plain codec: id [`ids::PLAIN`] (`s`, 115), name `"plain"`: the body is the bytes of a
/// string or a byte buffer, without any framing.
///
/// It carries only types that serialize as a string or as bytes (and newtypes around them):
/// `String`, `&str`, `Box<str>`, `Cow<str>`, anything written with `collect_str`,
/// [`bytes::Bytes`], `serde_bytes::ByteBuf`… Everything else is
/// [`CodecError::UnsupportedType`]. Note that **`Vec<u8>` is not a byte buffer for serde** (it
/// serializes as a sequence of numbers), so it is unsupported: use [`bytes::Bytes`] (or
/// `serde_bytes`).
///
/// Decoding into [`bytes::Bytes`] shares the body without copying; decoding into a string
/// checks UTF-8 (invalid UTF-8 is a [`CodecError::Decode`]). An empty body is the empty string
/// or empty bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlainCodec;

impl PlainCodec {
    const NAME: &'static str = "plain";
}

impl Codec for PlainCodec {
    fn id(&self) -> u8 {
        ids::PLAIN
    }

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn encode(&self, value: &dyn EncodeBody, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let type_name = value.type_name();
        let ser = value
            .as_serialize()
            .ok_or_else(|| CodecError::unsupported(Self::NAME, type_name))?;
        encode_atomically(out, |out| {
            erased_serde::serialize(ser, PlainSerializer { out }).map_err(|e| match e {
                SerError::Unsupported => CodecError::unsupported(Self::NAME, type_name),
                SerError::Custom(msg) => CodecError::encode(Self::NAME, type_name, msg),
            })
        })
    }

    fn decode(&self, body: &Bytes, sink: &mut dyn DecodeSink) -> Result<(), CodecError> {
        if sink.from_raw_bytes(body) {
            return Ok(());
        }
        let unsupported = Cell::new(false);
        let de = PlainDeserializer {
            body,
            unsupported: &unsupported,
        };
        match sink.from_deserializer(&mut <dyn erased_serde::Deserializer<'_>>::erase(de)) {
            Ok(()) => Ok(()),
            Err(_) if unsupported.get() => {
                Err(CodecError::unsupported(Self::NAME, sink.type_name()))
            }
            Err(e) => Err(e.into_codec_error(Self::NAME, sink.type_name())),
        }
    }
}

// ----- encoding -------------------------------------------------------------------------------

#[derive(Debug)]
enum SerError {
    /// The value is not a string or bytes.
    Unsupported,
    /// The value's `Serialize` impl failed.
    Custom(String),
}

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerError::Unsupported => f.write_str("only strings and bytes can be sent as plain"),
            SerError::Custom(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SerError::Custom(msg.to_string())
    }
}

/// Accepts a string or bytes and appends them to `out`; refuses everything else.
struct PlainSerializer<'a> {
    out: &'a mut Vec<u8>,
}

macro_rules! refuse_ser {
    ($($method:ident($($arg:ty),*);)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<(), SerError> {
                Err(SerError::Unsupported)
            }
        )*
    };
}

impl ser::Serializer for PlainSerializer<'_> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Impossible<(), SerError>;
    type SerializeTuple = Impossible<(), SerError>;
    type SerializeTupleStruct = Impossible<(), SerError>;
    type SerializeTupleVariant = Impossible<(), SerError>;
    type SerializeMap = Impossible<(), SerError>;
    type SerializeStruct = Impossible<(), SerError>;
    type SerializeStructVariant = Impossible<(), SerError>;

    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), SerError> {
        self.out.extend_from_slice(v);
        Ok(())
    }

    fn serialize_newtype_struct<T: ser::Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        value.serialize(self)
    }

    refuse_ser! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ser::Serialize + ?Sized>(self, _: &T) -> Result<(), SerError> {
        Err(SerError::Unsupported)
    }

    fn serialize_newtype_variant<T: ser::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), SerError> {
        Err(SerError::Unsupported)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, SerError> {
        Err(SerError::Unsupported)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, SerError> {
        Err(SerError::Unsupported)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, SerError> {
        Err(SerError::Unsupported)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        Err(SerError::Unsupported)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, SerError> {
        Err(SerError::Unsupported)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, SerError> {
        Err(SerError::Unsupported)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        Err(SerError::Unsupported)
    }
}

// ----- decoding -------------------------------------------------------------------------------

/// Hands the raw body to string and bytes visitors; refuses every other shape and records
/// that in `unsupported` (so the codec can tell "wrong type" from "bad input").
struct PlainDeserializer<'a> {
    body: &'a Bytes,
    unsupported: &'a Cell<bool>,
}

impl PlainDeserializer<'_> {
    fn refuse<T>(&self) -> Result<T, de::value::Error> {
        self.unsupported.set(true);
        Err(de::Error::custom(
            "only strings and bytes can be received as plain",
        ))
    }

    fn text(&self) -> Result<&str, de::value::Error> {
        std::str::from_utf8(self.body)
            .map_err(|e| de::Error::custom(format_args!("the body is not UTF-8: {e}")))
    }
}

macro_rules! refuse_de {
    ($($method:ident $(($($arg:ty),*))?;)*) => {
        $(
            fn $method<V: Visitor<'de>>(
                self,
                $($(_: $arg,)*)?
                _visitor: V,
            ) -> Result<V::Value, de::value::Error> {
                self.refuse()
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for PlainDeserializer<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_bytes(self.body)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str(self.text()?)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_bytes(self.body)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_bytes(self.body)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    refuse_de! {
        deserialize_bool;
        deserialize_i8;
        deserialize_i16;
        deserialize_i32;
        deserialize_i64;
        deserialize_i128;
        deserialize_u8;
        deserialize_u16;
        deserialize_u32;
        deserialize_u64;
        deserialize_u128;
        deserialize_f32;
        deserialize_f64;
        deserialize_char;
        deserialize_option;
        deserialize_unit;
        deserialize_unit_struct(&'static str);
        deserialize_seq;
        deserialize_tuple(usize);
        deserialize_tuple_struct(&'static str, usize);
        deserialize_map;
        deserialize_struct(&'static str, &'static [&'static str]);
        deserialize_enum(&'static str, &'static [&'static str]);
        deserialize_identifier;
        deserialize_ignored_any;
    }
}
