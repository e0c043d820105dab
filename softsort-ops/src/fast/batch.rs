//! Deterministic parallel map over the batch rows.

use autograd::parallel::PARALLEL_THRESHOLD;
use rayon::prelude::*;

/// Computes `f(row)` for every row, in parallel when `rows · work_per_row` (an estimate of the
/// scalar operations) reaches [`PARALLEL_THRESHOLD`].
///
/// Each row is computed by one sequential call and the results keep the row order, so the
/// output is bit-identical for any number of threads.
pub(crate) fn map_rows<R, F>(rows: usize, work_per_row: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize) -> R + Sync + Send,
{
    if rows > 1 && rows.saturating_mul(work_per_row) >= PARALLEL_THRESHOLD {
        (0..rows).into_par_iter().map(f).collect()
    } else {
        (0..rows).map(f).collect()
    }
}

/// Estimates the work of one row of `n` scores and `d` columns: the sort plus a few
/// sweeps.
pub(crate) fn row_work(n: usize, d: usize) -> usize {
    let log_n = usize::BITS - n.leading_zeros();
    n * (log_n as usize + 4 * d)
}

/// The minimum number of sorted positions in a block of [`map_blocks`]. Shorter rows form one
/// block.
const MIN_BLOCK: usize = 64;

/// The maximum number of blocks per batch row in [`map_blocks`], so that the per-block partial
/// results of length `n` stay O(n) per row.
const MAX_BLOCKS: usize = 8;

/// The split of the sorted positions `0..n` of a row into consecutive blocks, sized by `n`
/// alone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PositionBlocks {
    n: usize,
    len: usize,
}

impl PositionBlocks {
    /// Splits `0..n` into at most [`MAX_BLOCKS`] blocks of at least [`MIN_BLOCK`] positions
    /// (the last block may be shorter).
    pub(crate) fn new(n: usize) -> Self {
        let len = n.div_ceil(MAX_BLOCKS).max(MIN_BLOCK).min(n.max(1));
        PositionBlocks { n, len }
    }

    /// Returns the number of blocks per row.
    pub(crate) fn count(&self) -> usize {
        self.n.div_ceil(self.len)
    }

    /// Returns the positions of block `k`.
    pub(crate) fn range(&self, k: usize) -> std::ops::Range<usize> {
        k * self.len..((k + 1) * self.len).min(self.n)
    }
}

/// Computes `f(row, positions)` for every block of sorted positions of every batch row (see
/// [`PositionBlocks`]) and returns the results grouped by row, blocks in order.
/// `work_per_position` estimates the scalar operations of one position.
///
/// The blocks depend on `n` only and each is computed by one sequential call, so combining the
/// results in block order gives the same bits for any number of threads.
pub(crate) fn map_blocks<R, F>(rows: usize, n: usize, work_per_position: usize, f: F) -> Vec<Vec<R>>
where
    R: Send,
    F: Fn(usize, std::ops::Range<usize>) -> R + Sync + Send,
{
    let blocks = PositionBlocks::new(n);
    let per_row = blocks.count();
    let work = blocks.len.saturating_mul(work_per_position);
    let mut results = map_rows(rows * per_row, work, |task| {
        f(task / per_row, blocks.range(task % per_row))
    })
    .into_iter();
    (0..rows)
        .map(|_| results.by_ref().take(per_row).collect())
        .collect()
}

/// Adds the length-`width` vectors `parts` elementwise, in order.
pub(crate) fn sum_in_order<T: autograd::Float>(parts: &[Vec<T>], width: usize) -> Vec<T> {
    let mut total = vec![T::zero(); width];
    for part in parts {
        for (t, &p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}
