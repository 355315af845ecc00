//! Arbitrary bytes into `RawProto::decode`, frame after frame (64 KiB limit):
//! never a panic, bounded buffers, chunking-independent results, and every
//! decoded packet re-encodes to an equal one. See `jaunt_fuzz::check_decode_stream`.
#![no_main]

use std::sync::OnceLock;

use jaunt_socket::RawProto;
use libfuzzer_sys::fuzz_target;

static PROTO: OnceLock<RawProto> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let proto = PROTO.get_or_init(jaunt_fuzz::raw);
    jaunt_fuzz::check_decode_stream(proto, jaunt_fuzz::MAX_FRAME_LEN, data);
});
