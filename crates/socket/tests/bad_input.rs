//! Decoding is robust: every class of malformed input gives the exact
//! `ProtoError` it should, never a panic, never an allocation for a frame
//! beyond the size limit; content errors leave the stream in step; failed
//! encodes leave the destination untouched.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use jaunt_socket::xfer::{
    AeadFilter, AeadKey, GzipFilter, Md5Filter, XferError, XferFilter, XferRegistry,
};
use jaunt_socket::{
    JsonProto, Meta, Packet, PacketCodec, PacketType, PbProto, Proto, ProtoConfig, ProtoError,
    RawProto, Status, DEFAULT_MAX_FRAME_LEN,
};
use tokio_util::codec::Decoder;

/// Asserts that `$res` is `Err` matching the pattern, printing what it was otherwise.
macro_rules! assert_err {
    ($res:expr, $($pat:pat_param)|+ $(if $guard:expr)? $(,)?) => {
        match $res {
            $(Err($pat))|+ $(if $guard)? => {}
            other => panic!(
                "expected Err({}), got {:?}",
                stringify!($($pat)|+),
                other
            ),
        }
    };
}

// ---------------------------------------------------------------------------
// Hand-built frames
// ---------------------------------------------------------------------------

/// The payload of a raw frame (fields 4..14 of the wire format), with honest
/// lengths.
#[derive(Clone)]
struct Fields {
    seq: Vec<u8>,
    ptype: u8,
    uri: Vec<u8>,
    status: Vec<u8>,
    meta: Vec<u8>,
    codec: u8,
    body: Vec<u8>,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            seq: b"1".to_vec(),
            ptype: 1,
            uri: b"/a".to_vec(),
            status: b"code=0".to_vec(),
            meta: Vec::new(),
            codec: b'j',
            body: b"[1]".to_vec(),
        }
    }
}

impl Fields {
    fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(u8::try_from(self.seq.len()).unwrap());
        out.extend_from_slice(&self.seq);
        out.push(self.ptype);
        out.push(u8::try_from(self.uri.len()).unwrap());
        out.extend_from_slice(&self.uri);
        out.extend_from_slice(&u16::try_from(self.status.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&self.status);
        out.extend_from_slice(&u16::try_from(self.meta.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&self.meta);
        out.push(self.codec);
        out.extend_from_slice(&self.body);
        out
    }

    /// The unfiltered raw frame.
    fn frame(&self) -> Vec<u8> {
        raw_frame(&[], &self.payload())
    }
}

/// A raw frame: u32 length counting itself, u8 filter count, the ids, then
/// `payload` as given (already filtered, if `ids` is not empty).
fn raw_frame(ids: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = 4 + 1 + ids.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap().to_be_bytes());
    out.push(u8::try_from(ids.len()).unwrap());
    out.extend_from_slice(ids);
    out.extend_from_slice(payload);
    out
}

/// A JSON or protobuf frame: the u32 length does not count itself.
fn outer_frame(ids: &[u8], payload: &[u8]) -> Vec<u8> {
    let len = 1 + ids.len() + payload.len();
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
    out.push(u8::try_from(ids.len()).unwrap());
    out.extend_from_slice(ids);
    out.extend_from_slice(payload);
    out
}

/// A raw frame whose payload is `payload` under the md5 filter: lets a payload
/// be shorter than the smallest unfiltered frame.
fn md5_raw_frame(payload: &[u8]) -> Vec<u8> {
    let packed = Md5Filter::default()
        .on_pack(Bytes::copy_from_slice(payload))
        .unwrap();
    raw_frame(b"m", &packed)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    GzipFilter::default()
        .on_pack(Bytes::copy_from_slice(data))
        .unwrap()
        .to_vec()
}

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A protobuf varint field (`int32` values are sign-extended to 64 bits).
fn pb_int(tag: u32, v: i64, out: &mut Vec<u8>) {
    pb_varint(u64::from(tag << 3), out);
    pb_varint(v as u64, out);
}

/// A protobuf length-delimited field.
fn pb_bytes(tag: u32, v: &[u8], out: &mut Vec<u8>) {
    pb_varint(u64::from(tag << 3 | 2), out);
    pb_varint(v.len() as u64, out);
    out.extend_from_slice(v);
}

/// A protobuf payload with the erpc field numbers.
fn pb_payload(
    seq: i64,
    mtype: i64,
    uri: &[u8],
    status: &[u8],
    meta: &[u8],
    codec: i64,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    pb_int(1, seq, &mut out);
    pb_int(2, mtype, &mut out);
    pb_bytes(3, uri, &mut out);
    pb_bytes(4, status, &mut out);
    pb_bytes(5, meta, &mut out);
    pb_int(6, codec, &mut out);
    pb_bytes(7, body, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn raw() -> RawProto {
    RawProto::default()
}

/// Every framing with the default configuration.
fn all_protos() -> Vec<Box<dyn Proto>> {
    vec![
        Box::new(RawProto::default()),
        Box::new(JsonProto::default()),
        Box::new(PbProto::default()),
    ]
}

/// Every framing with the given configuration.
fn all_protos_with(cfg: &ProtoConfig) -> Vec<Box<dyn Proto>> {
    vec![
        Box::new(RawProto::new(cfg.clone())),
        Box::new(JsonProto::new(cfg.clone())),
        Box::new(PbProto::new(cfg.clone())),
    ]
}

/// Decodes `bytes` (one frame, expected to be consumed whole).
fn decode(proto: &dyn Proto, bytes: &[u8]) -> Result<Option<Packet>, ProtoError> {
    let mut buf = BytesMut::from(bytes);
    proto.decode(&mut buf)
}

/// Decodes one frame that must fail with a content error: the frame must be
/// consumed whole and the error must say the stream is intact.
fn decode_content_error(proto: &dyn Proto, bytes: &[u8]) -> Result<Option<Packet>, ProtoError> {
    let mut buf = BytesMut::from(bytes);
    let res = proto.decode(&mut buf);
    let err = res.as_ref().expect_err("a content error");
    assert!(
        err.is_stream_intact(),
        "{err:?} must leave the stream intact"
    );
    assert!(
        buf.is_empty(),
        "{err:?}: the bad frame must be consumed whole"
    );
    res
}

/// Decodes one frame that must fail in its length prefix: the stream is lost.
fn decode_prefix_error(proto: &dyn Proto, bytes: &[u8]) -> Result<Option<Packet>, ProtoError> {
    let mut buf = BytesMut::from(bytes);
    let res = proto.decode(&mut buf);
    let err = res.as_ref().expect_err("a length-prefix error");
    assert!(
        !err.is_stream_intact(),
        "{err:?} must not claim the stream is intact"
    );
    res
}

fn sample_packet() -> Packet {
    let mut p = Packet::new(PacketType::Pull, 7, "/math/add?x=1");
    p.meta.add("author", "me & you");
    p.body_codec = b'j';
    p.body = Bytes::from_static(b"[1,2,3]");
    p
}

fn encode(proto: &dyn Proto, p: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    proto.encode(p, &mut out).expect("encodes");
    out.to_vec()
}

/// Incompressible bytes (xorshift32).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn aead_config(key: [u8; 32]) -> ProtoConfig {
    let mut reg = XferRegistry::with_defaults();
    reg.register(AeadFilter::new(b'e', AeadKey::from_bytes(key)))
        .unwrap();
    ProtoConfig::default().with_xfer(Arc::new(reg))
}

// ---------------------------------------------------------------------------
// The helper itself
// ---------------------------------------------------------------------------

#[test]
fn hand_built_frame_matches_the_encoder() {
    let f = Fields {
        seq: b"2s".to_vec(),
        ptype: 3,
        uri: b"/chat/say".to_vec(),
        status: b"code=0".to_vec(),
        meta: b"a=1&b".to_vec(),
        codec: b's',
        body: b"hello".to_vec(),
    };
    let mut p = Packet::new(PacketType::Push, 100, "/chat/say");
    p.meta.add("a", "1");
    p.meta.add("b", "");
    p.body_codec = b's';
    p.body = Bytes::from_static(b"hello");
    assert_eq!(encode(&raw(), &p), f.frame());
    assert_eq!(decode(&raw(), &f.frame()).unwrap().unwrap(), p);
}

// ---------------------------------------------------------------------------
// Truncation
// ---------------------------------------------------------------------------

#[test]
fn partial_frame_decodes_to_none_and_eof_reports_truncated() {
    for proto in all_protos() {
        let name = proto.name();
        let wire = encode(&*proto, &sample_packet());
        let total = wire.len();
        for cut in 0..total {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert!(
                proto.decode(&mut buf).unwrap().is_none(),
                "{name}: {cut} of {total} bytes is not a frame yet"
            );
            assert_eq!(
                &buf[..],
                &wire[..cut],
                "{name}: a partial frame is left in place"
            );

            let mut codec = PacketCodec::from_arc(proto_clone(name));
            let mut buf = BytesMut::from(&wire[..cut]);
            let res = codec.decode_eof(&mut buf);
            if cut == 0 {
                assert!(
                    res.unwrap().is_none(),
                    "{name}: an empty buffer at eof is a clean end"
                );
                continue;
            }
            let need = if cut < 4 { 4 } else { total };
            assert_err!(
                res,
                ProtoError::Truncated { have, need: n } if have == cut && n == need
            );
        }
        // The whole frame at eof decodes normally.
        let mut codec = PacketCodec::from_arc(proto_clone(name));
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(
            codec.decode_eof(&mut buf).unwrap().unwrap(),
            sample_packet()
        );
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    }
}

fn proto_clone(name: &str) -> Arc<dyn Proto> {
    match name {
        "raw" => Arc::new(RawProto::default()),
        "json" => Arc::new(JsonProto::default()),
        "protobuf" => Arc::new(PbProto::default()),
        other => unreachable!("{other}"),
    }
}

#[test]
fn truncated_error_is_a_stream_error() {
    let err = ProtoError::Truncated { have: 3, need: 10 };
    assert!(!err.is_stream_intact());
}

// ---------------------------------------------------------------------------
// Length prefix
// ---------------------------------------------------------------------------

#[test]
fn raw_length_smaller_than_header_is_length_too_small() {
    for len in 0u32..5 {
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0; 16]);
        assert_err!(
            decode_prefix_error(&raw(), &frame),
            ProtoError::LengthTooSmall { len: l, min: 5 } if l == len as usize
        );
        // Four bytes are enough to reject it.
        assert_err!(
            decode_prefix_error(&raw(), &len.to_be_bytes()),
            ProtoError::LengthTooSmall { min: 5, .. }
        );
    }
    // Len 3, as it would appear on the wire.
    assert_err!(
        decode_prefix_error(&raw(), &[0, 0, 0, 3, 0, 0, 0]),
        ProtoError::LengthTooSmall { len: 3, min: 5 }
    );
    // Len 10 with no filters: 13 bytes are the least an unfiltered frame needs.
    for len in [5u32, 10, 12] {
        let mut frame = len.to_be_bytes().to_vec();
        frame.push(0);
        frame.resize(len as usize, 0);
        assert_err!(
            decode_prefix_error(&raw(), &frame),
            ProtoError::LengthTooSmall { len: l, min: 13 } if l == len as usize
        );
    }
}

#[test]
fn json_and_pb_length_smaller_than_header_is_length_too_small() {
    // Their prefix does not count itself: announced 0 is a 4-byte frame.
    for proto in [&JsonProto::default() as &dyn Proto, &PbProto::default()] {
        assert_err!(
            decode_prefix_error(proto, &[0, 0, 0, 0, 0, 0]),
            ProtoError::LengthTooSmall { len: 4, min: 5 }
        );
    }
    // JSON: the shortest payload is `{}`.
    assert_err!(
        decode_prefix_error(&JsonProto::default(), &[0, 0, 0, 2, 0, b'{']),
        ProtoError::LengthTooSmall { len: 6, min: 7 }
    );
    // Protobuf: an empty payload is a valid (all-default) message, whose
    // packet type 0 is unknown.
    assert_err!(
        decode_content_error(&PbProto::default(), &[0, 0, 0, 1, 0]),
        ProtoError::UnknownPacketType(0)
    );
}

#[test]
fn frame_of_u32_max_is_rejected_without_allocating() {
    for proto in all_protos() {
        let mut buf = BytesMut::with_capacity(4);
        buf.extend_from_slice(&[0xff; 4]);
        let res = proto.decode(&mut buf);
        assert!(res.as_ref().is_err_and(|e| !e.is_stream_intact()));
        let expect_len = if proto.name() == "raw" {
            0xffff_ffff
        } else {
            0x1_0000_0003
        };
        assert_err!(
            res,
            ProtoError::FrameTooLarge { len, limit: DEFAULT_MAX_FRAME_LEN } if len == expect_len
        );
        assert!(
            buf.capacity() <= 4096,
            "{}: nothing may be reserved for a rejected frame (capacity {})",
            proto.name(),
            buf.capacity()
        );
        assert_eq!(&buf[..], &[0xff; 4]);
    }
}

#[test]
fn frame_one_byte_over_the_limit_is_frame_too_large() {
    let cfg = ProtoConfig::default().with_max_frame_len(1024);
    for proto in all_protos_with(&cfg) {
        // Announced so that the frame is exactly limit + 1 bytes.
        let announced: u32 = if proto.name() == "raw" { 1025 } else { 1021 };
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&announced.to_be_bytes());
        assert_err!(
            proto.decode(&mut buf),
            ProtoError::FrameTooLarge {
                len: 1025,
                limit: 1024
            }
        );
        assert!(buf.capacity() <= 4096);
        // Exactly at the limit is fine: it waits for the rest, reserving at
        // most the frame.
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(announced - 1).to_be_bytes());
        buf.extend_from_slice(&[0]);
        assert!(
            proto.decode(&mut buf).unwrap().is_none(),
            "{}",
            proto.name()
        );
        assert!(
            buf.capacity() <= 4096,
            "{}: {}",
            proto.name(),
            buf.capacity()
        );
    }
}

#[test]
fn reserve_for_a_partial_frame_is_bounded_by_its_length() {
    // A frame announcing 1 MiB (under the 16 MiB limit): the decoder may
    // reserve room for it, but not more than it announced (plus slack).
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&(1u32 << 20).to_be_bytes());
    buf.extend_from_slice(&[0]);
    assert!(raw().decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() <= 2 << 20, "capacity {}", buf.capacity());
}

// ---------------------------------------------------------------------------
// Counts and inner lengths running past the frame
// ---------------------------------------------------------------------------

#[test]
fn filter_count_past_the_frame_is_field_overrun() {
    // 200 filter ids announced, 2 present.
    let mut frame = 7u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[200, b'g', b'm']);
    assert_err!(
        decode_content_error(&raw(), &frame),
        ProtoError::FieldOverrun {
            field: "filter ids"
        }
    );
    for proto in [&JsonProto::default() as &dyn Proto, &PbProto::default()] {
        let mut frame = 3u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[200, b'g', b'm']);
        assert_err!(
            decode_content_error(proto, &frame),
            ProtoError::FieldOverrun {
                field: "filter ids"
            }
        );
    }
}

#[test]
fn raw_inner_lengths_past_the_frame_are_field_overrun() {
    // Each frame has no filters and the full 13-byte minimum, so only the
    // inner length can be at fault.
    let cases: [(&[u8], &str); 4] = [
        // seq len 255, 7 bytes follow.
        (&[255, b'1', 1, 0, 0, 0, 0, 0], "seq"),
        // uri len 200.
        (&[1, b'1', 1, 200, b'/', b'a', 0, 0, 0], "uri"),
        // status len 0xffff.
        (&[1, b'1', 1, 0, 0xff, 0xff, b'c', 0, 0, 0], "status"),
        // meta len 0xffff.
        (
            &[1, b'1', 1, 0, 0, 0, 0xff, 0xff, b'a', b'=', b'1', b'j'],
            "meta",
        ),
    ];
    for (payload, field) in cases {
        assert_err!(
            decode_content_error(&raw(), &raw_frame(&[], payload)),
            ProtoError::FieldOverrun { field: f } if f == field
        );
    }
}

#[test]
fn raw_fixed_fields_past_the_frame_are_field_overrun() {
    // Behind a checksum filter a payload may be shorter than any valid one:
    // every fixed-size field can then be the one that is missing.
    let cases: [(&[u8], &str); 7] = [
        (&[], "seq length"),
        (&[1, b'1'], "packet type"),
        (&[1, b'1', 1], "uri length"),
        (&[1, b'1', 1, 0], "status length"),
        (&[1, b'1', 1, 0, 0], "status length"),
        (&[1, b'1', 1, 0, 0, 0], "meta length"),
        (&[1, b'1', 1, 0, 0, 0, 0, 0], "body codec"),
    ];
    for (payload, field) in cases {
        assert_err!(
            decode_content_error(&raw(), &md5_raw_frame(payload)),
            ProtoError::FieldOverrun { field: f } if f == field
        );
    }
    // And the smallest complete payload decodes.
    let p = decode(&raw(), &md5_raw_frame(&[1, b'1', 1, 0, 0, 0, 0, 0, 0]))
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.seq, p.ptype, p.uri.as_str(), p.xfer.as_slice()),
        (1, PacketType::Pull, "", &b"m"[..])
    );
}

// ---------------------------------------------------------------------------
// Header fields
// ---------------------------------------------------------------------------

#[test]
fn seq_not_base36_is_invalid_seq() {
    for seq in [&b""[..], b"1_", b" 1", b"\xff", b"1.5", b"--1"] {
        let f = Fields {
            seq: seq.to_vec(),
            ..Fields::default()
        };
        assert_err!(
            decode_content_error(&raw(), &f.frame()),
            ProtoError::InvalidSeq
        );
    }
    // JSON: a seq that is not a number is a malformed payload.
    assert_err!(
        decode_content_error(
            &JsonProto::default(),
            &outer_frame(&[], br#"{"seq":"1","mtype":1}"#)
        ),
        ProtoError::Payload {
            framing: "json",
            ..
        }
    );
}

#[test]
fn seq_beyond_i32_is_seq_out_of_range() {
    // i32::MAX is zik0zj; i32::MIN is -zik0zk.
    for seq in [&b"zik0zk"[..], b"-zik0zl", b"zzzzzzz", b"10000000000000"] {
        let f = Fields {
            seq: seq.to_vec(),
            ..Fields::default()
        };
        assert_err!(
            decode_content_error(&raw(), &f.frame()),
            ProtoError::SeqOutOfRange
        );
    }
    let valid: [(&[u8], i32); 3] = [
        (b"zik0zj", i32::MAX),
        (b"-zik0zk", i32::MIN),
        (b"ZIK0ZJ", i32::MAX),
    ];
    for (seq, want) in valid {
        let f = Fields {
            seq: seq.to_vec(),
            ..Fields::default()
        };
        assert_eq!(decode(&raw(), &f.frame()).unwrap().unwrap().seq, want);
    }
    for json in [
        &br#"{"seq":2147483648,"mtype":1}"#[..],
        br#"{"seq":-2147483649,"mtype":1}"#,
    ] {
        assert_err!(
            decode_content_error(&JsonProto::default(), &outer_frame(&[], json)),
            ProtoError::SeqOutOfRange
        );
    }
}

#[test]
fn unknown_packet_type_is_rejected() {
    for ptype in [0u8, 6, 9, 255] {
        let f = Fields {
            ptype,
            ..Fields::default()
        };
        assert_err!(
            decode_content_error(&raw(), &f.frame()),
            ProtoError::UnknownPacketType(t) if t == ptype
        );
    }
    assert_err!(
        decode_content_error(
            &JsonProto::default(),
            &outer_frame(&[], br#"{"seq":1,"mtype":9}"#)
        ),
        ProtoError::UnknownPacketType(9)
    );
    assert_err!(
        decode_content_error(
            &PbProto::default(),
            &outer_frame(&[], &pb_payload(1, 9, b"/a", b"code=0", b"", 106, b""))
        ),
        ProtoError::UnknownPacketType(9)
    );
    // Types outside a byte are unknown too (reported as 255).
    assert_err!(
        decode_content_error(
            &JsonProto::default(),
            &outer_frame(&[], br#"{"seq":1,"mtype":-1}"#)
        ),
        ProtoError::UnknownPacketType(255)
    );
    assert_err!(
        decode_content_error(
            &PbProto::default(),
            &outer_frame(&[], &pb_payload(1, 257, b"/a", b"", b"", 0, b""))
        ),
        ProtoError::UnknownPacketType(255)
    );
}

#[test]
fn invalid_percent_encoding_in_status_and_meta() {
    let status_cases: [(&[u8], &str); 4] = [
        (b"code=1&msg=%G0", "status msg"),
        (b"code=1&msg=ok&cause=%", "status cause"),
        (b"code=1&cause=a%2", "status cause"),
        (b"code=%31%", "status code"),
    ];
    for (status, field) in status_cases {
        let f = Fields {
            status: status.to_vec(),
            ..Fields::default()
        };
        assert_err!(
            decode_content_error(&raw(), &f.frame()),
            ProtoError::InvalidPercentEncoding { field: got } if got == field
        );
        let json = format!(
            r#"{{"seq":1,"mtype":1,"status":"{}"}}"#,
            std::str::from_utf8(status).unwrap()
        );
        assert_err!(
            decode_content_error(&JsonProto::default(), &outer_frame(&[], json.as_bytes())),
            ProtoError::InvalidPercentEncoding { field: got } if got == field
        );
        assert_err!(
            decode_content_error(
                &PbProto::default(),
                &outer_frame(&[], &pb_payload(1, 1, b"/a", status, b"", 0, b""))
            ),
            ProtoError::InvalidPercentEncoding { field: got } if got == field
        );
    }
    let meta_cases: [(&[u8], &str); 3] = [
        (b"a=%zz", "meta value"),
        (b"ok=1&%4=1", "meta key"),
        (b"k%", "meta key"),
    ];
    for (meta, field) in meta_cases {
        let f = Fields {
            meta: meta.to_vec(),
            ..Fields::default()
        };
        assert_err!(
            decode_content_error(&raw(), &f.frame()),
            ProtoError::InvalidPercentEncoding { field: got } if got == field
        );
        let json = format!(
            r#"{{"seq":1,"mtype":1,"meta":"{}"}}"#,
            std::str::from_utf8(meta).unwrap()
        );
        assert_err!(
            decode_content_error(&JsonProto::default(), &outer_frame(&[], json.as_bytes())),
            ProtoError::InvalidPercentEncoding { field: got } if got == field
        );
        assert_err!(
            decode_content_error(
                &PbProto::default(),
                &outer_frame(&[], &pb_payload(1, 1, b"/a", b"", meta, 0, b""))
            ),
            ProtoError::InvalidPercentEncoding { field: got } if got == field
        );
    }
}

#[test]
fn invalid_status_code_is_rejected() {
    for status in [
        &b"code=x"[..],
        b"code=",
        b"code=99999999999",
        b"code=1.5",
        b"code=%FF",
    ] {
        let f = Fields {
            status: status.to_vec(),
            ..Fields::default()
        };
        assert_err!(
            decode_content_error(&raw(), &f.frame()),
            ProtoError::InvalidStatusCode
        );
        assert_err!(
            decode_content_error(
                &PbProto::default(),
                &outer_frame(&[], &pb_payload(1, 1, b"/a", status, b"", 0, b""))
            ),
            ProtoError::InvalidStatusCode
        );
    }
    assert_err!(
        decode_content_error(
            &JsonProto::default(),
            &outer_frame(&[], br#"{"seq":1,"mtype":1,"status":"code=abc"}"#)
        ),
        ProtoError::InvalidStatusCode
    );
}

#[test]
fn invalid_utf8_uri_is_rejected() {
    let f = Fields {
        uri: b"/a\xff".to_vec(),
        ..Fields::default()
    };
    assert_err!(
        decode_content_error(&raw(), &f.frame()),
        ProtoError::InvalidUtf8 { field: "uri" }
    );
    assert_err!(
        decode_content_error(
            &PbProto::default(),
            &outer_frame(&[], &pb_payload(1, 1, b"/\xc3(", b"", b"", 0, b""))
        ),
        ProtoError::InvalidUtf8 { field: "uri" }
    );
    // In JSON a string must be UTF-8: the parser rejects the payload.
    assert_err!(
        decode_content_error(
            &JsonProto::default(),
            &outer_frame(&[], b"{\"seq\":1,\"mtype\":1,\"serviceMethod\":\"/\xff\"}")
        ),
        ProtoError::Payload {
            framing: "json",
            ..
        }
    );
}

#[test]
fn malformed_json_and_pb_payloads_are_payload_errors() {
    for payload in [
        &b"{}"[..],
        b"{\"seq\":1",
        b"null",
        b"[1]",
        b"{\"seq\":1,\"mtype\":1,\"bodyCodec\":300}",
        b"\xff\xfe",
    ] {
        assert_err!(
            decode_content_error(&JsonProto::default(), &outer_frame(&[], payload)),
            ProtoError::Payload {
                framing: "json",
                ..
            }
        );
    }
    // A truncated length-delimited field, a bad wire type, an overlong varint.
    for payload in [
        &[0x1a_u8, 0x05, b'/'][..],
        &[0x0f, 0x01],
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
    ] {
        assert_err!(
            decode_content_error(&PbProto::default(), &outer_frame(&[], payload)),
            ProtoError::Payload {
                framing: "protobuf",
                ..
            }
        );
    }
    // A body codec that is not a byte.
    assert_err!(
        decode_content_error(
            &PbProto::default(),
            &outer_frame(&[], &pb_payload(1, 1, b"/a", b"", b"", 300, b""))
        ),
        ProtoError::Payload {
            framing: "protobuf",
            ..
        }
    );
}

// ---------------------------------------------------------------------------
// Transfer filters
// ---------------------------------------------------------------------------

#[test]
fn unknown_filter_id_is_xfer_unknown_id() {
    let payload = Fields::default().payload();
    assert_err!(
        decode_content_error(&raw(), &raw_frame(b"z", &payload)),
        ProtoError::Xfer(XferError::UnknownId { id: b'z' })
    );
    // Checked before any filter runs, wherever it is in the list.
    let gz = gzip(&payload);
    assert_err!(
        decode_content_error(&raw(), &raw_frame(b"gz", &gz)),
        ProtoError::Xfer(XferError::UnknownId { id: b'z' })
    );
    // Id 0 is never registered.
    assert_err!(
        decode_content_error(&raw(), &raw_frame(&[0], &payload)),
        ProtoError::Xfer(XferError::UnknownId { id: 0 })
    );
    for proto in [&JsonProto::default() as &dyn Proto, &PbProto::default()] {
        assert_err!(
            decode_content_error(proto, &outer_frame(b"e", b"{}")),
            ProtoError::Xfer(XferError::UnknownId { id: b'e' })
        );
    }
}

#[test]
fn corrupt_gzip_is_xfer_corrupt_gzip() {
    let payload = Fields::default().payload();
    let good = gzip(&payload);
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let mut bad_crc = good.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0x01;
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"garbage");
    let cases: [(&str, &[u8]); 6] = [
        ("not gzip", b"this is not gzip at all"),
        ("header only", &good[..10]),
        ("truncated", &good[..good.len() - 3]),
        ("corrupt deflate", &flipped),
        ("bad crc", &bad_crc),
        ("trailing garbage", &trailing),
    ];
    for (what, gz) in cases {
        for proto in all_protos() {
            let frame = if proto.name() == "raw" {
                raw_frame(b"g", gz)
            } else {
                outer_frame(b"g", gz)
            };
            let res = decode_content_error(&*proto, &frame);
            assert!(
                matches!(res, Err(ProtoError::Xfer(XferError::CorruptGzip(_)))),
                "{what} ({}): {res:?}",
                proto.name()
            );
        }
    }
    // The untouched member decodes.
    assert!(decode(&raw(), &raw_frame(b"g", &good)).unwrap().is_some());
}

#[test]
fn failed_md5_checksum_is_xfer_checksum_mismatch() {
    for proto in all_protos() {
        let mut p = sample_packet();
        p.xfer = b"m".to_vec();
        let wire = encode(&*proto, &p);
        assert_eq!(decode(&*proto, &wire).unwrap().unwrap(), p);
        // Flip a byte in the payload, then one in the digest.
        // Byte 6 is the first payload byte in every framing (prefix, count, 'm').
        for at in [6, wire.len() / 2, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x20;
            assert_err!(
                decode_content_error(&*proto, &bad),
                ProtoError::Xfer(XferError::ChecksumMismatch)
            );
        }
    }
    // A payload too short to hold a digest.
    assert_err!(
        decode_content_error(&raw(), &raw_frame(b"m", b"short")),
        ProtoError::Xfer(XferError::ChecksumMismatch)
    );
}

#[test]
fn failed_decryption_is_xfer_decrypt_failed() {
    let ours = aead_config([7; 32]);
    let theirs = aead_config([8; 32]);
    for (sender, wrong_key) in all_protos_with(&ours)
        .into_iter()
        .zip(all_protos_with(&theirs))
    {
        let name = sender.name();
        let mut p = sample_packet();
        p.xfer = b"e".to_vec();
        let wire = encode(&*sender, &p);
        assert_eq!(decode(&*sender, &wire).unwrap().unwrap(), p, "{name}");
        // The body is not in clear.
        assert!(!wire.windows(7).any(|w| w == b"[1,2,3]"), "{name}");
        // Another key.
        assert_err!(
            decode_content_error(&*wrong_key, &wire),
            ProtoError::Xfer(XferError::DecryptFailed)
        );
        // Tampered nonce, ciphertext and tag.
        for at in [6, wire.len() / 2, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            assert_err!(
                decode_content_error(&*sender, &bad),
                ProtoError::Xfer(XferError::DecryptFailed)
            );
        }
        // Too short to hold nonce and tag.
        let short = if name == "raw" {
            raw_frame(b"e", &[0; 27])
        } else {
            outer_frame(b"e", &[0; 27])
        };
        assert_err!(
            decode_content_error(&*sender, &short),
            ProtoError::Xfer(XferError::DecryptFailed)
        );
    }
    // Also under gzip and md5: the failing layer is reported.
    let raw_ours = RawProto::new(ours);
    let raw_theirs = RawProto::new(theirs);
    let mut p = sample_packet();
    p.xfer = b"gem".to_vec();
    let wire = encode(&raw_ours, &p);
    assert_eq!(decode(&raw_ours, &wire).unwrap().unwrap(), p);
    assert_err!(
        decode_content_error(&raw_theirs, &wire),
        ProtoError::Xfer(XferError::DecryptFailed)
    );
}

#[test]
fn gzip_bomb_is_xfer_too_large() {
    const LIMIT: usize = 1 << 20;
    let cfg = ProtoConfig::default().with_max_frame_len(LIMIT);
    // A valid payload whose body makes it inflate to twice the limit.
    let fields = Fields {
        body: vec![0; 2 * LIMIT],
        ..Fields::default()
    };
    let bomb = gzip(&fields.payload());
    assert!(bomb.len() < 16 * 1024, "the bomb is small: {}", bomb.len());
    let raw_bomb = raw_frame(b"g", &bomb);
    assert_err!(
        decode_content_error(&RawProto::new(cfg.clone()), &raw_bomb),
        ProtoError::Xfer(XferError::TooLarge {
            filter: "gzip",
            limit: LIMIT
        })
    );
    // The same bomb behind a checksum, and in the other framings.
    let md5_bomb = Md5Filter::default()
        .on_pack(Bytes::from(bomb.clone()))
        .unwrap();
    assert_err!(
        decode_content_error(&RawProto::new(cfg.clone()), &raw_frame(b"mg", &md5_bomb)),
        ProtoError::Xfer(XferError::TooLarge {
            filter: "gzip",
            limit: LIMIT
        })
    );
    let json_bomb = gzip(&[b'x'; 2 * LIMIT]);
    for proto in [
        &JsonProto::new(cfg.clone()) as &dyn Proto,
        &PbProto::new(cfg.clone()),
    ] {
        assert_err!(
            decode_content_error(proto, &outer_frame(b"g", &json_bomb)),
            ProtoError::Xfer(XferError::TooLarge {
                filter: "gzip",
                limit: LIMIT
            })
        );
    }
    // With the default 16 MiB limit the same frame is fine.
    let p = decode(&raw(), &raw_bomb).unwrap().unwrap();
    assert_eq!(p.body.len(), 2 * LIMIT);
}

// ---------------------------------------------------------------------------
// Encode errors leave the destination untouched
// ---------------------------------------------------------------------------

/// Encodes `p` after a previous frame; the encode must fail and leave `dst`
/// exactly as it was.
fn encode_error(proto: &dyn Proto, p: &Packet) -> Result<(), ProtoError> {
    let mut dst = BytesMut::new();
    proto.encode(&sample_packet(), &mut dst).unwrap();
    let before = dst.to_vec();
    let res = proto.encode(p, &mut dst);
    assert!(res.is_err(), "{}: expected an encode error", proto.name());
    assert_eq!(
        dst.len(),
        before.len(),
        "{}: dst length unchanged",
        proto.name()
    );
    assert_eq!(
        &dst[..],
        &before[..],
        "{}: dst content unchanged",
        proto.name()
    );
    // And it is still a valid stream holding only the previous frame.
    assert_eq!(proto.decode(&mut dst).unwrap().unwrap(), sample_packet());
    assert!(dst.is_empty());
    res
}

#[test]
fn encode_uri_of_256_bytes_is_field_too_long() {
    for xfer in [&b""[..], b"g", b"mg"] {
        let mut p = Packet::new(PacketType::Pull, 1, "u".repeat(256));
        p.xfer = xfer.to_vec();
        assert_err!(
            encode_error(&raw(), &p),
            ProtoError::FieldTooLong {
                field: "uri",
                len: 256,
                max: 255
            }
        );
        // 255 bytes is the most the raw framing can carry.
        p.uri = "u".repeat(255);
        assert_eq!(decode(&raw(), &encode(&raw(), &p)).unwrap().unwrap(), p);
    }
    // Bytes, not chars: 128 two-byte chars are 256 bytes.
    let p = Packet::new(PacketType::Pull, 1, "é".repeat(128));
    assert_err!(
        encode_error(&raw(), &p),
        ProtoError::FieldTooLong {
            field: "uri",
            len: 256,
            max: 255
        }
    );
    // The JSON and protobuf framings have no such limit.
    let long = Packet::new(PacketType::Pull, 1, "u".repeat(1000));
    for proto in [&JsonProto::default() as &dyn Proto, &PbProto::default()] {
        assert_eq!(decode(proto, &encode(proto, &long)).unwrap().unwrap(), long);
    }
}

#[test]
fn encode_meta_or_status_over_65535_bytes_is_field_too_long() {
    let mut p = sample_packet();
    p.meta = Meta::new();
    p.meta.add("k", vec![b'v'; 65533]); // "k=" + 65533 = 65535: fits.
    assert_eq!(decode(&raw(), &encode(&raw(), &p)).unwrap().unwrap(), p);
    p.meta = Meta::new();
    p.meta.add("k", vec![b'v'; 65534]);
    assert_err!(
        encode_error(&raw(), &p),
        ProtoError::FieldTooLong {
            field: "meta",
            len: 65536,
            max: 65535
        }
    );
    // Escaping counts: 30000 spaces are 90000 bytes on the wire.
    p.meta = Meta::new();
    p.meta.add("k", " ".repeat(30000));
    p.xfer = b"g".to_vec();
    assert_err!(
        encode_error(&raw(), &p),
        ProtoError::FieldTooLong {
            field: "meta",
            len: 90002,
            max: 65535
        }
    );
    let mut p = sample_packet();
    p.status = Status::new(1001, "m".repeat(70000));
    assert_err!(
        encode_error(&raw(), &p),
        ProtoError::FieldTooLong {
            field: "status",
            max: 65535,
            ..
        }
    );
}

#[test]
fn encode_frame_over_the_limit_is_frame_too_large() {
    let cfg = ProtoConfig::default().with_max_frame_len(4096);
    for proto in all_protos_with(&cfg) {
        let mut p = sample_packet();
        p.body = Bytes::from(vec![b'a'; 4096]);
        assert_err!(
            encode_error(&*proto, &p),
            ProtoError::FrameTooLarge { len, limit: 4096 } if len > 4096
        );
        // Behind filters too: random-looking bytes do not compress.
        p.body = Bytes::from(noise(4096));
        p.xfer = b"gm".to_vec();
        assert_err!(
            encode_error(&*proto, &p),
            ProtoError::FrameTooLarge { limit: 4096, .. }
        );
    }
}

#[test]
fn encode_never_produces_a_frame_the_same_config_rejects() {
    // A payload that compresses under the limit but inflates over it would be
    // refused by the receiving side (gzip bomb): the encoder refuses it too.
    let cfg = ProtoConfig::default().with_max_frame_len(64 * 1024);
    for proto in all_protos_with(&cfg) {
        let mut p = sample_packet();
        p.body = Bytes::from(vec![b'a'; 128 * 1024]);
        p.xfer = b"g".to_vec();
        assert_err!(
            encode_error(&*proto, &p),
            ProtoError::FrameTooLarge { limit: 65536, .. }
        );
        // The same holds for an intermediate result (md5 runs before gzip).
        p.body = Bytes::from(vec![b'a'; 64 * 1024 - 40]);
        p.xfer = b"gm".to_vec();
        let mut dst = BytesMut::new();
        match proto.encode(&p, &mut dst) {
            Ok(()) => assert_eq!(
                proto.decode(&mut dst).unwrap().unwrap(),
                p,
                "{}",
                proto.name()
            ),
            Err(e) => {
                assert!(matches!(e, ProtoError::FrameTooLarge { .. }), "{e:?}");
                assert!(dst.is_empty());
            }
        }
        // Under the limit, it roundtrips.
        p.body = Bytes::from(vec![b'a'; 32 * 1024]);
        assert_eq!(decode(&*proto, &encode(&*proto, &p)).unwrap().unwrap(), p);
    }
}

#[test]
fn encode_with_unknown_or_too_many_filters_is_an_xfer_error() {
    for proto in all_protos() {
        let mut p = sample_packet();
        p.xfer = b"gz".to_vec();
        assert_err!(
            encode_error(&*proto, &p),
            ProtoError::Xfer(XferError::UnknownId { id: b'z' })
        );
        p.xfer = vec![b'm'; 256];
        assert_err!(
            encode_error(&*proto, &p),
            ProtoError::Xfer(XferError::TooMany { count: 256 })
        );
    }
}

// ---------------------------------------------------------------------------
// Stream stays in step
// ---------------------------------------------------------------------------

/// One bad frame of each content-error class, for the raw framing.
fn raw_content_errors() -> Vec<(&'static str, Vec<u8>)> {
    let ok = Fields::default();
    let payload = ok.payload();
    let mut checksum = Md5Filter::default()
        .on_pack(Bytes::from(payload.clone()))
        .unwrap()
        .to_vec();
    checksum[0] ^= 1;
    vec![
        (
            "unknown packet type",
            Fields {
                ptype: 9,
                ..ok.clone()
            }
            .frame(),
        ),
        (
            "invalid seq",
            Fields {
                seq: b"?".to_vec(),
                ..ok.clone()
            }
            .frame(),
        ),
        (
            "seq out of range",
            Fields {
                seq: b"zzzzzzz".to_vec(),
                ..ok.clone()
            }
            .frame(),
        ),
        (
            "bad escape",
            Fields {
                meta: b"a=%".to_vec(),
                ..ok.clone()
            }
            .frame(),
        ),
        (
            "bad status code",
            Fields {
                status: b"code=z".to_vec(),
                ..ok.clone()
            }
            .frame(),
        ),
        (
            "bad utf-8 uri",
            Fields {
                uri: b"\xc0".to_vec(),
                ..ok.clone()
            }
            .frame(),
        ),
        (
            "uri overrun",
            raw_frame(&[], &[1, b'1', 1, 250, 0, 0, 0, 0, 0]),
        ),
        // 9 filter ids announced, 2 present.
        ("filter count overrun", vec![0, 0, 0, 7, 9, b'g', b'm']),
        ("unknown filter", raw_frame(b"q", &payload)),
        ("corrupt gzip", raw_frame(b"g", b"nope, not gzip")),
        ("checksum", raw_frame(b"m", &checksum)),
    ]
}

#[test]
fn content_errors_leave_the_stream_in_step() {
    let mut next = Packet::new(PacketType::Reply, 42, "");
    next.body_codec = b's';
    next.body = Bytes::from_static(b"next");
    let good = encode(&raw(), &next);
    for (what, bad) in raw_content_errors() {
        let mut buf = BytesMut::from(&bad[..]);
        buf.extend_from_slice(&good);
        let err = raw().decode(&mut buf).expect_err(what);
        assert!(err.is_stream_intact(), "{what}: {err:?}");
        assert_eq!(
            &buf[..],
            &good[..],
            "{what}: exactly the bad frame is consumed"
        );
        assert_eq!(raw().decode(&mut buf).unwrap().unwrap(), next, "{what}");
        assert!(buf.is_empty());
    }
    // The same for the other framings.
    for proto in [&JsonProto::default() as &dyn Proto, &PbProto::default()] {
        let good = encode(proto, &next);
        let bad_payload: Vec<u8> = if proto.name() == "json" {
            br#"{"seq":1,"mtype":9}"#.to_vec()
        } else {
            pb_payload(1, 9, b"", b"", b"", 0, b"")
        };
        for bad in [
            outer_frame(&[], &bad_payload),
            outer_frame(b"g", b"not gzip"),
            outer_frame(&[], b"\xff\xff\xff"),
        ] {
            let mut buf = BytesMut::from(&bad[..]);
            buf.extend_from_slice(&good);
            let err = proto.decode(&mut buf).expect_err("bad frame");
            assert!(err.is_stream_intact(), "{}: {err:?}", proto.name());
            assert_eq!(
                proto.decode(&mut buf).unwrap().unwrap(),
                next,
                "{}",
                proto.name()
            );
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn length_prefix_errors_are_not_stream_intact() {
    let errors = [
        decode(&raw(), &[0, 0, 0, 3, 0]).unwrap_err(),
        decode(&raw(), &[0, 0, 0, 10, 0, 0, 0, 0, 0, 0]).unwrap_err(),
        decode(&raw(), &[0xff; 4]).unwrap_err(),
        decode(&JsonProto::default(), &[0xff; 4]).unwrap_err(),
        decode(&PbProto::default(), &[0, 0, 0, 0]).unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(
                err,
                ProtoError::LengthTooSmall { .. } | ProtoError::FrameTooLarge { .. }
            ),
            "{err:?}"
        );
        assert!(!err.is_stream_intact(), "{err:?}");
    }
    let io = ProtoError::Io(std::io::Error::other("boom"));
    assert!(!io.is_stream_intact());
}
