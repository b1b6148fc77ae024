//! The data-source syntax every `--data` flag accepts, and loading a source.
//!
//! | syntax | meaning |
//! |---|---|
//! | `mnist` | the embedded 10,000-digit MNIST subset |
//! | `idx:<images>,<labels>` | an IDX image file and its label file (gzipped or not) |
//! | `cifar10:<dir>` | CIFAR-10 binary: train = `data_batch_1..5.bin`, test = `test_batch.bin` |
//! | `npy:<x.npy>[,<y.npy>]` | features `(n, …)` and optional labels `(n,)` |
//! | `boolean:<n>[:<target>]` | all 2^n inputs of {0,1}^n, labelled by a target (see [`BoolTarget::parse`]) |

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::boolean::{self, BoolTarget};
use crate::cifar::{self, Part};
use crate::classmap::ClassMap;
use crate::dataset::Dataset;
use crate::embedded;
use crate::error::{DataError, Result};
use crate::{idx, npy};

/// A parsed `--data` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The embedded MNIST subset.
    Mnist,
    /// An IDX image file and label file.
    Idx {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
    },
    /// A CIFAR-10 binary directory.
    Cifar10 {
        /// The directory holding the six batch files.
        dir: PathBuf,
    },
    /// `.npy` features and optional labels.
    Npy {
        /// The features file.
        x: PathBuf,
        /// The labels file.
        y: Option<PathBuf>,
    },
    /// The Boolean cube.
    Boolean {
        /// The number of bits.
        n: u32,
        /// The target function, if any.
        target: Option<BoolTarget>,
    },
}

/// What a source holds: a pool of examples and, for sources that ship one, a separate test set.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The main examples (CIFAR-10's training batches; everything, for other sources).
    pub pool: Dataset,
    /// The source's own test set (CIFAR-10's `test_batch.bin`), if it has one.
    pub test: Option<Dataset>,
}

/// The help text for the syntax, for command-line flags and error messages.
pub const SYNTAX: &str = "mnist | idx:<images>,<labels> | cifar10:<dir> | npy:<x.npy>[,<y.npy>] | boolean:<n>[:<target>]";

impl DataSource {
    /// Loads the source.
    pub fn load(&self) -> Result<Corpus> {
        let pool = match self {
            Self::Mnist => embedded::mnist()?,
            Self::Idx { images, labels } => idx::load(images, labels)?,
            Self::Cifar10 { dir } => {
                return Ok(Corpus {
                    pool: cifar::load(dir, Part::Train, None)?,
                    test: Some(cifar::load(dir, Part::Test, None)?),
                });
            }
            Self::Npy { x, y } => npy::load_dataset(x, y.as_deref())?,
            Self::Boolean { n, target } => boolean::cube(*n, target.as_ref())?,
        };
        Ok(Corpus { pool, test: None })
    }

    /// The test offset of the paper's ordered split for this source, where it has one.
    pub fn default_test_offset(&self) -> Option<usize> {
        match self {
            Self::Mnist => Some(embedded::MNIST_TEST_OFFSET),
            _ => None,
        }
    }

    /// The paper's binarisation for this source, where it has one.
    pub fn default_class_map(&self) -> Option<ClassMap> {
        match self {
            Self::Mnist | Self::Idx { .. } => Some(ClassMap::mnist_low_high()),
            Self::Cifar10 { .. } => Some(ClassMap::cifar_cars_vs_cats()),
            _ => None,
        }
    }
}

impl FromStr for DataSource {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |problem: &str| DataError::BadSpec {
            spec: s.to_owned(),
            problem: format!("{problem}; expected {SYNTAX}"),
        };
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        let pair = |rest: &str| -> Result<(PathBuf, Option<PathBuf>)> {
            let (a, b) = match rest.split_once(',') {
                Some((a, b)) => (a, Some(b)),
                None => (rest, None),
            };
            if a.is_empty() || b == Some("") {
                return Err(bad("a file path is empty"));
            }
            Ok((PathBuf::from(a), b.map(PathBuf::from)))
        };
        match kind {
            "mnist" if rest.is_empty() => Ok(Self::Mnist),
            "idx" => match pair(rest)? {
                (images, Some(labels)) => Ok(Self::Idx { images, labels }),
                _ => Err(bad("idx needs two files: idx:<images>,<labels>")),
            },
            "cifar10" if !rest.is_empty() => Ok(Self::Cifar10 { dir: rest.into() }),
            "npy" => {
                let (x, y) = pair(rest)?;
                Ok(Self::Npy { x, y })
            }
            "boolean" => {
                let (n, target) = match rest.split_once(':') {
                    Some((n, t)) => (n, Some(t)),
                    None => (rest, None),
                };
                let n: u32 = n
                    .parse()
                    .map_err(|_| bad("boolean needs a number of bits"))?;
                let target = target.map(|t| BoolTarget::parse(t, n)).transpose()?;
                if target.is_none() {
                    boolean::cube_inputs(n).map(|_| ())?;
                }
                Ok(Self::Boolean { n, target })
            }
            _ => Err(bad("unknown source")),
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mnist => f.write_str("mnist"),
            Self::Idx { images, labels } => {
                write!(f, "idx:{},{}", images.display(), labels.display())
            }
            Self::Cifar10 { dir } => write!(f, "cifar10:{}", dir.display()),
            Self::Npy { x, y: None } => write!(f, "npy:{}", x.display()),
            Self::Npy { x, y: Some(y) } => write!(f, "npy:{},{}", x.display(), y.display()),
            Self::Boolean { n, target: None } => write!(f, "boolean:{n}"),
            Self::Boolean { n, target: Some(t) } => write!(f, "boolean:{n}:{t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_form() {
        for s in [
            "mnist",
            "idx:a.gz,b.gz",
            "cifar10:/data/cifar-10-batches-bin",
            "npy:x.npy",
            "npy:x.npy,y.npy",
            "boolean:7",
            "boolean:7:majority",
            "boolean:3:0x96",
        ] {
            let src: DataSource = s.parse().unwrap();
            assert_eq!(src.to_string(), s);
        }
    }

    #[test]
    fn rejects_malformed_sources() {
        for s in [
            "",
            "mnist:x",
            "idx:a",
            "idx:,b",
            "cifar10:",
            "npy:",
            "npy:x,",
            "boolean:",
            "boolean:x",
            "boolean:99",
            "boolean:7:median",
            "foo:bar",
        ] {
            let err = s.parse::<DataSource>().unwrap_err();
            assert!(matches!(err, DataError::BadSpec { .. }), "{s}: {err}");
        }
    }
}
