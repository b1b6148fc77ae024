//! The Boolean cube {0,1}^n with all 2^n inputs, and target functions on it.
//!
//! Input `i` has bit `j` equal to `(i >> (n − 1 − j)) & 1`: row `i` is `i` written in binary,
//! most significant bit first (the convention of the paper's Boolean system and of basin's
//! golden values). A function on the cube is a 2^n-bit table whose bit `i` is `f(x_i)`.

use std::fmt;
use std::str::FromStr;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// The largest supported `n`: 2^20 inputs (80 MiB of features).
pub const MAX_BITS: u32 = 20;

/// A target function on {0,1}^n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoolTarget {
    /// 1 iff more than half the bits are 1 (for n = 7: at least 4 ones).
    Majority,
    /// 1 iff the number of ones is odd.
    Parity,
    /// The same value everywhere.
    Constant(bool),
    /// An explicit table: entry `i` is `f(x_i)`.
    Table(Vec<bool>),
}

impl BoolTarget {
    /// Parses a target for the cube {0,1}^n.
    ///
    /// Accepted: `majority`, `parity`, `constant0`, `constant1`, `0x<hex>` (a 2^n-bit integer
    /// whose bit `i`, least significant first, is `f(x_i)`; the packing the Boolean sampler
    /// prints), or `bits:<2^n characters 0/1>` with character `i` equal to `f(x_i)`.
    pub fn parse(s: &str, n: u32) -> Result<Self> {
        let bad = |problem: String| DataError::BadSpec {
            spec: s.to_owned(),
            problem,
        };
        check_bits(n, s)?;
        let size = 1usize << n;
        match s {
            "majority" => return Ok(Self::Majority),
            "parity" => return Ok(Self::Parity),
            "constant0" => return Ok(Self::Constant(false)),
            "constant1" => return Ok(Self::Constant(true)),
            _ => {}
        }
        if let Some(hex) = s.strip_prefix("0x") {
            let digits = size.div_ceil(4);
            if hex.is_empty() || hex.len() > digits {
                return Err(bad(format!(
                    "a {size}-bit table needs at most {digits} hex digits"
                )));
            }
            let mut table = vec![false; size];
            for (k, c) in hex.chars().rev().enumerate() {
                let v = c
                    .to_digit(16)
                    .ok_or_else(|| bad(format!("{c:?} is not a hex digit")))?;
                for b in 0..4 {
                    let bit = 4 * k + b;
                    if v >> b & 1 == 1 {
                        *table.get_mut(bit).ok_or_else(|| {
                            bad(format!("bit {bit} is beyond the {size} inputs"))
                        })? = true;
                    }
                }
            }
            return Ok(Self::Table(table));
        }
        if let Some(bits) = s.strip_prefix("bits:") {
            if bits.len() != size {
                return Err(bad(format!(
                    "needs exactly {size} characters 0/1, got {}",
                    bits.len()
                )));
            }
            return bits
                .chars()
                .map(|c| match c {
                    '0' => Ok(false),
                    '1' => Ok(true),
                    other => Err(bad(format!("{other:?} is not 0 or 1"))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Self::Table);
        }
        Err(bad(
            "expected majority, parity, constant0, constant1, 0x<hex> or bits:<0/1 string>".into(),
        ))
    }

    /// The value of the target on every input of {0,1}^n, as 0/1 labels in input order.
    pub fn labels(&self, n: u32) -> Result<Vec<u8>> {
        check_bits(n, "target")?;
        let size = 1usize << n;
        let labels = match self {
            Self::Majority => (0..size)
                .map(|i| u8::from(2 * i.count_ones() > n))
                .collect(),
            Self::Parity => (0..size).map(|i| (i.count_ones() & 1) as u8).collect(),
            Self::Constant(v) => vec![u8::from(*v); size],
            Self::Table(t) if t.len() == size => t.iter().map(|&b| u8::from(b)).collect(),
            Self::Table(t) => {
                return Err(DataError::BadSpec {
                    spec: self.to_string(),
                    problem: format!("a table of {} entries does not fit {size} inputs", t.len()),
                });
            }
        };
        Ok(labels)
    }
}

impl fmt::Display for BoolTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Majority => f.write_str("majority"),
            Self::Parity => f.write_str("parity"),
            Self::Constant(v) => write!(f, "constant{}", u8::from(*v)),
            Self::Table(t) if t.len() % 4 == 0 => {
                f.write_str("0x")?;
                t.chunks(4).rev().try_for_each(|nibble| {
                    let v = nibble
                        .iter()
                        .rev()
                        .fold(0, |acc, &b| acc << 1 | u32::from(b));
                    write!(f, "{v:x}")
                })
            }
            Self::Table(t) => {
                f.write_str("bits:")?;
                t.iter()
                    .try_for_each(|&b| f.write_str(if b { "1" } else { "0" }))
            }
        }
    }
}

fn check_bits(n: u32, what: &str) -> Result<()> {
    if (1..=MAX_BITS).contains(&n) {
        Ok(())
    } else {
        Err(DataError::BadSpec {
            spec: format!("boolean:{n}:{what}"),
            problem: format!("n must be in 1..={MAX_BITS}"),
        })
    }
}

/// All 2^n inputs of the cube, `2^n × n` row-major, most significant bit first.
pub fn cube_inputs(n: u32) -> Result<Vec<f32>> {
    check_bits(n, "inputs")?;
    let n = n as usize;
    Ok((0..1usize << n)
        .flat_map(|i| (0..n).map(move |j| ((i >> (n - 1 - j)) & 1) as f32))
        .collect())
}

/// The cube {0,1}^n as a data set, labelled by `target` (unlabelled without one).
pub fn cube(n: u32, target: Option<&BoolTarget>) -> Result<Dataset> {
    let labels = target.map(|t| t.labels(n)).transpose()?;
    let name = match target {
        Some(t) => format!("boolean:{n}:{t}"),
        None => format!("boolean:{n}"),
    };
    Dataset::new(name, n as usize, cube_inputs(n)?, labels, None)
}

impl FromStr for BoolTarget {
    type Err = DataError;

    /// Parses a target for n = 7 (the paper's system); use [`BoolTarget::parse`] for other n.
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s, 7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_msb_first() {
        let x = cube_inputs(3).unwrap();
        assert_eq!(&x[3 * 6..3 * 7], &[1.0, 1.0, 0.0]);
        assert_eq!(&x[3..6], &[0.0, 0.0, 1.0]);
    }

    #[test]
    fn named_targets() {
        assert_eq!(
            BoolTarget::Majority.labels(3).unwrap(),
            [0, 0, 0, 1, 0, 1, 1, 1]
        );
        assert_eq!(
            BoolTarget::Parity.labels(3).unwrap(),
            [0, 1, 1, 0, 1, 0, 0, 1]
        );
        assert_eq!(BoolTarget::Constant(true).labels(2).unwrap(), [1; 4]);
    }

    #[test]
    fn hex_and_bit_tables_use_bit_i_for_input_i() {
        let hex = BoolTarget::parse("0x96", 3).unwrap();
        assert_eq!(
            hex.labels(3).unwrap(),
            BoolTarget::Parity.labels(3).unwrap()
        );
        let bits = BoolTarget::parse("bits:01101001", 3).unwrap();
        assert_eq!(bits, hex);
        assert_eq!(bits.to_string(), "0x96");
        let two = BoolTarget::parse("bits:01", 1).unwrap();
        assert_eq!(BoolTarget::parse(&two.to_string(), 1).unwrap(), two);
        assert!(BoolTarget::parse("0x1ff", 3).is_err());
        assert!(BoolTarget::parse("0x1g", 3).is_err());
        assert!(BoolTarget::parse("bits:0110", 3).is_err());
        assert!(BoolTarget::parse("median", 3).is_err());
        assert!(BoolTarget::parse("parity", 0).is_err());
        assert!(BoolTarget::parse("parity", 64).is_err());
    }
}
