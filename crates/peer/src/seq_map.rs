//! [`SeqMap`]: maps keyed by a packet's seq, with a hash that costs one
//! multiplication (the std hasher's SipHash is built to resist chosen keys;
//! these are numbers this side handed out, or one session's own traffic).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` from seq to `V` with [`SeqHasher`].
pub(crate) type SeqMap<V> = HashMap<i32, V, BuildHasherDefault<SeqHasher>>;

/// Fibonacci hashing of an `i32`: spreads consecutive seqs over the whole
/// 64 bits (hashbrown takes its control byte from the top bits).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by i32 keys; kept correct for any other key.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i32(&mut self, n: i32) {
        self.0 = u64::from(n as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_seqs_spread_over_the_top_bits() {
        let tops: std::collections::HashSet<u64> = (0..128)
            .map(|seq: i32| {
                let mut h = SeqHasher::default();
                h.write_i32(seq);
                h.finish() >> 57
            })
            .collect();
        assert!(
            tops.len() > 64,
            "only {} distinct control bytes",
            tops.len()
        );
    }

    #[test]
    fn works_as_a_map() {
        let mut map = SeqMap::default();
        for seq in -1000..1000 {
            map.insert(seq, seq * 2);
        }
        assert_eq!(map.len(), 2000);
        assert!((-1000..1000).all(|seq| map[&seq] == seq * 2));
    }
}
