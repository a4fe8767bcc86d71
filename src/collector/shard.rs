//! Which (account, region) pairs this replica walks: a stable hash splits
//! them over `--shard.count` replicas, each pair to exactly one.

/// Which (account, region) pairs this replica walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub count: u64,
    pub index: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { count: 1, index: 0 }
    }
}

impl Shard {
    /// FNV-1a 64 of `account/region_id`, mod count == index.
    pub fn owns(&self, account: &str, region: &str) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in account
            .bytes()
            .chain(std::iter::once(b'/'))
            .chain(region.bytes())
        {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.count <= 1 || h % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_pair_once() {
        let regions: Vec<String> = (0..200).map(|i| format!("region-{i}")).collect();
        for count in 1..6 {
            let mut owners = vec![0; regions.len()];
            for index in 0..count {
                let s = Shard { count, index };
                for (i, r) in regions.iter().enumerate() {
                    if s.owns("", r) {
                        owners[i] += 1;
                    }
                }
            }
            assert!(owners.iter().all(|n| *n == 1), "count {count}");
        }
    }
}
