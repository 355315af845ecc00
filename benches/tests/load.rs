//! A tiny in-process load run of the load generator: Jaunt's echo server and 200 pulls of
//! the 581-byte benchmark message must all succeed.

use jaunt_benches::echo;
use jaunt_benches::load::{self, ClientOpts};
use jaunt_benches::{benchmark_body, MESSAGE_LEN};

fn opts() -> ClientOpts {
    ClientOpts {
        addr: "127.0.0.1:0".to_owned(),
        n: 200,
        c: 8,
        warmup: Some(16),
        no_progress: true,
        ..ClientOpts::default()
    }
}

#[test]
fn tiny_load_of_the_benchmark_message_has_no_errors() {
    assert_eq!(benchmark_body().len(), MESSAGE_LEN);
    let (report, outcome) = load::runtime(2).block_on(echo::in_process(opts())).unwrap();
    assert_eq!(outcome.errors, 0, "{:?}", outcome.first_error);
    assert_eq!(outcome.warmup_errors, 0, "{:?}", outcome.first_error);
    assert_eq!(report.ok, 200);
    assert_eq!(report.body_bytes, 581);
    assert_eq!(report.conns, 8);
    assert!(report.calls_per_s > 0.0);
    assert!(report.p50_ms <= report.p99_ms && report.p99_ms <= report.p999_ms);
    assert!(report.p999_ms <= report.max_ms);
}

#[test]
fn tiny_load_of_raw_bodies_on_shared_connections_has_no_errors() {
    let opts = ClientOpts {
        size: Some(1000),
        codec: Some(b's'),
        conns: Some(2),
        ..opts()
    };
    let (report, outcome) = load::runtime(2).block_on(echo::in_process(opts)).unwrap();
    assert_eq!(outcome.errors, 0, "{:?}", outcome.first_error);
    assert_eq!((report.ok, report.conns, report.body_bytes), (200, 2, 1000));
}

#[test]
fn tiny_load_with_the_json_codec_has_no_errors() {
    let opts = ClientOpts {
        codec: Some(b'j'),
        ..opts()
    };
    let (report, outcome) = load::runtime(2).block_on(echo::in_process(opts)).unwrap();
    assert_eq!(outcome.errors, 0, "{:?}", outcome.first_error);
    assert_eq!(report.ok, 200);
}
