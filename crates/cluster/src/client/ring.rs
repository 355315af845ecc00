//! Consistent hashing: a key maps to the same endpoint while the set of endpoints stays the
//! same, and when an endpoint leaves, only its keys move.

use xxhash_rust::xxh3::xxh3_64;

/// Points on the ring per unit of weight.
const POINTS_PER_WEIGHT: u32 = 64;

/// The hash of a key (XXH3, a specified algorithm: the same in every process, on every
/// platform and in every version, so clients agree on who owns a key).
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// A hash ring over endpoints `0..n`.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    /// (point, endpoint index), sorted by point.
    points: Vec<(u64, usize)>,
}

impl Ring {
    /// A ring over endpoints named `ids` with `weights`.
    pub(crate) fn new<'a>(endpoints: impl Iterator<Item = (&'a str, u32)>) -> Ring {
        let mut points = Vec::new();
        for (index, (id, weight)) in endpoints.enumerate() {
            for replica in 0..weight.saturating_mul(POINTS_PER_WEIGHT) {
                let point = format!("{id}#{replica}");
                points.push((hash_key(point.as_bytes()), index));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The endpoints in ring order from `hash` on (each once): the first is the key's owner,
    /// the next ones take over when it is unavailable.
    pub(crate) fn walk(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|&(point, _)| point < hash);
        let mut seen = Vec::new();
        self.points[start..]
            .iter()
            .chain(&self.points[..start])
            .map(|&(_, index)| index)
            .filter(move |index| {
                if seen.contains(index) {
                    false
                } else {
                    seen.push(*index);
                    true
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_put_and_only_the_leavers_keys_move() {
        let ids = ["a", "b", "c", "d"];
        let ring = Ring::new(ids.iter().map(|id| (*id, 1)));
        let owner = |ring: &Ring, ids: &[&str], key: u32| {
            ids[ring.walk(hash_key(&key.to_le_bytes())).next().unwrap()].to_owned()
        };
        let before: Vec<String> = (0..1000).map(|k| owner(&ring, &ids, k)).collect();
        // Spread: every endpoint owns a fair part.
        for id in ids {
            let share = before.iter().filter(|o| *o == id).count();
            assert!((150..=350).contains(&share), "{id}: {share}");
        }
        let fewer = ["a", "b", "d"];
        let ring = Ring::new(fewer.iter().map(|id| (*id, 1)));
        for (k, was) in before.iter().enumerate() {
            let now = owner(&ring, &fewer, k as u32);
            if was != "c" {
                assert_eq!(&now, was, "key {k} moved although its owner stayed");
            }
        }
    }

    #[test]
    fn the_walk_visits_every_endpoint_once_and_weight_zero_never() {
        let ring = Ring::new([("a", 1), ("b", 2), ("z", 0)].into_iter());
        let mut order: Vec<usize> = ring.walk(12345).collect();
        order.sort_unstable();
        assert_eq!(order, vec![0, 1]);
        assert_eq!(Ring::default().walk(1).count(), 0);
    }
}
