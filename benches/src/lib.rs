//! Shared fixtures of Jaunt's benchmarks.
//!
//! The criterion benchmarks in `benches/` (`frame`: the framings, `codec`: the body codecs)
//! and the load generator (`jaunt-bench`, engine in [`load`], Jaunt's server and callers in
//! [`echo`]; the baselines in `benches/compare`) all send the same payload: the **benchmark
//! message** of the teleport / erpc and rpcx benchmarks, a proto2 message of 581 bytes whose
//! echo reply is 527 bytes (see `wire-format.md`, "The benchmark message"). This crate holds
//! it as a hand-written prost struct, so no `protoc` is needed, together with the functions
//! that fill it and the pull [`Packet`] that carries it.
//!
//! proto2 semantics: every field is *explicitly present*, so even a field that holds its
//! default value is encoded. prost only gives that behaviour to `optional` fields, hence
//! every scalar field is an `Option`. The struct also derives serde's `Serialize` and
//! `Deserialize`, so the JSON, form and XML codecs can be measured on the same value.
//!
//! ```
//! use jaunt_benches::{benchmark_message, reply_to, MESSAGE_LEN, REPLY_LEN};
//! use prost::Message;
//!
//! let request = benchmark_message();
//! assert_eq!(request.encoded_len(), MESSAGE_LEN);
//! let reply = reply_to(request);
//! assert_eq!(reply.field1.as_deref(), Some("OK"));
//! assert_eq!(reply.encoded_len(), REPLY_LEN);
//! ```

pub mod child_server;
pub mod echo;
pub mod load;

use bytes::Bytes;
use jaunt::codec_ids;
use jaunt::{Packet, PacketType};
use prost::Message;
use serde::{Deserialize, Serialize};

/// The text every string field of the benchmark message holds (18 CJK characters, 54 bytes
/// of UTF-8).
pub const BENCH_TEXT: &str = "许多往事在眼前一幕一幕，变的那麼模糊";

/// The value every int32 and int64 field of the benchmark message holds.
pub const BENCH_INT: i32 = 100_000;

/// The encoded length of [`benchmark_message`], in bytes.
pub const MESSAGE_LEN: usize = 581;

/// The encoded length of [`benchmark_reply`], in bytes.
pub const REPLY_LEN: usize = 527;

/// The uri the benchmarks call.
pub const BENCH_URI: &str = "/bench/echo";

/// The teleport / rpcx benchmark message (proto2).
///
/// Only the fields the benchmark sets exist here; their numbers and types are those of the
/// original `.proto`. Every scalar is `optional` so that it is encoded even when it holds its
/// default value (proto2's explicit presence). Repeated field 5 is `[packed = false]`, as in
/// proto2, and the benchmark leaves it empty; it is skipped by serde when empty, so that the
/// form codec, which cannot write sequences, can still carry the message.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct BenchmarkMessage {
    /// String field 1 (`"OK"` in the reply).
    #[prost(string, optional, tag = "1")]
    pub field1: Option<String>,
    /// String field 4.
    #[prost(string, optional, tag = "4")]
    pub field4: Option<String>,
    /// String field 7.
    #[prost(string, optional, tag = "7")]
    pub field7: Option<String>,
    /// String field 9.
    #[prost(string, optional, tag = "9")]
    pub field9: Option<String>,
    /// String field 18.
    #[prost(string, optional, tag = "18")]
    pub field18: Option<String>,
    /// String field 102.
    #[prost(string, optional, tag = "102")]
    pub field102: Option<String>,
    /// String field 103.
    #[prost(string, optional, tag = "103")]
    pub field103: Option<String>,
    /// String field 129.
    #[prost(string, optional, tag = "129")]
    pub field129: Option<String>,

    /// int32 field 2 (`100` in the reply).
    #[prost(int32, optional, tag = "2")]
    pub field2: Option<i32>,
    /// int32 field 3.
    #[prost(int32, optional, tag = "3")]
    pub field3: Option<i32>,
    /// int32 field 6.
    #[prost(int32, optional, tag = "6")]
    pub field6: Option<i32>,
    /// int32 field 16.
    #[prost(int32, optional, tag = "16")]
    pub field16: Option<i32>,
    /// int32 field 23.
    #[prost(int32, optional, tag = "23")]
    pub field23: Option<i32>,
    /// int32 field 25.
    #[prost(int32, optional, tag = "25")]
    pub field25: Option<i32>,
    /// int32 field 29.
    #[prost(int32, optional, tag = "29")]
    pub field29: Option<i32>,
    /// int32 field 60.
    #[prost(int32, optional, tag = "60")]
    pub field60: Option<i32>,
    /// int32 field 67.
    #[prost(int32, optional, tag = "67")]
    pub field67: Option<i32>,
    /// int32 field 68.
    #[prost(int32, optional, tag = "68")]
    pub field68: Option<i32>,
    /// int32 field 100.
    #[prost(int32, optional, tag = "100")]
    pub field100: Option<i32>,
    /// int32 field 101.
    #[prost(int32, optional, tag = "101")]
    pub field101: Option<i32>,
    /// int32 field 104.
    #[prost(int32, optional, tag = "104")]
    pub field104: Option<i32>,
    /// int32 field 128.
    #[prost(int32, optional, tag = "128")]
    pub field128: Option<i32>,
    /// int32 field 130.
    #[prost(int32, optional, tag = "130")]
    pub field130: Option<i32>,
    /// int32 field 131.
    #[prost(int32, optional, tag = "131")]
    pub field131: Option<i32>,
    /// int32 field 150.
    #[prost(int32, optional, tag = "150")]
    pub field150: Option<i32>,
    /// int32 field 271.
    #[prost(int32, optional, tag = "271")]
    pub field271: Option<i32>,
    /// int32 field 272.
    #[prost(int32, optional, tag = "272")]
    pub field272: Option<i32>,
    /// int32 field 280.
    #[prost(int32, optional, tag = "280")]
    pub field280: Option<i32>,

    /// int64 field 22.
    #[prost(int64, optional, tag = "22")]
    pub field22: Option<i64>,

    /// bool field 12.
    #[prost(bool, optional, tag = "12")]
    pub field12: Option<bool>,
    /// bool field 13.
    #[prost(bool, optional, tag = "13")]
    pub field13: Option<bool>,
    /// bool field 14.
    #[prost(bool, optional, tag = "14")]
    pub field14: Option<bool>,
    /// bool field 17.
    #[prost(bool, optional, tag = "17")]
    pub field17: Option<bool>,
    /// bool field 24.
    #[prost(bool, optional, tag = "24")]
    pub field24: Option<bool>,
    /// bool field 30.
    #[prost(bool, optional, tag = "30")]
    pub field30: Option<bool>,
    /// bool field 59.
    #[prost(bool, optional, tag = "59")]
    pub field59: Option<bool>,
    /// bool field 78.
    #[prost(bool, optional, tag = "78")]
    pub field78: Option<bool>,
    /// bool field 80.
    #[prost(bool, optional, tag = "80")]
    pub field80: Option<bool>,
    /// bool field 81.
    #[prost(bool, optional, tag = "81")]
    pub field81: Option<bool>,

    /// repeated fixed64 field 5; empty in the benchmark.
    #[prost(fixed64, repeated, packed = "false", tag = "5")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field5: Vec<u64>,
}

/// The request of the benchmark: every string field is [`BENCH_TEXT`], every integer
/// [`BENCH_INT`], every bool `true`, field 5 empty. Encodes to [`MESSAGE_LEN`] (581) bytes.
pub fn benchmark_message() -> BenchmarkMessage {
    let text = || Some(BENCH_TEXT.to_owned());
    let int = Some(BENCH_INT);
    let yes = Some(true);
    BenchmarkMessage {
        field1: text(),
        field4: text(),
        field7: text(),
        field9: text(),
        field18: text(),
        field102: text(),
        field103: text(),
        field129: text(),
        field2: int,
        field3: int,
        field6: int,
        field16: int,
        field23: int,
        field25: int,
        field29: int,
        field60: int,
        field67: int,
        field68: int,
        field100: int,
        field101: int,
        field104: int,
        field128: int,
        field130: int,
        field131: int,
        field150: int,
        field271: int,
        field272: int,
        field280: int,
        field22: Some(i64::from(BENCH_INT)),
        field12: yes,
        field13: yes,
        field14: yes,
        field17: yes,
        field24: yes,
        field30: yes,
        field59: yes,
        field78: yes,
        field80: yes,
        field81: yes,
        field5: Vec::new(),
    }
}

/// What the benchmark's echo handler answers: the request with `field1 = "OK"` and
/// `field2 = 100`.
pub fn reply_to(mut request: BenchmarkMessage) -> BenchmarkMessage {
    request.field1 = Some("OK".to_owned());
    request.field2 = Some(100);
    request
}

/// The reply to [`benchmark_message`]. Encodes to [`REPLY_LEN`] (527) bytes.
pub fn benchmark_reply() -> BenchmarkMessage {
    reply_to(benchmark_message())
}

/// The benchmark message, protobuf-encoded ([`MESSAGE_LEN`] bytes).
pub fn benchmark_body() -> Bytes {
    Bytes::from(benchmark_message().encode_to_vec())
}

/// The pull the frame benchmarks send: seq `seq`, uri [`BENCH_URI`], a small meta
/// (`author=jaunt-bench`), codec protobuf (`p`) and [`benchmark_body`] as its body, through
/// the transfer filters `xfer` (outer-most first; e.g. `b"g"` for gzip).
pub fn benchmark_pull(seq: i32, xfer: &[u8]) -> Packet {
    let mut pull = Packet::new(PacketType::Pull, seq, BENCH_URI);
    pull.meta.add("author", "jaunt-bench");
    pull.body_codec = codec_ids::PROTOBUF;
    pull.body = benchmark_body();
    pull.xfer = xfer.to_vec();
    pull
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use jaunt::codec::{Pb, Registry};
    use jaunt::socket::Proto;
    use jaunt::RawProto;

    use super::*;

    #[test]
    fn text_is_54_bytes_of_18_chars() {
        assert_eq!(BENCH_TEXT.chars().count(), 18);
        assert_eq!(BENCH_TEXT.len(), 54);
    }

    #[test]
    fn message_is_581_bytes() {
        let message = benchmark_message();
        assert_eq!(message.encoded_len(), MESSAGE_LEN);
        assert_eq!(message.encode_to_vec().len(), 581);
        assert_eq!(benchmark_body().len(), 581);
    }

    #[test]
    fn reply_is_527_bytes() {
        let reply = benchmark_reply();
        assert_eq!(reply.field1.as_deref(), Some("OK"));
        assert_eq!(reply.field2, Some(100));
        assert_eq!(reply.encode_to_vec().len(), REPLY_LEN);
    }

    #[test]
    fn default_valued_fields_are_still_encoded() {
        // Explicit presence: a field set to its default value still costs its tag and value.
        let mut message = benchmark_message();
        message.field3 = Some(0);
        message.field12 = Some(false);
        assert_eq!(message.encoded_len(), MESSAGE_LEN - 2);
        message.field3 = None;
        assert_eq!(message.encoded_len(), MESSAGE_LEN - 4);
    }

    #[test]
    fn protobuf_round_trip() {
        let body = benchmark_body();
        let back = BenchmarkMessage::decode(body).unwrap();
        assert_eq!(back, benchmark_message());
    }

    #[test]
    fn every_serde_codec_round_trips() {
        let registry = Registry::with_defaults();
        let message = benchmark_message();
        let body = registry
            .encode(codec_ids::PROTOBUF, &Pb(message.clone()))
            .unwrap();
        assert_eq!(body.len(), MESSAGE_LEN);
        let back: Pb<BenchmarkMessage> = registry.decode(codec_ids::PROTOBUF, &body).unwrap();
        assert_eq!(back.0, message);
        for id in [codec_ids::JSON, codec_ids::FORM, codec_ids::XML] {
            let body = registry.encode(id, &message).unwrap();
            let back: BenchmarkMessage = registry.decode(id, &body).unwrap();
            assert_eq!(back, message, "codec {}", char::from(id));
        }
    }

    #[test]
    fn pull_round_trips_through_raw_proto() {
        let proto = RawProto::default();
        for xfer in [&b""[..], b"g"] {
            let pull = benchmark_pull(1000, xfer);
            let mut wire = BytesMut::new();
            proto.encode(&pull, &mut wire).unwrap();
            assert_eq!(proto.decode(&mut wire).unwrap().unwrap(), pull);
            assert!(wire.is_empty());
        }
    }
}
