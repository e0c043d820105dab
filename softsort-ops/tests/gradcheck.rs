//! Finite-difference checks of every operator's backward, in f64.

mod common;

use autograd::Tensor;
use common::{grad_check, scores_case, uniform, with_n, BATCH_SHAPES};
use proptest::prelude::*;
use softsort_ops::{
    apply_permutation, permutation_cross_entropy, soft_ranks, sorted_values, top_k_mask, Distance,
    NeuralSort, Sinkhorn, SoftSort,
};

/// Small noise of shape `[2, ...scores]` that keeps scores separated by at least 0.1.
fn small_noise(scores: &Tensor<f64>) -> impl Strategy<Value = Tensor<f64>> {
    uniform(
        std::iter::once(2)
            .chain(scores.dims().iter().copied())
            .collect(),
        -0.05,
        0.05,
    )
}

/// Log-scores `[...batch, n, n]`, a temperature and an iteration count for Sinkhorn.
fn sinkhorn_case() -> impl Strategy<Value = (Tensor<f64>, f64, usize)> {
    (0..BATCH_SHAPES.len(), 1usize..=8, 0.5f64..2.0, 1usize..=8).prop_flat_map(
        |(b, n, tau, iterations)| {
            let mut dims = with_n(BATCH_SHAPES[b], n);
            dims.push(n);
            (uniform(dims, -1.0, 1.0), Just(tau), Just(iterations))
        },
    )
}

/// A matrix `P` of shape `[...batch, n, n]` with entries in `[0.1, 1)`.
fn matrix_case() -> impl Strategy<Value = (Tensor<f64>, usize)> {
    (0..BATCH_SHAPES.len(), 1usize..=12).prop_flat_map(|(b, n)| {
        let mut dims = with_n(BATCH_SHAPES[b], n);
        dims.push(n);
        (uniform(dims, 0.1, 1.0), Just(n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(28))]

    #[test]
    fn softsort_abs_gradient((scores, tau) in scores_case(), ascending in any::<bool>()) {
        let op = SoftSort::new(tau).ascending(ascending);
        grad_check().check("softsort abs", &[scores], |_, v| op.apply(v[0])).unwrap();
    }

    #[test]
    fn softsort_squared_gradient((scores, tau) in scores_case(), ascending in any::<bool>()) {
        let op = SoftSort::new(tau).distance(Distance::Squared).ascending(ascending);
        grad_check().check("softsort squared", &[scores], |_, v| op.apply(v[0])).unwrap();
    }

    #[test]
    fn neuralsort_gradient((scores, tau) in scores_case(), ascending in any::<bool>()) {
        let op = NeuralSort::new(tau).ascending(ascending);
        grad_check().check("neuralsort", &[scores], |_, v| op.apply(v[0])).unwrap();
    }

    #[test]
    fn sinkhorn_gradient((x, tau, iterations) in sinkhorn_case()) {
        let op = Sinkhorn::new(tau).iterations(iterations);
        grad_check().check("sinkhorn", &[x], |_, v| Ok(op.apply(v[0])?.0)).unwrap();
    }

    #[test]
    fn softsort_fixed_noise_gradient(
        ((scores, tau), noise) in scores_case().prop_flat_map(|c| { let noise = small_noise(&c.0); (Just(c), noise) }),
        squared in any::<bool>(),
    ) {
        let distance = if squared { Distance::Squared } else { Distance::Abs };
        let op = SoftSort::new(tau).distance(distance);
        grad_check().check("gumbel softsort", &[scores], |_, v| op.apply_with_noise(v[0], &noise)).unwrap();
    }

    #[test]
    fn neuralsort_fixed_noise_gradient(
        ((scores, tau), noise) in scores_case().prop_flat_map(|c| { let noise = small_noise(&c.0); (Just(c), noise) }),
    ) {
        let op = NeuralSort::new(tau);
        grad_check().check("gumbel neuralsort", &[scores], |_, v| op.apply_with_noise(v[0], &noise)).unwrap();
    }

    #[test]
    fn gumbel_sinkhorn_fixed_noise_gradient(
        ((x, tau, iterations), noise) in sinkhorn_case().prop_flat_map(|c| {
            let noise = uniform(std::iter::once(2).chain(c.0.dims().iter().copied()).collect(), -2.0, 4.0);
            (Just(c), noise)
        }),
        factor in 0.0f64..1.0,
    ) {
        let op = Sinkhorn::new(tau).iterations(iterations).noise_factor(factor);
        grad_check().check("gumbel sinkhorn", &[x], |_, v| Ok(op.apply_with_noise(v[0], &noise)?.0)).unwrap();
    }

    #[test]
    fn sorted_values_gradient((p, n) in matrix_case(), seed in any::<u64>()) {
        let s_dims: Vec<usize> = p.dims()[..p.ndim() - 1].to_vec();
        let s = Tensor::<f64>::uniform(s_dims, -2.0, 2.0, &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed)).unwrap();
        prop_assert_eq!(*s.dims().last().unwrap(), n);
        grad_check().check("sorted_values", &[p, s], |_, v| sorted_values(v[0], v[1])).unwrap();
    }

    #[test]
    fn apply_permutation_gradient((p, n) in matrix_case(), d in 1usize..=4, shared in any::<bool>(), seed in any::<u64>()) {
        // With `shared`, P gets a leading sample axis of 2 and X is broadcast along it.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        let mut x_dims = p.dims()[..p.ndim() - 1].to_vec();
        x_dims.push(d);
        let p = if shared {
            let mut dims = vec![2];
            dims.extend_from_slice(p.dims());
            let mut data = p.to_vec();
            data.extend(p.data().iter().map(|v| 1.1 - v));
            Tensor::from_vec(data, dims).unwrap()
        } else {
            p
        };
        let x = Tensor::<f64>::uniform(x_dims, -2.0, 2.0, &mut rng).unwrap();
        prop_assert_eq!(x.dims()[x.ndim() - 2], n);
        grad_check().check("apply_permutation", &[p, x], |_, v| apply_permutation(v[0], v[1])).unwrap();
    }

    #[test]
    fn soft_ranks_and_top_k_gradient((p, n) in matrix_case(), k_fraction in 0.0f64..1.0) {
        let k = 1 + ((n - 1) as f64 * k_fraction) as usize;
        grad_check().check("soft_ranks", std::slice::from_ref(&p), |_, v| soft_ranks(v[0])).unwrap();
        grad_check().check("top_k_mask", &[p], |_, v| top_k_mask(v[0], k)).unwrap();
    }

    #[test]
    fn cross_entropy_gradient((p, n) in matrix_case(), seed in any::<u64>()) {
        let rows = p.numel() / n;
        let targets: Vec<usize> = (0..rows).map(|r| (r * 7 + seed as usize % 13) % n).collect();
        let shape = p.dims()[..p.ndim() - 1].to_vec();
        grad_check()
            .check("permutation_cross_entropy", &[p], |_, v| permutation_cross_entropy(v[0], &targets, &shape))
            .unwrap();
    }

    #[test]
    fn softsort_chain_gradient((scores, tau) in scores_case()) {
        // Gradients reach the scores through both P and the values in P · s.
        let op = SoftSort::new(tau);
        grad_check().check("softsort sorted values", &[scores], |_, v| sorted_values(op.apply(v[0])?, v[0])).unwrap();
    }
}
