//! Binarisation: a configurable map from original class ids to 0/1 labels (or to "drop").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// A map from class ids (0–255) to new labels; classes it does not list are dropped.
///
/// Written as comma-separated `<classes>:<label>` entries, where `<classes>` is one id or an
/// inclusive range `a-b`: `0-4:0,5-9:1` is MNIST's low/high split, `1:0,3:1` CIFAR-10's cars vs
/// cats. The names `mnist` and `cifar-cars-cats` stand for those two.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClassMap {
    map: Vec<Option<u8>>,
}

impl ClassMap {
    /// MNIST digits 0–4 → 0 and 5–9 → 1 (the paper's binarisation).
    pub fn mnist_low_high() -> Self {
        "0-4:0,5-9:1".parse().expect("valid literal map")
    }

    /// CIFAR-10 automobile (class 1) → 0, cat (class 3) → 1, other classes dropped.
    pub fn cifar_cars_vs_cats() -> Self {
        "1:0,3:1".parse().expect("valid literal map")
    }

    /// The new label of a class, or `None` if the class is dropped.
    pub fn get(&self, class: u8) -> Option<u8> {
        self.map[usize::from(class)]
    }

    /// Indices of the examples whose class the map keeps.
    pub fn kept_indices(&self, data: &Dataset) -> Result<Vec<usize>> {
        Ok(classes_of(data)?
            .iter()
            .enumerate()
            .filter(|(_, c)| self.get(**c).is_some())
            .map(|(i, _)| i)
            .collect())
    }

    /// Relabels `data` by class id (or by label where it has no class ids), dropping unmapped
    /// classes. The original class ids are kept.
    pub fn apply(&self, data: &Dataset) -> Result<Dataset> {
        let classes = classes_of(data)?;
        let keep = self.kept_indices(data)?;
        let kept_classes: Vec<u8> = keep.iter().map(|&i| classes[i]).collect();
        let labels = kept_classes
            .iter()
            .map(|&c| self.get(c).expect("kept classes are mapped"))
            .collect();
        data.subset(format!("{}[{self}]", data.name()), &keep)?
            .with_class_ids(kept_classes)?
            .with_labels(labels)
    }
}

fn classes_of(data: &Dataset) -> Result<&[u8]> {
    data.class_ids()
        .or_else(|| data.labels())
        .ok_or_else(|| DataError::Shape {
            name: data.name().to_owned(),
            problem: "has neither class ids nor labels to binarise".into(),
        })
}

impl FromStr for ClassMap {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |problem: String| DataError::BadClassMap {
            map: s.to_owned(),
            problem,
        };
        if matches!(s, "none" | "default") {
            return Err(bad(format!(
                "{s:?} names no map here (the --class-map flags take `none` for no binarisation \
                 and `default` for the source's own map)"
            )));
        }
        match s {
            "mnist" => return Ok(Self::mnist_low_high()),
            "cifar-cars-cats" => return Ok(Self::cifar_cars_vs_cats()),
            _ => {}
        }
        let mut map = vec![None; 256];
        for entry in s.split(',').map(str::trim) {
            let (classes, label) = entry
                .split_once(':')
                .ok_or_else(|| bad(format!("entry {entry:?} lacks ':<label>'")))?;
            let num = |t: &str| {
                t.trim()
                    .parse::<u8>()
                    .map_err(|_| bad(format!("{t:?} is not a number in 0..=255")))
            };
            let label = num(label)?;
            let (lo, hi) = match classes.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => (num(classes)?, num(classes)?),
            };
            if lo > hi {
                return Err(bad(format!("range {classes:?} is empty")));
            }
            for c in lo..=hi {
                if map[usize::from(c)].replace(label).is_some() {
                    return Err(bad(format!("class {c} is mapped twice")));
                }
            }
        }
        Ok(Self { map })
    }
}

impl fmt::Display for ClassMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries = Vec::new();
        let mut c = 0usize;
        while c < 256 {
            if let Some(label) = self.map[c] {
                let start = c;
                while c + 1 < 256 && self.map[c + 1] == Some(label) {
                    c += 1;
                }
                entries.push(if start == c {
                    format!("{start}:{label}")
                } else {
                    format!("{start}-{c}:{label}")
                });
            }
            c += 1;
        }
        f.write_str(&entries.join(","))
    }
}

impl fmt::Debug for ClassMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClassMap({self})")
    }
}

impl TryFrom<String> for ClassMap {
    type Error = DataError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ClassMap> for String {
    fn from(m: ClassMap) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_maps() {
        let m = ClassMap::mnist_low_high();
        assert_eq!((m.get(4), m.get(5), m.get(10)), (Some(0), Some(1), None));
        let c = ClassMap::cifar_cars_vs_cats();
        assert_eq!((c.get(1), c.get(3), c.get(0)), (Some(0), Some(1), None));
        assert_eq!(c.to_string(), "1:0,3:1");
        assert_eq!(m.to_string(), "0-4:0,5-9:1");
    }

    #[test]
    fn apply_drops_unmapped_and_keeps_class_ids() {
        let d = Dataset::new(
            "d",
            1,
            vec![0.0, 1.0, 2.0, 3.0],
            Some(vec![3, 5, 1, 3]),
            Some(vec![3, 5, 1, 3]),
        )
        .unwrap();
        let b = ClassMap::cifar_cars_vs_cats().apply(&d).unwrap();
        assert_eq!(b.features(), &[0.0, 2.0, 3.0]);
        assert_eq!(b.labels(), Some(&[1u8, 0, 1][..]));
        assert_eq!(b.class_ids(), Some(&[3u8, 1, 3][..]));
    }

    #[test]
    fn bad_maps_are_rejected() {
        for s in [
            "", "0-4", "4-0:1", "0:1,0:0", "300:1", "a:1", "none", "default",
        ] {
            let err = s.parse::<ClassMap>().unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, DataError::BadClassMap { .. }), "{s}: {text}");
            assert!(text.starts_with("bad class map"), "{text}");
            assert!(text.contains("e.g. 0-4:0,5-9:1"), "{text}");
        }
    }
}
