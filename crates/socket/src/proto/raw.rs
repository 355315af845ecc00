//! [`RawProto`]: the default framing, byte-compatible with Go erpc's.
//!
//! Frame layout (big-endian): `u32` length of the whole frame, `u8` filter
//! count, the filter ids, then the payload, filtered as a whole:
//! `u8` seq length, seq in base 36, `u8` packet type, `u8` uri length, uri,
//! `u16` status length, status, `u16` meta length, meta, `u8` body codec,
//! body (the rest).

use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Envelope, Proto, ProtoConfig, ProtoError};
use crate::{seq, Meta, Packet, PacketType, Status};

const ENVELOPE: Envelope = Envelope {
    prefix_counts_itself: true,
    // prefix 4, filter count 1, seq len 1, type 1, uri len 1, status len 2,
    // meta len 2, codec 1.
    min_unfiltered_len: 13,
};

/// The erpc "raw" framing: Jaunt's default, compatible with Go erpc v6.3+.
///
/// ```
/// use bytes::BytesMut;
/// use jaunt_socket::{Packet, PacketType, Proto, RawProto};
///
/// let proto = RawProto::default();
/// let mut wire = BytesMut::new();
/// proto.encode(&Packet::new(PacketType::Push, 5, "/chat/say"), &mut wire).unwrap();
/// let back = proto.decode(&mut wire).unwrap().unwrap();
/// assert_eq!(back.uri, "/chat/say");
/// assert!(wire.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RawProto {
    config: ProtoConfig,
}

impl RawProto {
    /// The raw framing with the given filters and size limit.
    pub fn new(config: ProtoConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &ProtoConfig {
        &self.config
    }
}

impl Proto for RawProto {
    fn id(&self) -> u8 {
        6
    }

    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, packet: &Packet, dst: &mut BytesMut) -> Result<(), ProtoError> {
        let size_hint = packet.uri.len() + packet.body.len() + 64;
        ENVELOPE.encode(&self.config, &packet.xfer, dst, size_hint, |out| {
            write_payload(packet, out)
        })
    }

    fn decode(&self, src: &mut BytesMut) -> Result<Option<Packet>, ProtoError> {
        let Some((xfer, payload)) = ENVELOPE.decode(&self.config, src)? else {
            return Ok(None);
        };
        read_payload(payload, xfer).map(Some)
    }

    fn frame_len(&self, src: &[u8]) -> Option<u64> {
        ENVELOPE.frame_len(src)
    }
}

fn write_payload(packet: &Packet, out: &mut BytesMut) -> Result<(), ProtoError> {
    let uri = packet.uri.as_bytes();
    if uri.len() > usize::from(u8::MAX) {
        return Err(ProtoError::FieldTooLong {
            field: "uri",
            len: uri.len(),
            max: usize::from(u8::MAX),
        });
    }
    let mut seq_buf = [0; seq::MAX_SEQ_LEN];
    let seq = seq::encode(packet.seq, &mut seq_buf);
    out.reserve(seq.len() + uri.len() + packet.body.len() + 32);
    out.put_u8(seq.len() as u8);
    out.put_slice(seq);
    out.put_u8(packet.ptype.as_u8());
    out.put_u8(uri.len() as u8);
    out.put_slice(uri);
    write_u16_prefixed(out, "status", |out| packet.status.write_query(out))?;
    write_u16_prefixed(out, "meta", |out| packet.meta.write_query(out))?;
    out.put_u8(packet.body_codec);
    out.put_slice(&packet.body);
    Ok(())
}

/// Writes a u16 length, then the field, then fills in the length.
fn write_u16_prefixed(
    out: &mut BytesMut,
    field: &'static str,
    write: impl FnOnce(&mut BytesMut),
) -> Result<(), ProtoError> {
    let at = out.len();
    out.put_u16(0);
    write(out);
    let len = out.len() - at - 2;
    let len16 = u16::try_from(len).map_err(|_| ProtoError::FieldTooLong {
        field,
        len,
        max: usize::from(u16::MAX),
    })?;
    out[at..at + 2].copy_from_slice(&len16.to_be_bytes());
    Ok(())
}

/// A cursor over a payload: fields are borrowed, not split off as shared
/// [`Bytes`] (which would cost a reference count update each).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The byte range of the next `n` bytes, or fails naming `field`.
    fn range(&mut self, n: usize, field: &'static str) -> Result<Range<usize>, ProtoError> {
        let start = self.pos;
        if self.buf.len() - start < n {
            return Err(ProtoError::FieldOverrun { field });
        }
        self.pos += n;
        Ok(start..self.pos)
    }

    /// The next `n` bytes, or fails naming `field`.
    fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ProtoError> {
        let range = self.range(n, field)?;
        Ok(&self.buf[range])
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ProtoError> {
        Ok(self.bytes(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, ProtoError> {
        let b = self.bytes(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

fn read_payload(mut buf: Bytes, xfer: Vec<u8>) -> Result<Packet, ProtoError> {
    let mut r = Reader { buf: &buf, pos: 0 };
    let seq_len = r.u8("seq length")?;
    let seq = seq::decode(r.bytes(usize::from(seq_len), "seq")?)?;
    let ptype = PacketType::try_from(r.u8("packet type")?)?;
    let uri_len = r.u8("uri length")?;
    let uri = std::str::from_utf8(r.bytes(usize::from(uri_len), "uri")?)
        .map_err(|_| ProtoError::InvalidUtf8 { field: "uri" })?
        .to_owned();
    let status_len = r.u16("status length")?;
    let status = Status::parse(r.bytes(usize::from(status_len), "status")?)?;
    let meta_len = r.u16("meta length")?;
    let meta = Meta::parse_shared(&buf, r.range(usize::from(meta_len), "meta")?)?;
    let body_codec = r.u8("body codec")?;
    let body_at = r.pos;
    // The body is the rest: no new reference to the payload for it.
    buf.advance(body_at);
    Ok(Packet {
        seq,
        ptype,
        uri,
        meta,
        status,
        body_codec,
        body: buf,
        xfer,
    })
}
