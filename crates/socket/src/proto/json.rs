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
        // Binary bodies grow when escaped; the buffer grows if need be.
        let size_hint = packet.uri.len() + packet.body.len() + 128;
        ENVELOPE.encode(&self.config, &packet.xfer, dst, size_hint, |out| {
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
        // Meta values share the payload when the JSON string had no escapes.
        let meta = match &frame.meta {
            Cow::Borrowed(meta) => {
                let start = meta.as_ptr() as usize - payload.as_ptr() as usize;
                Meta::parse_shared(&payload, start..start + meta.len())?
            }
            Cow::Owned(meta) => Meta::parse(meta.as_bytes())?,
        };
        Ok(Some(Packet {
            seq,
            ptype,
            uri: frame.service_method.into_owned(),
            meta,
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

/// `ESCAPE[b]`: 0 if byte `b` goes into a JSON string as it is, else the
/// letter of its escape (`\u00XX` for `u`).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table
};

/// Writes `bytes` as a JSON string: quotes, backslashes and control bytes are
/// escaped; every other byte (UTF-8 or not) is copied as it is.
///
/// Works in blocks of 64 bytes: a block without escapes is appended as it is;
/// otherwise its escaped form is assembled in a stack buffer and appended at
/// once, so that a binary body (an escape every few bytes) does not cost two
/// buffer appends per escape.
fn write_json_string(bytes: &[u8], out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const BLOCK: usize = 64;
    // The longest escape is 6 bytes (`\u00XX`).
    let mut chunk = [0u8; BLOCK * 6];
    out.reserve(bytes.len() + 2);
    out.put_u8(b'"');
    for block in bytes.chunks(BLOCK) {
        let Some(first) = block.iter().position(|&b| ESCAPE[usize::from(b)] != 0) else {
            out.put_slice(block);
            continue;
        };
        out.put_slice(&block[..first]);
        let mut n = 0;
        for &b in &block[first..] {
            match ESCAPE[usize::from(b)] {
                0 => {
                    chunk[n] = b;
                    n += 1;
                }
                b'u' => {
                    chunk[n..n + 6].copy_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xf)],
                    ]);
                    n += 6;
                }
                letter => {
                    chunk[n] = b'\\';
                    chunk[n + 1] = letter;
                    n += 2;
                }
            }
        }
        out.put_slice(&chunk[..n]);
    }
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward version `write_json_string` must agree with.
    fn reference(bytes: &[u8], out: &mut BytesMut) {
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

    fn check(bytes: &[u8]) {
        let (mut got, mut want) = (BytesMut::from(&b"x"[..]), BytesMut::from(&b"x"[..]));
        write_json_string(bytes, &mut got);
        reference(bytes, &mut want);
        assert_eq!(got, want, "{bytes:?}");
        // And serde_json reads it back.
        let back: serde_bytes::ByteBuf = serde_json::from_slice(&got[1..]).unwrap();
        assert_eq!(back.as_slice(), bytes);
    }

    #[test]
    fn json_string_escaping_matches_the_reference() {
        check(b"");
        check(b"plain");
        check(b"\"\\\n\r\t\x08\x0c\x00\x1f\x7f\x80\xff");
        let all: Vec<u8> = (0..=255).collect();
        check(&all);
        // Runs of every length around the thresholds, between escapes, and
        // escapes at the chunk boundaries.
        for run in [0, 1, 5, 31, 32, 33, 62, 63, 64, 65, 100, 127, 128, 129, 300] {
            for esc in [b'"', 0x01, b'\n'] {
                let mut v = Vec::new();
                for _ in 0..5 {
                    v.extend(std::iter::repeat_n(b'a', run));
                    v.push(esc);
                    v.push(esc);
                }
                check(&v);
            }
        }
        let mut x: u32 = 12345;
        for len in 0..600 {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let r = (x >> 16) as u8;
                    // Mostly plain, some control bytes, some quotes.
                    match r % 8 {
                        0 => r % 0x20,
                        1 => b'"',
                        _ => r | 0x20,
                    }
                })
                .collect();
            check(&v);
        }
    }
}
