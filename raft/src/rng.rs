//! The node's own random source for election timeouts.
//!
//! A node's whole state must be `Clone + Eq + Hash` and cheap to copy so a
//! model checker can store millions of them, which rules out holding a
//! 300-byte ChaCha state per node. SplitMix64 is eight bytes, portable and
//! fully determined by its seed; it only spreads election timeouts, so
//! statistical quality beyond that is not needed.

/// SplitMix64 generator (Steele, Lea and Flood, 2014).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `[lo, lo + span)` (saturating at `u32::MAX`); a zero
    /// `span` yields `lo`.
    pub(crate) fn in_range(&mut self, lo: u32, span: u32) -> u32 {
        let offset = self.next_u64() % u64::from(span.max(1));
        lo.saturating_add(offset as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn range_stays_in_bounds_and_varies() {
        let mut r = SplitMix64::new(1);
        let draws: Vec<u32> = (0..200).map(|_| r.in_range(10, 10)).collect();
        assert!(draws.iter().all(|&d| (10..20).contains(&d)));
        assert!(draws.iter().any(|&d| d != draws[0]));
    }
}
