//! Body codec benchmarks: encoding and decoding the benchmark message with every codec of
//! the default [`Registry`] that can carry it, the way the framework calls them (through the
//! registry, by codec id, behind `dyn Codec`).
//!
//! - `protobuf`: `Pb(message)` / `Pb<BenchmarkMessage>` (581 bytes).
//! - `prost-direct`: prost's own `encode` / `decode`, without the registry, as a baseline
//!   for the cost of the codec layer.
//! - `json`, `form`, `xml`: the same struct through serde.
//! - `plain`: the 581 protobuf bytes as a [`Bytes`] value (decode shares the body).
//!
//! `encode` appends to one `Vec<u8>` that is reused and cleared before every iteration
//! (`Registry::encode_into`); `decode` builds a new value from a prepared body and drops it
//! inside the timed routine. Throughput is the length of the encoded body, which differs
//! per codec: compare codecs by time, not by MiB/s.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_main, Criterion, Throughput};
use jaunt::codec::{ids, Pb, Registry};
use jaunt_benches::{benchmark_body, benchmark_message, BenchmarkMessage, MESSAGE_LEN};
use prost::Message;

fn codecs(c: &mut Criterion) {
    let registry = Registry::with_defaults();
    let message = benchmark_message();
    let pb = Pb(message.clone());
    let raw = benchmark_body();
    assert_eq!(raw.len(), MESSAGE_LEN);

    // protobuf through the registry
    {
        let body = registry.encode(ids::PROTOBUF, &pb).unwrap();
        assert_eq!(body, raw);
        let mut group = c.benchmark_group("codec/protobuf");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("encode", |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                registry
                    .encode_into(ids::PROTOBUF, black_box(&pb), &mut out)
                    .unwrap();
                black_box(out.len());
            });
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                let back: Pb<BenchmarkMessage> =
                    registry.decode(ids::PROTOBUF, black_box(&body)).unwrap();
                black_box(back);
            });
        });
        group.finish();
    }

    // prost alone
    {
        let mut group = c.benchmark_group("codec/prost-direct");
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function("encode", |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                black_box(&message).encode(&mut out).unwrap();
                black_box(out.len());
            });
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                let back = BenchmarkMessage::decode(black_box(raw.clone())).unwrap();
                black_box(back);
            });
        });
        group.finish();
    }

    // serde codecs
    for (name, id) in [("json", ids::JSON), ("form", ids::FORM), ("xml", ids::XML)] {
        let body = registry.encode(id, &message).unwrap();
        let back: BenchmarkMessage = registry.decode(id, &body).unwrap();
        assert_eq!(back, message, "{name} round trip");
        println!("{name}: {} bytes", body.len());
        let mut group = c.benchmark_group(format!("codec/{name}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("encode", |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                registry
                    .encode_into(id, black_box(&message), &mut out)
                    .unwrap();
                black_box(out.len());
            });
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                let back: BenchmarkMessage = registry.decode(id, black_box(&body)).unwrap();
                black_box(back);
            });
        });
        group.finish();
    }

    // plain: the protobuf bytes as an opaque `Bytes`
    {
        let body = registry.encode(ids::PLAIN, &raw).unwrap();
        assert_eq!(body, raw);
        let mut group = c.benchmark_group("codec/plain");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function("encode", |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                registry
                    .encode_into(ids::PLAIN, black_box(&raw), &mut out)
                    .unwrap();
                black_box(out.len());
            });
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                let back: Bytes = registry.decode(ids::PLAIN, black_box(&body)).unwrap();
                black_box(back);
            });
        });
        group.finish();
    }
}

/// The benchmark group, in a private module: `criterion_group!` defines an undocumented
/// `pub fn`.
mod group {
    criterion::criterion_group!(benches, super::codecs);
}

criterion_main!(group::benches);
