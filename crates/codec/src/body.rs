//! Typed values on both sides of a codec: [`EncodeBody`], [`DecodeBody`], the [`DecodeSink`]
//! codecs decode into, the protobuf wrapper [`Pb`] and the not-yet-decoded [`RawBody`].

use std::any::Any;

use bytes::Bytes;

use crate::error::SinkError;
use crate::{CodecError, Registry};

/// A value that can be encoded as a body.
///
/// Codecs are object-safe, so they see the value through this trait and ask it for the
/// representation they understand: serde codecs (json, form, xml, plain, …) call
/// [`as_serialize`](Self::as_serialize), the protobuf codec calls
/// [`as_message`](Self::as_message). A `None` answer makes the codec report
/// [`CodecError::UnsupportedType`].
///
/// Every sized [`serde::Serialize`] type implements it; protobuf messages do through the
/// [`Pb`] wrapper.
pub trait EncodeBody {
    /// The Rust type name of the value, used in error messages.
    fn type_name(&self) -> &'static str;

    /// The value as a type-erased serde value, if it has one.
    fn as_serialize(&self) -> Option<&dyn erased_serde::Serialize> {
        None
    }

    /// The value as a protobuf message, if it is one.
    fn as_message(&self) -> Option<&dyn MessageEncode> {
        None
    }

    /// The value as an already-encoded body, if it is one ([`RawBody`]):
    /// its bytes are sent as they are, with its own codec id.
    fn as_raw(&self) -> Option<&RawBody> {
        None
    }
}

impl<T: serde::Serialize> EncodeBody for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn as_serialize(&self) -> Option<&dyn erased_serde::Serialize> {
        Some(self)
    }
}

/// An object-safe view of a protobuf message, implemented for every [`prost::Message`]
/// (feature `protobuf`).
pub trait MessageEncode {
    /// The exact length of the encoded message.
    fn encoded_len(&self) -> usize;

    /// Appends the encoded message to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);
}

#[cfg(feature = "protobuf")]
impl<M: prost::Message> MessageEncode for M {
    fn encoded_len(&self) -> usize {
        prost::Message::encoded_len(self)
    }

    fn encode_to(&self, out: &mut Vec<u8>) {
        out.reserve(prost::Message::encoded_len(self));
        self.encode_raw(out);
    }
}

/// A value that can be decoded from a body.
///
/// Every `'static` [`serde::de::DeserializeOwned`] type implements it; protobuf messages do
/// through the [`Pb`] wrapper. The methods other than [`type_name`](Self::type_name) are the
/// ways a codec can hand over the body; the defaults refuse with [`SinkError::Unsupported`].
pub trait DecodeBody: Sized {
    /// The Rust type name, used in error messages.
    fn type_name() -> &'static str;

    /// Builds the value from a (type-erased) serde deserializer.
    fn from_deserializer(de: &mut dyn erased_serde::Deserializer<'_>) -> Result<Self, SinkError> {
        let _ = de;
        Err(SinkError::Unsupported)
    }

    /// Builds the value from an encoded protobuf message.
    fn from_message(body: &Bytes) -> Result<Self, SinkError> {
        let _ = body;
        Err(SinkError::Unsupported)
    }

    /// Takes the raw body as it is, without copying, if the type is a plain byte buffer
    /// ([`bytes::Bytes`]). Returns `None` if the type wants to be decoded another way.
    fn from_raw_bytes(body: &Bytes) -> Option<Self> {
        let _ = body;
        None
    }
}

impl<T: serde::de::DeserializeOwned + 'static> DecodeBody for T {
    fn type_name() -> &'static str {
        std::any::type_name::<T>()
    }

    fn from_deserializer(de: &mut dyn erased_serde::Deserializer<'_>) -> Result<Self, SinkError> {
        erased_serde::deserialize::<T>(de).map_err(SinkError::decode)
    }

    fn from_raw_bytes(body: &Bytes) -> Option<Self> {
        let mut out: Option<T> = None;
        if let Some(slot) = (&mut out as &mut dyn Any).downcast_mut::<Option<Bytes>>() {
            *slot = Some(body.clone());
        }
        out
    }
}

/// The object-safe receiving end of a decode: a codec offers the body to the sink in the
/// form it has (a serde deserializer, a protobuf message, raw bytes), and the sink builds its
/// typed value from it.
///
/// [`Slot`] is the implementation for any [`DecodeBody`] type; codecs only need to call these
/// methods.
// `from_*` reads as "fill from": the sink is filled in place, hence `&mut self`.
#[allow(clippy::wrong_self_convention)]
pub trait DecodeSink {
    /// The Rust type name of the value the sink wants, used in error messages.
    fn type_name(&self) -> &'static str;

    /// Decodes the value from a serde deserializer.
    fn from_deserializer(
        &mut self,
        de: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<(), SinkError>;

    /// Decodes the value from an encoded protobuf message.
    fn from_message(&mut self, body: &Bytes) -> Result<(), SinkError>;

    /// Offers the body as raw bytes (zero copy). Returns `true` if the sink took it as its
    /// value; on `false` the codec should fall back to another way.
    fn from_raw_bytes(&mut self, body: &Bytes) -> bool {
        let _ = body;
        false
    }
}

/// A typed [`DecodeSink`]: holds the decoded value once a codec has filled it.
#[derive(Debug)]
pub struct Slot<T>(Option<T>);

impl<T> Slot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Slot(None)
    }

    /// The decoded value, if a codec filled the slot.
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(None)
    }
}

impl<T: DecodeBody> DecodeSink for Slot<T> {
    fn type_name(&self) -> &'static str {
        T::type_name()
    }

    fn from_deserializer(
        &mut self,
        de: &mut dyn erased_serde::Deserializer<'_>,
    ) -> Result<(), SinkError> {
        self.0 = Some(T::from_deserializer(de)?);
        Ok(())
    }

    fn from_message(&mut self, body: &Bytes) -> Result<(), SinkError> {
        self.0 = Some(T::from_message(body)?);
        Ok(())
    }

    fn from_raw_bytes(&mut self, body: &Bytes) -> bool {
        match T::from_raw_bytes(body) {
            Some(value) => {
                self.0 = Some(value);
                true
            }
            None => false,
        }
    }
}

/// Wraps a [`prost::Message`] so it can be carried by the protobuf codec (feature `protobuf`).
///
/// Prost messages are not serde types, so they go through this wrapper on both sides:
/// encode `&Pb(msg)`, decode `Pb<Msg>`. Only the protobuf codec can carry a `Pb<T>`; the
/// others report [`CodecError::UnsupportedType`].
#[cfg(feature = "protobuf")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pb<T>(pub T);

#[cfg(feature = "protobuf")]
impl<T> Pb<T> {
    /// The wrapped message.
    pub fn into_inner(self) -> T {
        self.0
    }
}

#[cfg(feature = "protobuf")]
impl<T> std::ops::Deref for Pb<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(feature = "protobuf")]
impl<T> std::ops::DerefMut for Pb<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[cfg(feature = "protobuf")]
impl<T> From<T> for Pb<T> {
    fn from(message: T) -> Self {
        Pb(message)
    }
}

#[cfg(feature = "protobuf")]
impl<T: prost::Message> EncodeBody for Pb<T> {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    fn as_message(&self) -> Option<&dyn MessageEncode> {
        Some(&self.0)
    }
}

#[cfg(feature = "protobuf")]
impl<T: prost::Message + Default> DecodeBody for Pb<T> {
    fn type_name() -> &'static str {
        std::any::type_name::<Self>()
    }

    fn from_message(body: &Bytes) -> Result<Self, SinkError> {
        // `Bytes` as the buffer lets prost take `bytes` fields declared as `Bytes` without a copy.
        T::decode(body.clone()).map(Pb).map_err(SinkError::decode)
    }
}

impl EncodeBody for RawBody {
    fn type_name(&self) -> &'static str {
        "RawBody"
    }

    fn as_raw(&self) -> Option<&RawBody> {
        Some(self)
    }
}

/// A body that has not been decoded yet: the codec id from the frame and the body bytes.
///
/// Handlers that do not know the argument type up front (for example a router's fallback
/// handler) receive this and decode it later with [`RawBody::decode`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RawBody {
    /// The body codec id (see [`ids`](crate::ids)); [`NONE`](crate::ids::NONE) for no body.
    pub codec: u8,
    /// The body bytes.
    pub bytes: Bytes,
}

impl RawBody {
    /// A body encoded with codec `codec`.
    pub fn new(codec: u8, bytes: impl Into<Bytes>) -> Self {
        RawBody {
            codec,
            bytes: bytes.into(),
        }
    }

    /// No body: codec [`NONE`](crate::ids::NONE), no bytes.
    pub fn none() -> Self {
        RawBody::default()
    }

    /// Encodes `value` with codec `codec` from `registry`.
    pub fn encode(
        registry: &Registry,
        codec: u8,
        value: &dyn EncodeBody,
    ) -> Result<Self, CodecError> {
        Ok(RawBody {
            codec,
            bytes: registry.encode(codec, value)?,
        })
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes the body as a `T` with the codec it names, looked up in `registry`
    /// (see [`Registry::decode`]).
    pub fn decode<T: DecodeBody>(&self, registry: &Registry) -> Result<T, CodecError> {
        registry.decode(self.codec, &self.bytes)
    }
}
