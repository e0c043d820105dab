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
