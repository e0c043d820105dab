//! Slice helpers shared by the operators: sorting permutations, reductions with a fixed
//! summation order, and the row-block layout of the backward passes.

use std::cmp::Ordering;

use autograd::Float;

/// Rows per task in the backward passes. Each block of rows writes its own partial column
/// sums, which are then added in block order, so results do not depend on the thread count.
pub(crate) const ROW_BLOCK: usize = 64;

/// Writes into `perm` the indices of `s` in sorted order, ties broken by the lower index
/// first (a stable sort). `s` must not contain NaN.
pub(crate) fn sort_permutation<T: Float>(s: &[T], descending: bool, perm: &mut [usize]) {
    for (i, p) in perm.iter_mut().enumerate() {
        *p = i;
    }
    let cmp = |a: &usize, b: &usize| -> Ordering {
        let order = s[*a].partial_cmp(&s[*b]).unwrap_or(Ordering::Equal);
        if descending {
            order.reverse()
        } else {
            order
        }
    };
    perm.sort_by(cmp);
}

/// Sums a slice with eight interleaved accumulators (a fixed order, so the result is
/// reproducible, and one the compiler can vectorise).
#[inline]
pub(crate) fn sum<T: Float>(x: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (chunks, rest) = x.as_chunks::<8>();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mut total = fold_lanes(acc);
    for &r in rest {
        total += r;
    }
    total
}

/// Adds eight accumulators in lane order. Read in order, the accumulators stay in one vector
/// register while the loop runs. A pairwise order (lanes `i` and `i + 4` first) made the
/// compiler split them into 2-lane registers, which took twice as long.
#[inline(always)]
fn fold_lanes<T: Float>(acc: [T; 8]) -> T {
    acc.iter().fold(T::zero(), |total, &lane| total + lane)
}

/// The dot product of two slices of equal length, summed as in [`sum`].
#[inline]
pub(crate) fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (chunks_a, rest_a) = a.as_chunks::<8>();
    let (chunks_b, rest_b) = b.as_chunks::<8>();
    for (ca, cb) in chunks_a.iter().zip(chunks_b) {
        for ((acc, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            *acc += x * y;
        }
    }
    let mut total = fold_lanes(acc);
    for (&x, &y) in rest_a.iter().zip(rest_b) {
        total += x * y;
    }
    total
}

/// The maximum of a non-empty slice without NaN.
#[inline]
pub(crate) fn max<T: Float>(x: &[T]) -> T {
    let mut acc = [T::neg_infinity(); 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for lane in 0..8 {
            acc[lane] = if c[lane] > acc[lane] {
                c[lane]
            } else {
                acc[lane]
            };
        }
    }
    let mut m = acc
        .iter()
        .fold(T::neg_infinity(), |m, &a| if a > m { a } else { m });
    for &r in rest {
        if r > m {
            m = r;
        }
    }
    m
}

/// Adds the partial column sums of every row block of each batch element: `partials` holds
/// `batch · blocks` rows of length `width`, and the result `batch` rows of length `width`.
pub(crate) fn sum_blocks<T: Float>(
    partials: &[T],
    batch: usize,
    blocks: usize,
    width: usize,
) -> Vec<T> {
    let mut out = vec![T::zero(); batch * width];
    for b in 0..batch {
        let dst = &mut out[b * width..(b + 1) * width];
        for blk in 0..blocks {
            let src = &partials[(b * blocks + blk) * width..(b * blocks + blk + 1) * width];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += *s;
            }
        }
    }
    out
}

/// Builds the permutation matrices `[batch, n, n]` with a one in row `i`, column `perm[i]` of
/// each batch element (`perm` contains `batch · n` column indices).
pub(crate) fn one_hot_rows<T: Float>(perm: &[usize], n: usize) -> Vec<T> {
    let mut out = zeroed(perm.len() * n);
    for (row, &j) in perm.iter().enumerate() {
        out[row * n + j] = T::one();
    }
    out
}

/// The shape `[..., n]` extended by one axis of length `n`: `[..., n, n]`.
pub(crate) fn square_shape(dims: &[usize]) -> Vec<usize> {
    let mut out = dims.to_vec();
    out.push(*dims.last().expect("checked non-empty"));
    out
}

/// Allocates `len` zeros for an output of `batch · n · n` elements.
///
/// On Linux, buffers of 4 MiB or more are marked for transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`) before they are first written. The operators allocate a fresh
/// `[..., n, n]` matrix on every call, and with 4 KiB pages the page faults of a 20 × 1000 ×
/// 1000 `f32` output took more time than the softmax itself (measured with `perf` on a
/// 2-core AMD EPYC VM). Elsewhere, or if the kernel rejects the advice, this is a plain
/// zeroed `Vec`.
pub(crate) fn zeroed<T: Float>(len: usize) -> Vec<T> {
    let buffer = vec![T::zero(); len];
    #[cfg(target_os = "linux")]
    advise_huge_pages(buffer.as_ptr(), len);
    buffer
}

/// Allocates room for `len` elements, advised for huge pages as in [`zeroed`] but not
/// zeroed, for a caller that writes every element through
/// [`Vec::spare_capacity_mut`] before calling `set_len`.
pub(crate) fn with_output_capacity<T>(len: usize) -> Vec<T> {
    let buffer = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    advise_huge_pages(buffer.as_ptr(), len);
    buffer
}

/// Advises huge pages for the `len` elements at `start` (see [`zeroed`]).
#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(start: *const T, len: usize) {
    const HUGE_PAGE: usize = 2 << 20;
    let bytes = len * std::mem::size_of::<T>();
    if bytes < 2 * HUGE_PAGE {
        return;
    }
    let start = start as usize;
    let aligned_start = start.next_multiple_of(HUGE_PAGE);
    let aligned_end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if aligned_end > aligned_start {
        // SAFETY: the range lies inside the caller's allocation, and MADV_HUGEPAGE only changes
        // how the kernel backs those pages, never their contents. A failure is harmless, so
        // the return value is ignored.
        unsafe {
            libc::madvise(
                aligned_start as *mut libc::c_void,
                aligned_end - aligned_start,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

/// Returns whether every element is finite, in one vectorisable pass: `0 · x` is 0 for finite
/// `x` and NaN for infinities and NaN, and a NaN survives the sum.
pub(crate) fn all_finite<T: Float>(x: &[T]) -> bool {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for lane in 0..8 {
            acc[lane] += c[lane] * T::zero();
        }
    }
    acc.iter().chain(rest).all(|v| *v * T::zero() == T::zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_permutation_breaks_ties_by_index() {
        let s = [1.0, 3.0, 1.0, 3.0, 0.0];
        let mut perm = [0; 5];
        sort_permutation(&s, true, &mut perm);
        assert_eq!(perm, [1, 3, 0, 2, 4]);
        sort_permutation(&s, false, &mut perm);
        assert_eq!(perm, [4, 0, 2, 1, 3]);
    }

    #[test]
    fn reductions_match_naive_loops() {
        let x: Vec<f64> = (0..37).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
        let y: Vec<f64> = (0..37).map(|i| (i % 5) as f64).collect();
        assert_eq!(sum(&x), x.iter().sum::<f64>());
        assert_eq!(
            dot(&x, &y),
            x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>()
        );
        assert_eq!(max(&x), 5.0);
        assert_eq!(max(&[-3.0f32]), -3.0);
    }

    #[test]
    fn all_finite_finds_every_non_finite_position() {
        for position in 0..19 {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut x = vec![1e300; 19];
                assert!(all_finite(&x));
                x[position] = bad;
                assert!(!all_finite(&x), "{bad} at {position}");
            }
        }
    }
}
