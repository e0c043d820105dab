//! Strategies and helpers shared by the integration tests.
#![allow(dead_code)]

use autograd::{GradCheck, Result, Tensor, Var};
use proptest::prelude::*;

/// The batch shapes every property runs over.
pub const BATCH_SHAPES: [&[usize]; 3] = [&[], &[2], &[2, 3]];

/// A gradient check that compares the full Jacobian only for small cases and otherwise
/// checks 16 random directions, which keeps each case fast.
pub fn grad_check() -> GradCheck {
    GradCheck {
        max_jacobian_entries: 3000,
        directions: 16,
        ..GradCheck::default()
    }
}

/// Appends `n` to a batch shape.
pub fn with_n(batch: &[usize], n: usize) -> Vec<usize> {
    let mut dims = batch.to_vec();
    dims.push(n);
    dims
}

/// Scores of shape `[...batch, n]` whose elements within each row differ by at least 0.3,
/// so that the sorting permutation is constant under finite-difference steps.
pub fn separated_scores(batch: &'static [usize], n: usize) -> impl Strategy<Value = Tensor<f64>> {
    let rows: usize = batch.iter().product();
    let row = (
        Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
        proptest::collection::vec(-0.1f64..0.1, n),
    );
    proptest::collection::vec(row, rows).prop_map(move |rows| {
        let data = rows
            .into_iter()
            .flat_map(|(order, jitter)| {
                order
                    .into_iter()
                    .zip(jitter)
                    .map(|(rank, j)| 0.4 * rank as f64 - 0.2 * n as f64 + j)
                    .collect::<Vec<_>>()
            })
            .collect();
        Tensor::from_vec(data, with_n(batch, n)).unwrap()
    })
}

/// A batch shape from [`BATCH_SHAPES`], `n` in `1..=12`, separated scores and a temperature.
pub fn scores_case() -> impl Strategy<Value = (Tensor<f64>, f64)> {
    (0..BATCH_SHAPES.len(), 1usize..=12, 0.3f64..2.0)
        .prop_flat_map(|(b, n, tau)| (separated_scores(BATCH_SHAPES[b], n), Just(tau)))
}

/// Uniform values of the given shape in `[low, high)`.
pub fn uniform(shape: Vec<usize>, low: f64, high: f64) -> impl Strategy<Value = Tensor<f64>> {
    let count: usize = shape.iter().product();
    proptest::collection::vec(low..high, count)
        .prop_map(move |data| Tensor::from_vec(data, shape.clone()).unwrap())
}

/// `log Σ exp` over `axis`, kept as a length-1 axis, with the maximum taken on a detached
/// copy (a constant shift, so the gradient is the softmax).
pub fn logsumexp<'t>(x: Var<'t, f64>, axis: isize) -> Result<Var<'t, f64>> {
    let m = x.detach().max_axes(&[axis], true)?;
    x.sub(m)?.exp()?.sum_axes(&[axis], true)?.log()?.add(m)
}

/// Asserts two tensors have equal shapes and elements within `tol` (absolute, relative to
/// `max(1, |b|)`).
pub fn assert_close(a: &Tensor<f64>, b: &Tensor<f64>, tol: f64, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes differ");
    for (k, (x, y)) in a.data().iter().zip(b.data()).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}: element {k}: {x} vs {y}"
        );
    }
}
