//! Deterministic data parallelism.
//!
//! Every parallel kernel in the crate splits its output into chunks whose boundaries depend only
//! on the problem size, and computes each output element with the same sequential arithmetic
//! whatever thread runs it. Results are therefore bit-identical for any number of rayon threads.

use std::mem::MaybeUninit;

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
        row_len > 0 && out.len().is_multiple_of(row_len),
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

/// Elements per task of the elementwise maps below. Each output element depends on its own
/// inputs only, so any chunking gives the same bits. A fixed length keeps tasks large enough
/// to pay for themselves.
const MAP_CHUNK: usize = 1 << 14;

/// Builds a vector of `len` elements by letting `fill(start, out)` initialise every element of
/// each chunk `out`, which covers the elements `start..start + out.len()`. Chunks run in
/// parallel when `len` reaches [`PARALLEL_THRESHOLD`].
fn build_vec<U, F>(len: usize, fill: F) -> Vec<U>
where
    U: Send,
    F: Fn(usize, &mut [MaybeUninit<U>]) + Sync + Send,
{
    let mut out: Vec<U> = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    if len < PARALLEL_THRESHOLD {
        fill(0, spare);
    } else {
        spare
            .par_chunks_mut(MAP_CHUNK)
            .enumerate()
            .for_each(|(i, chunk)| fill(i * MAP_CHUNK, chunk));
    }
    // SAFETY: the callers below write every element of every chunk they are given, and the
    // chunks cover `0..len`, so the first `len` elements are initialised.
    unsafe { out.set_len(len) };
    out
}

/// `f(a[i])` for every element, in parallel for long inputs. The result does not depend on the
/// number of threads.
pub fn map1<A, U, F>(a: &[A], f: F) -> Vec<U>
where
    A: Copy + Sync,
    U: Send,
    F: Fn(A) -> U + Sync + Send,
{
    build_vec(a.len(), |start, out| {
        let end = start + out.len();
        for (o, &x) in out.iter_mut().zip(&a[start..end]) {
            o.write(f(x));
        }
    })
}

/// `f(a[i], b[i])` for every element of two equally long slices, in parallel for long inputs.
///
/// # Panics
/// If the lengths differ.
pub fn map2<A, B, U, F>(a: &[A], b: &[B], f: F) -> Vec<U>
where
    A: Copy + Sync,
    B: Copy + Sync,
    U: Send,
    F: Fn(A, B) -> U + Sync + Send,
{
    assert_eq!(a.len(), b.len(), "map2 needs equally long inputs");
    build_vec(a.len(), |start, out| {
        let end = start + out.len();
        for ((o, &x), &y) in out.iter_mut().zip(&a[start..end]).zip(&b[start..end]) {
            o.write(f(x, y));
        }
    })
}

/// `f(a[i], b[i], c[i])` for every element of three equally long slices, in parallel for long
/// inputs.
///
/// # Panics
/// If the lengths differ.
pub fn map3<A, B, C, U, F>(a: &[A], b: &[B], c: &[C], f: F) -> Vec<U>
where
    A: Copy + Sync,
    B: Copy + Sync,
    C: Copy + Sync,
    U: Send,
    F: Fn(A, B, C) -> U + Sync + Send,
{
    assert!(
        a.len() == b.len() && a.len() == c.len(),
        "map3 needs equally long inputs"
    );
    build_vec(a.len(), |start, out| {
        let end = start + out.len();
        let inputs = a[start..end].iter().zip(&b[start..end]).zip(&c[start..end]);
        for (o, ((&x, &y), &z)) in out.iter_mut().zip(inputs) {
            o.write(f(x, y, z));
        }
    })
}
