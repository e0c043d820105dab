//! Pooling, dropout and flatten: gradients against finite differences and hand-worked values.

use autograd::{GradCheck, Tape, Tensor};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// A `[n, c, h, w]` tensor of distinct values spaced 0.1 apart, shuffled, so that a max pool
/// has a unique maximum that finite differences of step 1e-6 cannot move.
fn distinct(dims: [usize; 4], seed: u64) -> Tensor<f64> {
    let numel: usize = dims.iter().product();
    let mut values: Vec<f64> = (0..numel).map(|i| i as f64 * 0.1 - 1.0).collect();
    values.shuffle(&mut StdRng::seed_from_u64(seed));
    Tensor::from_vec(values, dims).unwrap()
}

fn pool_case() -> impl Strategy<Value = ([usize; 4], usize, usize, u64)> {
    (
        1usize..=2,
        1usize..=2,
        1usize..=3,
        1usize..=3,
        0usize..=4,
        0usize..=4,
        any::<u64>(),
    )
        .prop_map(|(n, c, kernel, stride, extra_h, extra_w, seed)| {
            (
                [n, c, kernel + extra_h, kernel + extra_w],
                kernel,
                stride,
                seed,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn max_pool2d_gradients_match_finite_differences((dims, kernel, stride, seed) in pool_case()) {
        let x = distinct(dims, seed);
        let result = GradCheck::default()
            .check("max_pool2d", &[x], |_, v| v[0].max_pool2d(kernel, stride));
        prop_assert!(result.is_ok(), "{dims:?} k{kernel} s{stride}: {}", result.unwrap_err());
    }

    #[test]
    fn avg_pool2d_gradients_match_finite_differences((dims, kernel, stride, seed) in pool_case()) {
        let x = Tensor::uniform(dims, -1.0, 1.0, &mut StdRng::seed_from_u64(seed)).unwrap();
        let result = GradCheck::default()
            .check("avg_pool2d", &[x], |_, v| v[0].avg_pool2d(kernel, stride));
        prop_assert!(result.is_ok(), "{dims:?} k{kernel} s{stride}: {}", result.unwrap_err());
    }

    #[test]
    fn dropout_gradients_match_finite_differences(
        len in 1usize..40,
        p in 0.0f64..0.9,
        seed in any::<u64>(),
    ) {
        let x = Tensor::uniform([len], -1.0, 1.0, &mut StdRng::seed_from_u64(seed)).unwrap();
        // Every evaluation draws the same mask from a freshly seeded generator.
        let result = GradCheck::default().check("dropout", &[x], |_, v| {
            v[0].dropout(p, true, &mut StdRng::seed_from_u64(seed ^ 1))
        });
        prop_assert!(result.is_ok(), "len {len} p {p}: {}", result.unwrap_err());
    }

    #[test]
    fn flatten_gradients_match_finite_differences(dims in proptest::collection::vec(1usize..4, 2..5)) {
        let numel: usize = dims.iter().product();
        let x = Tensor::from_vec((0..numel).map(|i| i as f64).collect(), dims).unwrap();
        let result = GradCheck::default().check("flatten", &[x], |_, v| v[0].flatten()?.tanh());
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

#[test]
fn max_pool2d_tie_goes_to_first_position() {
    let tape = Tape::<f64>::new();
    // Both windows of a 2×4 plane hold a tie between the first and last position.
    let x = tape.param(
        Tensor::from_vec(vec![3.0, 1.0, 7.0, 7.0, 0.0, 3.0, 7.0, 2.0], [1, 1, 2, 4]).unwrap(),
    );
    let y = x.max_pool2d(2, 2).unwrap();
    assert_eq!(y.value().to_vec(), vec![3.0, 7.0]);
    let grads = tape.backward(y.sum().unwrap()).unwrap();
    assert_eq!(
        grads.get(x).unwrap().to_vec(),
        vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
}

#[test]
fn overlapping_max_windows_accumulate_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.param(
        Tensor::from_vec(
            vec![0.0, 1.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0],
            [1, 1, 3, 3],
        )
        .unwrap(),
    );
    let y = x.max_pool2d(2, 1).unwrap(); // the centre is the maximum of all four windows
    let grads = tape.backward(y.sum().unwrap()).unwrap();
    assert_eq!(grads.get(x).unwrap().data()[4], 4.0);
}

/// Max pooling by its definition, one window at a time: the value and the plane offset of the
/// first maximum in row-major window order, a NaN winning over every number.
fn max_pool_reference(
    x: &[f32],
    dims: [usize; 4],
    kernel: usize,
    stride: usize,
) -> (Vec<f32>, Vec<usize>) {
    let [n, c, h, w] = dims;
    let (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
    let (mut values, mut offsets) = (Vec::new(), Vec::new());
    for plane in 0..n * c {
        let src = &x[plane * h * w..][..h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = (oy * stride) * w + ox * stride;
                for i in 0..kernel {
                    for j in 0..kernel {
                        let at = (oy * stride + i) * w + ox * stride + j;
                        let (v, b) = (src[at], src[best]);
                        if v > b || (v.is_nan() && !b.is_nan()) {
                            best = at;
                        }
                    }
                }
                values.push(src[best]);
                offsets.push(plane * h * w + best);
            }
        }
    }
    (values, offsets)
}

#[test]
fn max_pool2d_matches_definition_on_ties() {
    // Few distinct values, so that most windows hold ties, including 0.0 against -0.0.
    let levels = [-1.0f32, -0.0, 0.0, 0.5, 2.0];
    let mut rng = StdRng::seed_from_u64(3);
    for (dims, kernel, stride, with_nan) in [
        ([2, 3, 9, 11], 2, 2, false),
        ([2, 3, 9, 11], 2, 2, true),
        ([2, 3, 9, 11], 3, 2, false),
        ([1, 2, 8, 7], 3, 1, false),
        ([1, 2, 8, 7], 2, 1, true),
        ([1, 1, 6, 6], 1, 1, false),
    ] {
        let numel: usize = dims.iter().product();
        let mut data: Vec<f32> = (0..numel)
            .map(|_| *levels.choose(&mut rng).unwrap())
            .collect();
        if with_nan {
            data[5] = f32::NAN;
        }
        let (values, offsets) = max_pool_reference(&data, dims, kernel, stride);
        let tape = Tape::<f32>::new();
        let x = tape.param(Tensor::from_vec(data.clone(), dims).unwrap());
        let y = x.max_pool2d(kernel, stride).unwrap();
        let got = y.value();
        for (k, (&a, &b)) in got.data().iter().zip(&values).enumerate() {
            assert!(
                a.to_bits() == b.to_bits(),
                "output {k}: {a} vs {b} for {dims:?} k{kernel} s{stride}"
            );
        }
        // Weight each output by a distinct factor so that the gradient shows where each went.
        let weights = Tensor::from_vec(
            (1..=values.len()).map(|v| v as f32).collect(),
            got.shape().clone(),
        )
        .unwrap();
        let loss = y.mul(tape.constant(weights)).unwrap().sum().unwrap();
        let grads = tape.backward(loss).unwrap();
        let mut expected = vec![0.0f32; numel];
        for (o, &at) in offsets.iter().enumerate() {
            expected[at] += (o + 1) as f32;
        }
        assert_eq!(
            grads.get(x).unwrap().to_vec(),
            expected,
            "{dims:?} k{kernel} s{stride}"
        );
    }
}

#[test]
fn max_pool2d_propagates_nan() {
    let tape = Tape::<f32>::new();
    let x = tape.constant(Tensor::from_vec(vec![1.0, f32::NAN, 2.0, 0.0], [1, 1, 2, 2]).unwrap());
    assert!(x.max_pool2d(2, 2).unwrap().value().data()[0].is_nan());
}

#[test]
fn pooling_rejects_bad_windows() {
    let tape = Tape::<f64>::new();
    let x = tape.constant(Tensor::zeros([1, 1, 3, 3]));
    for (result, expected) in [
        (x.max_pool2d(4, 1), "larger than"),
        (x.avg_pool2d(0, 1), "at least 1"),
        (x.max_pool2d(2, 0), "at least 1"),
        (
            tape.constant(Tensor::zeros([3, 3])).avg_pool2d(2, 2),
            "[N, C, H, W]",
        ),
    ] {
        let message = result.unwrap_err().to_string();
        assert!(message.contains(expected), "{message} lacks {expected:?}");
    }
}

#[test]
fn dropout_scales_kept_values() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::full([10_000], 2.0));
    let y = x.dropout(0.3, true, &mut StdRng::seed_from_u64(4)).unwrap();
    let values = y.value();
    let kept = values.data().iter().filter(|&&v| v != 0.0).count();
    assert!((6700..7300).contains(&kept), "kept {kept}");
    let scaled = 2.0 / 0.7;
    assert!(values
        .data()
        .iter()
        .all(|&v| v == 0.0 || (v - scaled).abs() < 1e-12));
    let grads = tape.backward(y.sum().unwrap()).unwrap();
    let g = grads.get(x).unwrap();
    for (gi, yi) in g.data().iter().zip(values.data()) {
        assert_eq!(*gi == 0.0, *yi == 0.0);
    }
}

#[test]
fn dropout_edge_probabilities() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::ones([5]));
    let mut rng = StdRng::seed_from_u64(0);
    assert_eq!(
        x.dropout(1.0, true, &mut rng).unwrap().value().to_vec(),
        vec![0.0; 5]
    );
    assert_eq!(
        x.dropout(0.0, true, &mut rng).unwrap().value().to_vec(),
        vec![1.0; 5]
    );
    assert!(x.dropout(1.5, true, &mut rng).is_err());
    assert!(x.dropout(f64::NAN, false, &mut rng).is_err());
}
