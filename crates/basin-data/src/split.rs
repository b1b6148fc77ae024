//! The split of a data set into a training set S, an attack set A (labels flipped) and a test
//! set T, disjoint, with the indices recorded.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// Mixed into the seed for the permutation of a separate test set, so that it differs from the
/// pool's permutation of the same seed.
const SEPARATE_TEST_STREAM: u64 = 0x7e57_7e57_7e57_7e57;

/// How a split chooses its examples, before the seed and the test offset are known: the
/// `split` field of a spec and the `--split` flag. [`SplitOrder::mode`] completes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum SplitOrder {
    /// S, A and T in stored order, T from the test offset (the paper's code).
    #[default]
    Ordered,
    /// Random disjoint draws from a seed, nested across attack sizes.
    Seeded,
}

impl SplitOrder {
    /// The split mode: a seeded split draws from `seed`; an ordered one takes T from
    /// `test_offset`.
    pub fn mode(self, seed: u64, test_offset: Option<usize>) -> SplitMode {
        match self {
            SplitOrder::Ordered => SplitMode::Ordered { test_offset },
            SplitOrder::Seeded => SplitMode::Seeded { seed },
        }
    }
}
/// How the examples of S, A and T are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitMode {
    /// Random disjoint draws from a seed, nested: one permutation of the pool gives S as its
    /// first `train` entries, A as the next `attack`, and T as its last `test` entries. For a
    /// given seed, S and T do not depend on the attack size and a smaller A is a prefix of a
    /// larger one. With a separate test source, T is drawn from it by its own permutation.
    Seeded {
        /// The seed of the permutations.
        seed: u64,
    },
    /// What the paper's code does: S = examples `[0, train)`, A = `[train, train + attack)`,
    /// T = `test` examples from `test_offset` (of the pool, or of a separate test source, where
    /// the offset defaults to 0).
    Ordered {
        /// First test example. Required without a separate test source; the embedded MNIST's
        /// default is [`crate::embedded::MNIST_TEST_OFFSET`] (1000).
        test_offset: Option<usize>,
    },
}

/// Sizes and mode of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Size of the training set S.
    pub train: usize,
    /// Size of the attack set A (its labels are flipped).
    pub attack: usize,
    /// Size of the test set T.
    pub test: usize,
    /// How the examples are chosen.
    #[serde(flatten)]
    pub mode: SplitMode,
}

/// Where the test examples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestSource {
    /// The same pool as S and A.
    Pool,
    /// A separate test data set (such as CIFAR-10's `test_batch.bin`).
    Separate,
}

/// The example indices a split used: into the pool for S and A, and into the pool or the
/// separate test set for T, as `test_source` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitIndices {
    /// Indices of S.
    pub train: Vec<usize>,
    /// Indices of A.
    pub attack: Vec<usize>,
    /// Indices of T.
    pub test: Vec<usize>,
    /// Which data set the T indices refer to.
    pub test_source: TestSource,
}

/// The three sets of a split, with the indices that made them.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The training set S, with its true labels.
    pub train: Dataset,
    /// The attack set A, with its labels flipped (0 ↔ 1).
    pub attack: Dataset,
    /// The test set T, with its true labels.
    pub test: Dataset,
    /// The indices used.
    pub indices: SplitIndices,
}

impl SplitSpec {
    /// Splits `pool` (and `separate_test`, if given, for T).
    ///
    /// The labels must be binary (0/1) wherever the attack set is non-empty; binarise with a
    /// [`crate::ClassMap`] first.
    pub fn apply(&self, pool: &Dataset, separate_test: Option<&Dataset>) -> Result<Split> {
        let indices = self.indices(pool, separate_test)?;
        let test_data = separate_test.unwrap_or(pool);
        let name = pool.name();
        let train = pool.subset(format!("{name}[S]"), &indices.train)?;
        let attack = flip_labels(pool.subset(format!("{name}[A]"), &indices.attack)?)?;
        let test = test_data.subset(format!("{}[T]", test_data.name()), &indices.test)?;
        Ok(Split {
            train,
            attack,
            test,
            indices,
        })
    }

    /// The indices of S, A and T, checked to be in range and disjoint.
    pub fn indices(&self, pool: &Dataset, separate_test: Option<&Dataset>) -> Result<SplitIndices> {
        let err = |problem: String| DataError::Split {
            name: pool.name().to_owned(),
            problem,
        };
        let n = pool.len();
        let sa = self.train.checked_add(self.attack).ok_or_else(|| {
            err(format!(
                "S ({}) + A ({}) is more examples than any data set holds",
                self.train, self.attack
            ))
        })?;
        if sa > n {
            return Err(err(format!(
                "S ({}) + A ({}) need {sa} examples but there are {n}",
                self.train, self.attack
            )));
        }
        let test_source = if separate_test.is_some() {
            TestSource::Separate
        } else {
            TestSource::Pool
        };
        let (train, attack, test) = match self.mode {
            SplitMode::Seeded { seed } => {
                let perm = permutation(n, seed);
                let test = match separate_test {
                    Some(t) => {
                        check_test_size(self.test, t.len(), &err)?;
                        permutation(t.len(), seed ^ SEPARATE_TEST_STREAM)[..self.test].to_vec()
                    }
                    None => {
                        if self.test > n - sa {
                            return Err(err(format!(
                                "S + A + T need {sa} + {} examples but there are {n}",
                                self.test
                            )));
                        }
                        perm[n - self.test..].to_vec()
                    }
                };
                (
                    perm[..self.train].to_vec(),
                    perm[self.train..sa].to_vec(),
                    test,
                )
            }
            SplitMode::Ordered { test_offset } => {
                let (offset, len) = match (separate_test, test_offset) {
                    (Some(t), off) => (off.unwrap_or(0), t.len()),
                    (None, Some(off)) => (off, n),
                    (None, None) => {
                        return Err(err(
                            "an ordered split without a separate test set needs test_offset".into(),
                        ));
                    }
                };
                let end = offset.checked_add(self.test).filter(|&e| e <= len);
                let end = end.ok_or_else(|| {
                    err(format!(
                        "T = [{offset}, {offset}+{}) runs past the {len} test examples",
                        self.test
                    ))
                })?;
                if separate_test.is_none() && offset < sa {
                    return Err(err(format!(
                        "T = [{offset}, {end}) overlaps S ∪ A = [0, {sa}); set test_offset to at least {sa}"
                    )));
                }
                (
                    (0..self.train).collect(),
                    (self.train..sa).collect(),
                    (offset..end).collect(),
                )
            }
        };
        Ok(SplitIndices {
            train,
            attack,
            test,
            test_source,
        })
    }
}

fn check_test_size(want: usize, have: usize, err: &dyn Fn(String) -> DataError) -> Result<()> {
    if want > have {
        return Err(err(format!(
            "T needs {want} examples but the test set has {have}"
        )));
    }
    Ok(())
}

/// A seeded permutation of `0..n` (ChaCha8, Fisher–Yates).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    perm
}

/// Flips 0/1 labels; any other label is an error.
fn flip_labels(data: Dataset) -> Result<Dataset> {
    if data.is_empty() {
        return Ok(data);
    }
    let labels = data.require_labels()?;
    if let Some(bad) = labels.iter().find(|&&l| l > 1) {
        return Err(DataError::Split {
            name: data.name().to_owned(),
            problem: format!(
                "label {bad} is not binary; the attack set flips 0/1 labels, so binarise first (a class map such as 0-4:0,5-9:1)"
            ),
        });
    }
    let flipped = labels.iter().map(|&l| 1 - l).collect();
    data.with_labels(flipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Dataset {
        Dataset::new(
            "pool",
            1,
            (0..n).map(|i| i as f32).collect(),
            Some((0..n).map(|i| (i % 2) as u8).collect()),
            None,
        )
        .unwrap()
    }

    fn seeded(train: usize, attack: usize, test: usize, seed: u64) -> SplitSpec {
        SplitSpec {
            train,
            attack,
            test,
            mode: SplitMode::Seeded { seed },
        }
    }

    fn disjoint(ix: &SplitIndices) -> bool {
        let mut all: Vec<usize> = ix
            .train
            .iter()
            .chain(&ix.attack)
            .chain(&ix.test)
            .copied()
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        all.len() == n
    }

    #[test]
    fn seeded_splits_are_nested_and_disjoint() {
        let p = pool(200);
        let small = seeded(50, 10, 40, 9).indices(&p, None).unwrap();
        let large = seeded(50, 60, 40, 9).indices(&p, None).unwrap();
        assert!(disjoint(&small) && disjoint(&large));
        assert_eq!(small.train, large.train);
        assert_eq!(small.test, large.test);
        assert_eq!(small.attack[..], large.attack[..10]);
        assert_ne!(
            small.train,
            seeded(50, 10, 40, 10).indices(&p, None).unwrap().train
        );
    }

    #[test]
    fn sizes_whose_sum_overflows_are_refused_not_wrapped() {
        let p = pool(20);
        for spec in [
            seeded(usize::MAX, 5, 1, 0),
            seeded(5, 5, usize::MAX, 0),
            SplitSpec {
                train: usize::MAX,
                attack: 5,
                test: 1,
                mode: SplitMode::Ordered {
                    test_offset: Some(10),
                },
            },
        ] {
            let err = spec.apply(&p, None).unwrap_err();
            assert!(matches!(err, DataError::Split { .. }), "{err}");
        }
    }

    #[test]
    fn attack_labels_are_flipped_and_features_kept() {
        let s = seeded(5, 7, 3, 1).apply(&pool(20), None).unwrap();
        for (k, &i) in s.indices.attack.iter().enumerate() {
            assert_eq!(s.attack.labels().unwrap()[k], 1 - (i % 2) as u8);
            assert_eq!(s.attack.row(k)[0], i as f32);
        }
        for (k, &i) in s.indices.train.iter().enumerate() {
            assert_eq!(s.train.labels().unwrap()[k], (i % 2) as u8);
        }
    }

    #[test]
    fn ordered_split_follows_the_papers_code() {
        let spec = SplitSpec {
            train: 500,
            attack: 300,
            test: 1000,
            mode: SplitMode::Ordered {
                test_offset: Some(1000),
            },
        };
        let ix = spec.indices(&pool(2000), None).unwrap();
        assert_eq!(ix.train, (0..500).collect::<Vec<_>>());
        assert_eq!(ix.attack, (500..800).collect::<Vec<_>>());
        assert_eq!(ix.test, (1000..2000).collect::<Vec<_>>());
        let overlap = SplitSpec {
            attack: 501,
            ..spec
        };
        let msg = overlap.indices(&pool(2000), None).unwrap_err().to_string();
        assert!(msg.contains("overlaps"), "{msg}");
    }

    #[test]
    fn separate_test_sources() {
        let (p, t) = (pool(30), pool(10).renamed("test"));
        let spec = SplitSpec {
            train: 10,
            attack: 5,
            test: 4,
            mode: SplitMode::Ordered { test_offset: None },
        };
        let s = spec.apply(&p, Some(&t)).unwrap();
        assert_eq!(s.indices.test, vec![0, 1, 2, 3]);
        assert_eq!(s.indices.test_source, TestSource::Separate);
        let r = seeded(10, 5, 10, 3).apply(&p, Some(&t)).unwrap();
        let mut sorted = r.indices.test.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert!(seeded(10, 5, 11, 3).apply(&p, Some(&t)).is_err());
    }

    #[test]
    fn impossible_sizes_and_non_binary_labels_are_errors() {
        assert!(seeded(150, 30, 30, 0).indices(&pool(200), None).is_err());
        assert!(seeded(201, 0, 0, 0).indices(&pool(200), None).is_err());
        let no_offset = SplitSpec {
            train: 1,
            attack: 0,
            test: 1,
            mode: SplitMode::Ordered { test_offset: None },
        };
        assert!(no_offset.indices(&pool(5), None).is_err());
        let digits = Dataset::new("d", 1, vec![0.0; 4], Some(vec![0, 7, 2, 3]), None).unwrap();
        let msg = seeded(1, 2, 1, 0)
            .apply(&digits, None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("binarise"), "{msg}");
    }
}
