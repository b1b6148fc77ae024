//! The typed error of every loader and transformation in this crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading, parsing or splitting data.
///
/// Each variant names the file (or data source) it concerns and, where one exists, the fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// An output path exists and is not a regular file (a device, a FIFO, a folder), which
    /// writing would replace.
    #[error("{path}: exists and is {kind}, not a regular file; give the path of a file")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is, in words (`a character device`, `a FIFO (named pipe)`, `a folder`).
        kind: &'static str,
    },
    /// An output folder's path exists and is not a folder.
    #[error("{path}: exists and is {kind}, where a folder is expected; give a folder")]
    NotAFolder {
        /// The path.
        path: PathBuf,
        /// What it is, in words (`a file`, …).
        kind: &'static str,
    },
    /// The file has no bytes at all.
    #[error("{path}: the file is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file starts with gzip's magic bytes but does not decompress.
    #[error("{path}: corrupt gzip stream: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The file ends before the data its header announces.
    #[error("{path}: truncated: {what} needs {expected} bytes but only {found} are present")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The part of the file that is cut short.
        what: String,
        /// Bytes the header asks for.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The file has bytes after the data its header announces.
    #[error(
        "{path}: {extra} unexpected bytes after the {expected} bytes the header announces (a concatenated or wrong file?)"
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes the header asks for.
        expected: u64,
        /// Bytes beyond them.
        extra: u64,
    },
    /// The file's magic number is not the one its format requires.
    #[error("{path}: wrong magic number {found}; expected {expected}")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What the file starts with.
        found: String,
        /// What the format requires.
        expected: String,
    },
    /// A header announces dimensions whose product does not fit in memory addresses.
    #[error("{path}: absurd dimensions {dims:?}: their product overflows")]
    DimensionOverflow {
        /// The file.
        path: PathBuf,
        /// The dimensions read from the header.
        dims: Vec<u64>,
    },
    /// Two files that must describe the same examples disagree on their number.
    #[error(
        "{images} has {n_images} examples but {labels} has {n_labels} labels; pass files from the same set"
    )]
    CountMismatch {
        /// The features file.
        images: PathBuf,
        /// The labels file.
        labels: PathBuf,
        /// Examples in the features file.
        n_images: usize,
        /// Labels in the labels file.
        n_labels: usize,
    },
    /// A file is well-formed in its container but its content is invalid.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file (or data source).
        path: PathBuf,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// Required files of a multi-file data set are absent.
    #[error("{dir}: missing {missing:?}; expected {expected}")]
    MissingFiles {
        /// The directory searched.
        dir: PathBuf,
        /// Files not found there.
        missing: Vec<String>,
        /// A description of the expected layout.
        expected: String,
    },
    /// A data-source string (`--data`) or a target/mapping string does not parse.
    #[error("bad data source {spec:?}: {problem}")]
    BadSpec {
        /// The string given.
        spec: String,
        /// What is wrong and the accepted syntax.
        problem: String,
    },
    /// A class map (`--class-map`, a spec's `class_map`) does not parse.
    #[error(
        "bad class map {map:?}: {problem}; a class map is comma-separated <classes>:<label> \
         entries, <classes> one class id or an inclusive range a-b (unlisted classes are \
         dropped), e.g. 0-4:0,5-9:1 or 1:0,3:1; `mnist` and `cifar-cars-cats` name the paper's \
         two maps"
    )]
    BadClassMap {
        /// The string given.
        map: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An in-memory data set is inconsistent (shapes, non-finite values).
    #[error("data set {name:?}: {problem}")]
    Shape {
        /// The data set's name.
        name: String,
        /// What is inconsistent.
        problem: String,
    },
    /// An augmentation is configured or called inconsistently (a field of
    /// [`crate::Augment`], an image's length, an output buffer).
    #[error("augmentation: {problem}")]
    Augment {
        /// What is wrong, naming the field or argument, and the fix.
        problem: String,
    },
    /// A split cannot be made from the data set as asked.
    #[error("cannot split {name:?}: {problem}")]
    Split {
        /// The data set's name.
        name: String,
        /// Why, and what to change.
        problem: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, DataError>;
