//! The negative log-likelihood of a target permutation under SoftSort with `d = |·|`.

use crate::float::SortFloat;
use autograd::{BackwardArgs, Op, Result, Tensor};

use super::apply::missing_forward;
use super::batch::{map_rows, row_work};
use super::kernel::SortedRow;
use super::loss::{target_gradient, MeanLoss};
use super::validate::{check_nll_inputs, check_tau, target_index};

const NAME: &str = "fast_softsort_permutation_nll";

/// The mean negative log-likelihood of target permutations under SoftSort with absolute
/// distance: a scalar loss, computed in O(n log n) per row without forming `P`.
///
/// Inputs: scores `s` of shape `[..., n]` and targets `π` of the same shape, whose every row
/// contains a permutation of `0..n` (as floating-point integers): `π(i)` is the input element
/// that belongs at sorted position `i` (descending). With `B` rows of length `n`, the output is
///
/// `loss = −(1 / (B·n)) · Σ_b Σ_i log P_b[i, π_b(i)]`,
/// `log P[i, π(i)] = −|ŝ_i − s_π(i)|/τ − log Z_i`,
///
/// the mean of `−log P` over all `B·n` rows of the relaxed permutation matrices. With `π` the
/// identity, `1 + loss` is the speed benchmark's `mean(1 − log diag P)`.
///
/// Derivative, with `γ = −g/(B·n)` for the incoming gradient `g`: the normaliser part
/// `−γ log Z_k` gives `u_k = −γ/Z_k` in the kernel sums of
/// [`SoftSortLogNormalizer`](super::SoftSortLogNormalizer), and the distance part adds
/// `−γ sign(ŝ_i − s_π(i))/τ` to `ŝ_i` and the opposite to `s_π(i)`, with `sign(0) = 0`. The
/// targets get a zero gradient.
///
/// An empty batch (`B = 0`, e.g. scores of shape `[0, n]`) is rejected with a shape error: a
/// mean over no rows is undefined.
///
/// Residuals: the sort order (4 bytes per score) and `Z` (one element per score).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::fast::SoftSortPermutationNll;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![5.0, 1.0], [2])?);
/// let target = tape.constant(Tensor::from_vec(vec![0.0, 1.0], [2])?); // already sorted
/// let loss = tape.apply(SoftSortPermutationNll::new(1.0), &[s, target])?;
/// let expected = (1.0 + (-4f64).exp()).ln(); // −log P[i, i] = log Z_i for both rows
/// assert!((loss.value().item()? - expected).abs() < 1e-12);
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct SoftSortPermutationNll<T> {
    tau: f64,
    saved: Option<Saved<T>>,
}

struct Saved<T> {
    order: Vec<u32>,
    z: Vec<T>,
}

impl<T: SortFloat> SoftSortPermutationNll<T> {
    /// Creates the op with temperature `tau` (checked in the forward pass: finite, > 0).
    pub fn new(tau: f64) -> Self {
        SoftSortPermutationNll { tau, saved: None }
    }
}

impl<T: SortFloat> Op<T> for SoftSortPermutationNll<T> {
    fn name(&self) -> &str {
        NAME
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let (tau, rows, n) = check_nll_inputs::<T>(NAME, inputs, self.tau)?;
        let s = inputs[0].data();
        let target = inputs[1].data();

        let results = map_rows(rows, row_work(n, 1), |r| {
            let span = r * n..(r + 1) * n;
            let s = &s[span.clone()];
            let row = SortedRow::new(s, tau);
            let z = row.normalizers();
            let mut log_likelihood = T::zero();
            for (i, &p) in target[span].iter().enumerate() {
                let j = target_index(p);
                log_likelihood += -(row.t[i] - s[j]).abs() / tau - z[i].ln();
            }
            (log_likelihood, row.order, z)
        });

        let mut total = T::zero();
        let mut saved = Saved {
            order: Vec::with_capacity(rows * n),
            z: Vec::with_capacity(rows * n),
        };
        for (log_likelihood, order, z) in results {
            total += log_likelihood;
            saved.order.extend(order);
            saved.z.extend(z);
        }
        self.saved = Some(saved);
        Ok(Tensor::scalar(-total / T::from_f64((rows * n) as f64)))
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let saved = self.saved.as_ref().ok_or_else(|| missing_forward(NAME))?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let MeanLoss { rows, n, gamma } = MeanLoss::new(args)?;
        let scores = &args.inputs[0];
        let s = scores.data();
        let targets = args.inputs[1].data();
        // γ is the weight of every log P term in the loss.
        let gamma = -gamma;

        let grad_s = if args.needs_grad[0] {
            let results = map_rows(rows, row_work(n, 1), |r| {
                let span = r * n..(r + 1) * n;
                let s = &s[span.clone()];
                let row = SortedRow::from_order(s, saved.order[span.clone()].to_vec(), tau);
                let u: Vec<T> = saved.z[span.clone()].iter().map(|&z| -gamma / z).collect();
                let (mut grad_t, _) = row.kernel_vjp(&u, None, None, 1);
                let mut grad_s = vec![T::zero(); n];
                for (i, &p) in targets[span].iter().enumerate() {
                    let j = target_index(p);
                    let diff = row.t[i] - s[j];
                    if diff != T::zero() {
                        let step = gamma * diff.signum() / tau;
                        grad_t[i] -= step;
                        grad_s[j] += step;
                    }
                }
                row.scatter_add(&grad_t, 1, &mut grad_s);
                grad_s
            });
            let grad_s = results.into_iter().flatten().collect();
            Some(Tensor::from_vec(grad_s, scores.shape().clone())?)
        } else {
            None
        };
        Ok(vec![grad_s, target_gradient(args)])
    }
}
