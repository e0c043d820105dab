//! The NeuralSort row sums `A_i = Σ_j |s_i − s_j|` and their vector-Jacobian product, both in
//! O(n) given the descending sort order.

use autograd::Float;

/// Computes `A_i = Σ_j |s_i − s_j|` given the descending sort order.
///
/// In sorted order `t`, `A_m = Σ_{l<m} (t_l − t_m) + Σ_{l>m} (t_m − t_l)`, and both parts are
/// recurrences over the gaps between neighbours, `L_m = L_{m−1} + m (t_{m−1} − t_m)` and
/// `R_m = R_{m+1} + (n − 1 − m)(t_m − t_{m+1})`: sums of non-negative terms, so no cancellation.
pub(crate) fn absolute_deviations<T: Float>(s: &[T], order: &[u32]) -> Vec<T> {
    let n = s.len();
    let t: Vec<T> = order.iter().map(|&i| s[i as usize]).collect();
    let mut left = vec![T::zero(); n];
    for m in 1..n {
        left[m] = left[m - 1] + T::from_f64(m as f64) * (t[m - 1] - t[m]);
    }
    let mut right = vec![T::zero(); n];
    for m in (0..n.saturating_sub(1)).rev() {
        right[m] = right[m + 1] + T::from_f64((n - 1 - m) as f64) * (t[m] - t[m + 1]);
    }
    let mut a = vec![T::zero(); n];
    for (m, &i) in order.iter().enumerate() {
        a[i as usize] = left[m] + right[m];
    }
    a
}

/// Adds to `grad_s` the derivative of `A` against the gradient `grad_a`:
/// `∂L/∂s_m = Σ_j sign(s_m − s_j)(grad_a_m + grad_a_j)`, over tie groups in sorted order.
pub(crate) fn absolute_deviations_vjp<T: Float>(
    s: &[T],
    order: &[u32],
    grad_a: &[T],
    grad_s: &mut [T],
) {
    let n = s.len();
    let t: Vec<T> = order.iter().map(|&i| s[i as usize]).collect();
    let g: Vec<T> = order.iter().map(|&i| grad_a[i as usize]).collect();
    let total: T = g.iter().copied().sum();
    let mut before = T::zero();
    let mut a = 0;
    while a < n {
        let mut b = a;
        while b + 1 < n && t[b + 1] == t[a] {
            b += 1;
        }
        let group: T = g[a..=b].iter().copied().sum();
        // Scores before the group are larger (sign −1), scores after it smaller (sign +1).
        let after = total - before - group;
        let larger = T::from_f64(a as f64);
        let smaller = T::from_f64((n - 1 - b) as f64);
        for m in a..=b {
            grad_s[order[m] as usize] += g[m] * (smaller - larger) + after - before;
        }
        before += group;
        a = b + 1;
    }
}
