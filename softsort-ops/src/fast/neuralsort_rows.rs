//! The rows of NeuralSort's unnormalised `P`, one sorted position after another, with one
//! multiplication per entry between exact restarts.
//!
//! NeuralSort's logits `ℓ_ki = (c_k s_i − A_i)/τ` differ between consecutive sorted positions
//! only through `c_{k+1} = c_k − 2`, so `ℓ_{k+1,i} = ℓ_ki − 2 s_i/τ`. With `s_min` the smallest
//! score and `ρ_i = exp(−2 (s_i − s_min)/τ) ∈ (0, 1]`,
//!
//! `exp(ℓ_{k+t,i}) = exp(m − t · 2 s_min/τ) · e_i · ρ_i^t`, where `e_i = exp(ℓ_ki − m)` and
//! `m = max_i ℓ_ki`,
//!
//! so a row of exponentials follows from the previous one by a multiplication per entry. The
//! stream restarts with exact exponentials every `stride` positions, chosen so that
//! `2 (s_max − s_min) · stride / τ ≤ 150`. Between restarts the largest entry stays above
//! `e^{−150}`, so nothing that matters underflows, and each entry carries at most `stride`
//! roundings of a multiplication (relative error below `64 · 2⁻⁵³`).

use crate::float::SortFloat;
use crate::kernels::max;

/// The largest log-ratio between the largest entry at a restart and its value at the last
/// position before the next restart.
const MAX_DRIFT: f64 = 150.0;

/// The maximum number of positions between two restarts, which bounds the rounding drift.
const MAX_STRIDE: usize = 64;

/// Returns the coefficient `c_k = n − 1 − 2k` of sorted position `k` (0-based).
#[inline(always)]
pub(crate) fn coefficient(n: usize, k: usize) -> f64 {
    n as f64 - 1.0 - 2.0 * k as f64
}

/// The exponentials of one row of NeuralSort logits, relative to a shift, advanced position
/// by position (see the module docs).
pub(crate) struct RowStream<'a> {
    s: &'a [f64],
    abs_dev: &'a [f64],
    inv_tau: f64,
    /// `ρ_i = exp(−2 (s_i − s_min)/τ)`, filled only when `stride > 1`.
    ratio: Vec<f64>,
    /// `2 s_min/τ`, the decrease of the shift per position.
    step: f64,
    stride: usize,
    /// `exp(ℓ_ki − shift)` for the current position `k`.
    values: Vec<f64>,
    /// The position and row maximum of the last restart.
    restart: Option<(usize, f64)>,
}

impl<'a> RowStream<'a> {
    /// Prepares the stream for scores `s` with absolute deviations `abs_dev`
    /// (`A_i = Σ_j |s_i − s_j|`) and `1/τ`.
    #[inline(always)]
    pub(crate) fn new(s: &'a [f64], abs_dev: &'a [f64], inv_tau: f64) -> Self {
        let (low, high) = s
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        let drift = 2.0 * (high - low) * inv_tau;
        let stride = if drift > 0.0 {
            (MAX_DRIFT / drift).clamp(1.0, MAX_STRIDE as f64) as usize
        } else {
            MAX_STRIDE
        };
        // A plain loop rather than `map` and `collect`, so that it is inlined into the
        // caller's SIMD context (see `simd::dispatch`) instead of compiled for the baseline.
        let mut ratio = vec![0.0; if stride > 1 { s.len() } else { 0 }];
        for (r, &x) in ratio.iter_mut().zip(s) {
            *r = (-2.0 * (x - low) * inv_tau).fast_exp();
        }
        RowStream {
            s,
            abs_dev,
            inv_tau,
            ratio,
            step: 2.0 * low * inv_tau,
            stride,
            values: vec![0.0; s.len()],
            restart: None,
        }
    }

    /// Moves to sorted position `k` and returns the shift: afterwards
    /// `exp(ℓ_ki) = exp(shift) · values()[i]`. Consecutive calls must pass consecutive
    /// positions; the first call, and every `stride`-th after it, computes the exponentials
    /// afresh.
    #[inline(always)]
    pub(crate) fn advance(&mut self, k: usize) -> f64 {
        match self.restart {
            Some((start, m)) if k > start && k - start < self.stride => {
                for (v, &r) in self.values.iter_mut().zip(&self.ratio) {
                    *v *= r;
                }
                m - (k - start) as f64 * self.step
            }
            _ => {
                let c = coefficient(self.s.len(), k);
                let inv_tau = self.inv_tau;
                for ((v, &x), &a) in self.values.iter_mut().zip(self.s).zip(self.abs_dev) {
                    *v = (c * x - a) * inv_tau;
                }
                let m = max(&self.values);
                for v in self.values.iter_mut() {
                    *v = (*v - m).fast_exp();
                }
                self.restart = Some((k, m));
                m
            }
        }
    }

    /// Returns `exp(ℓ_ki − shift)` for the current position.
    #[inline(always)]
    pub(crate) fn values(&self) -> &[f64] {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns `log Σ_i exp(ℓ_ki)` straight from the definition.
    fn exact_log_normalizer(s: &[f64], abs_dev: &[f64], inv_tau: f64, k: usize) -> f64 {
        let c = coefficient(s.len(), k);
        let logits: Vec<f64> = s
            .iter()
            .zip(abs_dev)
            .map(|(&x, &a)| (c * x - a) * inv_tau)
            .collect();
        let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + logits.iter().map(|l| (l - m).exp()).sum::<f64>().ln()
    }

    fn abs_dev(s: &[f64]) -> Vec<f64> {
        s.iter()
            .map(|&a| s.iter().map(|&b| (a - b).abs()).sum())
            .collect()
    }

    fn check(s: &[f64], tau: f64) {
        let a = abs_dev(s);
        let inv_tau = 1.0 / tau;
        let mut stream = RowStream::new(s, &a, inv_tau);
        for k in 0..s.len() {
            let shift = stream.advance(k);
            let got = shift + stream.values().iter().sum::<f64>().ln();
            let want = exact_log_normalizer(s, &a, inv_tau, k);
            let error = (got - want).abs() / want.abs().max(1.0);
            assert!(error < 1e-12, "τ = {tau}, k = {k}: {got} vs {want}");
        }
    }

    #[test]
    fn streamed_rows_match_exact_normalizers() {
        let s: Vec<f64> = (0..300).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
        // From one long stride (τ = 100) to a restart at every position (τ = 1e-3).
        for tau in [100.0, 1.0, 0.05, 1e-3] {
            check(&s, tau);
        }
    }

    #[test]
    fn stride_shrinks_with_the_spread_over_tau() {
        let s = [1e4, -1e4, 0.5, 3.0];
        let a = abs_dev(&s);
        assert_eq!(RowStream::new(&s, &a, 1e3).stride, 1);
        let s = [0.0, 1.0, 0.5];
        let a = abs_dev(&s);
        assert_eq!(RowStream::new(&s, &a, 0.01).stride, MAX_STRIDE);
        assert_eq!(RowStream::new(&s, &a, 10.0).stride, 7); // 150 / (2 · 1 · 10)
        check(&[1e4, -1e4, 0.5, 3.0], 1e-3);
        check(&[2.0, 2.0, 2.0], 1.0);
    }
}
