//! The one in-memory data set type that every loader returns.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::error::{DataError, Result};

/// The counts and the value range of a data set ([`Dataset::summary`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSummary {
    /// The number of examples.
    pub n: usize,
    /// The number of features per example.
    pub dim: usize,
    /// The number of examples per label; `None` when the set is unlabelled.
    pub class_counts: Option<BTreeMap<u8, usize>>,
    /// The smallest feature value; `None` when the set has no features.
    pub min: Option<f32>,
    /// The largest feature value; `None` when the set has no features.
    pub max: Option<f32>,
    /// Each example's image shape as `[channels, height, width]`; `None` for flat features.
    pub image_shape: Option<[usize; 3]>,
}

/// The shape of one image: `channels × height × width`.
///
/// A data set of images stores each image as one feature row of `len()` values in CHW order:
/// channel-major, then row, then column, so value `(c, y, x)` is at `(c · height + y) · width
/// + x`. It displays as `CxHxW`, e.g. `3x32x32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ImageShape {
    /// The number of channels (1 for grey levels, 3 for RGB).
    pub channels: usize,
    /// The number of pixel rows.
    pub height: usize,
    /// The number of pixel columns.
    pub width: usize,
}

impl ImageShape {
    /// The shape `channels × height × width`.
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// The number of values of one image, `channels · height · width` (saturating at
    /// `usize::MAX`, which no data set's dimension reaches).
    pub const fn len(&self) -> usize {
        self.channels
            .saturating_mul(self.height)
            .saturating_mul(self.width)
    }

    /// True when the shape holds no values (a zero extent).
    pub const fn is_empty(&self) -> bool {
        self.channels == 0 || self.height == 0 || self.width == 0
    }

    /// The number of values of one channel plane, `height · width` (saturating).
    pub const fn plane(&self) -> usize {
        self.height.saturating_mul(self.width)
    }

    /// `channels · height · width`, or `None` if the product overflows.
    fn checked_len(&self) -> Option<usize> {
        self.channels
            .checked_mul(self.height)?
            .checked_mul(self.width)
    }
}

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// A labelled (or unlabelled) set of examples.
///
/// Features are `n × dim` row-major `f32`. Labels are `u8` class labels (`0/1` once binarised).
/// `class_ids` keeps the original class of each example (an MNIST digit, a CIFAR-10 class)
/// where the source has one, so binarisation never loses it. Sets of images also carry their
/// [`ImageShape`] ([`Dataset::image_shape`]); each row is then one image in CHW order. Every
/// operation that keeps the rows' meaning ([`subset`](Dataset::subset),
/// [`with_labels`](Dataset::with_labels), [`renamed`](Dataset::renamed), …) keeps the shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    name: String,
    dim: usize,
    features: Vec<f32>,
    labels: Option<Vec<u8>>,
    class_ids: Option<Vec<u8>>,
    image_shape: Option<ImageShape>,
}

impl Dataset {
    /// Builds a data set, checking that the shapes agree and every feature is finite.
    ///
    /// `name` says where the data came from; it appears in every error about this data set.
    /// The set has no image shape; give one with [`Dataset::with_image_shape`].
    pub fn new(
        name: impl Into<String>,
        dim: usize,
        features: Vec<f32>,
        labels: Option<Vec<u8>>,
        class_ids: Option<Vec<u8>>,
    ) -> Result<Self> {
        let name = name.into();
        let shape_err = |problem: String| DataError::Shape {
            name: name.clone(),
            problem,
        };
        if dim == 0 {
            return Err(shape_err("the feature dimension is 0".into()));
        }
        if !features.len().is_multiple_of(dim) {
            return Err(shape_err(format!(
                "{} feature values do not fill rows of dimension {dim}",
                features.len()
            )));
        }
        let n = features.len() / dim;
        for (what, v) in [("labels", &labels), ("class ids", &class_ids)] {
            if let Some(v) = v
                && v.len() != n
            {
                return Err(shape_err(format!("{} {what} for {n} examples", v.len())));
            }
        }
        if let Some(i) = features.iter().position(|x| !x.is_finite()) {
            return Err(shape_err(format!(
                "feature {} of example {} is {} (features must be finite)",
                i % dim,
                i / dim,
                features[i]
            )));
        }
        Ok(Self {
            name,
            dim,
            features,
            labels,
            class_ids,
            image_shape: None,
        })
    }

    /// Where the data came from (a file, a source string, or a derived name such as `mnist[S]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.features.len() / self.dim
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The feature dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All features, `n × d` row-major.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// The features of example `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// The shape of each example as an image, where the rows are images.
    pub fn image_shape(&self) -> Option<ImageShape> {
        self.image_shape
    }

    /// The shape of each example as an image, or an error that says how to supply one.
    pub fn require_image_shape(&self) -> Result<ImageShape> {
        self.image_shape.ok_or_else(|| DataError::Shape {
            name: self.name.clone(),
            problem: format!(
                "has no image shape (its {} features are a flat vector); image sources are \
                 mnist, idx:, cifar10: and an .npy of shape (n, C, H, W) or (n, H, W) \
                 (transpose a channels-last (n, H, W, C) array with \
                 numpy.transpose(x, (0, 3, 1, 2)))",
                self.dim
            ),
        })
    }

    /// The same examples read as images of `shape`, each row in CHW order.
    ///
    /// Fails unless `channels · height · width` equals the dimension.
    pub fn with_image_shape(mut self, shape: ImageShape) -> Result<Self> {
        if shape.checked_len() != Some(self.dim) {
            return Err(DataError::Shape {
                problem: format!(
                    "image shape {shape} holds {} values but the dimension is {}; give a shape \
                     whose channels · height · width is {}",
                    shape
                        .checked_len()
                        .map_or_else(|| "more than usize::MAX".to_owned(), |l| l.to_string()),
                    self.dim,
                    self.dim
                ),
                name: self.name,
            });
        }
        self.image_shape = Some(shape);
        Ok(self)
    }

    /// The same examples as flat feature vectors, without an image shape.
    pub fn without_image_shape(mut self) -> Self {
        self.image_shape = None;
        self
    }

    /// The class labels, if the source has any.
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// The class labels, or an error that says how to supply them.
    pub fn require_labels(&self) -> Result<&[u8]> {
        self.labels.as_deref().ok_or_else(|| DataError::Shape {
            name: self.name.clone(),
            problem: "has no labels; give a labels file (npy:<x.npy>,<y.npy>) or a Boolean target (boolean:<n>:<target>)".into(),
        })
    }

    /// The original class of each example, where the source has classes.
    pub fn class_ids(&self) -> Option<&[u8]> {
        self.class_ids.as_deref()
    }

    /// The number of examples of each label (empty when unlabelled).
    pub fn class_counts(&self) -> BTreeMap<u8, usize> {
        let mut counts = BTreeMap::new();
        for &l in self.labels().unwrap_or(&[]) {
            *counts.entry(l).or_insert(0) += 1;
        }
        counts
    }

    /// The counts and the value range of the set.
    pub fn summary(&self) -> DataSummary {
        let range = self.value_range();
        DataSummary {
            n: self.len(),
            dim: self.dim(),
            class_counts: self.labels().map(|_| self.class_counts()),
            min: range.map(|r| r.0),
            max: range.map(|r| r.1),
            image_shape: self.image_shape.map(|s| [s.channels, s.height, s.width]),
        }
    }

    /// The smallest and largest feature value, or `None` for an empty set.
    pub fn value_range(&self) -> Option<(f32, f32)> {
        let mut it = self.features.iter().copied();
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
    }

    /// The examples at `indices`, in that order, under a new name (and the same image shape).
    ///
    /// Fails if an index is out of range.
    pub fn subset(&self, name: impl Into<String>, indices: &[usize]) -> Result<Self> {
        let name = name.into();
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::Shape {
                name,
                problem: format!(
                    "index {bad} is out of range for {:?} with {} examples",
                    self.name,
                    self.len()
                ),
            });
        }
        let mut features = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            features.extend_from_slice(self.row(i));
        }
        let pick =
            |v: &Option<Vec<u8>>| v.as_ref().map(|v| indices.iter().map(|&i| v[i]).collect());
        Ok(Self {
            name,
            dim: self.dim,
            features,
            labels: pick(&self.labels),
            class_ids: pick(&self.class_ids),
            image_shape: self.image_shape,
        })
    }

    /// The examples of `parts` one after the other, under a new name. All parts must have the
    /// same dimension; labels (class ids) are kept only if every part has them.
    ///
    /// The result has an image shape only if every part has the same one. Parts of equal
    /// dimension but different (or no) shapes still join, as flat vectors, as they did before
    /// sets had shapes; a consumer that needs images then fails at
    /// [`Dataset::require_image_shape`], naming the joined set.
    pub fn concat(name: impl Into<String>, parts: &[&Dataset]) -> Result<Self> {
        let name = name.into();
        let dim = parts.first().map_or(1, |p| p.dim);
        if let Some(p) = parts.iter().find(|p| p.dim != dim) {
            return Err(DataError::Shape {
                name,
                problem: format!(
                    "{:?} has dimension {} but the first part has {dim}",
                    p.name, p.dim
                ),
            });
        }
        let join = |get: fn(&Dataset) -> Option<&[u8]>| -> Option<Vec<u8>> {
            parts
                .iter()
                .map(|p| get(p))
                .collect::<Option<Vec<_>>>()
                .map(|v| v.concat())
        };
        let image_shape = parts.first().and_then(|p| p.image_shape);
        let image_shape = image_shape.filter(|s| parts.iter().all(|p| p.image_shape == Some(*s)));
        Ok(Self {
            image_shape,
            features: parts
                .iter()
                .flat_map(|p| p.features.iter().copied())
                .collect(),
            labels: join(Dataset::labels),
            class_ids: join(Dataset::class_ids),
            name,
            dim,
        })
    }

    /// The same examples with new labels (the class ids and the image shape kept).
    pub fn with_labels(mut self, labels: Vec<u8>) -> Result<Self> {
        if labels.len() != self.len() {
            return Err(DataError::Shape {
                problem: format!("{} labels for {} examples", labels.len(), self.len()),
                name: self.name,
            });
        }
        self.labels = Some(labels);
        Ok(self)
    }

    /// The same examples with new original class ids (the image shape kept).
    pub fn with_class_ids(mut self, class_ids: Vec<u8>) -> Result<Self> {
        if class_ids.len() != self.len() {
            return Err(DataError::Shape {
                problem: format!("{} class ids for {} examples", class_ids.len(), self.len()),
                name: self.name,
            });
        }
        self.class_ids = Some(class_ids);
        Ok(self)
    }

    /// Renames the data set (everything else kept).
    pub fn renamed(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Mutable access to the features, for in-place transformations that keep the shape.
    pub(crate) fn features_mut(&mut self) -> &mut [f32] {
        &mut self.features
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset::new(
            "tiny",
            2,
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            Some(vec![1, 0, 1]),
            Some(vec![7, 2, 9]),
        )
        .unwrap()
    }

    #[test]
    fn shapes_and_accessors() {
        let d = tiny();
        assert_eq!((d.len(), d.dim()), (3, 2));
        assert_eq!(d.row(1), &[2.0, 3.0]);
        assert_eq!(d.class_counts(), BTreeMap::from([(0, 1), (1, 2)]));
        assert_eq!(d.value_range(), Some((0.0, 5.0)));
    }

    #[test]
    fn subset_keeps_rows_labels_and_classes() {
        let s = tiny().subset("s", &[2, 0]).unwrap();
        assert_eq!(s.features(), &[4.0, 5.0, 0.0, 1.0]);
        assert_eq!(s.labels(), Some(&[1u8, 1][..]));
        assert_eq!(s.class_ids(), Some(&[9u8, 7][..]));
        assert!(tiny().subset("s", &[3]).is_err());
    }

    #[test]
    fn concat_appends_rows_and_labels() {
        let c = Dataset::concat("c", &[&tiny(), &tiny().subset("s", &[1]).unwrap()]).unwrap();
        assert_eq!((c.len(), c.row(3)), (4, &[2.0, 3.0][..]));
        assert_eq!(c.labels(), Some(&[1u8, 0, 1, 0][..]));
        let other = Dataset::new("o", 1, vec![0.0], None, None).unwrap();
        assert!(Dataset::concat("c", &[&tiny(), &other]).is_err());
        let unlabelled = Dataset::new("u", 2, vec![0.0, 0.0], None, None).unwrap();
        assert_eq!(
            Dataset::concat("c", &[&tiny(), &unlabelled])
                .unwrap()
                .labels(),
            None
        );
    }

    fn images() -> Dataset {
        Dataset::new(
            "img",
            12,
            (0..24).map(|x| x as f32).collect(),
            Some(vec![0, 1]),
            None,
        )
        .unwrap()
        .with_image_shape(ImageShape::new(3, 2, 2))
        .unwrap()
    }

    #[test]
    fn image_shape_len_and_display() {
        let s = ImageShape::new(3, 32, 32);
        assert_eq!(
            (s.len(), s.plane(), s.to_string()),
            (3072, 1024, "3x32x32".into())
        );
        assert!(!s.is_empty() && ImageShape::new(1, 0, 5).is_empty());
        assert_eq!(ImageShape::new(usize::MAX, 2, 2).len(), usize::MAX);
    }

    #[test]
    fn with_image_shape_checks_the_dimension() {
        assert_eq!(images().image_shape(), Some(ImageShape::new(3, 2, 2)));
        assert_eq!(tiny().image_shape(), None);
        let msg = tiny()
            .with_image_shape(ImageShape::new(1, 2, 2))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("\"tiny\"") && msg.contains("1x2x2") && msg.contains("is 2"),
            "{msg}"
        );
        let huge = ImageShape::new(usize::MAX, usize::MAX, 2);
        assert!(tiny().with_image_shape(huge).is_err());
        assert_eq!(
            tiny()
                .with_image_shape(ImageShape::new(2, 1, 1))
                .unwrap()
                .image_shape(),
            Some(ImageShape::new(2, 1, 1))
        );
        assert_eq!(images().without_image_shape().image_shape(), None);
        let msg = tiny().require_image_shape().unwrap_err().to_string();
        assert!(
            msg.contains("tiny") && msg.contains("(n, C, H, W)"),
            "{msg}"
        );
        assert_eq!(
            images().require_image_shape().unwrap(),
            ImageShape::new(3, 2, 2)
        );
    }

    #[test]
    fn every_derived_set_keeps_the_image_shape() {
        let shape = Some(ImageShape::new(3, 2, 2));
        let d = images();
        assert_eq!(d.subset("s", &[1]).unwrap().image_shape(), shape);
        assert_eq!(d.subset("e", &[]).unwrap().image_shape(), shape);
        assert_eq!(d.clone().renamed("r").image_shape(), shape);
        assert_eq!(
            d.clone().with_labels(vec![1, 1]).unwrap().image_shape(),
            shape
        );
        assert_eq!(
            d.clone().with_class_ids(vec![4, 5]).unwrap().image_shape(),
            shape
        );
        assert_eq!(
            Dataset::concat("c", &[&d, &d]).unwrap().image_shape(),
            shape
        );
    }

    #[test]
    fn concat_of_different_shapes_is_flat() {
        let d = images();
        let flat = d.clone().without_image_shape();
        let other = d
            .clone()
            .with_image_shape(ImageShape::new(1, 3, 4))
            .unwrap();
        for parts in [[&d, &flat], [&flat, &d], [&d, &other]] {
            let c = Dataset::concat("c", &parts).unwrap();
            assert_eq!((c.len(), c.image_shape()), (4, None));
        }
        assert_eq!(Dataset::concat("c", &[]).unwrap().image_shape(), None);
    }

    #[test]
    fn rejects_inconsistent_shapes_and_nan() {
        assert!(Dataset::new("x", 2, vec![0.0; 3], None, None).is_err());
        assert!(Dataset::new("x", 0, vec![], None, None).is_err());
        assert!(Dataset::new("x", 1, vec![0.0; 3], Some(vec![0; 2]), None).is_err());
        let err = Dataset::new("x", 2, vec![0.0, f32::NAN], None, None).unwrap_err();
        assert!(err.to_string().contains("NaN"), "{err}");
    }

    #[test]
    fn unlabelled_sets_say_how_to_add_labels() {
        let d = Dataset::new("x.npy", 1, vec![0.0], None, None).unwrap();
        assert!(
            d.require_labels()
                .unwrap_err()
                .to_string()
                .contains("y.npy")
        );
        assert!(d.class_counts().is_empty());
    }
}
