//! Strategies and assertions shared by the gradient-check tests.

#![allow(dead_code)]

use autograd::{CheckedFn, GradCheck, Tensor};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Number of generated cases per property: enough to hit the broadcasting and axis corner
/// cases while keeping each test binary to a few seconds.
pub const CASES: u32 = 32;

/// Generates values of either sign, at least 0.1 away from zero.
pub fn away_from_zero() -> BoxedStrategy<f64> {
    prop_oneof![-2.0..-0.1f64, 0.1..2.0f64].boxed()
}

/// Generates values in `[-2, 2)`.
pub fn plain() -> BoxedStrategy<f64> {
    (-2.0..2.0f64).boxed()
}

/// Generates a shape of rank `1..=max_rank` with axis lengths `1..=max_len`.
pub fn shape(max_rank: usize, max_len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..=max_len, 1..=max_rank)
}

/// Generates a tensor of the given shape with elements drawn from `elements`.
pub fn tensor_of(
    dims: Vec<usize>,
    elements: BoxedStrategy<f64>,
) -> impl Strategy<Value = Tensor<f64>> {
    let n: usize = dims.iter().product();
    prop::collection::vec(elements, n)
        .prop_map(move |data| Tensor::from_vec(data, dims.clone()).expect("length matches"))
}

/// Generates a tensor of rank `1..=max_rank`, axis lengths `1..=3` and elements from `elements`.
pub fn tensor(max_rank: usize, elements: BoxedStrategy<f64>) -> impl Strategy<Value = Tensor<f64>> {
    shape(max_rank, 3).prop_flat_map(move |dims| tensor_of(dims, elements.clone()))
}

/// Generates a tensor whose elements are pairwise at least 0.4 apart, so that a max or min has no
/// near-tie within the finite-difference step.
pub fn distinct_tensor(max_rank: usize) -> impl Strategy<Value = Tensor<f64>> {
    shape(max_rank, 3).prop_flat_map(|dims| {
        let n: usize = dims.iter().product();
        let ranks = Just((0..n).collect::<Vec<usize>>()).prop_shuffle();
        let noise = prop::collection::vec(0.0..0.1f64, n);
        (ranks, noise).prop_map(move |(ranks, noise)| {
            let data = ranks
                .iter()
                .zip(&noise)
                .map(|(&r, &e)| 0.5 * r as f64 - 1.0 + e)
                .collect();
            Tensor::from_vec(data, dims.clone()).expect("length matches")
        })
    })
}

/// Generates a shape that broadcasts to `full`: some leading axes dropped and some axes set to 1.
pub fn broadcastable_to(full: Vec<usize>) -> impl Strategy<Value = Vec<usize>> {
    let rank = full.len();
    (0..=rank, prop::collection::vec(any::<bool>(), rank)).prop_map(move |(drop, ones)| {
        full.iter()
            .zip(&ones)
            .skip(drop)
            .map(|(&d, &one)| if one { 1 } else { d })
            .collect()
    })
}

/// Generates two shapes that broadcast together, with size-1 axes and rank differences on either side.
pub fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape(3, 3).prop_flat_map(|full| (broadcastable_to(full.clone()), broadcastable_to(full)))
}

/// Runs the default f64 gradient check and turns a mismatch into a proptest failure.
pub fn check_grad(
    name: &str,
    inputs: &[Tensor<f64>],
    f: impl CheckedFn,
) -> Result<(), TestCaseError> {
    match GradCheck::default().check(name, inputs, f) {
        Ok(report) => {
            prop_assert!(report.max_abs_error.is_finite(), "{name}: {report:?}");
            Ok(())
        }
        Err(err) => Err(TestCaseError::fail(format!(
            "{err}\ninput shapes: {:?}",
            inputs.iter().map(|t| t.shape().clone()).collect::<Vec<_>>()
        ))),
    }
}

/// Asserts that two slices agree to within `1e-12` elementwise.
pub fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= 1e-12,
            "element {i}: {actual:?} vs {expected:?}"
        );
    }
}
