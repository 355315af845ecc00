//! [`PbProto`]: the protobuf framing of Go erpc.
//!
//! Frame: `u32` length (not counting itself), `u8` filter count, filter ids,
//! then the filtered payload, a protobuf message with the fields seq = 1
//! (int32), mtype = 2 (int32), serviceMethod = 3 (string), status = 4 (bytes),
//! meta = 5 (bytes), bodyCodec = 6 (int32), body = 7 (bytes).

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
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

/// The payload as decoded. (Encoding writes the same fields by hand, see
/// [`write_payload`].)
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
        let size_hint = packet.uri.len() + packet.body.len() + 64;
        ENVELOPE.encode(&self.config, &packet.xfer, dst, size_hint, |out| {
            write_payload(packet, out);
            Ok(())
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
            meta: Meta::parse_shared(&frame.meta, 0..frame.meta.len())?,
            status: Status::parse(&frame.status)?,
            body_codec,
            body: frame.body,
            xfer,
        }))
    }

    fn frame_len(&self, src: &[u8]) -> Option<u64> {
        ENVELOPE.frame_len(src)
    }
}

/// Writes the payload as prost would encode the [`PbFrame`] of `packet`
/// (fields in tag order, zero numbers and empty strings left out), straight
/// into `out`: status and meta are written in place, not staged in buffers.
fn write_payload(packet: &Packet, out: &mut BytesMut) {
    let uri = packet.uri.as_bytes();
    let status_len = packet.status.query_len();
    let meta_len = packet.meta.query_len();
    out.reserve(
        uri.len()
            + status_len
            + meta_len
            + packet.body.len()
            + 6 * 2
            + 3 * 10
            + encoded_len_varint(packet.body.len() as u64)
            + encoded_len_varint(status_len as u64)
            + encoded_len_varint(meta_len as u64),
    );
    write_int32(1, packet.seq, out);
    write_int32(2, i32::from(packet.ptype.as_u8()), out);
    if !uri.is_empty() {
        write_len(3, uri.len(), out);
        out.put_slice(uri);
    }
    if status_len > 0 {
        write_len(4, status_len, out);
        let at = out.len();
        packet.status.write_query(out);
        debug_assert_eq!(out.len() - at, status_len);
    }
    if meta_len > 0 {
        write_len(5, meta_len, out);
        let at = out.len();
        packet.meta.write_query(out);
        debug_assert_eq!(out.len() - at, meta_len);
    }
    write_int32(6, i32::from(packet.body_codec), out);
    if !packet.body.is_empty() {
        write_len(7, packet.body.len(), out);
        out.put_slice(&packet.body);
    }
}

/// An `int32` field, left out when zero (negative values take ten bytes).
fn write_int32(tag: u32, value: i32, out: &mut BytesMut) {
    if value != 0 {
        encode_key(tag, WireType::Varint, out);
        encode_varint(i64::from(value) as u64, out);
    }
}

/// The key and length of a length-delimited field.
fn write_len(tag: u32, len: usize, out: &mut BytesMut) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    /// The hand-written encoder produces exactly prost's encoding of `PbFrame`.
    #[test]
    fn payload_is_prosts_encoding() {
        let mut packets = Vec::new();
        let mut p = Packet::new(PacketType::Pull, 1000, "/bench/echo");
        p.meta.add("author", "jaunt-bench");
        p.body_codec = b'p';
        p.body = Bytes::from(vec![0xab; 300]);
        packets.push(p.clone());
        p.seq = -1;
        p.status = Status::not_found("no route /a/b \u{2713}");
        p.meta.add("k e y", "v&a=l%");
        packets.push(p.clone());
        p.seq = i32::MIN;
        p.uri = "u".repeat(200);
        p.body = Bytes::new();
        p.body_codec = 0;
        p.meta.clear();
        packets.push(p.clone());
        let mut reply = Packet::new(PacketType::Reply, 0, "");
        reply.status = Status::new(i32::MAX, "m".repeat(300));
        packets.push(reply);
        for packet in packets {
            let expected = PbFrame {
                seq: packet.seq,
                mtype: i32::from(packet.ptype.as_u8()),
                service_method: Bytes::copy_from_slice(packet.uri.as_bytes()),
                status: Bytes::from(packet.status.to_query()),
                meta: Bytes::from(packet.meta.to_query()),
                body_codec: i32::from(packet.body_codec),
                body: packet.body.clone(),
            }
            .encode_to_vec();
            let mut out = BytesMut::new();
            write_payload(&packet, &mut out);
            assert_eq!(&out[..], &expected[..], "{packet:?}");
        }
    }
}
