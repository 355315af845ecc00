//! Behaviour of the built-in codecs and the registry.
#![cfg(all(
    feature = "json",
    feature = "protobuf",
    feature = "form",
    feature = "xml"
))]

use std::collections::BTreeMap;

use bytes::Bytes;
use jaunt_codec::{
    decode_with, ids, Codec, CodecError, DecodeSink, EncodeBody, JsonCodec, Pb, PlainCodec,
    RawBody, Registry,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
    label: String,
}

fn point() -> Point {
    Point {
        x: 3,
        y: -4,
        label: "a b&c=d<e>".into(),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct Hello {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint32, tag = "2")]
    count: u32,
    #[prost(bytes = "bytes", tag = "3")]
    data: Bytes,
    #[prost(int64, repeated, tag = "4")]
    values: Vec<i64>,
}

fn hello() -> Hello {
    Hello {
        name: "world".into(),
        count: 42,
        data: Bytes::from_static(b"\x00\x01\x02 binary"),
        values: vec![-1, 0, 1 << 40],
    }
}

fn roundtrip<T>(registry: &Registry, id: u8, value: &T) -> (Bytes, T)
where
    T: EncodeBody + jaunt_codec::DecodeBody,
{
    let body = registry.encode(id, value).expect("encode");
    let back = registry.decode::<T>(id, &body).expect("decode");
    (body, back)
}

fn is_decode_error(err: &CodecError, codec: &str) -> bool {
    matches!(err, CodecError::Decode { codec: c, .. } if *c == codec)
}

// ----- roundtrips -----------------------------------------------------------------------------

#[test]
fn json_roundtrip() {
    let r = Registry::with_defaults();
    let (body, back) = roundtrip(&r, ids::JSON, &point());
    assert_eq!(
        &body[..],
        br#"{"x":3,"y":-4,"label":"a b&c=d<e>"}"#.as_slice()
    );
    assert_eq!(back, point());

    let mut map = BTreeMap::new();
    map.insert("k".to_string(), vec![1u8, 2, 3]);
    assert_eq!(roundtrip(&r, ids::JSON, &map).1, map);
    assert_eq!(roundtrip(&r, ids::JSON, &()).0, Bytes::from_static(b"null"));
}

#[test]
fn form_roundtrip() {
    let r = Registry::with_defaults();
    let (body, back) = roundtrip(&r, ids::FORM, &point());
    assert_eq!(&body[..], b"x=3&y=-4&label=a+b%26c%3Dd%3Ce%3E".as_slice());
    assert_eq!(back, point());

    let mut map = BTreeMap::new();
    map.insert("a".to_string(), "1".to_string());
    map.insert("b c".to_string(), "ü".to_string());
    assert_eq!(roundtrip(&r, ids::FORM, &map).1, map);
}

#[test]
fn xml_roundtrip() {
    let r = Registry::with_defaults();
    let (body, back) = roundtrip(&r, ids::XML, &point());
    assert_eq!(
        &body[..],
        b"<Point><x>3</x><y>-4</y><label>a b&amp;c=d&lt;e&gt;</label></Point>".as_slice()
    );
    assert_eq!(back, point());
}

#[test]
fn plain_roundtrip_string_and_bytes() {
    let r = Registry::with_defaults();
    let (body, back) = roundtrip(&r, ids::PLAIN, &"héllo wörld".to_string());
    assert_eq!(&body[..], "héllo wörld".as_bytes());
    assert_eq!(back, "héllo wörld");

    // &str encodes too.
    assert_eq!(&r.encode(ids::PLAIN, &"abc").unwrap()[..], b"abc");

    let raw = Bytes::from_static(b"\xff\x00\xfe raw");
    let (body, back) = roundtrip(&r, ids::PLAIN, &raw);
    assert_eq!(body, raw);
    assert_eq!(back, raw);
}

#[test]
fn plain_decode_into_bytes_is_zero_copy() {
    let r = Registry::with_defaults();
    let body = Bytes::from(vec![1u8, 2, 3, 4, 5]);
    let back: Bytes = r.decode(ids::PLAIN, &body).unwrap();
    assert_eq!(back.as_ptr(), body.as_ptr());
    assert_eq!(back.len(), body.len());
}

#[test]
fn plain_newtypes_pass_through() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Token(String);

    let r = Registry::with_defaults();
    let (body, back) = roundtrip(&r, ids::PLAIN, &Token("secret".into()));
    assert_eq!(&body[..], b"secret");
    assert_eq!(back, Token("secret".into()));
}

#[test]
fn protobuf_roundtrip() {
    let r = Registry::with_defaults();
    let (body, back) = roundtrip(&r, ids::PROTOBUF, &Pb(hello()));
    assert_eq!(body.len(), prost::Message::encoded_len(&hello()));
    assert_eq!(back.into_inner(), hello());

    // `bytes` fields declared as `Bytes` share the body.
    let back: Pb<Hello> = r.decode(ids::PROTOBUF, &body).unwrap();
    let start = body.as_ptr() as usize;
    let data = back.data.as_ptr() as usize;
    assert!(data >= start && data < start + body.len());
}

// ----- unsupported types ----------------------------------------------------------------------

fn assert_unsupported(err: CodecError, codec: &str, type_name: &str) {
    let msg = err.to_string();
    assert!(
        matches!(&err, CodecError::UnsupportedType { codec: c, type_name: t }
            if *c == codec && t.contains(type_name)),
        "{err:?}"
    );
    assert!(msg.contains(codec), "{msg}");
    assert!(msg.contains(type_name), "{msg}");
}

#[test]
fn string_with_protobuf_is_unsupported() {
    let r = Registry::with_defaults();
    let err = r.encode(ids::PROTOBUF, &String::from("x")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "codec protobuf cannot carry type alloc::string::String"
    );
    assert_unsupported(err, "protobuf", "alloc::string::String");

    let err = r
        .decode::<String>(ids::PROTOBUF, &Bytes::from_static(b"\x0a\x01a"))
        .unwrap_err();
    assert_unsupported(err, "protobuf", "alloc::string::String");
}

#[test]
fn struct_with_plain_is_unsupported() {
    let r = Registry::with_defaults();
    let err = r.encode(ids::PLAIN, &point()).unwrap_err();
    assert_unsupported(err, "plain", "Point");

    let err = r
        .decode::<Point>(ids::PLAIN, &Bytes::from_static(b"x=1"))
        .unwrap_err();
    assert_unsupported(err, "plain", "Point");

    let err = r.decode::<u32>(ids::PLAIN, &Bytes::new()).unwrap_err();
    assert_unsupported(err, "plain", "u32");
}

#[test]
fn vec_u8_with_plain_is_unsupported() {
    let r = Registry::with_defaults();
    let err = r.encode(ids::PLAIN, &vec![1u8, 2]).unwrap_err();
    assert_unsupported(err, "plain", "alloc::vec::Vec<u8>");
}

#[test]
fn pb_with_serde_codecs_is_unsupported() {
    let r = Registry::with_defaults();
    for (id, name) in [
        (ids::JSON, "json"),
        (ids::FORM, "form"),
        (ids::XML, "xml"),
        (ids::PLAIN, "plain"),
    ] {
        let err = r.encode(id, &Pb(hello())).unwrap_err();
        assert_unsupported(err, name, "Pb<codecs::Hello>");
        let err = r
            .decode::<Pb<Hello>>(id, &Bytes::from_static(b"{}"))
            .unwrap_err();
        assert_unsupported(err, name, "Pb<codecs::Hello>");
    }
}

// ----- registry -------------------------------------------------------------------------------

#[test]
fn unknown_id_names_the_id() {
    let r = Registry::with_defaults();
    let err = r.encode(b'y', &1).unwrap_err();
    assert!(matches!(err, CodecError::UnknownId { id: b'y' }));
    assert_eq!(err.to_string(), "unknown body codec id 121 ('y')");

    let err = r.decode::<u32>(7, &Bytes::from_static(b"1")).unwrap_err();
    assert_eq!(err.to_string(), "unknown body codec id 7");

    // Thrift's id is reserved on the wire but has no built-in codec.
    assert!(matches!(
        r.get(ids::THRIFT),
        Err(CodecError::UnknownId { id: ids::THRIFT })
    ));
}

#[test]
fn defaults_are_all_there() {
    let r = Registry::with_defaults();
    let listed: Vec<(u8, &str)> = r.iter().map(|c| (c.id(), c.name())).collect();
    assert_eq!(
        listed,
        [
            (b'j', "json"),
            (b'p', "protobuf"),
            (b's', "plain"),
            (b'f', "form"),
            (b'x', "xml"),
        ]
    );
    assert_eq!(r.len(), 5);
    for (id, name) in listed {
        assert_eq!(r.get(id).unwrap().name(), name);
        assert_eq!(r.get_by_name(name).unwrap().id(), id);
        assert!(r.contains(id));
    }
    assert!(matches!(
        r.get_by_name("msgpack"),
        Err(CodecError::UnknownName { .. })
    ));
    assert!(Registry::new().is_empty());
    assert_eq!(
        format!("{r:?}"),
        r#"{106: "json", 112: "protobuf", 115: "plain", 102: "form", 120: "xml"}"#
    );
}

struct Fake {
    id: u8,
    name: &'static str,
}

impl Codec for Fake {
    fn id(&self) -> u8 {
        self.id
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn encode(&self, _: &dyn EncodeBody, _: &mut Vec<u8>) -> Result<(), CodecError> {
        Ok(())
    }
    fn decode(&self, _: &Bytes, _: &mut dyn DecodeSink) -> Result<(), CodecError> {
        // A buggy codec: claims success without filling the sink.
        Ok(())
    }
}

#[test]
fn register_errors() {
    let mut r = Registry::with_defaults();
    let err = r
        .register(Fake {
            id: 0,
            name: "zero",
        })
        .unwrap_err();
    assert!(matches!(err, CodecError::ReservedId));
    assert!(err.to_string().contains("reserved"));

    let err = r
        .register(Fake {
            id: b'j',
            name: "json2",
        })
        .unwrap_err();
    assert!(matches!(err, CodecError::DuplicateId { id: b'j' }));
    assert_eq!(
        err.to_string(),
        "body codec id 106 ('j') is already registered"
    );

    let err = r
        .register(Fake {
            id: b'J',
            name: "json",
        })
        .unwrap_err();
    assert!(matches!(err, CodecError::DuplicateName { name: "json" }));
    assert!(err.to_string().contains("\"json\""));

    assert_eq!(r.len(), 5, "failed registrations change nothing");
    r.register(Fake {
        id: 255,
        name: "fake",
    })
    .unwrap();
    assert_eq!(r.get(255).unwrap().name(), "fake");
}

#[test]
fn clones_are_independent_after_register() {
    let base = Registry::with_defaults();
    let mut extended = base.clone();
    extended
        .register(Fake {
            id: b'm',
            name: "msgpack",
        })
        .unwrap();
    assert!(extended.contains(b'm'));
    assert!(!base.contains(b'm'));
}

#[test]
fn a_codec_that_fills_nothing_is_a_decode_error() {
    let err = decode_with::<u32>(
        &Fake {
            id: 1,
            name: "fake",
        },
        &Bytes::new(),
    )
    .unwrap_err();
    assert!(is_decode_error(&err, "fake"), "{err:?}");
}

#[test]
fn id_zero_cannot_encode() {
    let r = Registry::with_defaults();
    assert!(matches!(
        r.encode(ids::NONE, &()),
        Err(CodecError::ReservedId)
    ));
}

// ----- decode errors --------------------------------------------------------------------------

#[test]
fn bad_json_is_a_decode_error() {
    let r = Registry::with_defaults();
    for input in [
        &b"{"[..],
        b"{\"x\":1}",
        b"{\"x\":\"1\",\"y\":2,\"label\":\"\"}",
        b"\xff\xfe",
        b"{\"x\":1,\"y\":2,\"label\":\"\"} trailing",
    ] {
        let err = r
            .decode::<Point>(ids::JSON, &Bytes::copy_from_slice(input))
            .unwrap_err();
        assert!(is_decode_error(&err, "json"), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("codec json failed to decode codecs::Point: "),
            "{msg}"
        );
    }
}

#[test]
fn invalid_utf8_with_plain_is_a_decode_error() {
    let r = Registry::with_defaults();
    let err = r
        .decode::<String>(ids::PLAIN, &Bytes::from_static(b"ab\xffcd"))
        .unwrap_err();
    assert!(is_decode_error(&err, "plain"), "{err:?}");
    assert!(err.to_string().contains("UTF-8"), "{err}");
    // The same body is fine as bytes.
    let b: Bytes = r
        .decode(ids::PLAIN, &Bytes::from_static(b"ab\xffcd"))
        .unwrap();
    assert_eq!(&b[..], b"ab\xffcd");
}

#[test]
fn truncated_protobuf_is_a_decode_error() {
    let r = Registry::with_defaults();
    let body = r.encode(ids::PROTOBUF, &Pb(hello())).unwrap();
    for cut in 1..body.len() {
        let truncated = body.slice(..cut);
        match r.decode::<Pb<Hello>>(ids::PROTOBUF, &truncated) {
            // Cutting at a field boundary yields a shorter, valid message.
            Ok(_) => {}
            Err(err) => assert!(is_decode_error(&err, "protobuf"), "{err:?}"),
        }
    }
    let err = r
        .decode::<Pb<Hello>>(ids::PROTOBUF, &body.slice(..body.len() - 1))
        .unwrap_err();
    assert!(is_decode_error(&err, "protobuf"), "{err:?}");
}

#[test]
fn bad_form_and_xml_are_decode_errors() {
    let r = Registry::with_defaults();
    let err = r
        .decode::<Point>(ids::FORM, &Bytes::from_static(b"x=one&y=2&label=a"))
        .unwrap_err();
    assert!(is_decode_error(&err, "form"), "{err:?}");

    for input in [
        &b"<Point><x>3</x>"[..],
        b"<Point><x>3</y></Point>",
        b"not xml",
        b"<Point>\xff</Point>",
    ] {
        let err = r
            .decode::<Point>(ids::XML, &Bytes::copy_from_slice(input))
            .unwrap_err();
        assert!(is_decode_error(&err, "xml"), "{err:?}");
    }
}

#[test]
fn xml_without_root_name_is_an_encode_error() {
    let r = Registry::with_defaults();
    let err = r.encode(ids::XML, &"bare string").unwrap_err();
    assert!(
        matches!(err, CodecError::Encode { codec: "xml", .. }),
        "{err:?}"
    );
}

#[test]
fn encode_into_appends_and_is_atomic() {
    let r = Registry::with_defaults();
    let mut out = b"prefix:".to_vec();
    r.encode_into(ids::JSON, &[1, 2], &mut out).unwrap();
    assert_eq!(out, b"prefix:[1,2]");

    // A map with non-string keys fails halfway through in serde_json.
    let mut bad = BTreeMap::new();
    bad.insert((1, 2), 3);
    let err = r.encode_into(ids::JSON, &bad, &mut out).unwrap_err();
    assert!(
        matches!(err, CodecError::Encode { codec: "json", .. }),
        "{err:?}"
    );
    assert_eq!(out, b"prefix:[1,2]");

    let err = r.encode_into(ids::XML, &"x", &mut out).unwrap_err();
    assert!(matches!(err, CodecError::Encode { .. }), "{err:?}");
    assert_eq!(out, b"prefix:[1,2]");

    r.encode_into(ids::PLAIN, &"!", &mut out).unwrap();
    assert_eq!(out, b"prefix:[1,2]!");
}

// ----- empty bodies ---------------------------------------------------------------------------

#[test]
fn empty_body_with_json_is_null() {
    let r = Registry::with_defaults();
    let empty = Bytes::new();
    r.decode::<()>(ids::JSON, &empty).unwrap();
    assert_eq!(r.decode::<Option<Point>>(ids::JSON, &empty).unwrap(), None);
    let err = r.decode::<Point>(ids::JSON, &empty).unwrap_err();
    assert!(is_decode_error(&err, "json"), "{err:?}");
    assert!(err.to_string().contains("null"), "{err}");
}

#[test]
fn empty_body_with_other_codecs() {
    let r = Registry::with_defaults();
    let empty = Bytes::new();
    let msg: Pb<Hello> = r.decode(ids::PROTOBUF, &empty).unwrap();
    assert_eq!(msg.0, Hello::default());
    assert_eq!(r.decode::<String>(ids::PLAIN, &empty).unwrap(), "");
    assert!(r.decode::<Bytes>(ids::PLAIN, &empty).unwrap().is_empty());
    assert!(r
        .decode::<BTreeMap<String, String>>(ids::FORM, &empty)
        .unwrap()
        .is_empty());
    let err = r.decode::<Point>(ids::XML, &empty).unwrap_err();
    assert!(is_decode_error(&err, "xml"), "{err:?}");
}

#[test]
fn codec_id_zero() {
    let r = Registry::with_defaults();
    let empty = Bytes::new();
    r.decode::<()>(ids::NONE, &empty).unwrap();
    assert_eq!(r.decode::<Option<String>>(ids::NONE, &empty).unwrap(), None);
    assert_eq!(
        r.decode::<Pb<Hello>>(ids::NONE, &empty).unwrap().0,
        Hello::default()
    );
    let err = r.decode::<Point>(ids::NONE, &empty).unwrap_err();
    assert!(
        matches!(err, CodecError::NoBody { type_name } if type_name.ends_with("Point")),
        "{err:?}"
    );

    let err = r
        .decode::<()>(ids::NONE, &Bytes::from_static(b"null"))
        .unwrap_err();
    assert!(
        matches!(err, CodecError::BodyWithoutCodec { len: 4 }),
        "{err:?}"
    );
}

#[test]
fn decode_or_default_mirrors_go() {
    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Args {
        a: i32,
    }
    let r = Registry::with_defaults();
    for id in [ids::NONE, ids::JSON, ids::XML, ids::FORM] {
        assert_eq!(
            r.decode_or_default::<Args>(id, &Bytes::new()).unwrap(),
            Args::default()
        );
    }
    assert_eq!(
        r.decode_or_default::<Args>(ids::JSON, &Bytes::from_static(b"{\"a\":5}"))
            .unwrap(),
        Args { a: 5 }
    );
    assert!(r
        .decode_or_default::<Args>(ids::JSON, &Bytes::from_static(b"{"))
        .is_err());
}

// ----- raw bodies and direct codec use --------------------------------------------------------

#[test]
fn raw_body_decodes_later() {
    let r = Registry::with_defaults();
    let raw = RawBody::encode(&r, ids::FORM, &point()).unwrap();
    assert_eq!(raw.codec, ids::FORM);
    assert_eq!(raw.decode::<Point>(&r).unwrap(), point());
    assert!(RawBody::none().is_empty());
    RawBody::none().decode::<()>(&r).unwrap();
    let raw = RawBody::new(ids::PLAIN, "text");
    assert_eq!(raw.decode::<String>(&r).unwrap(), "text");
}

#[test]
fn codecs_work_without_a_registry() {
    let mut out = Vec::new();
    JsonCodec.encode(&point(), &mut out).unwrap();
    let back: Point = decode_with(&JsonCodec, &Bytes::from(out)).unwrap();
    assert_eq!(back, point());

    let codec: &dyn Codec = &PlainCodec;
    let s: String = decode_with(codec, &Bytes::from_static(b"hi")).unwrap();
    assert_eq!(s, "hi");
}
