//! The log row normalisers `log Z` of SoftSort with `d = |·|`.

use crate::float::SortFloat;
use autograd::{BackwardArgs, Op, Result, Tensor};

use super::apply::missing_forward;
use super::batch::{map_rows, row_work};
use super::kernel::SortedRow;
use super::validate::{check_arity, check_scores, check_tau};

const NAME: &str = "fast_softsort_log_normalizer";

/// `log Z_i = log Σ_j exp(−|ŝ_i − s_j|/τ)`, the log row normalisers of SoftSort with absolute
/// distance, for scores of shape `[..., n]`; the output has the same shape and entry `i`
/// belongs to sorted position `i` (descending). Every `Z_i ≥ 1`, because the term `j` with
/// `s_j = ŝ_i` is one, so `log Z_i ≥ 0`.
///
/// Derivative: with `γ = ∂L/∂ log Z` and `u_k = γ_k / Z_k`, `∂L/∂K_kl = u_k`, so
/// `∂L/∂t_m = −(1/τ)(u_m D[1]_m + D[u]_m)`, scattered to `s` through the sort permutation.
///
/// Residuals: the sort order (4 bytes per score) and `Z` (one element per score).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::fast::SoftSortLogNormalizer;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![0.0, 0.0], [2])?);
/// let log_z = tape.apply(SoftSortLogNormalizer::new(1.0), &[s])?;
/// assert_eq!(log_z.value().to_vec(), vec![2f64.ln(), 2f64.ln()]); // two tied scores
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct SoftSortLogNormalizer<T> {
    tau: f64,
    saved: Option<Saved<T>>,
}

struct Saved<T> {
    order: Vec<u32>,
    z: Vec<T>,
}

impl<T: SortFloat> SoftSortLogNormalizer<T> {
    /// Creates the op with temperature `tau` (checked in the forward pass: finite, > 0).
    pub fn new(tau: f64) -> Self {
        SoftSortLogNormalizer { tau, saved: None }
    }
}

impl<T: SortFloat> Op<T> for SoftSortLogNormalizer<T> {
    fn name(&self) -> &str {
        NAME
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        check_arity(NAME, inputs, 1)?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let (rows, n) = check_scores(NAME, &inputs[0])?;
        let s = inputs[0].data();

        let results = map_rows(rows, row_work(n, 1), |r| {
            let row = SortedRow::new(&s[r * n..(r + 1) * n], tau);
            let z = row.normalizers();
            (row.order, z)
        });

        let mut saved = Saved {
            order: Vec::with_capacity(rows * n),
            z: Vec::with_capacity(rows * n),
        };
        for (order, z) in results {
            saved.order.extend(order);
            saved.z.extend(z);
        }
        let out = saved.z.iter().map(|z| z.ln()).collect();
        self.saved = Some(saved);
        Tensor::from_vec(out, inputs[0].shape().clone())
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let saved = self.saved.as_ref().ok_or_else(|| missing_forward(NAME))?;
        if !args.needs_grad[0] {
            return Ok(vec![None]);
        }
        let tau = check_tau::<T>(NAME, self.tau)?;
        let scores = &args.inputs[0];
        let n = *scores.dims().last().unwrap_or(&1);
        let rows = scores.numel() / n;
        let s = scores.data();
        let g = args.grad_output.data();

        let results = map_rows(rows, row_work(n, 1), |r| {
            let span = r * n..(r + 1) * n;
            let row =
                SortedRow::from_order(&s[span.clone()], saved.order[span.clone()].to_vec(), tau);
            let u: Vec<T> = g[span.clone()]
                .iter()
                .zip(&saved.z[span])
                .map(|(&g, &z)| g / z)
                .collect();
            let (grad_t, _) = row.kernel_vjp(&u, None, None, 1);
            let mut grad_s = vec![T::zero(); n];
            row.scatter_add(&grad_t, 1, &mut grad_s);
            grad_s
        });
        let grad_s = results.into_iter().flatten().collect();
        Ok(vec![Some(Tensor::from_vec(
            grad_s,
            scores.shape().clone(),
        )?)])
    }
}
