//! Golden tests: frames captured between two Go erpc v7.2 peers must decode to
//! their recorded fields, and those without a transfer filter must re-encode
//! to exactly the same bytes.

use bytes::BytesMut;
use jaunt_socket::{Meta, Packet, PacketType, Proto, RawProto, Status};
use serde_json::Value;

struct Vector {
    name: String,
    wire: Vec<u8>,
    decoded: Value,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("erpc-vectors.json");
    let doc: Value = serde_json::from_str(text).expect("vectors are JSON");
    doc["frames"]
        .as_array()
        .expect("frames array")
        .iter()
        .map(|f| Vector {
            name: format!("{} {} #{}", f["capture"], f["direction"], f["index"]),
            wire: hex::decode(f["hex"].as_str().expect("hex")).expect("valid hex"),
            decoded: f["decoded"].clone(),
        })
        .collect()
}

fn parse_seq36(s: &str) -> i32 {
    i32::from_str_radix(s, 36).expect("vector seq is base 36")
}

fn check_fields(v: &Vector, p: &Packet) {
    let d = &v.decoded;
    assert_eq!(
        p.xfer,
        d["xfer"].as_str().unwrap().as_bytes(),
        "{}: xfer",
        v.name
    );
    assert_eq!(
        p.seq,
        parse_seq36(d["seq_base36"].as_str().unwrap()),
        "{}: seq",
        v.name
    );
    assert_eq!(
        u64::from(p.ptype.as_u8()),
        d["mtype"].as_u64().unwrap(),
        "{}: type",
        v.name
    );
    assert_eq!(
        p.uri,
        d["service_method"].as_str().unwrap(),
        "{}: uri",
        v.name
    );
    assert_eq!(
        p.status.to_query(),
        d["status"].as_str().unwrap(),
        "{}: status",
        v.name
    );
    assert_eq!(
        p.meta.to_query(),
        d["meta"].as_str().unwrap(),
        "{}: meta",
        v.name
    );
    assert_eq!(
        u64::from(p.body_codec),
        d["codec"].as_u64().unwrap(),
        "{}: codec",
        v.name
    );
    assert_eq!(
        p.body,
        d["body_utf8"].as_str().unwrap().as_bytes(),
        "{}: body",
        v.name
    );
}

#[test]
fn every_vector_decodes_to_its_fields() {
    let proto = RawProto::default();
    let all = vectors();
    assert_eq!(all.len(), 33, "the capture holds 33 frames");
    for v in &all {
        let mut buf = BytesMut::from(&v.wire[..]);
        let packet = proto
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let packet = packet.unwrap_or_else(|| panic!("{}: incomplete", v.name));
        assert!(buf.is_empty(), "{}: the whole frame is consumed", v.name);
        check_fields(v, &packet);
    }
}

#[test]
fn unfiltered_vectors_reencode_byte_for_byte() {
    let proto = RawProto::default();
    let mut checked = 0;
    for v in vectors().iter().filter(|v| v.decoded["xfer"] == "") {
        let packet = proto
            .decode(&mut BytesMut::from(&v.wire[..]))
            .unwrap()
            .unwrap();
        let mut out = BytesMut::new();
        proto.encode(&packet, &mut out).unwrap();
        assert_eq!(hex::encode(&out), hex::encode(&v.wire), "{}", v.name);
        checked += 1;
    }
    assert_eq!(checked, 13);
}

#[test]
fn gzip_vectors_reencode_to_the_same_payload() {
    // gzip bytes differ between implementations: compare what decodes.
    let proto = RawProto::default();
    for v in vectors().iter().filter(|v| v.decoded["xfer"] == "g") {
        let packet = proto
            .decode(&mut BytesMut::from(&v.wire[..]))
            .unwrap()
            .unwrap();
        let mut out = BytesMut::new();
        proto.encode(&packet, &mut out).unwrap();
        assert_eq!(out[4..6], v.wire[4..6], "{}: filter header", v.name);
        let again = proto.decode(&mut out).unwrap().unwrap();
        assert_eq!(again, packet, "{}", v.name);
    }
}

#[test]
fn the_whole_capture_decodes_from_one_buffer_fed_in_odd_chunks() {
    // Sticky and half packets: feed the client->server stream 7 bytes at a time.
    let proto = RawProto::default();
    let stream: Vec<u8> = vectors()
        .iter()
        .filter(|v| v.name.starts_with("\"plain\" \"client->server\""))
        .flat_map(|v| v.wire.clone())
        .collect();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for chunk in stream.chunks(7) {
        buf.extend_from_slice(chunk);
        while let Some(p) = proto.decode(&mut buf).unwrap() {
            got.push(p);
        }
    }
    assert!(buf.is_empty());
    let uris: Vec<_> = got.iter().map(|p| p.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "/math/add",
            "/echo/str",
            "/echo/fail",
            "/no/such/route",
            "/push/msg",
            "/push/count"
        ]
    );
}

#[test]
fn a_built_packet_encodes_like_go() {
    // The first captured frame, built by hand.
    let mut p = Packet::new(PacketType::Pull, 1, "/math/add");
    p.meta = Meta::parse(b"author=erpc-interop").unwrap();
    p.status = Status::ok();
    p.body_codec = b'j';
    p.body = bytes::Bytes::from_static(b"[-472,-362,-698,-642,-784]");
    let mut out = BytesMut::new();
    RawProto::default().encode(&p, &mut out).unwrap();
    assert_eq!(hex::encode(&out), hex::encode(&vectors()[0].wire));
}
