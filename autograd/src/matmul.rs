//! Matrix products through `matrixmultiply`, with transposes passed as strides rather than
//! copied.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::PARALLEL_THRESHOLD;
use crate::tape::Var;
use crate::tensor::Tensor;

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

/// `c = a · b + beta · c` for one matrix of each operand.
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
    // SAFETY: the views address only elements inside `a` and `b` (their extents are checked by
    // the callers' shape checks), `c` is a distinct mutable slice of exactly rows × cols.
    unsafe {
        T::gemm(
            av.rows,
            av.cols,
            bv.cols,
            T::one(),
            a.as_ptr(),
            av.row_stride,
            av.col_stride,
            b.as_ptr(),
            bv.row_stride,
            bv.col_stride,
            beta,
            c.as_mut_ptr(),
            bv.cols as isize,
            1,
        );
    }
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
    let work = batch * av.rows * av.cols * bv.cols;
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
        self.layout = Some(l);
        let mut out = vec![T::zero(); l.batch * l.m * l.n];
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
        let shape = if l.a_batched || l.b_batched {
            vec![l.batch, l.m, l.n]
        } else {
            vec![l.m, l.n]
        };
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
