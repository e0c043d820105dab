//! The row sums `A_i = Σ_j |s_i − s_j|` of NeuralSort and their vector-Jacobian product, both
//! in O(n log n) from a sort.

use autograd::Float;

/// Visits the groups of equal values of `s` in ascending order: calls `f(lo, hi)` for each
/// range `order[lo..hi]` of tied indices.
fn for_each_tie_group<T: Float>(s: &[T], order: &[usize], mut f: impl FnMut(usize, usize)) {
    let n = order.len();
    let mut lo = 0;
    while lo < n {
        let mut hi = lo + 1;
        while hi < n && s[order[hi]] == s[order[lo]] {
            hi += 1;
        }
        f(lo, hi);
        lo = hi;
    }
}

/// Writes `A_i = Σ_j |s_i − s_j|` into `out`, given `order`, the ascending sort order of `s`.
///
/// With `L_i` (`G_i`) the elements strictly below (above) `s_i`:
/// `A_i = s_i·|L_i| − Σ_{L_i} s_j + Σ_{G_i} s_j − s_i·|G_i|`. The prefix sums are taken in
/// `f64` to limit cancellation when scores are large.
pub(crate) fn abs_row_sums<T: Float>(s: &[T], order: &[usize], out: &mut [T]) {
    // A running total written into a preallocated vector: with `push`, the possible
    // reallocation kept the total in memory, and each addition waited for a store.
    let n = order.len();
    let mut prefix = vec![0.0f64; n + 1];
    let mut running = 0.0f64;
    for (p, &i) in prefix[1..].iter_mut().zip(order) {
        running += s[i].as_f64();
        *p = running;
    }
    let total = prefix[n];
    for_each_tie_group(s, order, |lo, hi| {
        let v = s[order[lo]].as_f64();
        let below = v * lo as f64 - prefix[lo];
        let above = (total - prefix[hi]) - v * (n - hi) as f64;
        let a = T::from_f64(below + above);
        for &i in &order[lo..hi] {
            out[i] = a;
        }
    });
}

/// Adds `(∂A/∂s)ᵀ a` to `grad`, given `order`, the ascending sort order of `s`.
///
/// `∂A_i/∂s_i = |L_i| − |G_i|` and `∂A_i/∂s_j = −sign(s_i − s_j)`, so
/// `Σ_i a_i ∂A_i/∂s_m = a_m (|L_m| − |G_m|) + Σ_{L_m} a_i − Σ_{G_m} a_i`; tied elements
/// contribute 0 (the subgradient `sign(0) = 0`).
pub(crate) fn abs_row_sums_vjp<T: Float>(s: &[T], order: &[usize], a: &[T], grad: &mut [T]) {
    let n = order.len();
    let mut prefix = vec![T::zero(); n + 1];
    let mut running = T::zero();
    for (p, &i) in prefix[1..].iter_mut().zip(order) {
        running += a[i];
        *p = running;
    }
    let total = prefix[n];
    for_each_tie_group(s, order, |lo, hi| {
        let count_diff = T::from_f64(lo as f64 - (n - hi) as f64);
        let sum_diff = prefix[lo] - (total - prefix[hi]);
        for &m in &order[lo..hi] {
            grad[m] += a[m] * count_diff + sum_diff;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::sort_permutation;

    #[test]
    fn row_sums_match_quadratic_formula() {
        let s: [f64; 6] = [0.5, -2.0, 3.0, 0.5, 1.25, -2.0];
        let mut order = [0; 6];
        sort_permutation(&s, false, &mut order);
        let mut a = [0.0; 6];
        abs_row_sums(&s, &order, &mut a);
        for i in 0..6 {
            let expected: f64 = s.iter().map(|x| (s[i] - x).abs()).sum();
            assert!(
                (a[i] - expected).abs() < 1e-12,
                "A[{i}] = {} vs {expected}",
                a[i]
            );
        }
    }

    #[test]
    fn vjp_matches_quadratic_formula() {
        let s: [f64; 6] = [0.5, -2.0, 3.0, 0.5, 1.25, -2.0];
        let a = [0.3, -1.0, 0.7, 2.0, -0.4, 0.1];
        let mut order = [0; 6];
        sort_permutation(&s, false, &mut order);
        let mut grad = [0.0; 6];
        abs_row_sums_vjp(&s, &order, &a, &mut grad);
        let sign = |x: f64| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        };
        for m in 0..6 {
            // ∂A_i/∂s_m = sign(s_i − s_m)·(δ_im ... ) written out: Σ_j sign(s_i − s_j)(δ_im − δ_jm).
            let expected: f64 = (0..6)
                .map(|i| {
                    let own = if i == m {
                        (0..6).map(|j| sign(s[i] - s[j])).sum::<f64>()
                    } else {
                        0.0
                    };
                    a[i] * (own - sign(s[i] - s[m]))
                })
                .sum();
            assert!(
                (grad[m] - expected).abs() < 1e-12,
                "grad[{m}] = {} vs {expected}",
                grad[m]
            );
        }
    }
}
