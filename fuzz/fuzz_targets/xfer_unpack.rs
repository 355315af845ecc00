//! The filter pipeline: arbitrary bytes unpacked through a chain of `g`
//! (gzip), `m` (md5), `e` (ChaCha20-Poly1305, fixed key) and unknown ids with
//! a limit taken from the input: never a panic, never more than the limit;
//! and pack → unpack of the same bytes gives them back (or `TooLarge` when an
//! intermediate result is over the limit). See `jaunt_fuzz::XferCase`.
#![no_main]

use std::sync::OnceLock;

use jaunt_socket::xfer::XferRegistry;
use libfuzzer_sys::fuzz_target;

static REGISTRY: OnceLock<XferRegistry> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let reg = REGISTRY.get_or_init(jaunt_fuzz::registry);
    let case = jaunt_fuzz::XferCase::from_bytes(data);
    jaunt_fuzz::check_xfer_unpack(reg, &case);
    jaunt_fuzz::check_xfer_roundtrip(reg, &case);
});
