//! Deterministic data parallelism.
//!
//! Every parallel kernel in the crate splits its output into chunks whose boundaries depend only
//! on the problem size, and computes each output element with the same sequential arithmetic
//! whatever thread runs it. Results are therefore bit-identical for any number of rayon threads.

use rayon::prelude::*;

/// Below this many scalar operations, kernels run on the calling thread: spawning costs more
/// than it saves.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Calls `f(row_index, row)` for each `row_len`-long row of `out`, in parallel when `work`
/// (an estimate of the scalar operations involved) reaches [`PARALLEL_THRESHOLD`].
///
/// # Panics
/// If `row_len` is zero while `out` is not empty, or does not divide `out.len()`.
pub fn for_each_row<T, F>(out: &mut [T], row_len: usize, work: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if out.is_empty() {
        return;
    }
    assert!(
        row_len > 0 && out.len() % row_len == 0,
        "row length {row_len} does not divide {}",
        out.len()
    );
    if work < PARALLEL_THRESHOLD || out.len() == row_len {
        out.chunks_mut(row_len)
            .enumerate()
            .for_each(|(i, row)| f(i, row));
    } else {
        let rows = out.len() / row_len;
        let min_rows = (PARALLEL_THRESHOLD * rows / work.max(1)).max(1);
        out.par_chunks_mut(row_len)
            .with_min_len(min_rows)
            .enumerate()
            .for_each(|(i, row)| f(i, row));
    }
}

/// Like [`for_each_row`] over two outputs split into rows of the same count.
pub fn for_each_row2<T, U, F>(
    out_a: &mut [T],
    len_a: usize,
    out_b: &mut [U],
    len_b: usize,
    work: usize,
    f: F,
) where
    T: Send,
    U: Send,
    F: Fn(usize, &mut [T], &mut [U]) + Sync + Send,
{
    if out_a.is_empty() {
        return;
    }
    assert!(
        len_a > 0 && len_b > 0 && out_a.len() / len_a == out_b.len() / len_b,
        "row counts differ"
    );
    if work < PARALLEL_THRESHOLD {
        out_a
            .chunks_mut(len_a)
            .zip(out_b.chunks_mut(len_b))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    } else {
        out_a
            .par_chunks_mut(len_a)
            .zip(out_b.par_chunks_mut(len_b))
            .enumerate()
            .for_each(|(i, (a, b))| f(i, a, b));
    }
}
