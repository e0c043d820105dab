//! Matrix products through `matrixmultiply`, with transposes passed as strides rather than
//! copied.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::PARALLEL_THRESHOLD;
use crate::shape::Shape;
use crate::tape::Var;
use crate::tensor::{checked_len, Tensor};

/// A strided view of one `rows × cols` matrix inside a buffer.
#[derive(Clone, Copy)]
struct MatrixView {
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl MatrixView {
    fn row_major(rows: usize, cols: usize) -> Self {
        MatrixView {
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    fn transposed(self) -> Self {
        MatrixView {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// Products with fewer multiply-adds than this run as one call on the calling thread.
const SPLIT_WORK: usize = 1 << 21;

/// The maximum number of parts of one product.
const MAX_PARTS: usize = 8;

/// The minimum number of output rows or columns in one part. Every part packs the whole of the
/// other operand, so thinner parts would spend more time copying than multiplying.
const MIN_PART_OUTER: usize = 256;

/// The shortest stretch of the inner axis in one part of a split over that axis.
const MIN_PART_INNER: usize = 2048;

/// The division of one product between threads. The choice and the part lengths depend on
/// the shapes alone, so results do not depend on the number of threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    /// One call on the calling thread.
    Serial,
    /// Blocks of this many output rows.
    Rows(usize),
    /// Blocks of this many output columns.
    Columns(usize),
    /// Stretches of this many inner indices. Each stretch gives a partial product, and the
    /// partial products are added in the order of their stretches.
    Inner(usize),
}

/// Chooses the split of an `m × k` by `k × n` product: along the output rows where there are
/// many, else along the output columns, else along a long inner axis. Only the last adds
/// extra sums, so it rounds differently from a single call, but the same way on every run.
fn split_plan(m: usize, k: usize, n: usize) -> Split {
    if m.saturating_mul(k).saturating_mul(n) < SPLIT_WORK {
        return Split::Serial;
    }
    let part_len =
        |len: usize, min: usize| (len >= 2 * min).then(|| len.div_ceil(MAX_PARTS).max(min));
    if let Some(rows) = part_len(m, MIN_PART_OUTER) {
        Split::Rows(rows)
    } else if let Some(columns) = part_len(n, MIN_PART_OUTER) {
        Split::Columns(columns)
    } else if let Some(inner) = part_len(k, MIN_PART_INNER) {
        Split::Inner(inner)
    } else {
        Split::Serial
    }
}

/// A pointer to the output that parts writing disjoint columns share between threads.
#[derive(Clone, Copy)]
struct SharedOutput<T>(*mut T);

impl<T> SharedOutput<T> {
    /// Returns the pointer. Closures call this rather than reading the field, so that they
    /// capture the whole `Send` wrapper instead of the bare pointer.
    fn pointer(self) -> *mut T {
        self.0
    }
}

// SAFETY: the parts that share a `SharedOutput` write disjoint elements of a buffer that the
// caller borrows exclusively for the duration of the parallel loop.
unsafe impl<T: Send> Send for SharedOutput<T> {}
unsafe impl<T: Send> Sync for SharedOutput<T> {}

/// `c = a · b + beta · c` for one matrix of each operand, split between threads for large
/// products as [`split_plan`] decides.
fn gemm<T: Float>(a: &[T], av: MatrixView, b: &[T], bv: MatrixView, beta: T, c: &mut [T]) {
    debug_assert_eq!(av.cols, bv.rows);
    debug_assert_eq!(c.len(), av.rows * bv.cols);
    if c.is_empty() {
        return;
    }
    if av.cols == 0 {
        c.iter_mut().for_each(|x| *x *= beta);
        return;
    }
    let (m, k, n) = (av.rows, av.cols, bv.cols);
    match split_plan(m, k, n) {
        Split::Serial => {
            // SAFETY: the views address only elements inside `a` and `b` (their extents are
            // checked by the callers' shape checks), and `c` is a distinct mutable slice of
            // exactly m × n elements.
            unsafe { gemm_raw(a.as_ptr(), av, b.as_ptr(), bv, beta, c.as_mut_ptr(), n) }
        }
        Split::Rows(rows) => {
            c.par_chunks_mut(rows * n)
                .enumerate()
                .for_each(|(part, c_part)| {
                    let a_part = MatrixView {
                        rows: c_part.len() / n,
                        ..av
                    };
                    let offset = part * rows * av.row_stride as usize;
                    // SAFETY: rows part·rows.. of `a` start at `offset` and lie inside `a`,
                    // and `c_part` is exactly those rows of `c`.
                    unsafe {
                        gemm_raw(
                            a[offset..].as_ptr(),
                            a_part,
                            b.as_ptr(),
                            bv,
                            beta,
                            c_part.as_mut_ptr(),
                            n,
                        )
                    }
                });
        }
        Split::Columns(columns) => {
            let output = SharedOutput(c.as_mut_ptr());
            (0..n.div_ceil(columns)).into_par_iter().for_each(|part| {
                let first = part * columns;
                let b_part = MatrixView {
                    cols: columns.min(n - first),
                    ..bv
                };
                let offset = first * bv.col_stride as usize;
                // SAFETY: columns first.. of `b` start at `offset` and lie inside `b`. This
                // part writes only columns first..first + b_part.cols of `c`, which no other
                // part writes, and `c` stays exclusively borrowed until the loop ends.
                unsafe {
                    gemm_raw(
                        a.as_ptr(),
                        av,
                        b[offset..].as_ptr(),
                        b_part,
                        beta,
                        output.pointer().add(first),
                        n,
                    )
                }
            });
        }
        Split::Inner(inner) => {
            let mut partials = vec![T::zero(); k.div_ceil(inner) * m * n];
            partials
                .par_chunks_mut(m * n)
                .enumerate()
                .for_each(|(part, partial)| {
                    let first = part * inner;
                    let len = inner.min(k - first);
                    let a_part = MatrixView { cols: len, ..av };
                    let b_part = MatrixView { rows: len, ..bv };
                    let a_offset = first * av.col_stride as usize;
                    let b_offset = first * bv.row_stride as usize;
                    // SAFETY: inner indices first..first + len of `a` and `b` start at the
                    // offsets and lie inside them, and `partial` is a distinct m × n buffer.
                    unsafe {
                        gemm_raw(
                            a[a_offset..].as_ptr(),
                            a_part,
                            b[b_offset..].as_ptr(),
                            b_part,
                            T::zero(),
                            partial.as_mut_ptr(),
                            n,
                        )
                    }
                });
            if beta == T::zero() {
                c.fill(T::zero());
            } else {
                c.iter_mut().for_each(|x| *x *= beta);
            }
            for partial in partials.chunks_exact(m * n) {
                c.iter_mut().zip(partial).for_each(|(x, &p)| *x += p);
            }
        }
    }
}

/// `c = a · b + beta · c` in one call on the calling thread, with `c` row-major with row
/// stride `c_row_stride`.
///
/// # Safety
/// `a` and `b` must be valid for every element their views address, and `c` for the
/// `av.rows × bv.cols` elements at row stride `c_row_stride`, none of which `a` or `b`
/// address.
unsafe fn gemm_raw<T: Float>(
    a: *const T,
    av: MatrixView,
    b: *const T,
    bv: MatrixView,
    beta: T,
    c: *mut T,
    c_row_stride: usize,
) {
    T::gemm(
        av.rows,
        av.cols,
        bv.cols,
        T::one(),
        a,
        av.row_stride,
        av.col_stride,
        b,
        bv.row_stride,
        bv.col_stride,
        beta,
        c,
        c_row_stride as isize,
        1,
    );
}

/// Runs `gemm` once per batch entry into consecutive output blocks, in parallel when the work is
/// large. `a_step` and `b_step` are the element offsets between batch entries (0 to reuse one
/// matrix for every entry).
#[allow(clippy::too_many_arguments)]
fn batched_gemm<T: Float>(
    batch: usize,
    a: &[T],
    a_step: usize,
    av: MatrixView,
    b: &[T],
    b_step: usize,
    bv: MatrixView,
    out: &mut [T],
) {
    let block = av.rows * bv.cols;
    if block == 0 {
        return;
    }
    let run = |i: usize, c: &mut [T]| {
        gemm(&a[i * a_step..], av, &b[i * b_step..], bv, T::zero(), c);
    };
    let work = batch
        .saturating_mul(av.rows)
        .saturating_mul(av.cols)
        .saturating_mul(bv.cols);
    if batch > 1 && work >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(i, c)| run(i, c));
    } else {
        out.chunks_mut(block)
            .enumerate()
            .for_each(|(i, c)| run(i, c));
    }
}

/// The layout of a product: an optional batch axis on either operand.
#[derive(Clone, Copy, Debug)]
struct Layout {
    batch: usize,
    a_batched: bool,
    b_batched: bool,
    m: usize,
    k: usize,
    n: usize,
}

fn layout<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Result<Layout> {
    let bad = || {
        Error::shape(
            "matmul",
            format!(
                "cannot multiply shapes {} and {}: expected [m, k] or [batch, m, k] times [k, n] or [batch, k, n] with equal k and batch",
                a.shape(),
                b.shape()
            ),
        )
    };
    let (a_batched, b_batched) = match (a.ndim(), b.ndim()) {
        (2, 2) => (false, false),
        (3, 2) => (true, false),
        (2, 3) => (false, true),
        (3, 3) => (true, true),
        _ => return Err(bad()),
    };
    let ad = a.dims();
    let bd = b.dims();
    let (m, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
    let (k2, n) = (bd[bd.len() - 2], bd[bd.len() - 1]);
    if k != k2 || (a_batched && b_batched && ad[0] != bd[0]) {
        return Err(bad());
    }
    let batch = if a_batched {
        ad[0]
    } else if b_batched {
        bd[0]
    } else {
        1
    };
    Ok(Layout {
        batch,
        a_batched,
        b_batched,
        m,
        k,
        n,
    })
}

struct MatMul {
    layout: Option<Layout>,
}

impl<T: Float> Op<T> for MatMul {
    fn name(&self) -> &str {
        "matmul"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let l = layout(a, b)?;
        let shape = if l.a_batched || l.b_batched {
            Shape::new(&[l.batch, l.m, l.n])
        } else {
            Shape::new(&[l.m, l.n])
        };
        let numel = checked_len::<T>("matmul", &shape)?;
        self.layout = Some(l);
        let mut out = vec![T::zero(); numel];
        batched_gemm(
            l.batch,
            a.data(),
            if l.a_batched { l.m * l.k } else { 0 },
            MatrixView::row_major(l.m, l.k),
            b.data(),
            if l.b_batched { l.k * l.n } else { 0 },
            MatrixView::row_major(l.k, l.n),
            &mut out,
        );
        Tensor::from_vec(out, shape)
    }

    // ∂L/∂A = G · Bᵀ and ∂L/∂B = Aᵀ · G, with the transposes passed as swapped strides. An
    // operand shared across the batch receives the sum over the batch.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let l = self.layout.expect("forward ran before backward");
        let (a, b, g) = (&args.inputs[0], &args.inputs[1], args.grad_output);
        let (a_view, b_view, g_view) = (
            MatrixView::row_major(l.m, l.k),
            MatrixView::row_major(l.k, l.n),
            MatrixView::row_major(l.m, l.n),
        );
        let b_step = if l.b_batched { l.k * l.n } else { 0 };
        let a_step = if l.a_batched { l.m * l.k } else { 0 };

        let grad_a = args.needs_grad[0].then(|| {
            let mut out = vec![T::zero(); a.numel()];
            if l.a_batched {
                batched_gemm(
                    l.batch,
                    g.data(),
                    l.m * l.n,
                    g_view,
                    b.data(),
                    b_step,
                    b_view.transposed(),
                    &mut out,
                );
            } else {
                for i in 0..l.batch {
                    gemm(
                        &g.data()[i * l.m * l.n..],
                        g_view,
                        &b.data()[i * b_step..],
                        b_view.transposed(),
                        T::one(),
                        &mut out,
                    );
                }
            }
            Tensor::from_vec(out, a.shape().clone())
        });

        let grad_b = args.needs_grad[1].then(|| {
            let mut out = vec![T::zero(); b.numel()];
            if l.b_batched {
                batched_gemm(
                    l.batch,
                    a.data(),
                    a_step,
                    a_view.transposed(),
                    g.data(),
                    l.m * l.n,
                    g_view,
                    &mut out,
                );
            } else if l.a_batched {
                // Stack the batch into one (batch·m) × k matrix: one product sums over the batch.
                let rows = l.batch * l.m;
                gemm(
                    a.data(),
                    MatrixView::row_major(rows, l.k).transposed(),
                    g.data(),
                    MatrixView::row_major(rows, l.n),
                    T::zero(),
                    &mut out,
                );
            } else {
                gemm(
                    a.data(),
                    a_view.transposed(),
                    g.data(),
                    g_view,
                    T::zero(),
                    &mut out,
                );
            }
            Tensor::from_vec(out, b.shape().clone())
        });

        Ok(vec![grad_a.transpose()?, grad_b.transpose()?])
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The matrix product `self · other` for `[m, k] · [k, n]`, or batched with a leading batch
    /// axis on either or both operands (`[b, m, k] · [b, k, n]`, `[b, m, k] · [k, n]`,
    /// `[m, k] · [b, k, n]`).
    ///
    /// Gradients: `∂L/∂A = G · Bᵀ`, `∂L/∂B = Aᵀ · G`, summed over the batch for an unbatched
    /// operand.
    ///
    /// Batches run in parallel, and so do the parts of a large single product (blocks of
    /// output rows or columns, or stretches of a long inner axis whose partial products are
    /// added in order). The parts depend on the shapes alone, so results are bit-identical for
    /// any number of threads.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f32>::new();
    /// let a = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2])?);
    /// let b = tape.constant(Tensor::from_vec(vec![5.0, 6.0, 7.0, 8.0], [2, 2])?);
    /// assert_eq!(a.matmul(b)?.value().to_vec(), vec![19.0, 22.0, 43.0, 50.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] if the operands are not 2-D or 3-D, or the inner or batch lengths differ.
    pub fn matmul(self, other: Var<'t, T>) -> Result<Var<'t, T>> {
        self.tape.apply(MatMul { layout: None }, &[self, other])
    }
}

/// Multiplies two row-major matrices outside any tape: `[m, k] · [k, n]`.
///
/// # Errors
/// [`Error::Shape`] as for [`Var::matmul`].
pub fn matmul_tensors<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
    MatMul { layout: None }.forward(&[a.clone(), b.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a · b + beta · c` by the definition, for row-major operands.
    fn naive(a: &[f64], b: &[f64], c: &[f64], (m, k, n): (usize, usize, usize)) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                out[i * n + j] = dot + 0.5 * c[i * n + j];
            }
        }
        out
    }

    #[test]
    fn split_plan_picks_axis() {
        assert_eq!(split_plan(60, 64, 12544), Split::Columns(1568));
        assert_eq!(split_plan(12544, 60, 64), Split::Rows(1568));
        assert_eq!(split_plan(60, 12544, 64), Split::Inner(2048));
        assert_eq!(split_plan(600, 8, 300), Split::Serial);
        assert_eq!(split_plan(300, 300, 300), Split::Serial);
    }

    #[test]
    fn split_products_of_transposed_views_match_definition() {
        // The backward passes multiply by transposes, which reach the splits as swapped strides.
        for (m, k, n) in [(700, 12, 300), (10, 400, 700), (6, 5000, 80)] {
            let a: Vec<f64> = (0..m * k).map(|v| (v as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..k * n).map(|v| (v as f64 * 0.11).cos()).collect();
            let a_t: Vec<f64> = (0..k * m).map(|v| a[(v % m) * k + v / m]).collect();
            let b_t: Vec<f64> = (0..n * k).map(|v| b[(v % k) * n + v / k]).collect();
            let c0: Vec<f64> = (0..m * n).map(|v| (v % 7) as f64).collect();
            let expected = naive(&a, &b, &c0, (m, k, n));
            let mut c = c0.clone();
            gemm(
                &a_t,
                MatrixView::row_major(k, m).transposed(),
                &b_t,
                MatrixView::row_major(n, k).transposed(),
                0.5,
                &mut c,
            );
            for (index, (x, y)) in c.iter().zip(&expected).enumerate() {
                assert!((x - y).abs() < 1e-9, "{m}×{k}×{n} at {index}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn split_products_match_definition() {
        // One shape per split: rows, columns, inner, each with a ragged last part.
        for (m, k, n) in [(700, 12, 300), (10, 400, 700), (6, 5000, 80)] {
            assert_ne!(split_plan(m, k, n), Split::Serial, "{m}×{k}×{n}");
            let a: Vec<f64> = (0..m * k).map(|v| (v as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..k * n).map(|v| (v as f64 * 0.11).cos()).collect();
            let c0: Vec<f64> = (0..m * n).map(|v| (v % 7) as f64).collect();
            let expected = naive(&a, &b, &c0, (m, k, n));
            let mut c = c0.clone();
            gemm(
                &a,
                MatrixView::row_major(m, k),
                &b,
                MatrixView::row_major(k, n),
                0.5,
                &mut c,
            );
            for (index, (x, y)) in c.iter().zip(&expected).enumerate() {
                assert!((x - y).abs() < 1e-9, "{m}×{k}×{n} at {index}: {x} vs {y}");
            }
        }
    }
}
