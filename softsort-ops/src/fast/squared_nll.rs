//! The negative log-likelihood of a target permutation under SoftSort with the squared
//! distance, one row of `P` at a time.

use autograd::{BackwardArgs, Op, Result, Tensor};

use crate::float::SortFloat;
use crate::kernels::sum;
use crate::simd::dispatch;

use super::apply::missing_forward;
use super::batch::{map_blocks, map_rows, row_work, sum_in_order};
use super::loss::{target_gradient, MeanLoss};
use super::order::descending_order;
use super::validate::{check_nll_inputs, check_tau, target_index};

const NAME: &str = "fused_softsort_squared_permutation_nll";

/// Scalar operations per element of `P` in either pass (an exponential and a few more), for
/// the parallel threshold.
const WORK_PER_ENTRY: usize = 20;

/// The mean negative log-likelihood of target permutations under SoftSort with the squared
/// distance: a scalar loss computed row by row in O(n²) time, with O(n) memory per row of
/// scores and without forming `P`.
///
/// Inputs: scores `s` of shape `[..., n]` and targets `π` of the same shape, whose every row
/// contains a permutation of `0..n` (as floating-point integers): `π(i)` is the input element
/// that belongs at sorted position `i` (descending). With `ŝ = sort(s)` descending (ties by
/// input index), logits `ℓ_ij = −(ŝ_i − s_j)²/τ` and `B` rows of length `n`, the output is
///
/// `loss = (1 / (B·n)) · Σ_b Σ_i (log Z_i − ℓ_{i,π(i)})`, `log Z_i = log Σ_j exp(ℓ_ij)`,
///
/// which is `−(1 / (B·n)) Σ log P[i, π(i)]` for `P[i, j] = softmax_j(ℓ_ij)`, the matrix of
/// [`SoftSort`](crate::SoftSort) with [`Distance::Squared`](crate::Distance::Squared). With `π`
/// the identity, `1 + loss` is the speed benchmark's `mean(1 − log diag P)`.
///
/// The loss is the exact `−log P`. [`permutation_cross_entropy`](crate::permutation_cross_entropy)
/// takes `log(P + 1e-20)` instead, so the two agree wherever `P[i, π(i)] ≫ 1e-20`, and this op
/// stays finite and informative where `P[i, π(i)]` underflows. The largest logit of each row
/// is the `0` at `j = σ(i)` (with `ŝ_i = s_σ(i)`), so the sum `Z_i ≥ 1` needs no max
/// subtraction and cannot overflow.
///
/// Derivative, with `γ = g/(B·n)` for the incoming gradient `g`,
/// `q_ij = γ (P[i, j] − [j = π(i)])` and `d_ij = ŝ_i − s_j`:
/// `∂L/∂s_j += (2/τ) Σ_i q_ij d_ij` and `∂L/∂ŝ_i = −(2/τ) Σ_j q_ij d_ij`, which reaches
/// `s_σ(i)` through the sort. The backward pass recomputes each row of `P` from `log Z_i`. The
/// targets get a zero gradient.
///
/// An empty batch (`B = 0`, e.g. scores of shape `[0, n]`) is rejected with a shape error: a
/// mean over no rows is undefined.
///
/// Residuals: the sort order (4 bytes per score) and `log Z` (one element per score).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::fast::SquaredSoftSortPermutationNll;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![2.0, 0.0], [2])?);
/// let target = tape.constant(Tensor::from_vec(vec![0.0, 1.0], [2])?); // already sorted
/// let loss = tape.apply(SquaredSoftSortPermutationNll::new(1.0), &[s, target])?;
/// let expected = (1.0 + (-4f64).exp()).ln(); // −log P[i, i] = log(1 + e^{−(2 − 0)²})
/// assert!((loss.value().item()? - expected).abs() < 1e-12);
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct SquaredSoftSortPermutationNll<T> {
    tau: f64,
    saved: Option<Saved<T>>,
}

struct Saved<T> {
    order: Vec<u32>,
    log_z: Vec<T>,
}

impl<T: SortFloat> SquaredSoftSortPermutationNll<T> {
    /// Creates the op with temperature `tau` (checked in the forward pass: finite, > 0).
    pub fn new(tau: f64) -> Self {
        SquaredSoftSortPermutationNll { tau, saved: None }
    }
}

/// Returns `log Σ_j exp(−(t − s_j)²/τ)`, using `buf` (length n) as scratch.
#[inline(always)]
fn log_normalizer<T: SortFloat>(t: T, s: &[T], inv_tau: T, buf: &mut [T]) -> T {
    for (b, &x) in buf.iter_mut().zip(s) {
        let d = t - x;
        *b = (-(d * d) * inv_tau).fast_exp();
    }
    sum(buf).ln()
}

/// Adds `P[i, j] · d_ij` to `columns[j]` for the row with sorted score `t` and log normaliser
/// `log_z`, and returns the row sum `Σ_j P[i, j] · d_ij`. `buf` (length n) is scratch.
#[inline(always)]
fn accumulate_row<T: SortFloat>(
    t: T,
    log_z: T,
    s: &[T],
    inv_tau: T,
    columns: &mut [T],
    buf: &mut [T],
) -> T {
    for ((b, c), &x) in buf.iter_mut().zip(columns.iter_mut()).zip(s) {
        let d = t - x;
        let weighted = (-(d * d) * inv_tau - log_z).fast_exp() * d;
        *b = weighted;
        *c += weighted;
    }
    sum(buf)
}

impl<T: SortFloat> Op<T> for SquaredSoftSortPermutationNll<T> {
    fn name(&self) -> &str {
        NAME
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let (tau, rows, n) = check_nll_inputs::<T>(NAME, inputs, self.tau)?;
        let inv_tau = T::one() / tau;
        let s = inputs[0].data();
        let target = inputs[1].data();

        let orders = map_rows(rows, row_work(n, 1), |r| {
            descending_order(&s[r * n..(r + 1) * n])
        });
        let blocks = map_blocks(rows, n, n * WORK_PER_ENTRY, |r, positions| {
            dispatch(
                #[inline(always)]
                || {
                    let s = &s[r * n..(r + 1) * n];
                    let target = &target[r * n..(r + 1) * n];
                    let mut buf = vec![T::zero(); n];
                    let mut log_z = Vec::with_capacity(positions.len());
                    let mut nll = 0.0;
                    for i in positions {
                        let t = s[orders[r][i] as usize];
                        let lz = log_normalizer(t, s, inv_tau, &mut buf);
                        let d = t - s[target_index(target[i])];
                        nll += (lz + d * d * inv_tau).as_f64();
                        log_z.push(lz);
                    }
                    (log_z, nll)
                },
            )
        });

        let mut total = 0.0;
        let mut log_z = Vec::with_capacity(rows * n);
        for (block_log_z, nll) in blocks.into_iter().flatten() {
            log_z.extend(block_log_z);
            total += nll;
        }
        self.saved = Some(Saved {
            order: orders.into_iter().flatten().collect(),
            log_z,
        });
        Ok(Tensor::scalar(T::from_f64(total / (rows * n) as f64)))
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let saved = self.saved.as_ref().ok_or_else(|| missing_forward(NAME))?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let inv_tau = T::one() / tau;
        let MeanLoss { rows, n, gamma } = MeanLoss::new(args)?;
        let scores = &args.inputs[0];
        let s = scores.data();
        let targets = args.inputs[1].data();
        let scale = T::from_f64(2.0) * gamma * inv_tau;

        let grad_s = if args.needs_grad[0] {
            // Per block: `Σ_i q_ij d_ij / γ` for every column `j`, and `−Σ_j q_ij d_ij / γ` for
            // every sorted position `i` of the block. The factor 2γ/τ is applied per row below.
            let blocks = map_blocks(rows, n, n * WORK_PER_ENTRY, |r, positions| {
                dispatch(
                    #[inline(always)]
                    || {
                        let span = r * n..(r + 1) * n;
                        let s = &s[span.clone()];
                        let order = &saved.order[span.clone()];
                        let log_z = &saved.log_z[span.clone()];
                        let target = &targets[span];
                        let mut buf = vec![T::zero(); n];
                        let mut columns = vec![T::zero(); n];
                        let mut sorted = Vec::with_capacity(positions.len());
                        for i in positions {
                            let t = s[order[i] as usize];
                            let row_sum =
                                accumulate_row(t, log_z[i], s, inv_tau, &mut columns, &mut buf);
                            let j = target_index(target[i]);
                            let d_target = t - s[j];
                            columns[j] -= d_target;
                            sorted.push(d_target - row_sum);
                        }
                        (columns, sorted)
                    },
                )
            });

            let mut grad = Vec::with_capacity(rows * n);
            for (r, row_blocks) in blocks.into_iter().enumerate() {
                let (columns, sorted): (Vec<Vec<T>>, Vec<Vec<T>>) = row_blocks.into_iter().unzip();
                let mut row: Vec<T> = sum_in_order(&columns, n)
                    .into_iter()
                    .map(|c| c * scale)
                    .collect();
                let order = &saved.order[r * n..(r + 1) * n];
                for (&i, &g) in order.iter().zip(sorted.iter().flatten()) {
                    row[i as usize] += g * scale;
                }
                grad.extend(row);
            }
            Some(Tensor::from_vec(grad, scores.shape().clone())?)
        } else {
            None
        };
        Ok(vec![grad_s, target_gradient(args)])
    }
}
