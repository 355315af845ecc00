//! Arbitrary bytes into `Meta::parse`: never a panic; what parses survives
//! `to_query` → `parse`. See `jaunt_fuzz::check_meta_parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jaunt_fuzz::check_meta_parse(data);
});
