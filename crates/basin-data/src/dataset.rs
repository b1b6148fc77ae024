//! The one in-memory data set type that every loader returns.

use std::collections::BTreeMap;

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
}

/// A labelled (or unlabelled) set of examples.
///
/// Features are `n × dim` row-major `f32`. Labels are `u8` class labels (`0/1` once binarised).
/// `class_ids` keeps the original class of each example (an MNIST digit, a CIFAR-10 class)
/// where the source has one, so binarisation never loses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    name: String,
    dim: usize,
    features: Vec<f32>,
    labels: Option<Vec<u8>>,
    class_ids: Option<Vec<u8>>,
}

impl Dataset {
    /// Builds a data set, checking that the shapes agree and every feature is finite.
    ///
    /// `name` says where the data came from; it appears in every error about this data set.
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
        }
    }

    /// The smallest and largest feature value, or `None` for an empty set.
    pub fn value_range(&self) -> Option<(f32, f32)> {
        let mut it = self.features.iter().copied();
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
    }

    /// The examples at `indices`, in that order, under a new name.
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
        })
    }

    /// The examples of `parts` one after the other, under a new name. All parts must have the
    /// same dimension; labels (class ids) are kept only if every part has them.
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
        Ok(Self {
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

    /// The same examples with new labels (and the class ids kept).
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

    /// The same examples with new original class ids.
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

    /// Renames the data set.
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
