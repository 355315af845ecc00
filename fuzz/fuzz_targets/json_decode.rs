//! Arbitrary bytes into `JsonProto::decode`, frame after frame (64 KiB limit):
//! never a panic, bounded buffers, chunking-independent results, and every
//! decoded packet re-encodes to an equal one. See `jaunt_fuzz::check_decode_stream`.
#![no_main]

use std::sync::OnceLock;

use jaunt_socket::JsonProto;
use libfuzzer_sys::fuzz_target;

static PROTO: OnceLock<JsonProto> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let proto = PROTO.get_or_init(jaunt_fuzz::json);
    jaunt_fuzz::check_decode_stream(proto, jaunt_fuzz::MAX_FRAME_LEN, data);
});
