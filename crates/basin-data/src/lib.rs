//! `basin-data` owns basin's data: the one [`Dataset`] type (n × d row-major f32 features,
//! u8 class labels, the original class ids and, for images, their [`ImageShape`] with each row
//! in CHW order), its loaders (the Boolean cube, IDX gzipped or not, CIFAR-10 binary, `.npy`
//! read and write), binarisation by a [`ClassMap`], the [`Split`] into a training set S, an
//! attack set A with flipped labels and a test set T, the paper's seeded training
//! augmentation of images ([`Augment`]: random crop of the padded image, horizontal flip), the
//! embedded 10,000-digit MNIST subset, the `--data` source syntax ([`DataSource`]), and the
//! allocator that puts large blocks on huge pages ([`huge_pages`], for the binary and the Python
//! module). Every
//! parser returns a typed [`DataError`] naming the file and the problem; none panics on bad
//! input.

pub mod atomic;
pub mod augment;
pub mod boolean;
pub mod cifar;
pub mod classmap;
pub mod cleanup;
pub mod dataset;
pub mod embedded;
pub mod error;
#[cfg(target_os = "linux")]
pub mod huge_pages;
pub mod idx;
pub mod io;
pub mod memory;
pub mod npy;
pub mod source;
pub mod split;

pub use augment::Augment;
pub use boolean::BoolTarget;
pub use cifar::ChannelNorm;
pub use classmap::ClassMap;
pub use dataset::{DataSummary, Dataset, ImageShape};
pub use error::{DataError, Result};
pub use memory::MemoryError;
pub use npy::{NpyArray, NpyData};
pub use source::{Corpus, DataSource};
pub use split::{Split, SplitIndices, SplitMode, SplitOrder, SplitSpec, TestSource};

/// The allocator of the binary and the Python module in the unit tests too, whose tests of
/// [`huge_pages`] go through it.
#[cfg(all(test, target_os = "linux"))]
#[global_allocator]
static TEST_ALLOCATOR: huge_pages::HugePages = huge_pages::HugePages;

/// The examples of the crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
