//! The set of codecs a peer knows, keyed by id and name.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::body::{DecodeBody, EncodeBody};
use crate::codec::{decode_none, decode_with, encode_atomically, Codec};
use crate::error::CodecError;
use crate::ids;

/// The codecs a peer can use, by id and by name.
///
/// A plain value (no globals): build one, register codecs, and share it; cloning is cheap
/// (the table sits behind an [`Arc`]; registering on a clone copies it first).
/// Lookups by id are a single table index.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    /// `index[id]` is 1 + the position of the codec in `codecs`, or 0.
    index: [u8; 256],
    codecs: Vec<Arc<dyn Codec>>,
}

impl Registry {
    /// A registry without any codec.
    pub fn new() -> Self {
        Registry {
            inner: Arc::new(Inner {
                index: [0; 256],
                codecs: Vec::new(),
            }),
        }
    }

    /// A registry with every built-in codec enabled by the crate features: json, protobuf,
    /// plain (always), form and xml.
    pub fn with_defaults() -> Self {
        let mut registry = Registry::new();
        // The built-in ids and names are distinct, so registering them cannot fail.
        #[cfg(feature = "json")]
        let _ = registry.register(crate::JsonCodec);
        #[cfg(feature = "protobuf")]
        let _ = registry.register(crate::ProtobufCodec);
        let _ = registry.register(crate::PlainCodec);
        #[cfg(feature = "form")]
        let _ = registry.register(crate::FormCodec);
        #[cfg(feature = "xml")]
        let _ = registry.register(crate::XmlCodec);
        registry
    }

    /// Adds `codec`.
    ///
    /// Fails with [`CodecError::ReservedId`] for id 0, and with
    /// [`CodecError::DuplicateId`] / [`CodecError::DuplicateName`] if the id or the name is
    /// already taken; the registry is unchanged then.
    pub fn register(&mut self, codec: impl Codec) -> Result<(), CodecError> {
        self.register_arc(Arc::new(codec))
    }

    /// Adds an already shared codec; see [`register`](Self::register).
    pub fn register_arc(&mut self, codec: Arc<dyn Codec>) -> Result<(), CodecError> {
        let id = codec.id();
        let name = codec.name();
        if id == ids::NONE {
            return Err(CodecError::ReservedId);
        }
        if self.inner.index[usize::from(id)] != 0 {
            return Err(CodecError::DuplicateId { id });
        }
        if self.inner.codecs.iter().any(|c| c.name() == name) {
            return Err(CodecError::DuplicateName { name });
        }
        let inner = Arc::make_mut(&mut self.inner);
        inner.codecs.push(codec);
        // At most 255 codecs (ids 1..=255 are distinct), so the position fits.
        inner.index[usize::from(id)] = inner.codecs.len() as u8;
        Ok(())
    }

    /// The codec registered under `id`.
    ///
    /// Fails with [`CodecError::ReservedId`] for id 0 and [`CodecError::UnknownId`] for an
    /// id nobody registered.
    #[inline]
    pub fn get(&self, id: u8) -> Result<&Arc<dyn Codec>, CodecError> {
        match self.inner.index[usize::from(id)] {
            0 if id == ids::NONE => Err(CodecError::ReservedId),
            0 => Err(CodecError::UnknownId { id }),
            n => Ok(&self.inner.codecs[usize::from(n) - 1]),
        }
    }

    /// The codec registered under `name`.
    pub fn get_by_name(&self, name: &str) -> Result<&Arc<dyn Codec>, CodecError> {
        self.inner
            .codecs
            .iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| CodecError::UnknownName {
                name: name.to_owned(),
            })
    }

    /// The codec `codec` names: a [`CodecRef::Id`] by id; a
    /// [`CodecRef::Name`] by name, or, when no codec has that name and it is
    /// a single ASCII character, by that character as an id (`"j"` is the
    /// JSON codec). Fails as [`get`](Self::get) and
    /// [`get_by_name`](Self::get_by_name) do.
    ///
    /// ```
    /// use jaunt_codec::{ids, CodecRef, Registry};
    ///
    /// let codecs = Registry::with_defaults();
    /// assert_eq!(codecs.resolve(&CodecRef::from("json")).unwrap().id(), ids::JSON);
    /// assert_eq!(codecs.resolve(&CodecRef::from(b'j')).unwrap().name(), "json");
    /// assert_eq!(codecs.resolve(&"p".into()).unwrap().name(), "protobuf");
    /// assert!(codecs.resolve(&"yaml".into()).is_err());
    /// ```
    pub fn resolve(&self, codec: &CodecRef) -> Result<&Arc<dyn Codec>, CodecError> {
        match codec {
            CodecRef::Id(id) => self.get(*id),
            CodecRef::Name(name) => {
                self.get_by_name(name)
                    .or_else(|unknown| match name.as_bytes() {
                        [id] if id.is_ascii() && self.contains(*id) => self.get(*id),
                        _ => Err(unknown),
                    })
            }
        }
    }

    /// Whether a codec is registered under `id`.
    pub fn contains(&self, id: u8) -> bool {
        self.inner.index[usize::from(id)] != 0
    }

    /// The registered codecs, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Codec>> + '_ {
        self.inner.codecs.iter()
    }

    /// The number of registered codecs.
    pub fn len(&self) -> usize {
        self.inner.codecs.len()
    }

    /// Whether no codec is registered.
    pub fn is_empty(&self) -> bool {
        self.inner.codecs.is_empty()
    }

    /// Encodes `value` with codec `id` into a new buffer.
    pub fn encode(&self, id: u8, value: &dyn EncodeBody) -> Result<Bytes, CodecError> {
        let mut out = Vec::new();
        self.encode_into(id, value, &mut out)?;
        Ok(Bytes::from(out))
    }

    /// Appends the encoding of `value` with codec `id` to `out` (reuse `out` across messages
    /// to avoid allocations). On error `out` is left as it was.
    ///
    /// Id 0 ("no body") is [`CodecError::ReservedId`]: to send no body, send no body.
    pub fn encode_into(
        &self,
        id: u8,
        value: &dyn EncodeBody,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let codec = self.get(id)?;
        if let Some(raw) = value.as_raw() {
            // An encoded body passes through, but only as its own codec.
            if raw.codec != id {
                return Err(CodecError::unsupported(
                    codec.name(),
                    "RawBody of another codec",
                ));
            }
            out.extend_from_slice(&raw.bytes);
            return Ok(());
        }
        encode_atomically(out, |out| codec.encode(value, out))
    }

    /// Decodes `body` as a `T` with codec `id`.
    ///
    /// Id 0 ("no body") is accepted: a non-empty body is then
    /// [`CodecError::BodyWithoutCodec`], and an empty one decodes to the absent value of the
    /// types that have one (`()`, `Option<T>` → `None`, a protobuf message → its default)
    /// and is [`CodecError::NoBody`] for the others. Empty bodies with a real codec follow
    /// that codec's rules (see each codec's docs).
    pub fn decode<T: DecodeBody>(&self, id: u8, body: &Bytes) -> Result<T, CodecError> {
        if id == ids::NONE {
            return decode_none(body);
        }
        decode_with(&**self.get(id)?, body)
    }

    /// Like [`decode`](Self::decode), but an empty body (with any codec id, including 0)
    /// yields `T::default()` without consulting a codec: the lenient behaviour of Go erpc,
    /// where an empty body leaves the argument at its zero value.
    pub fn decode_or_default<T: DecodeBody + Default>(
        &self,
        id: u8,
        body: &Bytes,
    ) -> Result<T, CodecError> {
        if body.is_empty() {
            return Ok(T::default());
        }
        self.decode(id, body)
    }
}

/// A codec named by its id (`b'j'`) or by its name (`"json"`): what calls
/// (`PullOptions::codec` in `jaunt-peer`) and configurations take, resolved
/// against a [`Registry`] with [`Registry::resolve`].
///
/// ```
/// use jaunt_codec::CodecRef;
///
/// assert_eq!(CodecRef::from(b'j'), CodecRef::Id(b'j'));
/// assert_eq!(CodecRef::from("json"), CodecRef::Name("json".into()));
/// assert_eq!(CodecRef::from(String::from("xml")).to_string(), "xml");
/// assert_eq!(CodecRef::from(b'p').to_string(), "'p'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CodecRef {
    /// A codec id, as carried in the frame.
    Id(u8),
    /// A codec name, as in `PeerConfig::default_body_codec`.
    Name(std::borrow::Cow<'static, str>),
}

impl From<u8> for CodecRef {
    fn from(id: u8) -> Self {
        Self::Id(id)
    }
}

impl From<&'static str> for CodecRef {
    fn from(name: &'static str) -> Self {
        Self::Name(std::borrow::Cow::Borrowed(name))
    }
}

impl From<String> for CodecRef {
    fn from(name: String) -> Self {
        Self::Name(std::borrow::Cow::Owned(name))
    }
}

impl fmt::Display for CodecRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) if id.is_ascii_graphic() => write!(f, "'{}'", char::from(*id)),
            Self::Id(id) => write!(f, "{id}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

impl Default for Registry {
    /// Same as [`Registry::new`]: empty.
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.inner.codecs.iter().map(|c| (c.id(), c.name())))
            .finish()
    }
}
