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
    /// The products that join the blocks of the recurrences, for rows long enough to split.
    carries: Option<Carries<T>>,
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
        let carries = Carries::new(&decay);
        SortedRow {
            order,
            t,
            decay,
            carries,
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
    /// Each column is a chain of dependent multiply-adds, so its speed is bound by the latency
    /// of one multiply-add per position. Short rows advance the forward chain from the start
    /// and the backward chain from the end in one loop, letting the CPU overlap the two. Longer
    /// rows with one or two columns split the positions into [`SWEEP_BLOCKS`] blocks whose chains
    /// run side by side from zero, then add each block's missing head (or tail) in a second,
    /// independent pass:
    /// `F_k = F^block_k + (Π_{m = a..=k} e_m) · F_{a−1}` for a block starting at `a`, and the
    /// mirror image for `G`.
    pub fn sweeps(&self, y: &[T], d: usize) -> (Vec<T>, Vec<T>) {
        let n = self.len();
        let decay = &self.decay[..n];
        let mut f = y.to_vec();
        let mut g = y.to_vec();
        match (&self.carries, d) {
            (Some(carries), 1) => {
                carries.sweeps::<1>(decay, &mut f, &mut g);
                return (f, g);
            }
            (Some(carries), 2) => {
                carries.sweeps::<2>(decay, &mut f, &mut g);
                return (f, g);
            }
            _ => {}
        }
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

/// The number of blocks the recurrences of a long row are split into.
const SWEEP_BLOCKS: usize = 8;

/// The shortest row whose recurrences are split into blocks.
const BLOCKED_MIN_LEN: usize = 64;

/// The products of kernel factors that join consecutive blocks of the recurrences.
///
/// The first `SWEEP_BLOCKS · len` positions form the blocks, `len = ⌊n / SWEEP_BLOCKS⌋`; the
/// remaining tail of fewer than `SWEEP_BLOCKS` positions runs as a plain recurrence.
struct Carries<T> {
    /// The block length.
    len: usize,
    /// `forward[k] = Π_{m = a..=k} e_m` for `k` in a block starting at `a > 0`.
    forward: Vec<T>,
    /// `backward[k] = Π_{m = k+1..=b} e_m` for `k` in a block whose successor starts at `b < n`.
    backward: Vec<T>,
}

impl<T: SortFloat> Carries<T> {
    /// Builds the products for the factors `decay`, or `None` for rows too short to split.
    fn new(decay: &[T]) -> Option<Self> {
        let n = decay.len();
        if n < BLOCKED_MIN_LEN {
            return None;
        }
        let len = n / SWEEP_BLOCKS;
        let body = SWEEP_BLOCKS * len;
        let mut forward = vec![T::zero(); body];
        let mut backward = vec![T::zero(); body];
        // The products of every block side by side, as in the sweeps. Block 0 has no forward
        // carry, and the last block a backward one only if a tail follows it.
        let mut head = [T::one(); SWEEP_BLOCKS];
        let mut tail = [T::one(); SWEEP_BLOCKS];
        for i in 0..len {
            for b in 0..SWEEP_BLOCKS {
                let k = b * len + i;
                head[b] *= decay[k];
                forward[k] = head[b];
                let j = b * len + len - 1 - i;
                if j + 1 < n {
                    tail[b] *= decay[j + 1];
                    backward[j] = tail[b];
                }
            }
        }
        Some(Carries {
            len,
            forward,
            backward,
        })
    }

    /// Runs the blocked recurrences in place on `f` and `g` (rows of width `D`), both holding
    /// `y` on entry.
    #[inline(always)]
    fn sweeps<const D: usize>(&self, decay: &[T], f: &mut [T], g: &mut [T]) {
        self.block_chains::<D>(decay, f, g);
        self.join_forward::<D>(decay, f);
        self.join_backward::<D>(decay, g);
    }

    /// Runs every block's two chains from zero, the blocks side by side so that their
    /// latencies overlap.
    #[inline(always)]
    fn block_chains<const D: usize>(&self, decay: &[T], f: &mut [T], g: &mut [T]) {
        let len = self.len;
        let mut head = [[T::zero(); D]; SWEEP_BLOCKS];
        let mut tail = [[T::zero(); D]; SWEEP_BLOCKS];
        for b in 0..SWEEP_BLOCKS {
            let k = b * len;
            head[b].copy_from_slice(&f[k * D..(k + 1) * D]);
            let j = k + len - 1;
            tail[b].copy_from_slice(&g[j * D..(j + 1) * D]);
        }

        for i in 1..len {
            for b in 0..SWEEP_BLOCKS {
                let k = b * len + i;
                let e = decay[k];
                for c in 0..D {
                    head[b][c] = f[k * D + c] + e * head[b][c];
                    f[k * D + c] = head[b][c];
                }

                let j = b * len + len - 1 - i; // g[j] += e_{j+1} g[j + 1]
                let e = decay[j + 1];
                for c in 0..D {
                    tail[b][c] = g[j * D + c] + e * tail[b][c];
                    g[j * D + c] = tail[b][c];
                }
            }
        }
    }

    /// Adds to each block of `F` the contribution of everything before it, in order, then
    /// continues the chain through the tail.
    #[inline(always)]
    fn join_forward<const D: usize>(&self, decay: &[T], f: &mut [T]) {
        let len = self.len;
        let body = SWEEP_BLOCKS * len;
        for start in (len..body).step_by(len) {
            let (done, rest) = f.split_at_mut(start * D);
            let carry = &done[(start - 1) * D..];
            for (k, row) in (start..start + len).zip(rest.chunks_exact_mut(D)) {
                let p = self.forward[k];
                for (v, &h) in row.iter_mut().zip(carry) {
                    *v += p * h;
                }
            }
        }

        for (k, &e) in decay.iter().enumerate().skip(body) {
            for c in k * D..(k + 1) * D {
                f[c] += e * f[c - D];
            }
        }
    }

    /// Runs the chain of `G` through the tail, then adds to each block the contribution of
    /// everything after it, from the last block back.
    #[inline(always)]
    fn join_backward<const D: usize>(&self, decay: &[T], g: &mut [T]) {
        let n = decay.len();
        let len = self.len;
        let body = SWEEP_BLOCKS * len;
        for k in (body..n.saturating_sub(1)).rev() {
            for c in k * D..(k + 1) * D {
                g[c] += decay[k + 1] * g[c + D];
            }
        }

        for start in (0..body).step_by(len).rev() {
            let end = start + len;
            if end == n {
                continue;
            }
            let (head, done) = g.split_at_mut(end * D);
            let carry = &done[..D];
            for (k, row) in (start..end).zip(head[start * D..].chunks_exact_mut(D)) {
                let p = self.backward[k];
                for (v, &h) in row.iter_mut().zip(carry) {
                    *v += p * h;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns deterministic scores with ties, and values of both signs.
    fn data(n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
        let s = (0..n).map(|i| ((i * 7919) % 613) as f64 / 97.0).collect();
        let y = (0..n * d)
            .map(|i| ((i * 104_729) % 1009) as f64 / 500.0 - 1.0)
            .collect();
        (s, y)
    }

    /// Computes the one-sided sums straight from their definitions, in O(n²).
    fn one_sided(row: &SortedRow<f64>, y: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
        let n = row.len();
        let kernel = |k: usize, l: usize| (-(row.t[k] - row.t[l]).abs() / row.tau).exp();
        let mut f = vec![0.0; n * d];
        let mut g = vec![0.0; n * d];
        for k in 0..n {
            for c in 0..d {
                f[k * d + c] = (0..=k).map(|l| kernel(k, l) * y[l * d + c]).sum();
                g[k * d + c] = (k..n).map(|l| kernel(k, l) * y[l * d + c]).sum();
            }
        }
        (f, g)
    }

    #[test]
    fn blocked_sweeps_match_the_definition() {
        let cases = [
            (64, 1, 0.3),
            (71, 2, 1.0),
            (100, 1, 0.05),
            (257, 2, 2.0),
            (90, 3, 1.0),
        ];
        for (n, d, tau) in cases {
            let (s, y) = data(n, d);
            let row = SortedRow::new(&s, tau);
            assert!(row.carries.is_some(), "n = {n} should use blocks");
            let (f, g) = row.sweeps(&y, d);
            let (f_ref, g_ref) = one_sided(&row, &y, d);
            for (got, want) in f.iter().zip(&f_ref).chain(g.iter().zip(&g_ref)) {
                assert!(
                    (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                    "n = {n}, d = {d}, τ = {tau}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn blocked_sweeps_match_the_definition_for_every_split() {
        // Every block length from 8 to 17 with every tail length, ties and a wide spread, at
        // extreme temperatures; the signed sums too.
        for n in 64..=143 {
            let s: Vec<f64> = (0..n)
                .map(|i| match i % 4 {
                    0 => 1e4,
                    1 => ((i * 7) % 5) as f64,
                    _ => -(((i * 7919) % 613) as f64) * 16.0,
                })
                .collect();
            for d in [1, 2] {
                let y: Vec<f64> = (0..n * d)
                    .map(|i| ((i * 104_729) % 1009) as f64 / 500.0 - 1.0)
                    .collect();
                for tau in [1e-6, 3.0, 1e6] {
                    let row = SortedRow::new(&s, tau);
                    let (f, g) = row.sweeps(&y, d);
                    let signed = row.signed_from(&f, &g, d);
                    let (f_ref, g_ref) = one_sided(&row, &y, d);
                    for k in 0..n {
                        let kernel = |l: usize| (-(row.t[k] - row.t[l]).abs() / tau).exp();
                        for c in 0..d {
                            let i = k * d + c;
                            let scale: f64 = (0..n).map(|l| kernel(l) * y[l * d + c].abs()).sum();
                            let want: f64 = (0..n)
                                .map(|l| {
                                    let sign = match row.t[k].partial_cmp(&row.t[l]).unwrap() {
                                        std::cmp::Ordering::Greater => 1.0,
                                        std::cmp::Ordering::Less => -1.0,
                                        std::cmp::Ordering::Equal => 0.0,
                                    };
                                    sign * kernel(l) * y[l * d + c]
                                })
                                .sum();
                            for (got, want) in
                                [(f[i], f_ref[i]), (g[i], g_ref[i]), (signed[i], want)]
                            {
                                assert!(
                                    (got - want).abs() <= 1e-12 * scale,
                                    "n = {n}, d = {d}, τ = {tau}, k = {k}: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn short_rows_use_one_chain_each_way() {
        let (s, y) = data(BLOCKED_MIN_LEN - 1, 2);
        let row = SortedRow::new(&s, 0.5);
        assert!(row.carries.is_none());
        let (f, g) = row.sweeps(&y, 2);
        let (f_ref, g_ref) = one_sided(&row, &y, 2);
        for (got, want) in f.iter().zip(&f_ref).chain(g.iter().zip(&g_ref)) {
            assert!((got - want).abs() <= 1e-12 * (1.0 + want.abs()));
        }
    }
}
