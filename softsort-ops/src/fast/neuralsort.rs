//! `P · X` for NeuralSort, one row of `P` at a time.

use std::marker::PhantomData;

use autograd::{BackwardArgs, Float, Op, Result, Tensor};

use super::apply::{missing_forward, row_gradients};
use crate::kernels::sum;
use crate::simd::dispatch;

use super::batch::{map_blocks, map_rows, row_work, sum_in_order};
use super::deviations::{absolute_deviations, absolute_deviations_vjp};
use super::neuralsort_rows::{coefficient, RowStream};
use super::order::descending_order;
use super::rowwise::{backward_rows, forward_rows};
use super::validate::{check_arity, check_scores, check_tau, check_values, value_width};

const NAME: &str = "rowwise_neuralsort_apply";

/// `Y = P · X` for NeuralSort (Grover et al. 2019),
/// `P[k, i] = softmax_i(((n + 1 − 2k) s_i − A_i)/τ)` for `k = 1..n` (row `k − 1` here) with
/// `A_i = Σ_j |s_i − s_j|`, computed one row of `P` at a time: O(n·d) memory, O(n²·d) time.
/// `A` takes O(n log n) through a sort. Consecutive rows of logits differ by `−2 s_i/τ`, so
/// each row of exponentials follows from the previous one by a multiplication per entry,
/// restarted exactly every few rows (at most 64), as in
/// [`NeuralSortPermutationNll`](super::NeuralSortPermutationNll). The rows of each batch
/// element are split into blocks of consecutive positions that run in parallel. The blocks
/// depend on `n` alone, so results do not depend on the number of threads.
///
/// Inputs: scores `s` of shape `[..., n]` and values `X` of shape `[..., n]` or `[..., n, d]`;
/// the output has the shape of `X`.
///
/// Derivatives: with `g_ki = ∂L/∂ℓ_ki` from the row softmax (recomputed in the backward pass),
/// `∂L/∂s_i += Σ_k g_ki (n + 1 − 2k)/τ`, `∂L/∂A_i = −Σ_k g_ki/τ`, and
/// `∂L/∂s_m += Σ_j sign(s_m − s_j)(∂L/∂A_m + ∂L/∂A_j)` with `sign(0) = 0`, the derivative of
/// `A`, again O(n log n) through the sort. `∂L/∂X_i = Σ_k P[k, i] Γ_k`.
///
/// Precision: both passes run in `f64` whatever `T` is, and only the results are rounded to
/// `T`. The logits reach `n·max|s|/τ` and their differences matter, so in `f32` their rounding
/// error would exceed 1 from `n·max|s|/τ ≳ 1e7` (e.g. scores ±1e4 and τ = 1e-3).
///
/// Residuals: the sort order (4 bytes per score) and `A` (one `f64` per score).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::fast::NeuralSortApply;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![1.0, 3.0, 2.0], [3])?);
/// let y = tape.apply(NeuralSortApply::new(1e-3), &[s, s])?.value().to_vec();
/// assert!((y[0] - 3.0).abs() < 1e-9 && (y[1] - 2.0).abs() < 1e-9 && (y[2] - 1.0).abs() < 1e-9);
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct NeuralSortApply<T> {
    tau: f64,
    saved: Option<Saved>,
    dtype: PhantomData<T>,
}

struct Saved {
    order: Vec<u32>,
    abs_dev: Vec<f64>,
}

impl<T: Float> NeuralSortApply<T> {
    /// Creates the op with temperature `tau` (checked in the forward pass: finite, > 0).
    pub fn new(tau: f64) -> Self {
        NeuralSortApply {
            tau,
            saved: None,
            dtype: PhantomData,
        }
    }
}

/// Scalar operations per entry of `P` and column of `X` in either pass, for the parallel
/// threshold.
const WORK_PER_ENTRY: usize = 3;

/// Writes the current row of `P` of `stream` into `buf`: the stream's values over their sum.
#[inline(always)]
fn stream_probabilities(stream: &RowStream<'_>, buf: &mut [f64]) {
    let values = stream.values();
    let scale = 1.0 / sum(values);
    for (p, &v) in buf.iter_mut().zip(values) {
        *p = v * scale;
    }
}

/// Converts a slice to `f64`, in which both passes run (exact for `f32` input).
fn widen<T: Float>(x: &[T]) -> Vec<f64> {
    x.iter().map(|v| v.as_f64()).collect()
}

impl<T: Float> Op<T> for NeuralSortApply<T> {
    fn name(&self) -> &str {
        NAME
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        check_arity(NAME, inputs, 2)?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let (rows, n) = check_scores(NAME, &inputs[0])?;
        let d = check_values(NAME, "values", inputs[0].shape(), &inputs[1])?;
        let inv_tau = 1.0 / tau.as_f64();
        let s = widen(inputs[0].data());
        let x = widen(inputs[1].data());

        let prepared = map_rows(rows, row_work(n, 1), |r| {
            let s = &s[r * n..(r + 1) * n];
            let order = descending_order(s);
            let abs_dev = absolute_deviations(s, &order);
            (order, abs_dev)
        });
        let blocks = map_blocks(rows, n, n * d * WORK_PER_ENTRY, |r, positions| {
            dispatch(
                #[inline(always)]
                || {
                    let s = &s[r * n..(r + 1) * n];
                    let mut stream = RowStream::new(s, &prepared[r].1, inv_tau);
                    forward_rows(positions, d, &x[r * n * d..(r + 1) * n * d], |k, buf| {
                        stream.advance(k);
                        stream_probabilities(&stream, buf);
                    })
                },
            )
        });

        let mut out = Vec::with_capacity(rows * n * d);
        for y in blocks.into_iter().flatten() {
            out.extend(y.into_iter().map(T::from_f64));
        }
        let mut saved = Saved {
            order: Vec::with_capacity(rows * n),
            abs_dev: Vec::with_capacity(rows * n),
        };
        for (order, abs_dev) in prepared {
            saved.order.extend(order);
            saved.abs_dev.extend(abs_dev);
        }
        self.saved = Some(saved);
        Tensor::from_vec(out, inputs[1].shape().clone())
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let saved = self.saved.as_ref().ok_or_else(|| missing_forward(NAME))?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let scores = &args.inputs[0];
        let values = &args.inputs[1];
        let n = *scores.dims().last().unwrap_or(&1);
        let rows = scores.numel() / n;
        let d = value_width(scores.shape(), values.shape());
        let inv_tau = 1.0 / tau.as_f64();
        let (s_all, x_all) = (widen(scores.data()), widen(values.data()));
        let (y_all, gy_all) = (widen(args.output.data()), widen(args.grad_output.data()));

        // Per block: Σ_k g_ki c_k/τ (n entries), −Σ_k g_ki/τ (n entries, the gradient of A)
        // and the block's part of ∂L/∂X (n·d entries).
        let blocks = map_blocks(rows, n, n * d * WORK_PER_ENTRY, |r, positions| {
            dispatch(
                #[inline(always)]
                || {
                    let span = r * n..(r + 1) * n;
                    let wide = r * n * d..(r + 1) * n * d;
                    let mut stream =
                        RowStream::new(&s_all[span.clone()], &saved.abs_dev[span], inv_tau);
                    let mut grads = vec![0.0; 2 * n];
                    let (grad_s, grad_a) = grads.split_at_mut(n);
                    let grad_x = backward_rows(
                        positions,
                        d,
                        &x_all[wide.clone()],
                        &y_all[wide.clone()],
                        &gy_all[wide],
                        |k, buf| {
                            stream.advance(k);
                            stream_probabilities(&stream, buf);
                        },
                        |k, g| {
                            let scale = coefficient(n, k) * inv_tau;
                            for ((gs, ga), &gi) in grad_s.iter_mut().zip(grad_a.iter_mut()).zip(g) {
                                *gs += gi * scale;
                                *ga -= gi * inv_tau;
                            }
                        },
                    );
                    grads.extend(grad_x);
                    grads
                },
            )
        });

        let rows = blocks.into_iter().enumerate().map(|(r, row_blocks)| {
            let span = r * n..(r + 1) * n;
            let total = sum_in_order(&row_blocks, n * (2 + d));
            let (grads, gx) = total.split_at(2 * n);
            let (direct, grad_a) = grads.split_at(n);
            let mut gs = direct.to_vec();
            absolute_deviations_vjp(&s_all[span.clone()], &saved.order[span], grad_a, &mut gs);
            let narrow = |g: &[f64]| g.iter().map(|&v| T::from_f64(v)).collect::<Vec<T>>();
            (narrow(&gs), narrow(gx))
        });
        row_gradients(args, rows)
    }
}
