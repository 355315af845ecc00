//! Properties of every framing: encode → decode is the identity for arbitrary
//! packets, decoding arbitrary or corrupted bytes never panics, and a stream
//! of frames decodes the same however it is split into reads.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use jaunt_socket::xfer::{AeadFilter, AeadKey, XferRegistry};
use jaunt_socket::{
    JsonProto, Meta, Packet, PacketCodec, PacketType, PbProto, Proto, ProtoConfig, ProtoError,
    RawProto, Status,
};
use proptest::prelude::*;
use proptest::sample::Index;
use tokio_util::codec::Decoder;

const CASES: u32 = 256;

/// The default filters (`g`, `m`) plus ChaCha20-Poly1305 as `e`.
fn config() -> ProtoConfig {
    let mut reg = XferRegistry::with_defaults();
    reg.register(AeadFilter::new(b'e', AeadKey::from_bytes([0x5a; 32])))
        .unwrap();
    ProtoConfig::default().with_xfer(Arc::new(reg))
}

fn protos() -> Vec<Arc<dyn Proto>> {
    let cfg = config();
    vec![
        Arc::new(RawProto::new(cfg.clone())),
        Arc::new(JsonProto::new(cfg.clone())),
        Arc::new(PbProto::new(cfg)),
    ]
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn arb_ptype() -> impl Strategy<Value = PacketType> {
    prop_oneof![
        Just(PacketType::Pull),
        Just(PacketType::Reply),
        Just(PacketType::Push),
        Just(PacketType::AuthPull),
        Just(PacketType::AuthReply),
    ]
}

/// Any UTF-8 string of at most `max_bytes` bytes (bytes, not chars).
fn arb_string(max_chars: usize, max_bytes: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max_chars).prop_map(move |chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > max_bytes {
                break;
            }
            s.push(c);
        }
        s
    })
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

fn arb_meta() -> impl Strategy<Value = Meta> {
    proptest::collection::vec(
        (proptest::collection::vec(any::<u8>(), 1..12), arb_bytes(16)),
        0..6,
    )
    .prop_map(|pairs| pairs.into_iter().collect())
}

fn arb_status() -> impl Strategy<Value = Status> {
    (
        prop_oneof![Just(0), Just(404), any::<i32>()],
        arb_string(24, 96),
        proptest::option::of(arb_string(24, 96)),
    )
        .prop_map(|(code, msg, cause)| {
            let st = Status::new(code, msg);
            match cause {
                Some(cause) => st.with_cause(cause),
                None => st,
            }
        })
}

fn arb_xfer() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(vec![b'g', b'm', b'e']), 0..=4)
}

fn arb_packet_with_body(body: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Packet> {
    (
        any::<i32>(),
        arb_ptype(),
        arb_string(255, 255),
        arb_meta(),
        arb_status(),
        any::<u8>(),
        body,
        arb_xfer(),
    )
        .prop_map(
            |(seq, ptype, uri, meta, status, body_codec, body, xfer)| Packet {
                seq,
                ptype,
                uri,
                meta,
                status,
                body_codec,
                body: Bytes::from(body),
                xfer,
            },
        )
}

fn arb_packet() -> impl Strategy<Value = Packet> {
    arb_packet_with_body(arb_bytes(4096))
}

/// Bytes rich in what JSON must escape: quotes, backslashes, control bytes,
/// and bytes that are not UTF-8.
fn arb_json_hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    // One cheap byte strategy mapped onto the interesting classes.
    let byte = (any::<u8>(), any::<u8>()).prop_map(|(class, b)| match class % 7 {
        0 => b'"',
        1 => b'\\',
        2 => b'/',
        3 => b'u',
        4 => b % 0x20,
        5 => 0x7f | b,
        _ => b,
    });
    proptest::collection::vec(byte, 0..512)
}

/// Decodes every frame in `buf` until it needs more or the stream is lost.
/// Must never panic; returns how many results (packets or content errors) it
/// produced.
fn drain(proto: &dyn Proto, buf: &mut BytesMut) -> usize {
    let mut n = 0;
    loop {
        let before = buf.len();
        match proto.decode(buf) {
            Ok(None) => return n,
            Ok(Some(_)) => {}
            Err(e) if e.is_stream_intact() => {}
            Err(_) => return n,
        }
        n += 1;
        assert!(buf.len() < before, "a result consumes bytes");
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn encode_decode_is_identity(packet in arb_packet()) {
        for proto in protos() {
            let mut wire = BytesMut::new();
            proto.encode(&packet, &mut wire).unwrap();
            let back = proto.decode(&mut wire).unwrap();
            prop_assert_eq!(back.as_ref(), Some(&packet), "{}", proto.name());
            prop_assert!(wire.is_empty(), "{}: the whole frame is consumed", proto.name());
        }
    }

    #[test]
    fn encode_appends_after_existing_frames(
        a in arb_packet_with_body(arb_bytes(512)),
        b in arb_packet_with_body(arb_bytes(512)),
    ) {
        for proto in protos() {
            let mut wire = BytesMut::new();
            proto.encode(&a, &mut wire).unwrap();
            let first = wire.len();
            proto.encode(&b, &mut wire).unwrap();
            prop_assert!(wire.len() > first);
            let first_back = proto.decode(&mut wire).unwrap();
            prop_assert_eq!(first_back.as_ref(), Some(&a), "{}", proto.name());
            let second_back = proto.decode(&mut wire).unwrap();
            prop_assert_eq!(second_back.as_ref(), Some(&b), "{}", proto.name());
            prop_assert!(proto.decode(&mut wire).unwrap().is_none());
        }
    }

    #[test]
    fn json_body_with_quotes_backslashes_controls_and_invalid_utf8_roundtrips(
        body in arb_json_hostile_bytes(),
        uri_bytes in arb_json_hostile_bytes(),
        xfer in arb_xfer(),
    ) {
        let proto = JsonProto::new(config());
        let mut packet = Packet::new(PacketType::Pull, 1, String::from_utf8_lossy(&uri_bytes));
        packet.body_codec = b's';
        packet.body = Bytes::from(body.clone());
        packet.xfer = xfer;
        let mut wire = BytesMut::new();
        proto.encode(&packet, &mut wire).unwrap();
        if packet.xfer.is_empty() && std::str::from_utf8(&body).is_ok() {
            // Cross-check the escaping with an independent JSON parser.
            let doc: serde_json::Value = serde_json::from_slice(&wire[5..]).unwrap();
            prop_assert_eq!(doc["body"].as_str().unwrap().as_bytes(), &body[..]);
            prop_assert_eq!(doc["serviceMethod"].as_str().unwrap(), packet.uri.as_str());
        }
        prop_assert_eq!(proto.decode(&mut wire).unwrap(), Some(packet));
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn status_and_meta_query_forms_roundtrip(status in arb_status(), meta in arb_meta()) {
        prop_assert_eq!(Status::parse(status.to_query().as_bytes()).unwrap(), status);
        prop_assert_eq!(Meta::parse(meta.to_query().as_bytes()).unwrap(), meta);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in arb_bytes(2048)) {
        for proto in protos() {
            let mut buf = BytesMut::from(&bytes[..]);
            drain(&*proto, &mut buf);
            let mut codec = PacketCodec::from_arc(proto.clone());
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode_eof(&mut buf) {}
        }
    }

    #[test]
    fn decoding_random_bytes_behind_a_plausible_header_never_panics(
        filters in proptest::collection::vec(
            proptest::sample::select(vec![b'g', b'm', b'e', b'z', 0]),
            0..4,
        ),
        payload in arb_bytes(1024),
    ) {
        // A well-formed envelope around random content reaches every inner
        // parser (filters, fields, JSON, protobuf) instead of the length check.
        for proto in protos() {
            let counts_itself = proto.name() == "raw";
            let len = 1 + filters.len() + payload.len() + if counts_itself { 4 } else { 0 };
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
            buf.extend_from_slice(&[u8::try_from(filters.len()).unwrap()]);
            buf.extend_from_slice(&filters);
            buf.extend_from_slice(&payload);
            let total = buf.len();
            let res = proto.decode(&mut buf);
            if let Err(e) = &res {
                // Too short for an unfiltered frame is the only prefix error here.
                prop_assert!(
                    e.is_stream_intact() || matches!(e, ProtoError::LengthTooSmall { .. }),
                    "{}: {:?}", proto.name(), e
                );
            }
            if res.is_ok() || res.as_ref().is_err_and(ProtoError::is_stream_intact) {
                prop_assert!(buf.is_empty(), "{}: {} of {} bytes left", proto.name(), buf.len(), total);
            }
        }
    }

    #[test]
    fn decoding_mutated_frames_never_panics(
        packet in arb_packet_with_body(arb_bytes(256)),
        edits in proptest::collection::vec((any::<Index>(), any::<u8>(), 0u8..4), 1..8),
    ) {
        for proto in protos() {
            let mut wire = BytesMut::new();
            proto.encode(&packet, &mut wire).unwrap();
            let mut bytes = wire.to_vec();
            for (at, value, kind) in &edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = *value,
                    1 => bytes[i] ^= 1 << (value % 8),
                    2 => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, *value),
                }
            }
            let mut buf = BytesMut::from(&bytes[..]);
            drain(&*proto, &mut buf);
            // Fixing the length prefix up gets the mutations past the envelope.
            if bytes.len() >= 5 {
                let len = if proto.name() == "raw" { bytes.len() } else { bytes.len() - 4 };
                bytes[..4].copy_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
                let mut buf = BytesMut::from(&bytes[..]);
                let _ = proto.decode(&mut buf);
            }
        }
    }

    #[test]
    fn a_stream_split_at_random_points_decodes_to_the_same_packets(
        packets in proptest::collection::vec(arb_packet_with_body(arb_bytes(1024)), 1..6),
        cuts in proptest::collection::vec(any::<Index>(), 0..12),
        which in 0usize..3,
    ) {
        let proto = protos().swap_remove(which);
        let mut wire = BytesMut::new();
        for p in &packets {
            proto.encode(p, &mut wire).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        points.dedup();

        let mut codec = PacketCodec::from_arc(proto.clone());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for pair in points.windows(2) {
            buf.extend_from_slice(&wire[pair[0]..pair[1]]);
            while let Some(p) = codec.decode(&mut buf).unwrap() {
                got.push(p);
            }
        }
        prop_assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, packets);
    }
}

proptest! {
    // Byte-at-a-time feeding calls decode once per byte: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(CASES / 4))]

    #[test]
    fn a_stream_fed_one_byte_at_a_time_decodes(
        packets in proptest::collection::vec(arb_packet_with_body(arb_bytes(64)), 1..4),
    ) {
        for proto in protos() {
            let mut wire = BytesMut::new();
            for p in &packets {
                proto.encode(p, &mut wire).unwrap();
            }
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for &b in wire.iter() {
                buf.extend_from_slice(&[b]);
                if let Some(p) = proto.decode(&mut buf).unwrap() {
                    got.push(p);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(&got, &packets, "{}", proto.name());
        }
    }
}
