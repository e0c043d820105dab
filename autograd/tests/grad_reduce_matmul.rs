//! Gradient checks and hand-computed values for the reductions and the matrix product.

mod common;

use autograd::{Tape, Tensor};
use common::{assert_close, check_grad, distinct_tensor, plain, tensor, tensor_of, CASES};
use proptest::prelude::*;

/// Generates a tensor and a subset of its axes (each possibly spelled negative); an empty subset means
/// every axis.
fn tensor_and_axes(
    values: impl Strategy<Value = Tensor<f64>>,
) -> impl Strategy<Value = (Tensor<f64>, Vec<isize>)> {
    values.prop_flat_map(|t| {
        let rank = t.ndim();
        let picks = prop::collection::vec((any::<bool>(), any::<bool>()), rank);
        (Just(t), picks).prop_map(|(t, picks)| {
            let rank = t.ndim() as isize;
            let axes = picks
                .iter()
                .enumerate()
                .filter(|(_, (keep, _))| *keep)
                .map(|(a, (_, negative))| {
                    if *negative {
                        a as isize - rank
                    } else {
                        a as isize
                    }
                })
                .collect();
            (t, axes)
        })
    })
}

/// Generates matrix dimensions `(batch, m, k, n)`, each in `1..=3`.
fn dims4() -> impl Strategy<Value = (usize, usize, usize, usize)> {
    (1..=3usize, 1..=3usize, 1..=3usize, 1..=3usize)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn sum_and_mean_gradient(
        (x, axes) in tensor_and_axes(tensor(3, plain())),
        keepdim in any::<bool>(),
    ) {
        let inputs = [x];
        check_grad("sum", &inputs, |_, v| v[0].sum())?;
        check_grad("mean", &inputs, |_, v| v[0].mean())?;
        let sum_axes = axes.clone();
        check_grad("sum_axes", &inputs, move |_, v| v[0].sum_axes(&sum_axes, keepdim))?;
        check_grad("mean_axes", &inputs, move |_, v| v[0].mean_axes(&axes, keepdim))?;
    }

    #[test]
    fn max_and_min_gradient(
        (x, axes) in tensor_and_axes(distinct_tensor(3)),
        keepdim in any::<bool>(),
    ) {
        let inputs = [x];
        let max_axes = axes.clone();
        check_grad("max_axes", &inputs, move |_, v| v[0].max_axes(&max_axes, keepdim))?;
        check_grad("min_axes", &inputs, move |_, v| v[0].min_axes(&axes, keepdim))?;
    }

    #[test]
    fn matmul_2d_gradient(
        (a, b) in dims4().prop_flat_map(|(_, m, k, n)| {
            (tensor_of(vec![m, k], plain()), tensor_of(vec![k, n], plain()))
        })
    ) {
        check_grad("matmul", &[a, b], |_, v| v[0].matmul(v[1]))?;
    }

    #[test]
    fn matmul_batched_gradient(
        (a, b, a_batched, b_batched) in (dims4(), 0..3usize).prop_flat_map(|((batch, m, k, n), form)| {
            // form 0: both batched; 1: only the left operand; 2: only the right operand.
            let (a_batched, b_batched) = [(true, true), (true, false), (false, true)][form];
            let a_dims = if a_batched { vec![batch, m, k] } else { vec![m, k] };
            let b_dims = if b_batched { vec![batch, k, n] } else { vec![k, n] };
            (tensor_of(a_dims, plain()), tensor_of(b_dims, plain()), Just(a_batched), Just(b_batched))
        })
    ) {
        let name = format!("matmul (left batched {a_batched}, right batched {b_batched})");
        check_grad(&name, &[a, b], |_, v| v[0].matmul(v[1]))?;
    }

    #[test]
    fn matmul_transposed_operand_gradient(
        (a, a_t, b, b_t) in (dims4(), any::<bool>()).prop_flat_map(|((batch, m, k, n), batched)| {
            // Each operand also comes stored transposed, to be transposed back on the tape.
            let lead = if batched { vec![batch] } else { vec![] };
            let with = |rows: usize, cols: usize| [lead.clone(), vec![rows, cols]].concat();
            (
                tensor_of(with(m, k), plain()),
                tensor_of(with(k, m), plain()),
                tensor_of(with(k, n), plain()),
                tensor_of(with(n, k), plain()),
            )
        })
    ) {
        check_grad("matmul, left transposed", &[a_t, b], |_, v| {
            v[0].transpose(-2, -1)?.matmul(v[1])
        })?;
        check_grad("matmul, right transposed", &[a, b_t], |_, v| {
            v[0].matmul(v[1].transpose(-1, -2)?)
        })?;
    }
}

#[test]
fn reduction_values_and_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.param(Tensor::from_vec(vec![1.0, 5.0, 5.0, 2.0, 0.0, 3.0], [2, 3]).unwrap());
    let max = x.max_axes(&[1], false).unwrap();
    assert_close(&max.value().to_vec(), &[5.0, 3.0]);
    let mean = x.mean_axes(&[0], true).unwrap();
    assert_eq!(mean.shape().dims(), &[1, 3]);
    assert_close(&mean.value().to_vec(), &[1.5, 2.5, 4.0]);
    let loss = max.sum().unwrap().add(mean.sum().unwrap()).unwrap();
    let grads = tape.backward(loss).unwrap();
    // The tied maximum 5 of row 0 shares its gradient; the mean adds 1/2 everywhere.
    assert_close(
        &grads.get(x).unwrap().to_vec(),
        &[0.5, 1.0, 1.0, 0.5, 0.5, 1.5],
    );
}

#[test]
fn matmul_values_and_gradient() {
    let tape = Tape::<f64>::new();
    let a = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2]).unwrap());
    let b = tape.param(Tensor::from_vec(vec![1.0, -1.0], [2, 1]).unwrap());
    let y = a.matmul(b).unwrap();
    assert_close(&y.value().to_vec(), &[-1.0, -1.0]);
    let grads = tape.backward(y.sum().unwrap()).unwrap();
    // ∂/∂a = 1 · bᵀ for each row; ∂/∂b = aᵀ · 1 = column sums of a.
    assert_close(&grads.get(a).unwrap().to_vec(), &[1.0, -1.0, 1.0, -1.0]);
    assert_close(&grads.get(b).unwrap().to_vec(), &[4.0, 6.0]);
}

#[test]
fn matmul_rejects_mismatched_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.param(Tensor::zeros([2, 3]));
    let b = tape.param(Tensor::zeros([2, 3]));
    let text = a.matmul(b).unwrap_err().to_string();
    assert!(text.starts_with("matmul"), "{text}");
    assert!(text.contains("[2, 3] and [2, 3]"), "{text}");
    let c = tape.param(Tensor::zeros([3]));
    assert!(a.matmul(c).is_err());
    let d = tape.param(Tensor::zeros([2, 2, 3]));
    let e = tape.param(Tensor::zeros([3, 3, 1]));
    assert!(d.matmul(e).is_err());
}
