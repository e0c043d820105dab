//! `Pᵀ · v` for SoftSort with `d = |·|`, and the soft ranks built on it.

use crate::float::SortFloat;
use autograd::{BackwardArgs, Op, Result, Tensor};

use super::apply::{missing_forward, row_gradients};
use super::batch::{map_rows, row_work};
use super::kernel::SortedRow;
use super::validate::{check_arity, check_scores, check_tau, check_values, value_width};

const NAME: &str = "fast_softsort_transpose_apply";

/// `W = Pᵀ · V` for the SoftSort relaxation with absolute distance, never forming `P`.
///
/// Inputs: scores `s` of shape `[..., n]` and `V` of shape `[..., n]` or `[..., n, d]`, whose
/// row `i` belongs to sorted position `i` (descending). The output has the shape of `V` and
/// row `j` belongs to input element `j`: `W_j = Σ_i P[i, j] V_i`, with `P` as in
/// [`SoftSortApply`](super::SoftSortApply). With `V_i = i + 1` this is the expected
/// (1-based, descending) rank of each element; see [`soft_ranks`](super::soft_ranks).
///
/// In sorted coordinates `W̃_l = Σ_k K_kl a_k` with `a_k = V_k / Z_k`. Derivatives, with
/// `γ̃ = ∂L/∂W` in sorted order, `q_k = Σ_l K_kl γ̃_l / Z_k` and `c_k = a_k · q_k`:
/// `∂L/∂V_k = q_k`, and since `∂L/∂K_kl = a_k · γ̃_l − c_k`,
/// `∂L/∂t_m = −(1/τ)(a_m · D[γ̃]_m − c_m D[1]_m + γ̃_m · D[a]_m − D[c]_m)` with `D` the signed
/// kernel sums (`sign(0) = 0`), then scattered to `s` through the sort permutation.
///
/// Residuals: the sort order (4 bytes per score) and `Z` (one element per score).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::fast::SoftSortTransposeApply;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![1.0, 3.0, 2.0], [3])?);
/// let positions = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3])?);
/// let ranks = tape.apply(SoftSortTransposeApply::new(1e-3), &[s, positions])?;
/// let r = ranks.value().to_vec(); // 3.0 is largest, so its rank is 1
/// assert!((r[0] - 3.0).abs() < 1e-9 && (r[1] - 1.0).abs() < 1e-9 && (r[2] - 2.0).abs() < 1e-9);
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct SoftSortTransposeApply<T> {
    tau: f64,
    saved: Option<Saved<T>>,
}

struct Saved<T> {
    order: Vec<u32>,
    z: Vec<T>,
}

impl<T: SortFloat> SoftSortTransposeApply<T> {
    /// Creates the op with temperature `tau` (checked in the forward pass: finite, > 0).
    pub fn new(tau: f64) -> Self {
        SoftSortTransposeApply { tau, saved: None }
    }
}

impl<T: SortFloat> Op<T> for SoftSortTransposeApply<T> {
    fn name(&self) -> &str {
        NAME
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        check_arity(NAME, inputs, 2)?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let (rows, n) = check_scores(NAME, &inputs[0])?;
        let d = check_values(NAME, "weights", inputs[0].shape(), &inputs[1])?;
        let s = inputs[0].data();
        let v = inputs[1].data();

        let results = map_rows(rows, row_work(n, d), |r| {
            let row = SortedRow::new(&s[r * n..(r + 1) * n], tau);
            let z = row.normalizers();
            let mut a = v[r * n * d..(r + 1) * n * d].to_vec();
            for (k, &zk) in z.iter().enumerate() {
                for x in &mut a[k * d..(k + 1) * d] {
                    *x /= zk;
                }
            }
            let w_sorted = row.full(&a, d);
            let mut w = vec![T::zero(); n * d];
            row.scatter_add(&w_sorted, d, &mut w);
            (w, row.order, z)
        });

        let mut out = Vec::with_capacity(rows * n * d);
        let mut saved = Saved {
            order: Vec::with_capacity(rows * n),
            z: Vec::with_capacity(rows * n),
        };
        for (w, order, z) in results {
            out.extend(w);
            saved.order.extend(order);
            saved.z.extend(z);
        }
        self.saved = Some(saved);
        Tensor::from_vec(out, inputs[1].shape().clone())
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let saved = self.saved.as_ref().ok_or_else(|| missing_forward(NAME))?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let scores = &args.inputs[0];
        let weights = &args.inputs[1];
        let n = *scores.dims().last().unwrap_or(&1);
        let rows = scores.numel() / n;
        let d = value_width(scores.shape(), weights.shape());
        let s = scores.data();
        let v = weights.data();
        let gw = args.grad_output.data();

        let results = map_rows(rows, row_work(n, d), |r| {
            let span = r * n..(r + 1) * n;
            let wide = r * n * d..(r + 1) * n * d;
            let row =
                SortedRow::from_order(&s[span.clone()], saved.order[span.clone()].to_vec(), tau);
            let z = &saved.z[span];
            let g_sorted = row.gather(&gw[wide.clone()], d);
            let v = &v[wide];

            let mut q = row.full(&g_sorted, d);
            let mut a = vec![T::zero(); n * d];
            let mut c = vec![T::zero(); n];
            for k in 0..n {
                let mut dot = T::zero();
                for j in k * d..(k + 1) * d {
                    q[j] /= z[k];
                    a[j] = v[j] / z[k];
                    dot += a[j] * q[j];
                }
                c[k] = dot;
            }
            let (grad_t, _) = row.kernel_vjp(&a, Some(&g_sorted), Some(&c), d);
            let mut grad_s = vec![T::zero(); n];
            row.scatter_add(&grad_t, 1, &mut grad_s);
            (grad_s, q)
        });

        row_gradients(args, results)
    }
}
