//! The negative log-likelihood of a target permutation under NeuralSort, one row of `P` at a
//! time.

use std::marker::PhantomData;

use autograd::{BackwardArgs, Float, Op, Result, Tensor};

use crate::float::SortFloat;
use crate::kernels::sum;
use crate::simd::dispatch;

use super::apply::missing_forward;
use super::batch::{map_blocks, map_rows, row_work, sum_in_order};
use super::deviations::{absolute_deviations, absolute_deviations_vjp};
use super::loss::{target_gradient, MeanLoss};
use super::neuralsort_rows::{coefficient, RowStream};
use super::order::descending_order;
use super::validate::{check_nll_inputs, check_tau, target_index};

const NAME: &str = "fused_neuralsort_permutation_nll";

/// Scalar operations per element of `P` in either pass (a multiplication and a few more, with
/// an exponential at every restart of the row stream), for the parallel threshold.
const WORK_PER_ENTRY: usize = 4;

/// The mean negative log-likelihood of target permutations under NeuralSort (Grover et al.
/// 2019): a scalar loss computed row by row in O(n²) time, with O(n) memory per row of scores
/// and without forming `P`.
///
/// Inputs: scores `s` of shape `[..., n]` and targets `π` of the same shape, whose every row
/// contains a permutation of `0..n` (as floating-point integers): `π(k)` is the input element
/// that belongs at sorted position `k` (descending, 0-based). With logits
/// `ℓ_ki = (c_k s_i − A_i)/τ`, `c_k = n − 1 − 2k`, `A_i = Σ_j |s_i − s_j|` and `B` rows of
/// length `n`, the output is
///
/// `loss = (1 / (B·n)) · Σ_b Σ_k (log Z_k − ℓ_{k,π(k)})`, `log Z_k = log Σ_i exp(ℓ_ki)`,
///
/// which is `−(1 / (B·n)) Σ log P[k, π(k)]` for the matrix `P[k, i] = softmax_i(ℓ_ki)` of
/// [`NeuralSort`](crate::NeuralSort). `log Z_k` subtracts the row maximum of the logits before
/// the exponentials, so it cannot overflow. `A` takes O(n log n) through a sort. Consecutive
/// rows of logits differ by `−2 s_i/τ`, so each row of exponentials follows from the previous
/// one by a multiplication per entry, restarted exactly every few rows (up to 64) so that
/// nothing significant underflows: an exponential is needed only per restart, and with the
/// scores in `[0, 1]` and τ = 100 of the SoftSort paper's speed task, once in 64 rows.
///
/// The loss is the exact `−log P`. [`permutation_cross_entropy`](crate::permutation_cross_entropy)
/// takes `log(P + 1e-20)` instead, so the two agree wherever `P[k, π(k)] ≫ 1e-20`, and this op
/// stays finite and informative where `P[k, π(k)]` underflows.
///
/// Derivative, with `γ = g/(B·n)` for the incoming gradient `g` and
/// `q_ki = γ (P[k, i] − [i = π(k)])`: `∂L/∂s_i += Σ_k q_ki c_k/τ` and
/// `∂L/∂A_i = −Σ_k q_ki/τ = −γ (Σ_k P[k, i] − 1)/τ` (each `i` is the target of exactly one
/// `k`), and `∂L/∂s_m += Σ_j sign(s_m − s_j)(∂L/∂A_m + ∂L/∂A_j)` with `sign(0) = 0`, again
/// O(n log n) through the sort. The backward pass recomputes each row of `P` the same way and
/// normalises it with the row sum saved by the forward pass.
/// The targets get a zero gradient.
///
/// An empty batch (`B = 0`, e.g. scores of shape `[0, n]`) is rejected with a shape error: a
/// mean over no rows is undefined.
///
/// Precision: both passes run in `f64` whatever `T` is, and only the loss and the gradient are
/// rounded to `T`. The logits are large numbers whose differences matter: with scores of
/// magnitude `M` they reach `n·M/τ`, so in `f32` their rounding error (about `n·M/τ · 6e-8`)
/// exceeds 1 as soon as `n·M/τ ≳ 1e7` (e.g. scores ±1e4 and τ = 1e-3), and an `f32` softmax
/// over them would be wrong. In `f64` the same holds from `n·M/τ ≳ 1e15`.
///
/// Residuals: the sort order (4 bytes per score), `A` and the row sums (one `f64` per score each).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::fast::NeuralSortPermutationNll;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![2.0, 0.0], [2])?);
/// let target = tape.constant(Tensor::from_vec(vec![0.0, 1.0], [2])?); // already sorted
/// let loss = tape.apply(NeuralSortPermutationNll::new(1.0), &[s, target])?;
/// // A = [2, 2]; the logits are (s − 2) for k = 0 and (−s − 2) for k = 1, so both rows put
/// // probability 1/(1 + e^{−2}) on their target.
/// let expected = (1.0 + (-2f64).exp()).ln();
/// assert!((loss.value().item()? - expected).abs() < 1e-12);
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct NeuralSortPermutationNll<T> {
    tau: f64,
    saved: Option<Saved>,
    dtype: PhantomData<T>,
}

struct Saved {
    order: Vec<u32>,
    abs_dev: Vec<f64>,
    /// `Σ_i values_i` of the row stream at every position: `Z_k` divided by the stream's
    /// shift, which the backward pass recomputes exactly.
    stream_sums: Vec<f64>,
}

impl<T: SortFloat> NeuralSortPermutationNll<T> {
    /// Creates the op with temperature `tau` (checked in the forward pass: finite, > 0).
    pub fn new(tau: f64) -> Self {
        NeuralSortPermutationNll {
            tau,
            saved: None,
            dtype: PhantomData,
        }
    }
}

/// Converts the scores to `f64`, in which both passes run (exact for `f32` input).
fn widen<T: Float>(x: &[T]) -> Vec<f64> {
    x.iter().map(|v| v.as_f64()).collect()
}

/// Adds `c · P[k, i]` to `direct[i]` and `P[k, i]` to `columns[i]`, where
/// `P[k, i] = scale · values[i]`.
#[inline(always)]
fn accumulate_row(c: f64, scale: f64, values: &[f64], direct: &mut [f64], columns: &mut [f64]) {
    for ((d, col), &v) in direct.iter_mut().zip(columns.iter_mut()).zip(values) {
        let p = scale * v;
        *d += c * p;
        *col += p;
    }
}

impl<T: SortFloat> Op<T> for NeuralSortPermutationNll<T> {
    fn name(&self) -> &str {
        NAME
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let (tau, rows, n) = check_nll_inputs::<T>(NAME, inputs, self.tau)?;
        let inv_tau = 1.0 / tau.as_f64();
        let s = widen(inputs[0].data());
        let target = inputs[1].data();

        let prepared = map_rows(rows, row_work(n, 1), |r| {
            let s = &s[r * n..(r + 1) * n];
            let order = descending_order(s);
            let abs_dev = absolute_deviations(s, &order);
            (order, abs_dev)
        });
        let blocks = map_blocks(rows, n, n * WORK_PER_ENTRY, |r, positions| {
            dispatch(
                #[inline(always)]
                || {
                    let s = &s[r * n..(r + 1) * n];
                    let abs_dev = &prepared[r].1;
                    let target = &target[r * n..(r + 1) * n];
                    let mut stream = RowStream::new(s, abs_dev, inv_tau);
                    let mut sums = Vec::with_capacity(positions.len());
                    let mut nll = 0.0;
                    // log Z_k = shift_k + ln sum_k. The sums lie in [e^−150, n], so four of
                    // them multiply without overflow or underflow and share one logarithm.
                    let mut product = 1.0;
                    for (count, k) in positions.enumerate() {
                        let c = coefficient(n, k);
                        let shift = stream.advance(k);
                        let row_sum = sum(stream.values());
                        let j = target_index(target[k]);
                        nll += shift - (c * s[j] - abs_dev[j]) * inv_tau;
                        sums.push(row_sum);
                        product *= row_sum;
                        if count % 4 == 3 {
                            nll += product.ln();
                            product = 1.0;
                        }
                    }
                    (sums, nll + product.ln())
                },
            )
        });

        let mut total = 0.0;
        let mut stream_sums = Vec::with_capacity(rows * n);
        for (block_sums, nll) in blocks.into_iter().flatten() {
            stream_sums.extend(block_sums);
            total += nll;
        }
        let mut saved = Saved {
            order: Vec::with_capacity(rows * n),
            abs_dev: Vec::with_capacity(rows * n),
            stream_sums,
        };
        for (order, abs_dev) in prepared {
            saved.order.extend(order);
            saved.abs_dev.extend(abs_dev);
        }
        self.saved = Some(saved);
        Ok(Tensor::scalar(T::from_f64(total / (rows * n) as f64)))
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let saved = self.saved.as_ref().ok_or_else(|| missing_forward(NAME))?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let inv_tau = 1.0 / tau.as_f64();
        let MeanLoss { rows, n, .. } = MeanLoss::new(args)?;
        let scores = &args.inputs[0];
        let s = widen(scores.data());
        let targets = args.inputs[1].data();
        let gamma = args.grad_output.item()?.as_f64() / (rows * n) as f64;
        let scale = gamma * inv_tau;

        let grad_s = if args.needs_grad[0] {
            // Per block: Σ_k c_k P[k, i] (first n entries) and Σ_k P[k, i] (last n entries).
            let blocks = map_blocks(rows, n, n * WORK_PER_ENTRY, |r, positions| {
                dispatch(
                    #[inline(always)]
                    || {
                        let span = r * n..(r + 1) * n;
                        let s = &s[span.clone()];
                        let abs_dev = &saved.abs_dev[span.clone()];
                        let row_sums = &saved.stream_sums[span];
                        let mut stream = RowStream::new(s, abs_dev, inv_tau);
                        let mut sums = vec![0.0; 2 * n];
                        let (direct, columns) = sums.split_at_mut(n);
                        for k in positions {
                            stream.advance(k);
                            let scale = 1.0 / row_sums[k];
                            let c = coefficient(n, k);
                            accumulate_row(c, scale, stream.values(), direct, columns);
                        }
                        sums
                    },
                )
            });

            let mut grad = Vec::with_capacity(rows * n);
            for (r, row_blocks) in blocks.into_iter().enumerate() {
                let span = r * n..(r + 1) * n;
                let sums = sum_in_order(&row_blocks, 2 * n);
                let (direct, columns) = sums.split_at(n);
                let mut row = direct.to_vec();
                for (k, &p) in targets[span.clone()].iter().enumerate() {
                    row[target_index(p)] -= coefficient(n, k);
                }
                for g in row.iter_mut() {
                    *g *= scale;
                }
                let grad_a: Vec<f64> = columns.iter().map(|&c| (1.0 - c) * scale).collect();
                absolute_deviations_vjp(&s[span.clone()], &saved.order[span], &grad_a, &mut row);
                grad.extend(row.into_iter().map(T::from_f64));
            }
            Some(Tensor::from_vec(grad, scores.shape().clone())?)
        } else {
            None
        };
        Ok(vec![grad_s, target_gradient(args)])
    }
}
