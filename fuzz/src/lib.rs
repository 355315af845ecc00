//! The properties the fuzz targets check, shared with the proptest suite.
//!
//! Every fuzz target in `fuzz_targets/` is one call into this module, and
//! `crates/socket/tests/fuzz_props.rs` includes this very file (as a module,
//! through `#[path]`) and drives the same functions with proptest, so the
//! properties that libFuzzer explores for minutes are also checked on every
//! CI run. The module therefore uses nothing but `bytes` and `jaunt_socket`
//! (whose `xfer` re-export is the `jaunt-xfer` crate), and panics (through
//! `assert!`) when a property fails: that is what libFuzzer reports as a
//! crash and proptest as a failing case.
//!
//! The properties:
//!
//! - **decoders** ([`check_decode_stream`]): any bytes, decoded frame after
//!   frame, never panic; every result consumes bytes, never more than one
//!   frame of at most the size limit; the buffer never grows past the limit;
//!   the same bytes fed in small chunks give the same results; and every
//!   packet that decodes re-encodes (unless it no longer fits the limits) to
//!   a frame that decodes to the same packet.
//! - **status and meta parsers** ([`check_status_parse`],
//!   [`check_meta_parse`]): any bytes parse or fail without panicking; what
//!   parses survives `to_query` → `parse`, and `to_query` is then a fixed point.
//! - **filter pipeline** ([`check_xfer_unpack`], [`check_xfer_roundtrip`]):
//!   unpacking any bytes through any chain of `g`, `m`, the AEAD filter and
//!   unknown ids never panics and never returns more than the limit; packing
//!   then unpacking gives the input back unless an intermediate result is over
//!   the limit.
// Compiled both as the fuzz crate's library and as a module of a test crate.
#![allow(dead_code)]
#![forbid(unsafe_code)]

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use jaunt_socket::xfer::{AeadFilter, AeadKey, XferError, XferRegistry};
use jaunt_socket::{
    JsonProto, Meta, Packet, PbProto, Proto, ProtoConfig, ProtoError, RawProto, Status,
};

/// The frame size limit of the decoder targets: small, so that "over the
/// limit" is reachable by a fuzzer and the re-encode check meets it.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Filter id of the AEAD filter in [`registry`].
pub const AEAD_ID: u8 = b'e';

/// The fixed AEAD key (a fuzzer cannot forge a tag, but the key must be the
/// same across runs so that a corpus entry keeps its meaning).
pub const AEAD_KEY: [u8; 32] = [0x5a; 32];

/// The default filters (`g` gzip, `m` md5) plus ChaCha20-Poly1305 as `e`.
pub fn registry() -> XferRegistry {
    let mut reg = XferRegistry::with_defaults();
    reg.register(AeadFilter::new(AEAD_ID, AeadKey::from_bytes(AEAD_KEY)))
        .expect("id e is free");
    reg
}

/// [`registry`] with [`MAX_FRAME_LEN`].
pub fn proto_config() -> ProtoConfig {
    ProtoConfig::default()
        .with_xfer(Arc::new(registry()))
        .with_max_frame_len(MAX_FRAME_LEN)
}

/// The raw framing with [`proto_config`].
pub fn raw() -> RawProto {
    RawProto::new(proto_config())
}

/// The JSON framing with [`proto_config`].
pub fn json() -> JsonProto {
    JsonProto::new(proto_config())
}

/// The protobuf framing with [`proto_config`].
pub fn pb() -> PbProto {
    PbProto::new(proto_config())
}

// ---------------------------------------------------------------------------
// Decoders
// ---------------------------------------------------------------------------

/// One result of `decode`, in a form that can be compared across runs.
#[derive(Debug, PartialEq)]
enum Step {
    Packet(Box<Packet>),
    /// A malformed frame consumed whole (the stream goes on).
    Dropped(String),
    /// The stream is lost (length prefix errors).
    Fatal(String),
}

/// Decodes `data` as a byte stream with `proto` (whose limit is
/// `max_frame_len`), checks every property listed in the module docs, and
/// returns how many packets decoded.
pub fn check_decode_stream(proto: &dyn Proto, max_frame_len: usize, data: &[u8]) -> usize {
    let whole = decode_all(proto, max_frame_len, data, data.len().max(1));
    // The same bytes in small reads: the chunk size comes from the input so
    // that a fuzzer can vary it.
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 13);
    let chunked = decode_all(proto, max_frame_len, data, chunk);
    assert_eq!(
        whole,
        chunked,
        "{}: decoding in reads of {chunk} bytes differs from decoding at once",
        proto.name()
    );
    let mut packets = 0;
    for step in &whole {
        if let Step::Packet(p) = step {
            check_reencode(proto, p);
            packets += 1;
        }
    }
    packets
}

/// Feeds `data` to `proto` in reads of `chunk` bytes, collecting every
/// result until the input is used up or the stream is lost.
fn decode_all(proto: &dyn Proto, max_frame_len: usize, data: &[u8], chunk: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    loop {
        let before = buf.len();
        let result = proto.decode(&mut buf);
        let consumed = before - buf.len();
        match result {
            Ok(None) => {
                assert_eq!(consumed, 0, "{}: Ok(None) consumed bytes", proto.name());
                // Room reserved for a partial frame is bounded by the limit
                // (allowing for the allocator's doubling), whatever the length
                // prefix announced.
                let bound = 2 * max_frame_len.max(chunk) + 64;
                assert!(
                    buf.capacity() <= bound,
                    "{}: buffer capacity {} for a partial frame, limit {max_frame_len}",
                    proto.name(),
                    buf.capacity()
                );
                if fed == data.len() {
                    break;
                }
                let end = (fed + chunk).min(data.len());
                buf.extend_from_slice(&data[fed..end]);
                fed = end;
            }
            Ok(Some(packet)) => {
                check_consumed(proto, consumed, max_frame_len);
                steps.push(Step::Packet(Box::new(packet)));
            }
            Err(e) if e.is_stream_intact() => {
                check_consumed(proto, consumed, max_frame_len);
                steps.push(Step::Dropped(e.to_string()));
            }
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        ProtoError::LengthTooSmall { .. } | ProtoError::FrameTooLarge { .. }
                    ),
                    "{}: decode from memory failed with {e:?}",
                    proto.name()
                );
                steps.push(Step::Fatal(e.to_string()));
                break;
            }
        }
    }
    steps
}

fn check_consumed(proto: &dyn Proto, consumed: usize, max_frame_len: usize) {
    assert!(
        consumed > 0,
        "{}: a result that consumed nothing",
        proto.name()
    );
    assert!(
        consumed <= max_frame_len,
        "{}: consumed {consumed} bytes, over the {max_frame_len}-byte limit",
        proto.name()
    );
}

/// A decoded packet re-encodes to a frame that decodes to the same packet,
/// unless re-encoding makes a field or the frame too long (percent-encoding
/// and replacement characters can triple the status and meta, and filters
/// may produce more bytes than the sender's did).
pub fn check_reencode(proto: &dyn Proto, packet: &Packet) {
    let mut wire = BytesMut::new();
    match proto.encode(packet, &mut wire) {
        Ok(()) => {}
        Err(ProtoError::FieldTooLong { .. } | ProtoError::FrameTooLarge { .. }) => {
            assert!(wire.is_empty(), "a failed encode left bytes behind");
            return;
        }
        Err(e) => panic!(
            "{}: a decoded packet does not re-encode: {e:?}\n{packet:?}",
            proto.name()
        ),
    }
    match proto.decode(&mut wire) {
        Ok(Some(back)) => assert_eq!(
            &back,
            packet,
            "{}: decode(encode(decoded packet)) differs",
            proto.name()
        ),
        other => panic!(
            "{}: a re-encoded packet does not decode: {other:?}\n{packet:?}",
            proto.name()
        ),
    }
    assert!(
        wire.is_empty(),
        "{}: bytes left after the frame",
        proto.name()
    );
}

// ---------------------------------------------------------------------------
// Status and meta parsers
// ---------------------------------------------------------------------------

/// `Status::parse` of any bytes never panics; an `Ok` survives `to_query` →
/// `parse`, and `to_query` is a fixed point from then on.
pub fn check_status_parse(data: &[u8]) -> bool {
    let Ok(status) = Status::parse(data) else {
        return false;
    };
    let query = status.to_query();
    assert!(query.is_ascii(), "status query is not ASCII: {query:?}");
    let again = Status::parse(query.as_bytes())
        .unwrap_or_else(|e| panic!("to_query of {status:?} does not parse: {query:?}: {e}"));
    assert_eq!(again, status, "status from {query:?}");
    assert_eq!(again.to_query(), query);
    true
}

/// `Meta::parse` of any bytes never panics; an `Ok` survives `to_query` →
/// `parse`, and `to_query` is a fixed point from then on.
pub fn check_meta_parse(data: &[u8]) -> bool {
    let Ok(meta) = Meta::parse(data) else {
        return false;
    };
    let query = meta.to_query();
    assert!(query.is_ascii(), "meta query is not ASCII: {query:?}");
    let again = Meta::parse(query.as_bytes())
        .unwrap_or_else(|e| panic!("to_query of {meta:?} does not parse: {query:?}: {e}"));
    assert_eq!(again, meta, "meta from {query:?}");
    assert_eq!(again.to_query(), query);
    // No entry has an empty key (those are skipped), and parse never
    // produces more bytes than it was given.
    assert!(meta.iter().all(|(k, _)| !k.is_empty()));
    let parsed: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(parsed <= data.len());
    true
}

// ---------------------------------------------------------------------------
// Filter pipeline
// ---------------------------------------------------------------------------

/// A fuzz input for the filter pipeline: a size limit, a chain of filter ids
/// and a payload, all taken from raw bytes.
#[derive(Debug, Clone)]
pub struct XferCase {
    /// The unpack limit.
    pub max_len: usize,
    /// Filter ids, outer-most first.
    pub ids: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl XferCase {
    /// Splits `data`: two bytes of limit (0..=65535, scaled so that small
    /// limits are common), one byte of chain length (0..=7), one byte per id
    /// (mapped onto `g`, `m`, `e` and, rarely, the byte itself, which is
    /// usually an unknown id), then the payload.
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut it = data.iter().copied();
        let hi = usize::from(it.next().unwrap_or(0));
        let lo = usize::from(it.next().unwrap_or(0));
        let max_len = if hi & 0x80 == 0 {
            lo // 0..=255: limits that the payload easily exceeds
        } else {
            ((hi & 0x7f) << 8) | lo
        };
        let n = usize::from(it.next().unwrap_or(0) % 8);
        let ids = it.by_ref().take(n).map(filter_id).collect();
        Self {
            max_len,
            ids,
            payload: it.collect(),
        }
    }
}

/// Maps a byte onto a filter id: mostly the registered ones.
pub fn filter_id(b: u8) -> u8 {
    match b % 8 {
        0 | 1 => b'g',
        2 | 3 => b'm',
        4 | 5 => AEAD_ID,
        _ => b,
    }
}

/// Unpacking any bytes through any chain never panics and never returns
/// more than `max_len` bytes (an empty chain returns the input as it is).
/// Returns whether it unpacked.
pub fn check_xfer_unpack(reg: &XferRegistry, case: &XferCase) -> bool {
    let input = Bytes::copy_from_slice(&case.payload);
    match reg.unpack(&case.ids, input.clone(), case.max_len) {
        Ok(out) => {
            if case.ids.is_empty() {
                assert_eq!(out, input, "an empty chain changed the payload");
            } else {
                assert!(
                    out.len() <= case.max_len,
                    "unpack through {:?} gave {} bytes, limit {}",
                    case.ids,
                    out.len(),
                    case.max_len
                );
            }
            true
        }
        Err(XferError::UnknownId { id }) => {
            assert!(reg.get(id).is_err() && case.ids.contains(&id));
            false
        }
        Err(
            XferError::CorruptGzip(_)
            | XferError::ChecksumMismatch
            | XferError::DecryptFailed
            | XferError::TooLarge { .. },
        ) => false,
        Err(e) => panic!("unexpected unpack error {e:?}"),
    }
}

/// Packing then unpacking gives the payload back, unless a result on the way
/// back is over `max_len` (then the error is `TooLarge`); a single flipped
/// bit in the packed bytes never panics the unpack.
pub fn check_xfer_roundtrip(reg: &XferRegistry, case: &XferCase) {
    let ids: Vec<u8> = case
        .ids
        .iter()
        .copied()
        .filter(|&id| reg.get(id).is_ok())
        .collect();
    // Pack by hand to know every intermediate size: the input of each
    // packing filter is the output of the matching unpacking one.
    let mut packed = Bytes::copy_from_slice(&case.payload);
    let mut largest = 0;
    for &id in ids.iter().rev() {
        largest = largest.max(packed.len());
        packed = reg
            .get(id)
            .unwrap()
            .on_pack(packed)
            .expect("packing never fails");
    }
    let via_pack = reg.pack(&ids, Bytes::copy_from_slice(&case.payload));
    if ids.iter().all(|&id| id != AEAD_ID) {
        // Deterministic without the AEAD filter's random nonce.
        assert_eq!(
            via_pack.unwrap(),
            packed,
            "pack differs from the filters run by hand"
        );
    }
    match reg.unpack(&ids, packed.clone(), case.max_len) {
        Ok(out) => {
            assert!(largest <= case.max_len || ids.is_empty());
            assert_eq!(
                &out[..],
                &case.payload[..],
                "unpack(pack(x)) through {ids:?}"
            );
        }
        Err(XferError::TooLarge { .. }) => assert!(
            largest > case.max_len,
            "TooLarge through {ids:?} though no result exceeds {} (largest {largest})",
            case.max_len
        ),
        Err(e) => panic!("unpack(pack(x)) through {ids:?} failed: {e:?}"),
    }
    if !packed.is_empty() && !ids.is_empty() {
        let mut corrupt = packed.to_vec();
        let at = case.payload.len() % corrupt.len();
        corrupt[at] ^= 1 << (case.max_len % 8);
        let _ = check_xfer_unpack(
            reg,
            &XferCase {
                max_len: case.max_len,
                ids,
                payload: corrupt,
            },
        );
    }
}
