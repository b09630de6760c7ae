//! A tiny seeded generator (SplitMix64) for reproducible "random" test points.
//!
//! Its output is fixed forever for a given seed, unlike library generators whose algorithms may
//! change between versions. Tests print the seed they use; `SLUICE_TEST_SEED` overrides it.

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The seed from `SLUICE_TEST_SEED` when set to a number, else `default`.
    pub fn seed_from_env(default: u64) -> u64 {
        std::env::var_os("SLUICE_TEST_SEED")
            .and_then(|s| s.to_str()?.parse().ok())
            .unwrap_or(default)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `low..high` (`high > low`), with negligible bias for small ranges.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(high > low, "empty range {low}..{high}");
        low + self.next_u64() % (high - low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_stable() {
        // Reference values of SplitMix64 for seed 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut rng = SplitMix64::new(7);
        assert!((0..100).all(|_| (3..9).contains(&rng.range(3, 9))));
    }
}
