//! Shards: disjoint subsets of an experiment's jobs, for job arrays (`--shard K/N`).

use sha2::{Digest, Sha256};

/// A `K/N` shard of an experiment's runs (1-based K).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1..=count.
    pub index: usize,
    /// The number of shards.
    pub count: usize,
}

/// A shard that does not parse: the text given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shard {0:?}: write K/N with 1 ≤ K ≤ N, for example 2/8")]
pub struct BadShard(pub String);

impl std::str::FromStr for Shard {
    type Err = BadShard;

    fn from_str(s: &str) -> Result<Self, BadShard> {
        let bad = || BadShard(s.to_owned());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// True if the run with this id belongs to this shard. Membership hashes the id, so it
    /// does not depend on the order or number of runs: shards of an extended spec still hold
    /// the same old runs.
    pub fn holds(&self, id: &str) -> bool {
        let digest = Sha256::digest(id.as_bytes());
        let h = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        (h % self.count as u64) as usize + 1 == self.index
    }
}
