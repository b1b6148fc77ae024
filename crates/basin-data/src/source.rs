//! The data-source syntax every `--data` flag accepts, and loading a source.
//!
//! | syntax | meaning |
//! |---|---|
//! | `mnist` | the embedded 10,000-digit MNIST subset |
//! | `idx:<images>,<labels>` | an IDX image file and its label file (gzipped or not) |
//! | `idx:<images>,<labels>,<test-images>,<test-labels>` | the same, then a separate test set |
//! | `idx:<dir>` | a folder of the four files MNIST and Fashion-MNIST ship ([`IDX_DIR_FILES`], each gzipped (`.gz`) or not): train = `train-*`, test = `t10k-*` |
//! | `cifar10:<dir>` | CIFAR-10 binary: train = `data_batch_1..5.bin`, test = `test_batch.bin` |
//! | `npy:<x.npy>[,<y.npy>]` | features `(n, …)` and optional labels `(n,)` |
//! | `boolean:<n>[:<target>]` | all 2^n inputs of {0,1}^n, labelled by a target (see [`BoolTarget::parse`]) |

use std::fmt;
use std::path::{Path, PathBuf};
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
    /// An IDX image file and label file, and optionally those of a separate test set.
    Idx {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// The separate test set's image and label files, in that order.
        test: Option<(PathBuf, PathBuf)>,
    },
    /// A folder holding the four IDX files of MNIST or Fashion-MNIST ([`IDX_DIR_FILES`]).
    IdxDir {
        /// The folder.
        dir: PathBuf,
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
    /// The main examples (the training files of CIFAR-10 and of an IDX folder or four IDX
    /// files; everything, for other sources).
    pub pool: Dataset,
    /// The source's own test set (CIFAR-10's `test_batch.bin`, the `t10k-*` files of an IDX
    /// folder, the last two of four IDX files), if it has one.
    pub test: Option<Dataset>,
}

/// The help text for the syntax, for command-line flags and error messages.
pub const SYNTAX: &str = "mnist | idx:<images>,<labels>[,<test-images>,<test-labels>] | idx:<dir> | cifar10:<dir> | npy:<x.npy>[,<y.npy>] | boolean:<n>[:<target>]";

/// The four files of an `idx:<dir>` folder, as MNIST and Fashion-MNIST name them: training
/// images and labels, then test images and labels. Each may also be gzipped under its name
/// with `.gz`; where both are present the name without `.gz` is read.
pub const IDX_DIR_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The paths of the four [`IDX_DIR_FILES`] in `dir`, each as it is or with `.gz`; an error
/// names every file that is missing and the names expected.
pub fn idx_dir_files(dir: &Path) -> Result<[PathBuf; 4]> {
    let expected = || {
        format!(
            "the four IDX files of MNIST or Fashion-MNIST, each gzipped (.gz) or not: {}",
            IDX_DIR_FILES.join(", ")
        )
    };
    if !dir.is_dir() {
        let what = if dir.exists() {
            "is not a folder"
        } else {
            "does not exist"
        };
        return Err(DataError::Invalid {
            path: dir.to_owned(),
            problem: format!(
                "{what}; idx:<dir> takes a folder holding {}; give files as idx:<images>,<labels>[,<test-images>,<test-labels>]",
                expected()
            ),
        });
    }
    let found = IDX_DIR_FILES.map(|name| {
        [name.to_owned(), format!("{name}.gz")]
            .into_iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
    });
    let missing: Vec<String> = IDX_DIR_FILES
        .iter()
        .zip(&found)
        .filter(|(_, p)| p.is_none())
        .map(|(name, _)| format!("{name}[.gz]"))
        .collect();
    if !missing.is_empty() {
        return Err(DataError::MissingFiles {
            dir: dir.to_owned(),
            missing,
            expected: expected(),
        });
    }
    Ok(found.map(|p| p.expect("checked present")))
}

impl DataSource {
    /// Loads the source.
    pub fn load(&self) -> Result<Corpus> {
        let pool = match self {
            Self::Mnist => embedded::mnist()?,
            Self::Idx {
                images,
                labels,
                test,
            } => {
                return Ok(Corpus {
                    pool: idx::load(images, labels)?,
                    test: test.as_ref().map(|(i, l)| idx::load(i, l)).transpose()?,
                });
            }
            Self::IdxDir { dir } => {
                let [images, labels, test_images, test_labels] = idx_dir_files(dir)?;
                return Ok(Corpus {
                    pool: idx::load(&images, &labels)?,
                    test: Some(idx::load(&test_images, &test_labels)?),
                });
            }
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
            Self::Mnist | Self::Idx { .. } | Self::IdxDir { .. } => {
                Some(ClassMap::mnist_low_high())
            }
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
            "idx" => {
                let parts: Vec<&str> = rest.split(',').collect();
                if parts.iter().any(|p| p.is_empty()) {
                    return Err(bad("a file path is empty"));
                }
                let path = |i: usize| PathBuf::from(parts[i]);
                match parts.len() {
                    1 => Ok(Self::IdxDir { dir: path(0) }),
                    2 => Ok(Self::Idx {
                        images: path(0),
                        labels: path(1),
                        test: None,
                    }),
                    4 => Ok(Self::Idx {
                        images: path(0),
                        labels: path(1),
                        test: Some((path(2), path(3))),
                    }),
                    n => Err(bad(&format!(
                        "idx takes a folder, two files or four, not {n}: idx:<dir>, \
                         idx:<images>,<labels> or idx:<images>,<labels>,<test-images>,<test-labels>"
                    ))),
                }
            }
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
            Self::Idx {
                images,
                labels,
                test,
            } => {
                write!(f, "idx:{},{}", images.display(), labels.display())?;
                match test {
                    Some((i, l)) => write!(f, ",{},{}", i.display(), l.display()),
                    None => Ok(()),
                }
            }
            Self::IdxDir { dir } => write!(f, "idx:{}", dir.display()),
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
            "idx:a.gz,b.gz,c.gz,d.gz",
            "idx:/usr/share/datasets/fashion-mnist",
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
            "idx:",
            "idx:,b",
            "idx:a,",
            "idx:a,b,c",
            "idx:a,b,c,",
            "idx:a,b,,d",
            "idx:a,b,c,d,e",
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
