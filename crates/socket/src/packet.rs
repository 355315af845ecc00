//! [`Packet`] and [`PacketType`]: one message as both peers see it.

use bytes::Bytes;

use crate::{Meta, ProtoError, Status};

/// What a packet is for. The numeric values are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// A request that expects a [`Reply`](Self::Reply) (erpc's CALL).
    Pull = 1,
    /// The answer to a pull; echoes its seq, carries an empty uri.
    Reply = 2,
    /// A one-way message.
    Push = 3,
    /// The dialing side's authentication request.
    AuthPull = 4,
    /// The accepting side's answer to an auth pull.
    AuthReply = 5,
}

impl PacketType {
    /// The wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for PacketType {
    type Error = ProtoError;

    fn try_from(value: u8) -> Result<Self, ProtoError> {
        Ok(match value {
            1 => Self::Pull,
            2 => Self::Reply,
            3 => Self::Push,
            4 => Self::AuthPull,
            5 => Self::AuthReply,
            other => return Err(ProtoError::UnknownPacketType(other)),
        })
    }
}

/// One message: header fields, meta, status and an encoded body.
///
/// The body is kept encoded (`body_codec` names its codec) so that a packet
/// can be framed, filtered, proxied and logged without knowing its type; the
/// codec layer turns it into a typed value. `xfer` lists the transfer filters
/// the payload goes (or went) through, outer-most first.
///
/// ```
/// use bytes::Bytes;
/// use jaunt_socket::{Packet, PacketType};
///
/// let mut pull = Packet::new(PacketType::Pull, 1, "/math/add?x=1");
/// pull.body_codec = b'j';
/// pull.body = Bytes::from_static(b"[1,2]");
/// pull.meta.add("author", "me");
/// assert_eq!(pull.path(), "/math/add");
/// assert_eq!(pull.query(), Some("x=1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence number; a reply echoes its pull's.
    pub seq: i32,
    /// What the packet is for.
    pub ptype: PacketType,
    /// The uri with its query string (empty for replies). At most 255 bytes on
    /// the raw wire.
    pub uri: String,
    /// Metadata.
    pub meta: Meta,
    /// Outcome; OK except on failed replies.
    pub status: Status,
    /// Codec id of `body` (0: no body).
    pub body_codec: u8,
    /// The encoded body.
    pub body: Bytes,
    /// Transfer filter ids, outer-most first.
    pub xfer: Vec<u8>,
}

impl Packet {
    /// A packet with OK status, no meta, no body and no filters.
    pub fn new(ptype: PacketType, seq: i32, uri: impl Into<String>) -> Self {
        Self {
            seq,
            ptype,
            uri: uri.into(),
            meta: Meta::new(),
            status: Status::ok(),
            body_codec: 0,
            body: Bytes::new(),
            xfer: Vec::new(),
        }
    }

    /// The uri without its query string.
    pub fn path(&self) -> &str {
        self.uri.split_once('?').map_or(&self.uri, |(path, _)| path)
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.uri.split_once('?').map(|(_, q)| q)
    }
}
