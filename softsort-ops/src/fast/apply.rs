//! `P · X` for SoftSort with `d = |·|`, in O(n log n + n·d) per row without forming `P`.

use crate::float::SortFloat;
use autograd::{BackwardArgs, Error, Op, Result, Tensor};

use super::batch::{map_rows, row_work};
use super::kernel::SortedRow;
use super::validate::{check_arity, check_scores, check_tau, check_values, value_width};

const NAME: &str = "fast_softsort_apply";

/// `Y = P · X` for the SoftSort relaxation with absolute distance, never forming `P`.
///
/// Inputs: scores `s` of shape `[..., n]` and values `X` of shape `[..., n]` or `[..., n, d]`.
/// With `ŝ = sort(s)` descending (ties by input index) and
/// `P[i, j] = exp(−|ŝ_i − s_j|/τ) / Z_i`, `Z_i = Σ_j exp(−|ŝ_i − s_j|/τ)`, the output has the
/// shape of `X` and row `i` is `Y_i = Σ_j P[i, j] X_j`. Passing the scores as values gives the
/// soft-sorted scores `P · s`.
///
/// In sorted coordinates `t = ŝ`, `P` is the Laplace kernel `K_kl = exp(−|t_k − t_l|/τ)`
/// normalised by rows, and every product with it is a pair of linear recurrences (see
/// `docs/fast-softsort.md`).
///
/// Derivatives, with `Γ = ∂L/∂Y`, `u_k = Γ_k / Z_k` and `c_k = Γ_k · Y_k / Z_k`: the loss
/// depends on the kernel through `∂L/∂K_kl = u_k · X̃_l − c_k` (`X̃` is `X` in sorted order), so
/// `∂L/∂X̃_l = Σ_k K_kl u_k` and
/// `∂L/∂t_m = −(1/τ)(u_m · D[X̃]_m − c_m D[1]_m + X̃_m · D[u]_m − D[c]_m)` with
/// `D[y]_m = Σ_l sign(t_m − t_l) K_ml y_l` and `sign(0) = 0`; `∂L/∂t` reaches `s` through the
/// sort permutation. Time O(n log n + n·d) and O(n·d) memory per row in both passes.
///
/// Residuals kept for the backward pass: the sort order (4 bytes per score) and `Z`
/// (one element per score).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::fast::SoftSortApply;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![1.0, 3.0, 2.0], [3])?);
/// let sorted = tape.apply(SoftSortApply::new(1e-3), &[s, s])?; // P · s
/// let y = sorted.value().to_vec();
/// assert!((y[0] - 3.0).abs() < 1e-9 && (y[1] - 2.0).abs() < 1e-9 && (y[2] - 1.0).abs() < 1e-9);
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct SoftSortApply<T> {
    tau: f64,
    saved: Option<Saved<T>>,
}

struct Saved<T> {
    order: Vec<u32>,
    z: Vec<T>,
}

impl<T: SortFloat> SoftSortApply<T> {
    /// Creates the op with temperature `tau` (checked in the forward pass: finite, > 0).
    pub fn new(tau: f64) -> Self {
        SoftSortApply { tau, saved: None }
    }
}

impl<T: SortFloat> Op<T> for SoftSortApply<T> {
    fn name(&self) -> &str {
        NAME
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        check_arity(NAME, inputs, 2)?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let (rows, n) = check_scores(NAME, &inputs[0])?;
        let d = check_values(NAME, "values", inputs[0].shape(), &inputs[1])?;
        let s = inputs[0].data();
        let x = inputs[1].data();

        let results = map_rows(rows, row_work(n, d), |r| {
            let row = SortedRow::new(&s[r * n..(r + 1) * n], tau);
            let x_sorted = row.gather(&x[r * n * d..(r + 1) * n * d], d);
            let z = row.normalizers();
            let mut y = row.full(&x_sorted, d);
            for (k, &zk) in z.iter().enumerate() {
                for v in &mut y[k * d..(k + 1) * d] {
                    *v /= zk;
                }
            }
            (y, row.order, z)
        });

        let mut out = Vec::with_capacity(rows * n * d);
        let mut saved = Saved {
            order: Vec::with_capacity(rows * n),
            z: Vec::with_capacity(rows * n),
        };
        for (y, order, z) in results {
            out.extend(y);
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
        let values = &args.inputs[1];
        let n = *scores.dims().last().unwrap_or(&1);
        let rows = scores.numel() / n;
        let d = value_width(scores.shape(), values.shape());
        let s = scores.data();
        let x = values.data();
        let y = args.output.data();
        let gy = args.grad_output.data();

        let results = map_rows(rows, row_work(n, d), |r| {
            let span = r * n..(r + 1) * n;
            let wide = r * n * d..(r + 1) * n * d;
            let row =
                SortedRow::from_order(&s[span.clone()], saved.order[span.clone()].to_vec(), tau);
            let z = &saved.z[span];
            let x_sorted = row.gather(&x[wide.clone()], d);
            let (y, gy) = (&y[wide.clone()], &gy[wide]);

            let mut u = vec![T::zero(); n * d];
            let mut c = vec![T::zero(); n];
            for k in 0..n {
                let mut dot = T::zero();
                for j in k * d..(k + 1) * d {
                    u[j] = gy[j] / z[k];
                    dot += gy[j] * y[j];
                }
                c[k] = dot / z[k];
            }
            let (grad_t, su) = row.kernel_vjp(&u, Some(&x_sorted), Some(&c), d);

            let mut grad_s = vec![T::zero(); n];
            row.scatter_add(&grad_t, 1, &mut grad_s);
            let mut grad_x = vec![T::zero(); n * d];
            row.scatter_add(&su, d, &mut grad_x);
            (grad_s, grad_x)
        });

        row_gradients(args, results)
    }
}

/// Builds the error for a backward pass without a recorded forward pass.
pub(crate) fn missing_forward(op: &str) -> Error {
    Error::invalid(
        op,
        "residuals",
        "none",
        "backward needs the residuals of a forward pass; record the op with Tape::apply",
    )
}

/// Concatenates the per-row gradients of the scores (input 0) and of the second input, in row
/// order, and returns each for the inputs that need it.
pub(crate) fn row_gradients<T: autograd::Float>(
    args: &BackwardArgs<T>,
    rows: impl IntoIterator<Item = (Vec<T>, Vec<T>)>,
) -> Result<Vec<Option<Tensor<T>>>> {
    let (scores, other) = (&args.inputs[0], &args.inputs[1]);
    let mut grad_s = Vec::with_capacity(scores.numel());
    let mut grad_other = Vec::with_capacity(other.numel());
    for (gs, go) in rows {
        grad_s.extend(gs);
        grad_other.extend(go);
    }
    Ok(vec![
        args.needs_grad[0]
            .then(|| Tensor::from_vec(grad_s, scores.shape().clone()))
            .transpose()?,
        args.needs_grad[1]
            .then(|| Tensor::from_vec(grad_other, other.shape().clone()))
            .transpose()?,
    ])
}
