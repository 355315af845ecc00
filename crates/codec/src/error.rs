//! The error type of every codec and registry operation.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error that caused an encode or decode failure.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong while registering, looking up, encoding or decoding a body.
///
/// Every failure a peer or a caller can provoke is reported through this type; the codecs never
/// panic on bad input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Codec id 0 ([`NONE`](crate::ids::NONE)) means "no body"; no codec can take it and
    /// nothing can be encoded with it.
    #[error("body codec id 0 is reserved for \"no body\"")]
    ReservedId,

    /// A codec with this id is already registered.
    #[error("body codec id {} is already registered", DisplayId(*id))]
    DuplicateId {
        /// The contested id.
        id: u8,
    },

    /// A codec with this name is already registered.
    #[error("a body codec named {name:?} is already registered")]
    DuplicateName {
        /// The contested name.
        name: &'static str,
    },

    /// No codec is registered under this id.
    #[error("unknown body codec id {}", DisplayId(*id))]
    UnknownId {
        /// The id that was asked for.
        id: u8,
    },

    /// No codec is registered under this name.
    #[error("unknown body codec name {name:?}")]
    UnknownName {
        /// The name that was asked for.
        name: String,
    },

    /// The codec cannot carry values of this type at all (for example a `String` with
    /// protobuf, or a struct with the plain codec).
    #[error("codec {codec} cannot carry type {type_name}")]
    UnsupportedType {
        /// Name of the codec.
        codec: &'static str,
        /// Rust type name of the value.
        type_name: &'static str,
    },

    /// The codec supports the type, but this value could not be encoded.
    #[error("codec {codec} failed to encode {type_name}: {source}")]
    Encode {
        /// Name of the codec.
        codec: &'static str,
        /// Rust type name of the value.
        type_name: &'static str,
        /// The underlying error.
        source: BoxError,
    },

    /// The body is not a valid encoding of the requested type.
    #[error("codec {codec} failed to decode {type_name}: {source}")]
    Decode {
        /// Name of the codec.
        codec: &'static str,
        /// Rust type name of the value.
        type_name: &'static str,
        /// The underlying error.
        source: BoxError,
    },

    /// A non-empty body arrived with codec id 0 ("no body"), so there is no way to decode it.
    /// (Go erpc drops the connection here; answering with status 400 is friendlier.)
    #[error("a body of {len} bytes carries codec id 0 (\"no body\")")]
    BodyWithoutCodec {
        /// Length of the body.
        len: usize,
    },

    /// There is no body (codec id 0, empty body) and the requested type has no "absent" value
    /// (only `()`, `Option<T>` and protobuf messages do).
    #[error("no body (codec id 0) to decode {type_name} from")]
    NoBody {
        /// Rust type name of the requested value.
        type_name: &'static str,
    },
}

impl CodecError {
    /// Shorthand for [`CodecError::UnsupportedType`], handy in custom codecs.
    pub fn unsupported(codec: &'static str, type_name: &'static str) -> Self {
        CodecError::UnsupportedType { codec, type_name }
    }

    /// Shorthand for [`CodecError::Encode`], handy in custom codecs.
    pub fn encode(
        codec: &'static str,
        type_name: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        CodecError::Encode {
            codec,
            type_name,
            source: source.into(),
        }
    }

    /// Shorthand for [`CodecError::Decode`], handy in custom codecs.
    pub fn decode(
        codec: &'static str,
        type_name: &'static str,
        source: impl Into<BoxError>,
    ) -> Self {
        CodecError::Decode {
            codec,
            type_name,
            source: source.into(),
        }
    }
}

/// Why a [`DecodeSink`](crate::DecodeSink) refused or failed to take a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The target type cannot be carried this way (for example a serde type offered a protobuf
    /// message, or a `Pb<T>` offered a serde deserializer).
    #[error("the target type cannot be decoded this way")]
    Unsupported,
    /// The input was offered the right way but is not a valid value of the target type.
    #[error(transparent)]
    Decode(BoxError),
}

impl SinkError {
    /// Wraps any error as [`SinkError::Decode`].
    pub fn decode(source: impl Into<BoxError>) -> Self {
        SinkError::Decode(source.into())
    }

    /// Turns this into the matching [`CodecError`] ([`UnsupportedType`](CodecError::UnsupportedType)
    /// or [`Decode`](CodecError::Decode)) for `codec` and the sink's `type_name`.
    pub fn into_codec_error(self, codec: &'static str, type_name: &'static str) -> CodecError {
        match self {
            SinkError::Unsupported => CodecError::UnsupportedType { codec, type_name },
            SinkError::Decode(source) => CodecError::Decode {
                codec,
                type_name,
                source,
            },
        }
    }
}

/// Formats a codec id as `106 ('j')`, or just `7` when it is not a printable ASCII character.
struct DisplayId(u8);

impl fmt::Display for DisplayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "{} ('{}')", self.0, self.0 as char)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// A plain message used as the source of an error.
#[derive(Debug)]
pub(crate) struct Message(pub(crate) &'static str);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl StdError for Message {}

/// A codec failure in a handler (encoding or decoding a value of its own):
/// 500, cause private. (A pull's own undecodable body is answered 400 before
/// the handler runs.)
impl From<CodecError> for jaunt_socket::Status {
    fn from(e: CodecError) -> Self {
        Self::internal(e)
    }
}
