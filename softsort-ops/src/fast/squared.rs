//! `P · X` for SoftSort with the squared distance, one row of `P` at a time.

use autograd::{BackwardArgs, Float, Op, Result, Tensor};

use super::apply::{missing_forward, row_gradients};
use super::batch::map_rows;
use super::order::descending_order;
use super::rowwise::{backward_rows, forward_rows, softmax_in_place};
use super::validate::{check_arity, check_scores, check_tau, check_values, value_width};

const NAME: &str = "rowwise_softsort_squared_apply";

/// `Y = P · X` for SoftSort with squared distance,
/// `P[i, j] = softmax_j(−(ŝ_i − s_j)²/τ)` with `ŝ = sort(s)` descending (ties by input index),
/// computed one row of `P` at a time so that memory is O(n·d) instead of O(n²); time stays
/// O(n²·d).
///
/// Inputs: scores `s` of shape `[..., n]` and values `X` of shape `[..., n]` or `[..., n, d]`;
/// the output has the shape of `X`. Pass the scores as values for the soft-sorted scores.
///
/// Derivatives: with `g_ij = ∂L/∂ℓ_ij` from the row softmax (recomputed in the backward pass),
/// `∂L/∂ŝ_i = −(2/τ) Σ_j g_ij (ŝ_i − s_j)` (sent to `s` through the sort permutation),
/// `∂L/∂s_j += (2/τ) Σ_i g_ij (ŝ_i − s_j)` and `∂L/∂X_j = Σ_i P[i, j] Γ_i`.
///
/// Residuals: the sort order (4 bytes per score).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::fast::SquaredSoftSortApply;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![1.0, 3.0, 2.0], [3])?);
/// let y = tape.apply(SquaredSoftSortApply::new(1e-3), &[s, s])?.value().to_vec();
/// assert!((y[0] - 3.0).abs() < 1e-9 && (y[1] - 2.0).abs() < 1e-9 && (y[2] - 1.0).abs() < 1e-9);
/// # Ok::<(), autograd::Error>(())
/// ```
pub struct SquaredSoftSortApply {
    tau: f64,
    order: Option<Vec<u32>>,
}

impl SquaredSoftSortApply {
    /// Creates the op with temperature `tau` (checked in the forward pass: finite, > 0).
    pub fn new(tau: f64) -> Self {
        SquaredSoftSortApply { tau, order: None }
    }
}

/// Writes row `i` of the logits, `−(t_i − s_j)²/τ`.
fn logits<T: Float>(t: &[T], s: &[T], tau: T, i: usize, buf: &mut [T]) {
    for (b, &sj) in buf.iter_mut().zip(s) {
        let diff = t[i] - sj;
        *b = -(diff * diff) / tau;
    }
}

impl<T: Float> Op<T> for SquaredSoftSortApply {
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

        let results = map_rows(rows, n * n * (d + 2), |r| {
            let s = &s[r * n..(r + 1) * n];
            let order = descending_order(s);
            let t: Vec<T> = order.iter().map(|&i| s[i as usize]).collect();
            let y = forward_rows(0..n, d, &x[r * n * d..(r + 1) * n * d], |i, buf| {
                logits(&t, s, tau, i, buf);
                softmax_in_place(buf);
            });
            (y, order)
        });

        let mut out = Vec::with_capacity(rows * n * d);
        let mut orders = Vec::with_capacity(rows * n);
        for (y, order) in results {
            out.extend(y);
            orders.extend(order);
        }
        self.order = Some(orders);
        Tensor::from_vec(out, inputs[1].shape().clone())
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let orders = self.order.as_ref().ok_or_else(|| missing_forward(NAME))?;
        let tau = check_tau::<T>(NAME, self.tau)?;
        let scores = &args.inputs[0];
        let values = &args.inputs[1];
        let n = *scores.dims().last().unwrap_or(&1);
        let rows = scores.numel() / n;
        let d = value_width(scores.shape(), values.shape());
        let two = T::from_f64(2.0);

        let results = map_rows(rows, n * n * (d + 3), |r| {
            let s = &scores.data()[r * n..(r + 1) * n];
            let wide = r * n * d..(r + 1) * n * d;
            let order = &orders[r * n..(r + 1) * n];
            let t: Vec<T> = order.iter().map(|&i| s[i as usize]).collect();
            let mut grad_s = vec![T::zero(); n];
            let mut grad_t = vec![T::zero(); n];
            let grad_x = backward_rows(
                0..n,
                d,
                &values.data()[wide.clone()],
                &args.output.data()[wide.clone()],
                &args.grad_output.data()[wide],
                |i, buf| {
                    logits(&t, s, tau, i, buf);
                    softmax_in_place(buf);
                },
                |i, g| {
                    for (j, &gj) in g.iter().enumerate() {
                        let slope = two * (t[i] - s[j]) / tau * gj;
                        grad_t[i] -= slope;
                        grad_s[j] += slope;
                    }
                },
            );
            for (&i, &gt) in order.iter().zip(&grad_t) {
                grad_s[i as usize] += gt;
            }
            (grad_s, grad_x)
        });

        row_gradients(args, results)
    }
}
