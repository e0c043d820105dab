//! `P · X` for a dense relaxed permutation matrix whose rows are softmaxes, computed one row
//! of `P` at a time: O(n²·d) time, but O(n·d) memory instead of O(n²).
//!
//! The callers supply each row of `P` (an exact softmax, or NeuralSort's row stream), and the
//! backward pass recomputes each row instead of storing it. For row `i` with
//! `p = softmax(ℓ_i)`, `Y_i = Σ_j p_j X_j` and `Γ_i = ∂L/∂Y_i`:
//! `∂L/∂X_j += p_j Γ_i` and `∂L/∂ℓ_ij = p_j (Γ_i · X_j − Γ_i · Y_i)`.

use std::ops::Range;

use autograd::Float;

use crate::kernels::dot;

/// Replaces `row` by `softmax(row)`, subtracting the maximum first so that nothing overflows.
pub(crate) fn softmax_in_place<T: Float>(row: &mut [T]) {
    let max = row.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    let mut sum = T::zero();
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    // The maximum contributes exp(0) = 1, so sum ≥ 1.
    for x in row.iter_mut() {
        *x /= sum;
    }
}

/// Computes the rows `positions` of `Y = P · X` for one batch row, where `X` is `n × d` and
/// `probabilities(i, buf)` writes row `i` of `P` into `buf` (length n). Rows are requested in
/// increasing order. Returns `positions.len() × d` values.
pub(crate) fn forward_rows<T: Float>(
    positions: Range<usize>,
    d: usize,
    x: &[T],
    mut probabilities: impl FnMut(usize, &mut [T]),
) -> Vec<T> {
    let n = x.len() / d;
    let mut p = vec![T::zero(); n];
    let mut y = vec![T::zero(); positions.len() * d];
    for (i, out) in positions.zip(y.chunks_exact_mut(d)) {
        probabilities(i, &mut p);
        if d == 1 {
            // One value per element: a dot product, which vectorises over the elements.
            out[0] = dot(&p, x);
            continue;
        }
        for (&pj, xj) in p.iter().zip(x.chunks_exact(d)) {
            for (o, &v) in out.iter_mut().zip(xj) {
                *o += pj * v;
            }
        }
    }
    y
}

/// Runs the backward pass of [`forward_rows`] over the rows `positions` of one batch row:
/// returns their contribution to `∂L/∂X` (`n × d`) and calls `logit_grad(i, g)` with
/// `g_j = ∂L/∂ℓ_ij` for every row `i`. `y` and `gy` are the full `n × d` output and its
/// gradient.
pub(crate) fn backward_rows<T: Float>(
    positions: Range<usize>,
    d: usize,
    x: &[T],
    y: &[T],
    gy: &[T],
    mut probabilities: impl FnMut(usize, &mut [T]),
    mut logit_grad: impl FnMut(usize, &[T]),
) -> Vec<T> {
    let n = x.len() / d;
    let mut p = vec![T::zero(); n];
    let mut g = vec![T::zero(); n];
    let mut grad_x = vec![T::zero(); n * d];
    for i in positions {
        probabilities(i, &mut p);
        let gy_i = &gy[i * d..(i + 1) * d];
        let centre: T = gy_i
            .iter()
            .zip(&y[i * d..(i + 1) * d])
            .map(|(&a, &b)| a * b)
            .sum();
        if d == 1 {
            // The same as below with one column, written so that it vectorises over j.
            let gv = gy_i[0];
            for (((&pj, gj), &xj), gx) in p.iter().zip(g.iter_mut()).zip(x).zip(grad_x.iter_mut()) {
                *gj = pj * (gv * xj - centre);
                *gx += pj * gv;
            }
            logit_grad(i, &g);
            continue;
        }
        for (j, (&pj, gj)) in p.iter().zip(g.iter_mut()).enumerate() {
            let xj = &x[j * d..(j + 1) * d];
            let mut dot = T::zero();
            for ((&gv, &xv), gx) in gy_i.iter().zip(xj).zip(&mut grad_x[j * d..(j + 1) * d]) {
                dot += gv * xv;
                *gx += pj * gv;
            }
            *gj = pj * (dot - centre);
        }
        logit_grad(i, &g);
    }
    grad_x
}
