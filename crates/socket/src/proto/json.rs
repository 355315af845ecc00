//! [`JsonProto`]: the JSON framing of Go erpc.
//!
//! Frame: `u32` length (not counting itself), `u8` filter count, filter ids,
//! then the filtered payload, one JSON object:
//! `{"seq":1,"mtype":1,"serviceMethod":"/a","status":"code=0","meta":"","bodyCodec":106,"body":"..."}`.
//! The body bytes are a JSON string: `"`, `\` and control bytes are escaped
//! (Go erpc escapes only `"`, which corrupts bodies holding a `\`), other
//! bytes are written as they are, so any body survives the round trip.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;

use super::{Envelope, Proto, ProtoConfig, ProtoError};
use crate::{Meta, Packet, PacketType, Status};

const ENVELOPE: Envelope = Envelope {
    prefix_counts_itself: false,
    // The shortest JSON payload is `{}`.
    min_unfiltered_len: 7,
};

/// The JSON framing.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use jaunt_socket::{JsonProto, Packet, PacketType, Proto};
///
/// let proto = JsonProto::default();
/// let mut pull = Packet::new(PacketType::Pull, 1, "/echo");
/// pull.body = Bytes::from_static(b"\"a\\\\b\"");
/// let mut wire = BytesMut::new();
/// proto.encode(&pull, &mut wire).unwrap();
/// assert_eq!(proto.decode(&mut wire).unwrap().unwrap(), pull);
/// ```
#[derive(Debug, Clone, Default)]
pub struct JsonProto {
    config: ProtoConfig,
}

impl JsonProto {
    /// The JSON framing with the given filters and size limit.
    pub fn new(config: ProtoConfig) -> Self {
        Self { config }
    }
}

#[derive(Deserialize)]
struct JsonFrame<'a> {
    seq: i64,
    mtype: i64,
    #[serde(rename = "serviceMethod", borrow, default)]
    service_method: Cow<'a, str>,
    #[serde(borrow, default)]
    status: Cow<'a, str>,
    #[serde(borrow, default)]
    meta: Cow<'a, str>,
    #[serde(rename = "bodyCodec", default)]
    body_codec: u8,
    #[serde(with = "serde_bytes", borrow, default)]
    body: Cow<'a, [u8]>,
}

impl Proto for JsonProto {
    fn id(&self) -> u8 {
        b'j'
    }

    fn name(&self) -> &'static str {
        "json"
    }

    fn encode(&self, packet: &Packet, dst: &mut BytesMut) -> Result<(), ProtoError> {
        ENVELOPE.encode(&self.config, &packet.xfer, dst, |out| {
            let mut num = itoa::Buffer::new();
            out.reserve(packet.uri.len() + packet.body.len() + 96);
            out.put_slice(b"{\"seq\":");
            out.put_slice(num.format(packet.seq).as_bytes());
            out.put_slice(b",\"mtype\":");
            out.put_slice(num.format(packet.ptype.as_u8()).as_bytes());
            out.put_slice(b",\"serviceMethod\":");
            write_json_string(packet.uri.as_bytes(), out);
            // Status and meta query strings are plain ASCII with nothing to escape.
            out.put_slice(b",\"status\":\"");
            packet.status.write_query(out);
            out.put_slice(b"\",\"meta\":\"");
            packet.meta.write_query(out);
            out.put_slice(b"\",\"bodyCodec\":");
            out.put_slice(num.format(packet.body_codec).as_bytes());
            out.put_slice(b",\"body\":");
            write_json_string(&packet.body, out);
            out.put_u8(b'}');
            Ok(())
        })
    }

    fn decode(&self, src: &mut BytesMut) -> Result<Option<Packet>, ProtoError> {
        let Some((xfer, payload)) = ENVELOPE.decode(&self.config, src)? else {
            return Ok(None);
        };
        let frame: JsonFrame<'_> =
            serde_json::from_slice(&payload).map_err(|e| ProtoError::Payload {
                framing: "json",
                source: Box::new(e),
            })?;
        let seq = i32::try_from(frame.seq).map_err(|_| ProtoError::SeqOutOfRange)?;
        let ptype = u8::try_from(frame.mtype)
            .map_err(|_| ProtoError::UnknownPacketType(u8::MAX))
            .and_then(PacketType::try_from)?;
        let body = match frame.body {
            Cow::Borrowed(b) => payload.slice_ref(b),
            Cow::Owned(b) => Bytes::from(b),
        };
        Ok(Some(Packet {
            seq,
            ptype,
            uri: frame.service_method.into_owned(),
            meta: Meta::parse(frame.meta.as_bytes())?,
            status: Status::parse(frame.status.as_bytes())?,
            body_codec: frame.body_codec,
            body,
            xfer,
        }))
    }

    fn frame_len(&self, src: &[u8]) -> Option<u64> {
        ENVELOPE.frame_len(src)
    }
}

/// Writes `bytes` as a JSON string: quotes, backslashes and control bytes are
/// escaped; every other byte (UTF-8 or not) is copied as it is.
fn write_json_string(bytes: &[u8], out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.put_slice(&bytes[start..i]);
        out.put_slice(escape);
        start = i + 1;
    }
    out.put_slice(&bytes[start..]);
    out.put_u8(b'"');
}
