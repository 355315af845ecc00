//! Framing benchmarks: packing and unpacking the benchmark pull (581-byte protobuf body,
//! codec `p`, uri `/bench/echo`, meta `author=jaunt-bench`) with each [`Proto`].
//!
//! For every framing (`raw`, `raw+gzip`, `json`, `pb`) three functions are measured:
//!
//! - `pack`: `Proto::encode` into one `BytesMut` that is reused and cleared before every
//!   iteration (so, after the first iteration, no allocation for the output buffer).
//! - `unpack`: `Proto::decode` of one complete frame. The frame is copied into a fresh
//!   `BytesMut` in criterion's *untimed* setup (`iter_batched`, batches of 32 frames so that
//!   they are still in cache, as a frame just read from a socket is); the timed routine is
//!   the decode, then dropping the decoded `Packet` and the emptied buffer (so the frees of
//!   the decode's allocations are counted, as they would be in a server).
//! - `pack_unpack`: encode into a reused buffer, decode from that same buffer, drop the
//!   packet: the steady state of a connection that writes and reads one frame at a time.
//!
//! Throughput is the length of the *unfiltered* frame (the same figure for `raw` and
//! `raw+gzip`, so their MiB/s compare like their times do).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_main, BatchSize, Criterion, Throughput};
use jaunt::socket::{JsonProto, PbProto, Proto, RawProto};
use jaunt::Packet;
use jaunt_benches::{benchmark_pull, MESSAGE_LEN};

/// Encodes `packet` once, checking that it decodes back to itself; returns the frame.
fn frame_of(proto: &dyn Proto, packet: &Packet) -> BytesMut {
    let mut wire = BytesMut::new();
    proto.encode(packet, &mut wire).expect("encode");
    let mut copy = wire.clone();
    let back = proto
        .decode(&mut copy)
        .expect("decode")
        .expect("a whole frame");
    assert_eq!(&back, packet, "{} round trip", proto.name());
    assert!(copy.is_empty());
    wire
}

fn bench_proto(c: &mut Criterion, label: &str, proto: &dyn Proto, xfer: &[u8]) {
    let packet = benchmark_pull(1000, xfer);
    let wire = frame_of(proto, &packet);
    // Throughput in unfiltered frame bytes.
    let plain_len = frame_of(proto, &benchmark_pull(1000, b"")).len();
    println!(
        "{label}: frame of {} bytes on the wire, {plain_len} unfiltered, body {MESSAGE_LEN}",
        wire.len()
    );

    let mut group = c.benchmark_group(format!("frame/{label}"));
    group.throughput(Throughput::Bytes(plain_len as u64));

    group.bench_function("pack", |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.clear();
            proto.encode(black_box(&packet), &mut buf).unwrap();
            black_box(buf.len());
        });
    });

    group.bench_function("unpack", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut src| {
                let packet = proto.decode(black_box(&mut src)).unwrap().unwrap();
                black_box(&packet);
                drop(packet);
                drop(src);
            },
            // Small batches keep the prepared frames in cache, as a frame that was just read
            // from a socket is; `SmallInput` would prepare ~10% of a sample's iterations at
            // once (tens of thousands of frames, megabytes) and time cache misses.
            BatchSize::NumIterations(32),
        );
    });

    group.bench_function("pack_unpack", |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            proto.encode(black_box(&packet), &mut buf).unwrap();
            let back = proto.decode(&mut buf).unwrap().unwrap();
            black_box(&back);
        });
        assert!(buf.is_empty());
    });

    group.finish();
}

fn frames(c: &mut Criterion) {
    let raw = RawProto::default();
    bench_proto(c, "raw", &raw, b"");
    bench_proto(c, "raw+gzip", &raw, b"g");
    bench_proto(c, "json", &JsonProto::default(), b"");
    bench_proto(c, "pb", &PbProto::default(), b"");
}

/// The benchmark group, in a private module: `criterion_group!` defines an undocumented
/// `pub fn`.
mod group {
    criterion::criterion_group!(benches, super::frames);
}

criterion_main!(group::benches);
