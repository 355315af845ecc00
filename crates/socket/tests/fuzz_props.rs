//! The fuzz targets' properties, run by proptest on every `cargo test`.
//!
//! `fuzz/` holds cargo-fuzz targets for each framing's decoder, the status
//! and meta parsers and the transfer-filter pipeline (see
//! `docs/reliability.md`). The properties they check live in
//! `fuzz/src/lib.rs`, which this file includes as the module `checks`, so a
//! property cannot drift between the fuzzer and CI. Here they are driven by
//! proptest, with bounded case counts, and with input strategies that reach
//! past the first check of each parser: frames with honest lengths whose
//! fields are non-canonical (seq `+1` or `00Z`, `%2B`-escaped status codes,
//! JSON keys in any order, protobuf fields repeated or unknown), payloads
//! that really went through the filters, and query strings built from the
//! tokens that matter.
//!
//! `roundtrip_props.rs` covers encode → decode of arbitrary packets; this file
//! covers the other direction (decode → encode → decode from arbitrary and
//! non-canonical bytes), the parsers on raw bytes, the filter pipeline on its
//! own, chunking independence and the buffer bound. Inputs that fuzzing finds
//! go at the end, as regression tests.

#[path = "../../../fuzz/src/lib.rs"]
mod checks;

use bytes::{BufMut, Bytes, BytesMut};
use checks::{XferCase, AEAD_ID, MAX_FRAME_LEN};
use jaunt_socket::{JsonProto, PbProto, Proto, RawProto};
use proptest::prelude::*;

const CASES: u32 = 256;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

const QUERY_TOKENS: &[&[u8]] = &[
    b"code",
    b"msg",
    b"cause",
    b"=",
    b"=",
    b"&",
    b"&",
    b"+",
    b"%",
    b"%2",
    b"%20",
    b"%2B",
    b"%2b",
    b"%26",
    b"%3D",
    b"%25",
    b"%E2%9C%93",
    b"%ff",
    b"%G0",
    b"-",
    b"0",
    b"7",
    b"404",
    b"2147483647",
    b"2147483648",
    b"-2147483648",
    b"a",
    b"Z",
    b"*._",
    b"\xff",
    b"\xe2\x9c\x93",
    b" ",
    b"X-Accept-Body-Codec",
    b"hb_",
];

/// Byte strings made of the tokens the query parsers care about (keys,
/// separators, escapes good and bad, `+`, non-ASCII) and random bytes: half
/// of the time as `key=value` pairs joined by `&`, where the keys are mostly
/// the status's own, so that the values are really parsed.
fn arb_query() -> impl Strategy<Value = Vec<u8>> {
    let token = || {
        prop_oneof![
            3 => proptest::sample::select(QUERY_TOKENS).prop_map(<[u8]>::to_vec),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ]
    };
    let soup = proptest::collection::vec(token(), 0..24).prop_map(|parts| parts.concat());
    let value = prop_oneof![
        // Mostly well-formed values: the parse succeeds and roundtrips.
        3 => "[A-Za-z0-9*._ -]{0,6}(%[0-9A-Fa-f]{2}|\\+){0,2}[0-9]{0,3}".prop_map(String::into_bytes),
        2 => (any::<bool>(), any::<i32>()).prop_map(|(plus, n)| {
            if plus && n >= 0 { format!("%2B{n}") } else { n.to_string() }.into_bytes()
        }),
        1 => proptest::collection::vec(token(), 0..4).prop_map(|parts| parts.concat()),
    ];
    let key = prop_oneof![
        3 => proptest::sample::select(vec![&b"code"[..], b"msg", b"cause"]).prop_map(<[u8]>::to_vec),
        1 => "[a-zA-Z_%0-9+-]{0,6}".prop_map(String::into_bytes),
    ];
    let pair = (key, proptest::option::of(value)).prop_map(|(mut k, v)| {
        if let Some(v) = v {
            k.push(b'=');
            k.extend_from_slice(&v);
        }
        k
    });
    let pairs = (proptest::collection::vec(pair, 0..5), any::<bool>())
        .prop_map(|(pairs, double)| pairs.join(if double { &b"&&"[..] } else { b"&" }));
    prop_oneof![soup, pairs]
}

fn arb_filters() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::sample::select(vec![b'g', b'm', AEAD_ID]),
            1 => any::<u8>(),
        ],
        0..=3,
    )
}

/// A base-36 seq, canonical or not (sign, upper case, leading zeros), out
/// of range, or garbage.
fn arb_seq() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => any::<i32>().prop_map(|n| radix36(n).into_bytes()),
        2 => proptest::sample::select(vec![
            &b"+1"[..],
            b"-0",
            b"00z",
            b"ZIK0ZJ",
            b"-ZIK0ZK",
            b"zik0zk",
            b"-zik0zl",
            b"zzzzzzzz",
            b"",
            b"+",
            b"-",
            b"1_",
            b"\xff",
        ])
        .prop_map(<[u8]>::to_vec),
        1 => arb_bytes(8),
    ]
}

fn radix36(n: i32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = n.unsigned_abs();
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

fn arb_uri() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "/[a-z/]{0,12}(\\?[a-z=&]{0,8})?".prop_map(String::into_bytes),
        2 => any::<String>().prop_map(String::into_bytes),
        1 => arb_bytes(24),
    ]
}

fn arb_ptype() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 1u8..=5, 1 => any::<u8>()]
}

/// The fields of a frame, each with any content.
#[derive(Debug, Clone)]
struct Fields {
    seq: Vec<u8>,
    ptype: u8,
    uri: Vec<u8>,
    status: Vec<u8>,
    meta: Vec<u8>,
    codec: u8,
    body: Vec<u8>,
}

fn arb_fields() -> impl Strategy<Value = Fields> {
    (
        arb_seq(),
        arb_ptype(),
        arb_uri(),
        arb_query(),
        arb_query(),
        any::<u8>(),
        arb_bytes(64),
    )
        .prop_map(|(seq, ptype, uri, status, meta, codec, body)| Fields {
            seq,
            ptype,
            uri,
            status,
            meta,
            codec,
            body,
        })
}

/// The raw payload of `f`, with honest lengths.
fn raw_payload(f: &Fields) -> Vec<u8> {
    let mut out = Vec::new();
    out.push(u8::try_from(f.seq.len()).unwrap());
    out.extend_from_slice(&f.seq);
    out.push(f.ptype);
    let uri = &f.uri[..f.uri.len().min(255)];
    out.push(u8::try_from(uri.len()).unwrap());
    out.extend_from_slice(uri);
    for field in [&f.status, &f.meta] {
        out.extend_from_slice(&u16::try_from(field.len()).unwrap().to_be_bytes());
        out.extend_from_slice(field);
    }
    out.push(f.codec);
    out.extend_from_slice(&f.body);
    out
}

/// A JSON value for a JSON frame field: what the framing expects, or not.
fn arb_json_value(key: &'static str) -> BoxedStrategy<String> {
    let quoted = |b: &[u8]| serde_json::to_string(&String::from_utf8_lossy(b)).unwrap();
    match key {
        "seq" | "mtype" | "bodyCodec" => {
            let odd = proptest::sample::select(vec![
                "2147483648",
                "-2147483649",
                "256",
                "-1",
                "1.5",
                "1e3",
                "\"1\"",
                "null",
                "true",
                "[]",
                "99999999999999999999",
            ])
            .prop_map(str::to_owned);
            let usual = match key {
                "mtype" => (1u8..=5).prop_map(|n| n.to_string()).boxed(),
                "bodyCodec" => any::<u8>().prop_map(|n| n.to_string()).boxed(),
                _ => any::<i32>().prop_map(|n| n.to_string()).boxed(),
            };
            prop_oneof![8 => usual, 1 => odd].boxed()
        }
        "serviceMethod" => prop_oneof![
            arb_uri().prop_map(move |u| quoted(&u)),
            Just(r#""\/a\u00e9\ud83d\ude00""#.to_owned()),
            Just(r#""\ud800""#.to_owned()),
            Just("null".to_owned()),
            Just("1".to_owned()),
        ]
        .boxed(),
        "status" | "meta" => prop_oneof![
            4 => arb_query().prop_map(move |q| quoted(&q)),
            1 => Just(r#""code=1\u0026msg=a""#.to_owned()),
            1 => Just("null".to_owned()),
        ]
        .boxed(),
        _ => prop_oneof![
            3 => arb_bytes(48).prop_map(move |b| quoted(&b)),
            1 => arb_bytes(8).prop_map(|b| serde_json::to_string(&b).unwrap()),
            1 => Just(r#""\u0000\"\\\/\b\f\n\r\t\u00ff\ud83d\ude00""#.to_owned()),
            1 => Just(r#""\udc00""#.to_owned()),
            1 => Just("[256]".to_owned()),
            1 => Just("null".to_owned()),
        ]
        .boxed(),
    }
}

/// A JSON frame payload: the framing's keys in any order (some missing or
/// repeated), unknown keys, odd whitespace, values of any type.
fn arb_json_payload() -> impl Strategy<Value = Vec<u8>> {
    const KEYS: &[&str] = &[
        "seq",
        "mtype",
        "serviceMethod",
        "status",
        "meta",
        "bodyCodec",
        "body",
    ];
    let entry = |k: &'static str| arb_json_value(k).prop_map(move |v| format!("\"{k}\":{v}"));
    let entries = proptest::sample::subsequence(KEYS.to_vec(), 0..=KEYS.len())
        .prop_shuffle()
        .prop_flat_map(move |keys| keys.into_iter().map(entry).collect::<Vec<_>>());
    let extra = prop_oneof![
        Just(r#""extra":{"nested":[1,{"x":null}]}"#.to_owned()),
        // A repeated key: serde refuses the frame.
        proptest::sample::select(KEYS).prop_flat_map(entry),
    ];
    (
        entries,
        proptest::option::weighted(0.2, extra),
        proptest::sample::select(vec!["", " ", "\n\t"]),
        proptest::bool::weighted(0.8),
    )
        .prop_map(|(mut entries, extra, ws, complete)| {
            entries.extend(extra);
            if complete {
                // The two keys without a default.
                for (k, v) in [("seq", "1"), ("mtype", "1")] {
                    if !entries.iter().any(|e| e.starts_with(&format!("\"{k}\""))) {
                        entries.push(format!("\"{k}\":{v}"));
                    }
                }
            }
            format!("{ws}{{{ws}{}{ws}}}{ws}", entries.join(&format!(",{ws}"))).into_bytes()
        })
}

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One protobuf field: a known tag with its wire type, a known tag with the
/// wrong wire type, or an unknown tag.
fn arb_pb_field() -> impl Strategy<Value = Vec<u8>> {
    let varint_field = (
        proptest::sample::select(vec![1u32, 2, 6]),
        prop_oneof![
            4 => 0i64..=6,
            2 => 0i64..=255,
            2 => any::<i32>().prop_map(i64::from),
            1 => any::<i64>(),
        ],
    )
        .prop_map(|(tag, v)| {
            let mut out = Vec::new();
            pb_varint(u64::from(tag << 3), &mut out);
            // int32 negatives are sign-extended to ten bytes.
            pb_varint(v as u64, &mut out);
            out
        });
    let len_field = (
        proptest::sample::select(vec![3u32, 4, 5, 7]),
        prop_oneof![arb_query(), arb_uri(), arb_bytes(32)],
    )
        .prop_map(|(tag, v)| {
            let mut out = Vec::new();
            pb_varint(u64::from(tag << 3 | 2), &mut out);
            pb_varint(v.len() as u64, &mut out);
            out.extend_from_slice(&v);
            out
        });
    let odd_field = (1u32..20, 0u32..8, arb_bytes(12)).prop_map(|(tag, wire, v)| {
        let mut out = Vec::new();
        pb_varint(u64::from(tag << 3 | wire), &mut out);
        out.extend_from_slice(&v);
        out
    });
    prop_oneof![4 => varint_field, 4 => len_field, 1 => odd_field]
}

/// Usually a valid message type first (a later field 2 overrides it), then
/// any fields.
fn arb_pb_payload() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::option::weighted(0.8, 1u8..=5),
        proptest::collection::vec(arb_pb_field(), 0..8),
    )
        .prop_map(|(mtype, fields)| {
            let mut out = Vec::new();
            if let Some(t) = mtype {
                out.extend_from_slice(&[2 << 3, t]);
            }
            out.extend(fields.concat());
            out
        })
}

/// A frame around `payload`: honest length (counting itself or not), the
/// filter ids, and the payload packed through those filters when they are
/// all known (otherwise left as it is, for an unknown-id error).
fn frame(counts_itself: bool, ids: &[u8], payload: &[u8]) -> Vec<u8> {
    let reg = checks::registry();
    let body = if reg.check(ids).is_ok() {
        reg.pack(ids, Bytes::copy_from_slice(payload)).unwrap()
    } else {
        Bytes::copy_from_slice(payload)
    };
    let len = 1 + ids.len() + body.len() + if counts_itself { 4 } else { 0 };
    let mut out = BytesMut::new();
    out.put_u32(u32::try_from(len).unwrap());
    out.put_u8(u8::try_from(ids.len()).unwrap());
    out.put_slice(ids);
    out.put_slice(&body);
    out.to_vec()
}

fn arb_xfer_case() -> impl Strategy<Value = XferCase> {
    (
        prop_oneof![0usize..64, 0usize..4096, Just(MAX_FRAME_LEN)],
        arb_filters(),
        prop_oneof![
            arb_bytes(512),
            // Compressible: gzip output is much smaller than its input.
            (any::<u8>(), 0usize..8192).prop_map(|(b, n)| vec![b; n]),
        ],
    )
        .prop_map(|(max_len, ids, payload)| XferCase {
            max_len,
            ids,
            payload,
        })
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Arbitrary bytes into every decoder: the full fuzz property (bounded
    /// buffer, chunking independence, decode → encode → decode).
    #[test]
    fn decoders_on_arbitrary_bytes(bytes in arb_bytes(2048)) {
        checks::check_decode_stream(&checks::raw(), MAX_FRAME_LEN, &bytes);
        checks::check_decode_stream(&checks::json(), MAX_FRAME_LEN, &bytes);
        checks::check_decode_stream(&checks::pb(), MAX_FRAME_LEN, &bytes);
    }

    /// Raw frames with honest lengths around non-canonical fields, usually
    /// behind real filters: most decode, and then must re-encode to an equal
    /// packet; two in a row must decode the same in any chunking.
    #[test]
    fn raw_decoder_on_well_framed_odd_fields(
        a in arb_fields(), b in arb_fields(), ids in arb_filters(), ids_b in arb_filters(),
    ) {
        let mut wire = frame(true, &ids, &raw_payload(&a));
        wire.extend_from_slice(&frame(true, &ids_b, &raw_payload(&b)));
        checks::check_decode_stream(&checks::raw(), MAX_FRAME_LEN, &wire);
    }

    /// JSON frames: keys in any order, missing, repeated or unknown; values
    /// of every JSON type; escapes including lone surrogates.
    #[test]
    fn json_decoder_on_well_framed_odd_documents(
        a in arb_json_payload(), b in arb_json_payload(), ids in arb_filters(),
    ) {
        let mut wire = frame(false, &ids, &a);
        wire.extend_from_slice(&frame(false, &[], &b));
        checks::check_decode_stream(&checks::json(), MAX_FRAME_LEN, &wire);
    }

    /// Protobuf frames: fields repeated (last wins), out of range, with the
    /// wrong wire type, or unknown.
    #[test]
    fn pb_decoder_on_well_framed_odd_messages(
        a in arb_pb_payload(), b in arb_pb_payload(), ids in arb_filters(),
    ) {
        let mut wire = frame(false, &ids, &a);
        wire.extend_from_slice(&frame(false, &[], &b));
        checks::check_decode_stream(&checks::pb(), MAX_FRAME_LEN, &wire);
    }

    /// With a tiny size limit, valid frames are over it more often than not:
    /// the decoder stops at the prefix, and never holds more than the limit.
    #[test]
    fn decoders_with_a_small_limit(
        limit in 5usize..300,
        a in arb_fields(),
        ids in arb_filters(),
        garbage in arb_bytes(64),
    ) {
        let cfg = checks::proto_config().with_max_frame_len(limit);
        let protos: [(Box<dyn Proto>, Vec<u8>); 3] = [
            (Box::new(RawProto::new(cfg.clone())), frame(true, &ids, &raw_payload(&a))),
            (Box::new(JsonProto::new(cfg.clone())), frame(false, &ids, &raw_payload(&a))),
            (Box::new(PbProto::new(cfg)), frame(false, &ids, &raw_payload(&a))),
        ];
        for (proto, mut wire) in protos {
            wire.extend_from_slice(&garbage);
            checks::check_decode_stream(&*proto, limit, &wire);
        }
    }

    /// `Status::parse` of arbitrary bytes and of query-shaped bytes: no
    /// panic; an `Ok` roundtrips through `to_query`.
    #[test]
    fn status_parse_of_any_bytes(raw in arb_bytes(64), query in arb_query()) {
        checks::check_status_parse(&raw);
        checks::check_status_parse(&query);
    }

    /// `Meta::parse` likewise.
    #[test]
    fn meta_parse_of_any_bytes(raw in arb_bytes(64), query in arb_query()) {
        checks::check_meta_parse(&raw);
        checks::check_meta_parse(&query);
    }

    /// The filter pipeline with the fuzz target's own input format.
    #[test]
    fn xfer_unpack_of_fuzz_shaped_input(data in arb_bytes(1024)) {
        let reg = checks::registry();
        let case = XferCase::from_bytes(&data);
        checks::check_xfer_unpack(&reg, &case);
        checks::check_xfer_roundtrip(&reg, &case);
    }

    /// The filter pipeline with chosen limits, chains and (compressible)
    /// payloads: random bytes never exceed the limit; pack → unpack gives the
    /// payload back or `TooLarge` exactly when a result is over the limit.
    #[test]
    fn xfer_unpack_and_roundtrip(case in arb_xfer_case()) {
        let reg = checks::registry();
        checks::check_xfer_unpack(&reg, &case);
        checks::check_xfer_roundtrip(&reg, &case);
    }
}

/// The shared checks hold on the seed shapes too (one fixed case each, so a
/// broken `checks` module fails loudly rather than vacuously).
#[test]
fn the_checks_accept_valid_input() {
    use jaunt_socket::{Packet, PacketType};
    let mut p = Packet::new(PacketType::Pull, 7, "/echo");
    p.body_codec = b'j';
    p.body = Bytes::from_static(b"\"hi\"");
    p.meta.add("k", "v w");
    p.xfer = vec![b'm', b'g'];
    for proto in [
        Box::new(checks::raw()) as Box<dyn Proto>,
        Box::new(checks::json()),
        Box::new(checks::pb()),
    ] {
        let mut wire = BytesMut::new();
        proto.encode(&p, &mut wire).unwrap();
        proto.encode(&p, &mut wire).unwrap();
        assert_eq!(
            checks::check_decode_stream(&*proto, MAX_FRAME_LEN, &wire),
            2
        );
    }
    assert!(checks::check_status_parse(
        b"code=404&msg=Not%20Found&cause="
    ));
    assert!(checks::check_meta_parse(b"a=1&b"));
    assert!(!checks::check_status_parse(b"code=x"));
    let case = XferCase {
        max_len: 1 << 16,
        ids: vec![b'g', b'm', AEAD_ID],
        payload: b"hello hello hello".to_vec(),
    };
    checks::check_xfer_roundtrip(&checks::registry(), &case);
}

/// A framing with a planted bug, to show that the checks are not vacuous.
struct Broken {
    inner: RawProto,
    /// Drops the last body byte of every decoded packet.
    lossy: bool,
    /// Reserves a megabyte whenever a frame is incomplete.
    greedy: bool,
}

impl Proto for Broken {
    fn id(&self) -> u8 {
        self.inner.id()
    }
    fn name(&self) -> &'static str {
        "broken"
    }
    fn encode(
        &self,
        packet: &jaunt_socket::Packet,
        dst: &mut BytesMut,
    ) -> Result<(), jaunt_socket::ProtoError> {
        self.inner.encode(packet, dst)
    }
    fn decode(
        &self,
        src: &mut BytesMut,
    ) -> Result<Option<jaunt_socket::Packet>, jaunt_socket::ProtoError> {
        let mut got = self.inner.decode(src)?;
        if let Some(p) = got.as_mut().filter(|_| self.lossy) {
            let keep = p.body.len().saturating_sub(1);
            p.body.truncate(keep);
        }
        if got.is_none() && self.greedy {
            src.reserve(1 << 20);
        }
        Ok(got)
    }
}

fn one_frame() -> Vec<u8> {
    let mut p = jaunt_socket::Packet::new(jaunt_socket::PacketType::Push, 1, "/x");
    p.body = Bytes::from_static(b"abc");
    let mut wire = BytesMut::new();
    checks::raw().encode(&p, &mut wire).unwrap();
    wire.to_vec()
}

#[test]
#[should_panic(expected = "decode(encode(decoded packet)) differs")]
fn the_checks_catch_a_lossy_decoder() {
    let proto = Broken {
        inner: checks::raw(),
        lossy: true,
        greedy: false,
    };
    checks::check_decode_stream(&proto, MAX_FRAME_LEN, &one_frame());
}

#[test]
#[should_panic(expected = "buffer capacity")]
fn the_checks_catch_a_decoder_that_reserves_too_much() {
    let proto = Broken {
        inner: checks::raw(),
        lossy: false,
        greedy: true,
    };
    checks::check_decode_stream(&proto, MAX_FRAME_LEN, &one_frame()[..10]);
}

// ---------------------------------------------------------------------------
// Regressions: inputs found by fuzzing (see docs/reliability.md)
// ---------------------------------------------------------------------------
//
// None yet: the runs recorded in docs/reliability.md found no crash. A
// minimised crash input goes here as a test that feeds it to the check of
// its target, e.g. `checks::check_decode_stream(&checks::raw(), MAX_FRAME_LEN, b"...")`.
