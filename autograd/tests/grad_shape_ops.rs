//! Gradient checks, hand-computed values and input validation for the layout and indexing ops.

mod common;

use autograd::{concat, stack, Error, IndexTensor, Tape, Tensor};
use common::{assert_close, check_grad, plain, shape, tensor, tensor_of, CASES};
use proptest::prelude::*;

fn iota(dims: &[usize]) -> Tensor<f64> {
    let n: usize = dims.iter().product();
    Tensor::from_vec((0..n).map(|v| v as f64).collect(), dims).unwrap()
}

/// Generates a tensor and one of its axes, possibly spelled negative.
fn tensor_and_axis() -> impl Strategy<Value = (Tensor<f64>, isize)> {
    tensor(4, plain()).prop_flat_map(|t| {
        let rank = t.ndim() as isize;
        (Just(t), -rank..rank)
    })
}

/// Generates a gather problem: input, axis and an index of the same rank whose other axes are no longer
/// than the input's.
fn gather_case() -> impl Strategy<Value = (Tensor<f64>, usize, IndexTensor)> {
    shape(3, 3)
        .prop_flat_map(|dims| {
            let rank = dims.len();
            (tensor_of(dims.clone(), plain()), 0..rank)
        })
        .prop_flat_map(|(x, axis)| {
            let index_dims: Vec<BoxedStrategy<usize>> = x
                .dims()
                .iter()
                .enumerate()
                .map(|(d, &len)| {
                    if d == axis {
                        (1..=3usize).boxed()
                    } else {
                        (1..=len).boxed()
                    }
                })
                .collect();
            let len = x.dims()[axis];
            (Just(x), Just(axis), index_dims).prop_flat_map(move |(x, axis, dims)| {
                let n: usize = dims.iter().product();
                let values = prop::collection::vec(0..len, n);
                (Just(x), Just(axis), values).prop_map(move |(x, axis, values)| {
                    (
                        x,
                        axis,
                        IndexTensor::from_vec(values, dims.clone()).unwrap(),
                    )
                })
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn reshape_gradient(x in tensor(4, plain())) {
        let reversed: Vec<usize> = x.dims().iter().rev().copied().collect();
        check_grad("reshape", &[x], move |_, v| v[0].reshape(reversed.clone()))?;
    }

    #[test]
    fn flatten_from_gradient((x, axis) in tensor_and_axis()) {
        check_grad("flatten_from", &[x], move |_, v| v[0].flatten_from(axis))?;
    }

    #[test]
    fn unsqueeze_squeeze_gradient(x in tensor(3, plain()), position in 0usize..4) {
        let axis = (position % (x.ndim() + 1)) as isize;
        // The extra exp makes the Jacobian non-trivial, so a wrong element order would show.
        check_grad("unsqueeze", std::slice::from_ref(&x), move |_, v| v[0].exp()?.unsqueeze(axis))?;
        check_grad("squeeze", &[x], move |_, v| v[0].unsqueeze(-1)?.exp()?.squeeze(-1))?;
    }

    #[test]
    fn permute_gradient(
        (x, perm) in tensor(4, plain()).prop_flat_map(|t| {
            let axes: Vec<isize> = (0..t.ndim() as isize).collect();
            (Just(t), Just(axes).prop_shuffle())
        }),
        negate in any::<bool>(),
    ) {
        let rank = x.ndim() as isize;
        let axes: Vec<isize> = perm.iter().map(|&a| if negate { a - rank } else { a }).collect();
        check_grad("permute", &[x], move |_, v| v[0].permute(&axes))?;
    }

    #[test]
    fn transpose_gradient(
        (x, a, b) in tensor(4, plain()).prop_flat_map(|t| {
            let rank = t.ndim() as isize;
            (Just(t), -rank..rank, -rank..rank)
        })
    ) {
        check_grad("transpose", &[x], move |_, v| v[0].transpose(a, b))?;
    }

    #[test]
    fn broadcast_to_gradient(
        (target, x) in shape(3, 3).prop_flat_map(|full| {
            (Just(full.clone()), common::broadcastable_to(full))
        }).prop_flat_map(|(full, small)| (Just(full), tensor_of(small, plain())))
    ) {
        check_grad("broadcast_to", &[x], move |_, v| v[0].broadcast_to(target.clone()))?;
    }

    #[test]
    fn slice_gradient(
        (x, axis, start, end) in tensor(3, plain()).prop_flat_map(|t| {
            let rank = t.ndim();
            (Just(t), 0..rank)
        }).prop_flat_map(|(t, axis)| {
            let len = t.dims()[axis];
            (Just(t), Just(axis), 0..=len)
        }).prop_flat_map(|(t, axis, start)| {
            let len = t.dims()[axis];
            (Just(t), Just(axis), Just(start), start..=len)
        })
    ) {
        check_grad("slice", &[x], move |_, v| v[0].slice(axis as isize, start, end))?;
    }

    #[test]
    fn concat_gradient(
        (parts, axis) in shape(3, 3).prop_flat_map(|dims| {
            let rank = dims.len();
            (Just(dims), 0..rank, prop::collection::vec(1..=3usize, 1..=3))
        }).prop_flat_map(|(dims, axis, lens)| {
            let parts: Vec<_> = lens
                .iter()
                .map(|&len| {
                    let mut d = dims.clone();
                    d[axis] = len;
                    tensor_of(d, plain())
                })
                .collect();
            (parts, Just(axis))
        })
    ) {
        let axis = axis as isize;
        check_grad("concat", &parts, move |_, v| concat(v, axis))?;
    }

    #[test]
    fn stack_gradient(
        (parts, axis) in shape(3, 3).prop_flat_map(|dims| {
            let rank = dims.len() as isize;
            let parts = prop::collection::vec(tensor_of(dims, plain()), 1..=3);
            (parts, -(rank + 1)..=rank)
        })
    ) {
        check_grad("stack", &parts, move |_, v| stack(v, axis))?;
    }

    #[test]
    fn index_select_gradient(
        (x, axis, indices) in tensor(3, plain()).prop_flat_map(|t| {
            let rank = t.ndim();
            (Just(t), 0..rank)
        }).prop_flat_map(|(t, axis)| {
            let len = t.dims()[axis];
            (Just(t), Just(axis), prop::collection::vec(0..len, 0..=4))
        })
    ) {
        // Squaring after the selection makes repeated indices contribute 2·x·g each, which a
        // backward that overwrote instead of accumulating would get wrong.
        check_grad("index_select", &[x], move |_, v| {
            v[0].index_select(axis as isize, &indices)?.powf(2.0)
        })?;
    }

    #[test]
    fn gather_gradient((x, axis, index) in gather_case()) {
        check_grad("gather", &[x], move |_, v| v[0].gather(axis as isize, &index)?.powf(2.0))?;
    }
}

#[test]
fn permute_values_and_gradient() {
    let tape = Tape::<f64>::new();
    let x = tape.param(iota(&[2, 3, 2]));
    let y = x.permute(&[1, 2, 0]).unwrap();
    assert_eq!(y.shape().dims(), &[3, 2, 2]);
    // y[i][j][k] = x[k][i][j] = 6k + 2i + j.
    assert_close(
        &y.value().to_vec(),
        &[0., 6., 1., 7., 2., 8., 3., 9., 4., 10., 5., 11.],
    );
    let weights = tape.constant(iota(&[3, 2, 2]));
    let grads = tape
        .backward(y.mul(weights).unwrap().sum().unwrap())
        .unwrap();
    // ∂L/∂x[k][i][j] = w[i][j][k] = 4i + 2j + k.
    assert_close(
        &grads.get(x).unwrap().to_vec(),
        &[0., 2., 4., 6., 8., 10., 1., 3., 5., 7., 9., 11.],
    );
}

#[test]
fn transpose_of_matrix_batch() {
    let tape = Tape::<f64>::new();
    let x = tape.constant(iota(&[2, 2, 3]));
    let y = x.transpose(-1, -2).unwrap();
    assert_eq!(y.shape().dims(), &[2, 3, 2]);
    assert_close(
        &y.value().to_vec(),
        &[0., 3., 1., 4., 2., 5., 6., 9., 7., 10., 8., 11.],
    );
    let same = x.transpose(1, 1).unwrap();
    assert_close(&same.value().to_vec(), &x.value().to_vec());
}

#[test]
fn gather_values_and_scatter_add() {
    let tape = Tape::<f64>::new();
    let x = tape.param(iota(&[2, 3]));
    // Along axis 0 with a shorter index on axis 1: y[i][j] = x[index[i][j]][j].
    let index = IndexTensor::from_vec(vec![1, 0, 1, 1], [2, 2]).unwrap();
    let y = x.gather(0, &index).unwrap();
    assert_close(&y.value().to_vec(), &[3., 1., 3., 4.]);
    let weights = tape.constant(Tensor::from_vec(vec![1., 2., 3., 4.], [2, 2]).unwrap());
    let grads = tape
        .backward(y.mul(weights).unwrap().sum().unwrap())
        .unwrap();
    // x[1][0] is read twice (weights 1 and 3), x[0][1] once (2), x[1][1] once (4).
    assert_close(&grads.get(x).unwrap().to_vec(), &[0., 2., 0., 4., 4., 0.]);
}

#[test]
fn stack_and_concat_values() {
    let tape = Tape::<f64>::new();
    let a = tape.param(iota(&[2, 2]));
    let b = tape.param(iota(&[2, 2]).map(|v| v + 10.0));
    let s = stack(&[a, b], 1).unwrap();
    assert_eq!(s.shape().dims(), &[2, 2, 2]);
    assert_close(&s.value().to_vec(), &[0., 1., 10., 11., 2., 3., 12., 13.]);
    let c = concat(&[a, b, a], 0).unwrap();
    assert_eq!(c.shape().dims(), &[6, 2]);
    // `a` appears twice in the concatenation, so its gradient accumulates both ranges.
    let weights = tape.constant(iota(&[6, 2]));
    let grads = tape
        .backward(c.mul(weights).unwrap().sum().unwrap())
        .unwrap();
    assert_close(&grads.get(a).unwrap().to_vec(), &[8., 10., 12., 14.]);
    assert_close(&grads.get(b).unwrap().to_vec(), &[4., 5., 6., 7.]);
}

#[test]
fn concat_accepts_zero_length_part() {
    let tape = Tape::<f64>::new();
    let a = tape.param(iota(&[2, 0]));
    let b = tape.param(iota(&[2, 2]));
    let c = concat(&[a, b], 1).unwrap();
    assert_close(&c.value().to_vec(), &[0., 1., 2., 3.]);
    let grads = tape.backward(c.sum().unwrap()).unwrap();
    assert_eq!(grads.get(a).unwrap().dims(), &[2, 0]);
    assert_close(&grads.get(b).unwrap().to_vec(), &[1.; 4]);
}

#[test]
fn reshape_family_values() {
    let tape = Tape::<f32>::new();
    let x =
        tape.constant(Tensor::from_vec((0..24).map(|v| v as f32).collect(), [2, 3, 4]).unwrap());
    assert_eq!(x.flatten_from(1).unwrap().shape().dims(), &[2, 12]);
    assert_eq!(x.flatten_from(-1).unwrap().shape().dims(), &[2, 3, 4]);
    assert_eq!(x.flatten_from(0).unwrap().shape().dims(), &[24]);
    assert_eq!(x.unsqueeze(3).unwrap().shape().dims(), &[2, 3, 4, 1]);
    assert_eq!(x.unsqueeze(-4).unwrap().shape().dims(), &[1, 2, 3, 4]);
    let squeezed = x.unsqueeze(1).unwrap().squeeze(1).unwrap();
    assert!(squeezed.value().bit_eq(&x.value()));
    let scalar = tape.constant(Tensor::scalar(2.0f32));
    assert_eq!(scalar.unsqueeze(0).unwrap().shape().dims(), &[1]);
}

fn expect_invalid<T: std::fmt::Debug>(result: Result<T, Error>, op: &str, needle: &str) {
    let err = result.expect_err("the call must fail");
    let text = err.to_string();
    assert!(
        matches!(err, Error::InvalidArgument { .. }),
        "expected InvalidArgument, got {text}"
    );
    assert!(text.starts_with(op), "{text}");
    assert!(text.contains(needle), "{text}");
}

fn expect_shape<T: std::fmt::Debug>(result: Result<T, Error>, op: &str, needle: &str) {
    let err = result.expect_err("the call must fail");
    let text = err.to_string();
    assert!(
        matches!(err, Error::Shape { .. }),
        "expected Shape, got {text}"
    );
    assert!(text.starts_with(op), "{text}");
    assert!(text.contains(needle), "{text}");
}

#[test]
fn layout_ops_reject_bad_arguments() {
    let tape = Tape::<f64>::new();
    let x = tape.param(iota(&[2, 3]));
    expect_shape(x.reshape([4, 2]), "reshape", "[4, 2]");
    expect_invalid(x.flatten_from(2), "flatten_from", "axis = 2");
    expect_invalid(x.unsqueeze(3), "unsqueeze", "axis = 3");
    expect_invalid(x.unsqueeze(-4), "unsqueeze", "axis = -4");
    expect_shape(x.squeeze(0), "squeeze", "length 2");
    expect_invalid(x.squeeze(5), "squeeze", "axis = 5");
    expect_invalid(x.permute(&[0]), "permute", "[0]");
    expect_invalid(x.permute(&[1, 1]), "permute", "exactly once");
    expect_invalid(x.permute(&[0, 2]), "permute", "axis = 2");
    expect_invalid(x.transpose(0, -3), "transpose", "axis = -3");
    expect_shape(x.broadcast_to([2, 2]), "broadcast_to", "[2, 3]");
    expect_shape(x.broadcast_to([3]), "broadcast_to", "[2, 3]");
    // No failed call records anything.
    assert_eq!(tape.len(), 1);
}

#[test]
fn join_ops_reject_bad_arguments() {
    let tape = Tape::<f64>::new();
    let x = tape.param(iota(&[2, 3]));
    let y = tape.param(iota(&[3, 3]));
    let z = tape.param(iota(&[2, 3, 1]));
    expect_invalid(x.slice(1, 2, 4), "slice", "2..4");
    expect_invalid(x.slice(1, 2, 1), "slice", "2..1");
    expect_invalid(x.slice(2, 0, 1), "slice", "axis = 2");
    expect_invalid(concat::<f64>(&[], 0), "concat", "at least one");
    expect_invalid(stack::<f64>(&[], 0), "stack", "at least one");
    expect_shape(concat(&[x, y], 1), "concat", "input 1 has shape [3, 3]");
    expect_shape(concat(&[x, z], 0), "concat", "input 1 has shape [2, 3, 1]");
    expect_invalid(concat(&[x, y], 2), "concat", "axis = 2");
    expect_shape(stack(&[x, y], 0), "stack", "equal shapes");
    expect_invalid(stack(&[x, x], 3), "stack", "axis = 3");
    assert!(concat(&[x, y], 0).is_ok());
    assert!(stack(&[x, x], -3).is_ok());
}

#[test]
fn indexing_ops_reject_bad_arguments() {
    let tape = Tape::<f64>::new();
    let x = tape.param(iota(&[2, 3]));
    expect_invalid(x.index_select(1, &[0, 3]), "index_select", "indices[1]");
    expect_invalid(x.index_select(-3, &[0]), "index_select", "axis = -3");
    let index = IndexTensor::from_vec(vec![0, 2], [1, 2]).unwrap();
    expect_invalid(x.gather(0, &index), "gather", "index = 2");
    expect_invalid(x.gather(2, &index), "gather", "axis = 2");
    let flat = IndexTensor::from_vec(vec![0, 1], [2]).unwrap();
    expect_shape(x.gather(1, &flat), "gather", "same rank");
    let wide = IndexTensor::from_vec(vec![0; 4], [1, 4]).unwrap();
    expect_shape(x.gather(0, &wide), "gather", "shape [1, 4]");
    expect_shape(
        IndexTensor::from_vec(vec![0; 3], [2, 2]),
        "IndexTensor::from_vec",
        "3 indices",
    );
    let empty = x.index_select(0, &[]).unwrap();
    assert_eq!(empty.shape().dims(), &[0, 3]);
}

/// Runs `f` on a rayon pool of the given size.
fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Runs every parallel kernel of this module, forward and backward, on a problem above the
/// parallel threshold and returns the outputs and gradients.
fn large_problem(weights: &Tensor<f64>) -> Vec<Tensor<f64>> {
    let tape = Tape::<f64>::new();
    let x = tape.param(weights.clone());
    let n = weights.dims()[0];
    let indices: Vec<usize> = (0..n).map(|i| (i * 7) % n).collect();
    let index = IndexTensor::from_vec(
        (0..weights.numel()).map(|i| (i * 13) % n).collect(),
        weights.shape().clone(),
    )
    .unwrap();
    let outputs = [
        x.permute(&[2, 0, 1]).unwrap(),
        x.slice(1, 1, 7).unwrap(),
        concat(&[x, x], 2).unwrap(),
        x.index_select(0, &indices).unwrap(),
        x.gather(0, &index).unwrap(),
    ];
    let mut loss = outputs[0].powf(2.0).unwrap().sum().unwrap();
    for y in &outputs[1..] {
        loss = loss.add(y.powf(2.0).unwrap().sum().unwrap()).unwrap();
    }
    let grads = tape.backward(loss).unwrap();
    let mut results: Vec<Tensor<f64>> = outputs.iter().map(|y| y.value()).collect();
    results.push(grads.get(x).unwrap().clone());
    results
}

#[test]
fn kernels_are_identical_for_any_thread_count() {
    let dims = [64, 32, 24];
    let n: usize = dims.iter().product();
    let weights = Tensor::from_vec(
        (0..n).map(|i| ((i * 37) % 101) as f64 / 7.0).collect(),
        dims,
    )
    .unwrap();
    let one = with_threads(1, || large_problem(&weights));
    let three = with_threads(3, || large_problem(&weights));
    for (k, (a, b)) in one.iter().zip(&three).enumerate() {
        assert!(a.bit_eq(b), "result {k} differs between 1 and 3 threads");
    }
}
