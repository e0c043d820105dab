//! Checks the dense NeuralSort matrix and the fused NeuralSort permutation NLL against their
//! definitions, evaluated entry by entry in `f64`. The cases make the row stream restart at
//! every position, every few positions or every 64, on rows up to a few hundred long, in `f64`
//! and `f32`.

use autograd::{Tape, Tensor};
use softsort_ops::{fast, NeuralSort, SortFloat};

/// A small deterministic generator of numbers in `[0, 1)`.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Computes the loss and its gradient by the definition: logits `ℓ_ki = (c_k s_i − A_i)/τ`, a
/// log-sum-exp per position, and the chain rule through `A_i = Σ_j |s_i − s_j|`.
fn definition(s: &[f64], target: &[usize], n: usize, tau: f64) -> (f64, Vec<f64>) {
    let count = s.len() as f64;
    let mut loss = 0.0;
    let mut grad = vec![0.0; s.len()];
    for (r, (s, target)) in s.chunks(n).zip(target.chunks(n)).enumerate() {
        let a: Vec<f64> = s
            .iter()
            .map(|&x| s.iter().map(|&y| (x - y).abs()).sum())
            .collect();
        let g = &mut grad[r * n..(r + 1) * n];
        let mut column = vec![0.0; n];
        for (k, &t) in target.iter().enumerate() {
            let c = n as f64 - 1.0 - 2.0 * k as f64;
            let logits: Vec<f64> = (0..n).map(|i| (c * s[i] - a[i]) / tau).collect();
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + logits.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
            loss += lse - logits[t];
            for i in 0..n {
                let q = ((logits[i] - lse).exp() - f64::from(u8::from(i == t))) / count;
                g[i] += q * c / tau;
                column[i] += q;
            }
        }
        for m in 0..n {
            let through_a: f64 = (0..n)
                .filter(|&j| s[j] != s[m])
                .map(|j| (s[m] - s[j]).signum() * (column[m] + column[j]))
                .sum();
            g[m] -= through_a / tau;
        }
    }
    (loss / count, grad)
}

/// Computes the fused loss and gradient in `T`, widened to `f64`.
fn fused<T: SortFloat>(s: &[f64], target: &[usize], shape: &[usize], tau: f64) -> (f64, Vec<f64>) {
    let tape = Tape::<T>::new();
    let to_t = |v: &[f64]| Tensor::from_vec(v.iter().map(|&x| T::from_f64(x)).collect(), shape);
    let scores = tape.param(to_t(s).unwrap());
    let target: Vec<f64> = target.iter().map(|&t| t as f64).collect();
    let target = tape.constant(to_t(&target).unwrap());
    let loss = fast::neuralsort_permutation_nll(scores, target, tau).unwrap();
    let value = loss.value().item().unwrap().as_f64();
    let grad = tape.backward(loss).unwrap().get(scores).unwrap().to_vec();
    (value, grad.iter().map(|g| g.as_f64()).collect())
}

/// Relative loss error and gradient error over the scale `n/(τ·B·n)` of one gradient term.
fn errors(got: &(f64, Vec<f64>), want: &(f64, Vec<f64>), n: usize, tau: f64) -> (f64, f64) {
    let scale = (n as f64 / (tau * want.1.len() as f64))
        .max(want.1.iter().fold(0.0, |m: f64, g| m.max(g.abs())));
    let grad = got
        .1
        .iter()
        .zip(&want.1)
        .fold(0.0, |m: f64, (a, b)| m.max((a - b).abs()));
    ((got.0 - want.0).abs() / want.0.abs().max(1.0), grad / scale)
}

/// (spread of the scores, τ): row-stream restarts every 64 positions, every few, at every
/// position, and near-constant rows.
const SETTINGS: [(f64, f64); 6] = [
    (1.0, 100.0),
    (1.0, 1.0),
    (1.0, 1e-3),
    (1e4, 1e-3),
    (1e4, 1e6),
    (0.0, 1.0),
];

#[test]
fn fused_neuralsort_nll_matches_the_definition() {
    let mut rng = Lcg(7);
    for n in [1, 2, 3, 4, 5, 7, 64, 65, 130, 257] {
        for (spread, tau) in SETTINGS {
            for shape in [vec![n], vec![2, 3, n]] {
                let total: usize = shape.iter().product();
                // Ties: about one score in five is the same value.
                let s: Vec<f64> = (0..total)
                    .map(|_| {
                        let tie = rng.next() < 0.2;
                        let x = rng.next();
                        spread * if tie { 0.5 } else { x - 0.5 }
                    })
                    .collect();
                // Alternately the true order and a shuffle.
                let mut target = Vec::with_capacity(total);
                for row in s.chunks(n) {
                    let mut order: Vec<usize> = (0..n).collect();
                    if rng.next() < 0.5 {
                        order.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap());
                    } else {
                        for i in (1..n).rev() {
                            order.swap(i, (rng.next() * (i + 1) as f64) as usize);
                        }
                    }
                    target.extend(order);
                }
                let case = format!("n = {n}, spread = {spread}, τ = {tau}, shape {shape:?}");
                let want = definition(&s, &target, n, tau);
                let got = fused::<f64>(&s, &target, &shape, tau);
                assert!(got.0.is_finite(), "{case}: loss");
                assert!(got.1.iter().all(|g| g.is_finite()), "{case}: gradient");
                let (loss, grad) = errors(&got, &want, n, tau);
                assert!(loss < 1e-8, "{case}: loss error {loss:e}");
                assert!(grad < 1e-8, "{case}: gradient error {grad:e}");

                // f32 scores are rounded on input; both passes then run in f64.
                let rounded: Vec<f64> = s.iter().map(|&x| x as f32 as f64).collect();
                let want = definition(&rounded, &target, n, tau);
                let got = fused::<f32>(&rounded, &target, &shape, tau);
                let (loss, grad) = errors(&got, &want, n, tau);
                assert!(
                    loss < 1e-6 && grad < 1e-6,
                    "f32, {case}: {loss:e}, {grad:e}"
                );
            }
        }
    }
}

/// Computes `P[k, i] = softmax_i((c_k s_i − A_i)/τ)` for one row of scores by the definition,
/// with `c_k = n − 1 − 2k`, negated for ascending order.
fn definition_matrix(s: &[f64], tau: f64, descending: bool) -> Vec<f64> {
    let n = s.len();
    let a: Vec<f64> = s
        .iter()
        .map(|&x| s.iter().map(|&y| (x - y).abs()).sum())
        .collect();
    let mut p = Vec::with_capacity(n * n);
    for k in 0..n {
        let c = n as f64 - 1.0 - 2.0 * k as f64;
        let c = if descending { c } else { -c };
        let logits: Vec<f64> = (0..n).map(|i| (c * s[i] - a[i]) / tau).collect();
        let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
        p.extend(logits.iter().map(|l| (l - m).exp() / z));
    }
    p
}

/// Returns the dense NeuralSort matrix in `T`, widened to `f64`.
fn dense<T: SortFloat>(s: &[f64], shape: &[usize], tau: f64, descending: bool) -> Vec<f64> {
    let tape = Tape::<T>::new();
    let data = s.iter().map(|&x| T::from_f64(x)).collect();
    let scores = tape.constant(Tensor::from_vec(data, shape).unwrap());
    let p = NeuralSort::new(tau)
        .ascending(!descending)
        .apply(scores)
        .unwrap();
    p.value().data().iter().map(|x| x.as_f64()).collect()
}

/// Returns the largest absolute difference between two equally long slices.
fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0, |m: f64, (x, y)| m.max((x - y).abs()))
}

#[test]
fn dense_neuralsort_matches_the_definition() {
    let mut rng = Lcg(11);
    for n in [1, 3, 64, 65, 130, 257] {
        for (spread, tau) in SETTINGS {
            for descending in [true, false] {
                let shape = [2, n];
                let s: Vec<f64> = (0..2 * n)
                    .map(|_| {
                        let x = if rng.next() < 0.2 { 0.5 } else { rng.next() };
                        spread * (x - 0.5)
                    })
                    .collect();
                let want: Vec<f64> = s
                    .chunks(n)
                    .flat_map(|row| definition_matrix(row, tau, descending))
                    .collect();
                let case =
                    format!("n = {n}, spread = {spread}, τ = {tau}, descending {descending}");
                // The logits reach n·spread/τ, and an absolute rounding error δ in a logit
                // moves P by up to δ, so the tolerance grows with their size.
                let logits = n as f64 * spread / tau;
                let tolerance = 1e-12_f64.max(1e-15 * logits);
                let error = max_difference(&dense::<f64>(&s, &shape, tau, descending), &want);
                assert!(error < tolerance, "{case}: error {error:e}");

                // f32 scores are exact in f64, and the logits are formed in f64.
                let rounded: Vec<f64> = s.iter().map(|&x| x as f32 as f64).collect();
                let want: Vec<f64> = rounded
                    .chunks(n)
                    .flat_map(|row| definition_matrix(row, tau, descending))
                    .collect();
                let error = max_difference(&dense::<f32>(&rounded, &shape, tau, descending), &want);
                assert!(error < tolerance.max(1e-6), "f32, {case}: error {error:e}");
            }
        }
    }
}
