//! [`PbProto`]: the protobuf framing of Go erpc.
//!
//! Frame: `u32` length (not counting itself), `u8` filter count, filter ids,
//! then the filtered payload, a protobuf message with the fields seq = 1
//! (int32), mtype = 2 (int32), serviceMethod = 3 (string), status = 4 (bytes),
//! meta = 5 (bytes), bodyCodec = 6 (int32), body = 7 (bytes).

use bytes::{Bytes, BytesMut};
use prost::Message;

use super::{Envelope, Proto, ProtoConfig, ProtoError};
use crate::{Meta, Packet, PacketType, Status};

const ENVELOPE: Envelope = Envelope {
    prefix_counts_itself: false,
    // An all-default protobuf message is empty.
    min_unfiltered_len: 5,
};

/// The protobuf framing.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use jaunt_socket::{Packet, PacketType, PbProto, Proto};
///
/// let proto = PbProto::default();
/// let mut push = Packet::new(PacketType::Push, 9, "/note");
/// push.body = Bytes::from_static(&[0, 159, 146, 150]);
/// let mut wire = BytesMut::new();
/// proto.encode(&push, &mut wire).unwrap();
/// assert_eq!(proto.decode(&mut wire).unwrap().unwrap(), push);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PbProto {
    config: ProtoConfig,
}

impl PbProto {
    /// The protobuf framing with the given filters and size limit.
    pub fn new(config: ProtoConfig) -> Self {
        Self { config }
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbFrame {
    #[prost(int32, tag = "1")]
    seq: i32,
    #[prost(int32, tag = "2")]
    mtype: i32,
    #[prost(bytes = "bytes", tag = "3")]
    service_method: Bytes,
    #[prost(bytes = "bytes", tag = "4")]
    status: Bytes,
    #[prost(bytes = "bytes", tag = "5")]
    meta: Bytes,
    #[prost(int32, tag = "6")]
    body_codec: i32,
    #[prost(bytes = "bytes", tag = "7")]
    body: Bytes,
}

impl Proto for PbProto {
    fn id(&self) -> u8 {
        b'p'
    }

    fn name(&self) -> &'static str {
        "protobuf"
    }

    fn encode(&self, packet: &Packet, dst: &mut BytesMut) -> Result<(), ProtoError> {
        ENVELOPE.encode(&self.config, &packet.xfer, dst, |out| {
            let mut status = BytesMut::new();
            packet.status.write_query(&mut status);
            let mut meta = BytesMut::new();
            packet.meta.write_query(&mut meta);
            let frame = PbFrame {
                seq: packet.seq,
                mtype: i32::from(packet.ptype.as_u8()),
                service_method: Bytes::copy_from_slice(packet.uri.as_bytes()),
                status: status.freeze(),
                meta: meta.freeze(),
                body_codec: i32::from(packet.body_codec),
                body: packet.body.clone(),
            };
            frame.encode(out).map_err(|e| ProtoError::Payload {
                framing: "protobuf",
                source: Box::new(e),
            })
        })
    }

    fn decode(&self, src: &mut BytesMut) -> Result<Option<Packet>, ProtoError> {
        let Some((xfer, payload)) = ENVELOPE.decode(&self.config, src)? else {
            return Ok(None);
        };
        let frame = PbFrame::decode(payload).map_err(|e| ProtoError::Payload {
            framing: "protobuf",
            source: Box::new(e),
        })?;
        let ptype = u8::try_from(frame.mtype)
            .map_err(|_| ProtoError::UnknownPacketType(u8::MAX))
            .and_then(PacketType::try_from)?;
        let body_codec = u8::try_from(frame.body_codec).map_err(|_| ProtoError::Payload {
            framing: "protobuf",
            source: format!("body codec {} is not a byte", frame.body_codec).into(),
        })?;
        let uri = String::from_utf8(frame.service_method.to_vec())
            .map_err(|_| ProtoError::InvalidUtf8 { field: "uri" })?;
        Ok(Some(Packet {
            seq: frame.seq,
            ptype,
            uri,
            meta: Meta::parse_bytes(frame.meta)?,
            status: Status::parse_bytes(frame.status)?,
            body_codec,
            body: frame.body,
            xfer,
        }))
    }

    fn frame_len(&self, src: &[u8]) -> Option<u64> {
        ENVELOPE.frame_len(src)
    }
}
