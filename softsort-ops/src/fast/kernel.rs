//! Sums with the Laplace kernel `K(a, b) = exp(−|a − b|/τ)` over the sorted scores of one row,
//! in O(n) after the sort.
//!
//! With the scores sorted descending, `t_0 ≥ t_1 ≥ … ≥ t_{n−1}`, the kernel factorises along
//! the sorted order: `K(t_k, t_l) = Π_{m=l+1..k} e_m` for `l < k`, where
//! `e_m = exp(−(t_{m−1} − t_m)/τ) ∈ [0, 1]`. Every sum `Σ_l K(t_k, t_l) y_l` therefore splits
//! into two linear recurrences whose factors never exceed one, so nothing overflows:
//!
//! - `F_k = y_k + e_k · F_{k−1}`, the sum over `l ≤ k`,
//! - `G_k = y_k + e_{k+1} · G_{k+1}`, the sum over `l ≥ k`,
//! - `S_k = F_k + G_k − y_k`, the full sum.
//!
//! Gradients need the signed sums `D_k = Σ_l sign(t_k − t_l) K(t_k, t_l) y_l` with
//! `sign(0) = 0`, the subgradient that `|x|` gets at zero in the autograd crate. Tied scores
//! therefore contribute nothing to each other, and the one-sided sums are taken over strictly
//! larger and strictly smaller scores: for a tie group `a..=b`,
//! `D_k = e_{b+1} · G_{b+1} − e_a · F_{a−1}`.

use crate::float::SortFloat;
use autograd::Float;

use super::order::descending_order;
use crate::simd::dispatch;

/// The scores of one row sorted descending, with the kernel factors between neighbours.
pub(crate) struct SortedRow<T> {
    /// `order[k]` is the input index of sorted position `k` (descending, ties by input index).
    pub order: Vec<u32>,
    /// The sorted scores `t_k = s[order[k]]`.
    pub t: Vec<T>,
    /// `decay[k] = exp(−(t_{k−1} − t_k)/τ)` for `k ≥ 1`; `decay[0] = 0`.
    decay: Vec<T>,
    /// The temperature τ.
    pub tau: T,
}

impl<T: SortFloat> SortedRow<T> {
    /// Sorts `scores` and computes the kernel factors.
    pub fn new(scores: &[T], tau: T) -> Self {
        Self::from_order(scores, descending_order(scores), tau)
    }

    /// Rebuilds the row from a sort order saved by the forward pass.
    pub fn from_order(scores: &[T], order: Vec<u32>, tau: T) -> Self {
        let t: Vec<T> = order.iter().map(|&i| scores[i as usize]).collect();
        let mut decay = vec![T::zero(); t.len()];
        dispatch(
            #[inline(always)]
            || {
                for (e, pair) in decay.iter_mut().skip(1).zip(t.windows(2)) {
                    // t[k−1] ≥ t[k] and τ > 0, so the exponent is ≤ 0 (or −∞): the factor
                    // is in [0, 1], and exactly 1 for tied scores.
                    *e = ((pair[1] - pair[0]) / tau).fast_exp();
                }
            },
        );
        SortedRow {
            order,
            t,
            decay,
            tau,
        }
    }

    /// Returns the row length n.
    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// Gathers the `d`-wide rows of `x` (input order) into sorted order.
    pub fn gather(&self, x: &[T], d: usize) -> Vec<T> {
        if d == 1 {
            return self.order.iter().map(|&i| x[i as usize]).collect();
        }
        let mut out = Vec::with_capacity(x.len());
        for &i in &self.order {
            let i = i as usize;
            out.extend_from_slice(&x[i * d..(i + 1) * d]);
        }
        out
    }

    /// Scatters the `d`-wide rows of `y` (sorted order) back to input order, adding into `out`.
    pub fn scatter_add(&self, y: &[T], d: usize, out: &mut [T]) {
        for (k, &i) in self.order.iter().enumerate() {
            let i = i as usize;
            for c in 0..d {
                out[i * d + c] += y[k * d + c];
            }
        }
    }

    /// Runs both recurrences on the `d`-wide rows of `y` (sorted order): returns `(F, G)`.
    ///
    /// Each column is a chain of dependent multiply-adds, so one loop advances the forward
    /// chain from the start and the backward chain from the end, letting the CPU overlap them.
    pub fn sweeps(&self, y: &[T], d: usize) -> (Vec<T>, Vec<T>) {
        let n = self.len();
        let decay = &self.decay[..n];
        let mut f = y.to_vec();
        let mut g = y.to_vec();
        if d == 1 {
            for k in 1..n {
                f[k] = f[k] + decay[k] * f[k - 1];
                let j = n - k; // the backward chain: g[j − 1] += e_j g[j]
                g[j - 1] = g[j - 1] + decay[j] * g[j];
            }
            return (f, g);
        }
        for k in 1..n {
            let e = decay[k];
            for c in k * d..(k + 1) * d {
                f[c] = f[c] + e * f[c - d];
            }
            let j = n - k;
            let e = decay[j];
            for c in (j - 1) * d..j * d {
                g[c] = g[c] + e * g[c + d];
            }
        }
        (f, g)
    }

    /// Computes the full sums `S_k = Σ_l K(t_k, t_l) y_l` for the `d`-wide rows of `y`.
    pub fn full(&self, y: &[T], d: usize) -> Vec<T> {
        let (f, g) = self.sweeps(y, d);
        full_from(&f, &g, y)
    }

    /// Computes the signed sums `D_k = Σ_l sign(t_k − t_l) K(t_k, t_l) y_l` from the sweeps of
    /// `y`.
    pub fn signed_from(&self, f: &[T], g: &[T], d: usize) -> Vec<T> {
        let n = self.len();
        let mut out = vec![T::zero(); n * d];
        let mut a = 0;
        while a < n {
            let mut b = a;
            while b + 1 < n && self.t[b + 1] == self.t[a] {
                b += 1;
            }
            for c in 0..d {
                // Strictly larger scores sit before the group, strictly smaller ones after it.
                let larger = if a > 0 {
                    self.decay[a] * f[(a - 1) * d + c]
                } else {
                    T::zero()
                };
                let smaller = if b + 1 < n {
                    self.decay[b + 1] * g[(b + 1) * d + c]
                } else {
                    T::zero()
                };
                for k in a..=b {
                    out[k * d + c] = smaller - larger;
                }
            }
            a = b + 1;
        }
        out
    }

    /// Computes the row normalisers `Z_k = Σ_l K(t_k, t_l) ≥ 1`.
    pub fn normalizers(&self) -> Vec<T> {
        self.full(&vec![T::one(); self.len()], 1)
    }

    /// Computes `∂L/∂t` for a loss whose derivative with respect to the kernel matrix is
    /// `∂L/∂K_kl = u_k · x_l − c_k`, with `d`-wide rows `u`, `x` and scalars `c` (absent means
    /// zero; `x` absent means all ones, with `d = 1`). Also returns `S[u]`, the full sums of
    /// `u`, which some callers need.
    ///
    /// With `∂K_kl/∂t_k = −sign(t_k − t_l) K_kl / τ` and the symmetric term for `t_l`,
    /// `∂L/∂t_m = −(1/τ) · (u_m · D[x]_m − c_m D[1]_m + x_m · D[u]_m − D[c]_m)`.
    ///
    /// All the sums come from one sweep over the columns `[u | x | c | 1]` side by side.
    pub fn kernel_vjp(
        &self,
        u: &[T],
        x: Option<&[T]>,
        c: Option<&[T]>,
        d: usize,
    ) -> (Vec<T>, Vec<T>) {
        let n = self.len();
        let x_col = d;
        let c_col = x_col + if x.is_some() { d } else { 0 };
        let one_col = c_col + usize::from(c.is_some());
        let w = one_col + 1;

        let mut y = vec![T::zero(); n * w];
        for k in 0..n {
            let row = &mut y[k * w..(k + 1) * w];
            row[..d].copy_from_slice(&u[k * d..(k + 1) * d]);
            if let Some(x) = x {
                row[x_col..x_col + d].copy_from_slice(&x[k * d..(k + 1) * d]);
            }
            if let Some(c) = c {
                row[c_col] = c[k];
            }
            row[one_col] = T::one();
        }
        let (f, g) = self.sweeps(&y, w);
        let signed = self.signed_from(&f, &g, w);

        let mut grad = vec![T::zero(); n];
        let mut su = vec![T::zero(); n * d];
        for k in 0..n {
            let base = k * w;
            let d_one = signed[base + one_col];
            let mut acc = T::zero();
            for j in 0..d {
                su[k * d + j] = f[base + j] + g[base + j] - y[base + j];
                let (xj, dxj) = match x {
                    Some(_) => (y[base + x_col + j], signed[base + x_col + j]),
                    None => (T::one(), d_one),
                };
                acc += y[base + j] * dxj + xj * signed[base + j];
            }
            if c.is_some() {
                acc -= y[base + c_col] * d_one + signed[base + c_col];
            }
            grad[k] = -acc / self.tau;
        }
        (grad, su)
    }
}

/// Combines the sweeps into the full sums `S = F + G − y`.
fn full_from<T: Float>(f: &[T], g: &[T], y: &[T]) -> Vec<T> {
    f.iter()
        .zip(g)
        .zip(y)
        .map(|((&f, &g), &y)| f + g - y)
        .collect()
}
