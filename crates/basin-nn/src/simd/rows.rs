//! [`RowMap`]: which rows of a row-major operand a product reads.

/// Which rows of a row-major operand a product reads: all in order, or those at the given
/// indices (so a minibatch is read in place instead of being gathered first).
#[derive(Debug, Clone, Copy, Default)]
pub struct RowMap<'a>(pub Option<&'a [usize]>);

impl RowMap<'_> {
    /// The stored row of logical row `i`.
    #[inline(always)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn get(self, i: usize) -> usize {
        match self.0 {
            None => i,
            Some(ix) => ix[i],
        }
    }

    /// Checks that logical rows `0..rows` map into a matrix of `stored` rows.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn check(self, rows: usize, stored: usize) -> bool {
        match self.0 {
            None => rows <= stored,
            Some(ix) => ix.len() >= rows && ix[..rows].iter().all(|&i| i < stored),
        }
    }
}
