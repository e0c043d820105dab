//! Finite-difference, composition and hand-computed checks of softmax, log_softmax, sort,
//! argsort and topk.

use autograd::{argsort, Float, GradCheck, Shape, Tape, Tensor};
use proptest::prelude::*;

/// Generates a tensor of 1 to 3 axes, each of length 1 to 4, with values in [-3, 3), and one
/// of its axes (possibly negative).
fn tensor_and_axis() -> impl Strategy<Value = (Tensor<f64>, isize)> {
    prop::collection::vec(1usize..=4, 1..=3).prop_flat_map(|dims| {
        let numel: usize = dims.iter().product();
        let ndim = dims.len() as isize;
        (
            prop::collection::vec(-3.0f64..3.0, numel),
            -ndim..ndim,
            Just(dims),
        )
            .prop_map(|(data, axis, dims)| (Tensor::from_vec(data, dims).unwrap(), axis))
    })
}

/// Generates a `[rows, n]` tensor whose rows have values in [-5, 5) at least `min_gap` apart.
fn distinct_rows(min_gap: f64) -> impl Strategy<Value = Tensor<f64>> {
    (1usize..=3, 1usize..=6)
        .prop_flat_map(|(rows, n)| {
            (
                Just(rows),
                Just(n),
                prop::collection::vec(-5.0f64..5.0, rows * n),
            )
        })
        .prop_filter_map(
            "values closer than the minimum gap",
            move |(rows, n, data)| {
                let distinct = data.chunks(n).all(|row| {
                    row.iter()
                        .enumerate()
                        .all(|(i, a)| row[i + 1..].iter().all(|b| (a - b).abs() >= min_gap))
                });
                distinct.then(|| Tensor::from_vec(data, [rows, n]).unwrap())
            },
        )
}

/// Generates a `[rows, n]` tensor of small integers, so that rows contain many ties.
fn rows_with_ties() -> impl Strategy<Value = Tensor<f64>> {
    (1usize..=3, 1usize..=8).prop_flat_map(|(rows, n)| {
        prop::collection::vec(-2i32..=2, rows * n).prop_map(move |data| {
            let data = data.into_iter().map(f64::from).collect();
            Tensor::from_vec(data, [rows, n]).unwrap()
        })
    })
}

fn weights_like(shape: &Shape) -> Tensor<f64> {
    let data = (0..shape.numel())
        .map(|i| ((i as f64) * 0.77).sin() + 0.1)
        .collect();
    Tensor::from_vec(data, shape.clone()).unwrap()
}

fn assert_close(actual: &Tensor<f64>, expected: &Tensor<f64>, tol: f64, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shapes differ");
    for (i, (a, e)) in actual.data().iter().zip(expected.data()).enumerate() {
        assert!(
            (a - e).abs() <= tol * (1.0 + e.abs()),
            "{what}: element {i} is {a}, expected {e}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn softmax_gradcheck((x, axis) in tensor_and_axis()) {
        let result = GradCheck::default().check("softmax", &[x], |_, v| v[0].softmax(axis));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    #[test]
    fn log_softmax_gradcheck((x, axis) in tensor_and_axis()) {
        let result = GradCheck::default().check("log_softmax", &[x], |_, v| v[0].log_softmax(axis));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    /// The fused ops against the same math built from primitive ops: values and gradients.
    #[test]
    fn softmax_matches_composition((x, axis) in tensor_and_axis(), log in any::<bool>()) {
        let weights = weights_like(x.shape());

        let fused_tape = Tape::new();
        let xf = fused_tape.param(x.clone());
        let yf = if log { xf.log_softmax(axis)? } else { xf.softmax(axis)? };
        let wf = fused_tape.constant(weights.clone());
        let fused_grad = fused_tape.backward(yf.mul(wf)?.sum()?)?.get(xf)?.clone();

        let tape = Tape::new();
        let xc = tape.param(x);
        let max = xc.max_axes(&[axis], true)?.detach();
        let shifted = xc.sub(max)?;
        let sum = shifted.exp()?.sum_axes(&[axis], true)?;
        let yc = if log { shifted.sub(sum.log()?)? } else { shifted.exp()?.div(sum)? };
        let wc = tape.constant(weights);
        let composed_grad = tape.backward(yc.mul(wc)?.sum()?)?.get(xc)?.clone();

        assert_close(&yf.value(), &yc.value(), 1e-12, "value");
        assert_close(&fused_grad, &composed_grad, 1e-12, "gradient");
    }

    #[test]
    fn sort_gradcheck(x in distinct_rows(1e-3), descending in any::<bool>()) {
        let result = GradCheck::default()
            .check("sort", &[x], |_, v| Ok(v[0].sort(descending)?.0));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    #[test]
    fn topk_gradcheck(x in distinct_rows(1e-3), k_fraction in 0.0f64..=1.0, largest in any::<bool>()) {
        let n = x.dims()[1];
        let k = (k_fraction * n as f64).round() as usize;
        let result = GradCheck::default()
            .check("topk", &[x], |_, v| Ok(v[0].topk(k, largest)?.0));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    /// The sorted rows are monotone, the permutation is a permutation, and equal values keep
    /// their original order.
    #[test]
    fn sort_is_stable_permutation(x in rows_with_ties(), descending in any::<bool>()) {
        let tape = Tape::new();
        let (y, p) = tape.constant(x.clone()).sort(descending)?;
        prop_assert_eq!(argsort(&x, descending)?, p.clone());
        let n = x.dims()[1];
        let (values, positions) = (y.value(), p.to_vec());
        for r in 0..x.dims()[0] {
            let row = &values.data()[r * n..(r + 1) * n];
            let perm = &positions[r * n..(r + 1) * n];
            let mut seen = perm.to_vec();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
            for j in 0..n {
                prop_assert_eq!(row[j], x.data()[r * n + perm[j]]);
            }
            for j in 1..n {
                let in_order = if descending { row[j - 1] >= row[j] } else { row[j - 1] <= row[j] };
                prop_assert!(in_order, "row {} is not sorted: {:?}", r, row);
                if row[j - 1] == row[j] {
                    prop_assert!(perm[j - 1] < perm[j], "tie out of order in row {}: {:?}", r, perm);
                }
            }
        }
    }

    /// topk is the prefix of a full sort, ties included.
    #[test]
    fn topk_is_prefix_of_sort(x in rows_with_ties(), k_fraction in 0.0f64..=1.0, largest in any::<bool>()) {
        let n = x.dims()[1];
        let k = (k_fraction * n as f64).round() as usize;
        let tape = Tape::new();
        let v = tape.constant(x.clone());
        let (sorted, order) = v.sort(largest)?;
        let (top, positions) = v.topk(k, largest)?;
        prop_assert_eq!(positions.dims(), &[x.dims()[0], k][..]);
        for r in 0..x.dims()[0] {
            for j in 0..k {
                prop_assert_eq!(positions.get(&[r, j]), order.get(&[r, j]));
                prop_assert_eq!(top.value().get(&[r, j]), sorted.value().get(&[r, j]));
            }
        }
    }
}

#[test]
fn sort_hand_computed() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3]).unwrap());
    let (descending, p) = x.sort(true).unwrap();
    assert_eq!(descending.value().to_vec(), vec![2.0, 1.0, 0.0]);
    assert_eq!(p.to_vec(), vec![0, 2, 1]);
    let (ascending, p) = x.sort(false).unwrap();
    assert_eq!(ascending.value().to_vec(), vec![0.0, 1.0, 2.0]);
    assert_eq!(p.to_vec(), vec![1, 2, 0]);
}

#[test]
fn sort_ties_keep_lower_index_first() {
    let tape = Tape::<f32>::new();
    let x = tape.param(Tensor::from_vec(vec![1.0, 1.0, 0.0], [3]).unwrap());
    let (y, p) = x.sort(true).unwrap();
    assert_eq!(p.to_vec(), vec![0, 1, 2]);
    assert_eq!(y.value().to_vec(), vec![1.0, 1.0, 0.0]);
    let (_, p) = x.sort(false).unwrap();
    assert_eq!(p.to_vec(), vec![2, 0, 1]);
    let (_, p) = x.topk(1, true).unwrap();
    assert_eq!(p.to_vec(), vec![0]);
}

#[test]
fn sort_gradient_follows_permutation_per_row() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![3.0, 1.0, 2.0, -1.0, 5.0, 0.0], [2, 3]).unwrap());
    let (y, _) = x.sort(false).unwrap();
    let weights =
        tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 10.0, 20.0, 30.0], [2, 3]).unwrap());
    let grads = tape
        .backward(y.mul(weights).unwrap().sum().unwrap())
        .unwrap();
    // Row 0 sorts to [1, 2, 3] from positions [1, 2, 0]; row 1 to [-1, 0, 5] from [0, 2, 1].
    assert_eq!(
        grads.get(x).unwrap().to_vec(),
        vec![3.0, 1.0, 2.0, 10.0, 30.0, 20.0]
    );
}

#[test]
fn softmax_hand_computed() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![0.0, 1.0, 0.0, 1.0], [2, 2]).unwrap());
    let e = std::f64::consts::E;
    let rows = x.softmax(1).unwrap().value().to_vec();
    let expected_rows = [
        1.0 / (1.0 + e),
        e / (1.0 + e),
        1.0 / (1.0 + e),
        e / (1.0 + e),
    ];
    let columns = x.softmax(0).unwrap().value().to_vec();
    for i in 0..4 {
        assert!((rows[i] - expected_rows[i]).abs() < 1e-15, "{rows:?}");
        assert!((columns[i] - 0.5).abs() < 1e-15, "{columns:?}");
    }
}

/// Checks softmax and log_softmax of logits around ±1e4 in precision `T`: finite values equal
/// to the shift-invariant reference, rows summing to 1 and finite gradients.
fn check_large_logits<T: Float>() {
    let logits = [1e4, -1e4, 1e4 - 1.0, 0.0, -1e4, -1e4 + 2.0];
    let x = Tensor::from_vec(logits.map(T::from_f64).to_vec(), [2, 3]).unwrap();
    let tape = Tape::<T>::new();
    let v = tape.param(x);
    let y = v.softmax(-1).unwrap();
    let log_y = v.log_softmax(-1).unwrap();

    // Row 0 is [M, -M, M - 1]: softmax = [1, 0, e⁻¹] / (1 + e⁻¹). Row 1 is [0, -M, -M + 2]:
    // softmax = [1, 0, 0] to working precision.
    let z = 1.0 + (-1.0f64).exp();
    let expected = [1.0 / z, 0.0, (-1.0f64).exp() / z, 1.0, 0.0, 0.0];
    let tol = if T::DTYPE == "F32" { 1e-6 } else { 1e-14 };
    for (i, (&a, e)) in y.value().data().iter().zip(expected).enumerate() {
        assert!(
            (a.as_f64() - e).abs() < tol,
            "{}: softmax element {i} is {a}, expected {e}",
            T::DTYPE
        );
    }
    let expected_log = [-z.ln(), -2e4 - z.ln(), -1.0 - z.ln(), 0.0, -1e4, -1e4 + 2.0];
    for (i, (&a, e)) in log_y.value().data().iter().zip(expected_log).enumerate() {
        assert!(
            (a.as_f64() - e).abs() < tol * (1.0 + e.abs()),
            "{}: log_softmax element {i} is {a}, expected {e}",
            T::DTYPE
        );
    }

    let weights = tape.constant(
        Tensor::from_vec(
            [1.0, -2.0, 3.0, 0.5, 4.0, -1.0].map(T::from_f64).to_vec(),
            [2, 3],
        )
        .unwrap(),
    );
    let loss = y
        .mul(weights)
        .unwrap()
        .add(log_y.mul(weights).unwrap())
        .unwrap()
        .sum()
        .unwrap();
    let grads = tape.backward(loss).unwrap();
    let grad = grads.get(v).unwrap();
    assert_eq!(grad.first_non_finite(), None, "{}: {grad}", T::DTYPE);
}

#[test]
fn large_logits_stay_finite_f32() {
    check_large_logits::<f32>();
}

#[test]
fn large_logits_stay_finite_f64() {
    check_large_logits::<f64>();
}
