//! Bit-identical results for any rayon thread count: the same forward and backward pass on
//! inputs large enough for every kernel to take its parallel path, run in pools of 1, 2 and 4
//! threads.

use autograd::{Tape, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The values and gradients one run produces, in a fixed order.
struct Run {
    outputs: Vec<(&'static str, Tensor<f32>)>,
    grads: Vec<(&'static str, Tensor<f32>)>,
}

struct Inputs {
    a: Tensor<f32>,
    b: Tensor<f32>,
    bias: Tensor<f32>,
    scale: Tensor<f32>,
}

fn inputs() -> Inputs {
    let mut rng = StdRng::seed_from_u64(42);
    Inputs {
        a: Tensor::normal([20, 300, 64], 0.0, 1.0, &mut rng).unwrap(),
        b: Tensor::normal([20, 64, 300], 0.0, 1.0, &mut rng).unwrap(),
        bias: Tensor::normal([300], 0.0, 1.0, &mut rng).unwrap(),
        scale: Tensor::uniform([20, 300, 1], 0.5, 1.5, &mut rng).unwrap(),
    }
}

/// Batched matmul to [20, 300, 300] (1.8M elements), softmax and log_softmax over two axes,
/// broadcasting add and mul, sort and topk, reductions, and the backward pass through all of
/// them.
fn run(inputs: &Inputs) -> autograd::Result<Run> {
    let tape = Tape::new();
    let a = tape.param(inputs.a.clone());
    let b = tape.param(inputs.b.clone());
    let bias = tape.param(inputs.bias.clone());
    let scale = tape.param(inputs.scale.clone());

    let scores = a.matmul(b)?.mul_scalar(0.125)?;
    let shifted = scores.add(bias)?.mul(scale)?;
    let attention = shifted.softmax(-1)?;
    let log_columns = shifted.log_softmax(1)?;
    let (sorted, _) = attention.sort(true)?;
    let (top, _) = log_columns.topk(10, true)?;
    let row_max = shifted.max_axes(&[-1], true)?;
    let loss = attention
        .mul(log_columns)?
        .sum()?
        .add(sorted.mean_axes(&[0, 1], false)?.sum()?)?
        .add(top.mean()?)?
        .add(row_max.mean()?)?;

    let grads = tape.backward(loss)?;
    Ok(Run {
        outputs: vec![
            ("scores", scores.value()),
            ("attention", attention.value()),
            ("log_columns", log_columns.value()),
            ("sorted", sorted.value()),
            ("top", top.value()),
            ("loss", loss.value()),
        ],
        grads: vec![
            ("a", grads.get(a)?.clone()),
            ("b", grads.get(b)?.clone()),
            ("bias", grads.get(bias)?.clone()),
            ("scale", grads.get(scale)?.clone()),
        ],
    })
}

fn run_with_threads(threads: usize, inputs: &Inputs) -> Run {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("building a rayon pool");
    pool.install(|| run(inputs)).expect("the computation runs")
}

#[test]
fn results_are_bit_identical_across_thread_counts() {
    let inputs = inputs();
    let reference = run_with_threads(1, &inputs);
    assert!(
        reference
            .outputs
            .iter()
            .all(|(_, t)| t.first_non_finite().is_none()),
        "the reference run produced non-finite values"
    );
    for threads in [2, 4] {
        let other = run_with_threads(threads, &inputs);
        for ((name, expected), (_, actual)) in reference.outputs.iter().zip(&other.outputs) {
            assert!(
                expected.bit_eq(actual),
                "output {name} differs between 1 and {threads} threads"
            );
        }
        for ((name, expected), (_, actual)) in reference.grads.iter().zip(&other.grads) {
            assert!(
                expected.bit_eq(actual),
                "gradient of {name} differs between 1 and {threads} threads"
            );
        }
    }
}

#[test]
fn elementwise_broadcast_is_bit_identical_across_thread_counts() {
    let mut rng = StdRng::seed_from_u64(7);
    let x = Tensor::<f64>::normal([1100, 1000], 0.0, 1.0, &mut rng).unwrap();
    let column = Tensor::<f64>::normal([1100, 1], 0.0, 1.0, &mut rng).unwrap();
    let compute = || -> autograd::Result<(Tensor<f64>, Tensor<f64>, Tensor<f64>)> {
        let tape = Tape::new();
        let xv = tape.param(x.clone());
        let cv = tape.param(column.clone());
        let y = xv.mul(cv)?.sub(cv)?.tanh()?;
        let loss = y
            .sum_axes(&[1], false)?
            .mul(y.mean_axes(&[1], false)?)?
            .sum()?;
        let grads = tape.backward(loss)?;
        Ok((y.value(), grads.get(xv)?.clone(), grads.get(cv)?.clone()))
    };
    let in_pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("building a rayon pool")
            .install(compute)
            .expect("the computation runs")
    };
    let reference = in_pool(1);
    for threads in [2, 4] {
        let other = in_pool(threads);
        assert!(
            reference.0.bit_eq(&other.0),
            "values differ at {threads} threads"
        );
        assert!(
            reference.1.bit_eq(&other.1),
            "x gradient differs at {threads} threads"
        );
        assert!(
            reference.2.bit_eq(&other.2),
            "column gradient differs at {threads} threads"
        );
    }
}

#[test]
fn pooling_and_unary_bit_identical_across_threads() {
    let mut rng = StdRng::seed_from_u64(11);
    let x = Tensor::<f32>::normal([4, 8, 48, 40], 0.0, 1.0, &mut rng).unwrap();
    let compute = || -> autograd::Result<Vec<Tensor<f32>>> {
        let tape = Tape::new();
        let xv = tape.param(x.clone());
        let h = xv
            .relu()?
            .max_pool2d(2, 2)?
            .mul_scalar(1.5)?
            .neg()?
            .tanh()?;
        let g = xv.avg_pool2d(3, 1)?.sigmoid()?.abs()?.add_scalar(0.25)?;
        let loss = h.mul(h)?.sum()?.add(g.log()?.mean()?)?;
        let grads = tape.backward(loss)?;
        Ok(vec![h.value(), g.value(), grads.get(xv)?.clone()])
    };
    let in_pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("building a rayon pool")
            .install(compute)
            .expect("the computation runs")
    };
    let reference = in_pool(1);
    for threads in [2, 3] {
        for (k, (a, b)) in reference.iter().zip(&in_pool(threads)).enumerate() {
            assert!(a.bit_eq(b), "result {k} differs at {threads} threads");
        }
    }
}

#[test]
fn split_matmul_bit_identical_across_threads() {
    // A linear layer's shapes: the forward product splits along its long inner axis, the
    // input gradient along output columns and the weight gradient along output rows.
    let mut rng = StdRng::seed_from_u64(13);
    let x = Tensor::<f32>::normal([16, 6144], 0.0, 1.0, &mut rng).unwrap();
    let w = Tensor::<f32>::normal([6144, 32], 0.0, 0.1, &mut rng).unwrap();
    let compute = || -> autograd::Result<Vec<Tensor<f32>>> {
        let tape = Tape::new();
        let (xv, wv) = (tape.param(x.clone()), tape.param(w.clone()));
        let y = xv.matmul(wv)?;
        let grads = tape.backward(y.mul(y)?.sum()?)?;
        Ok(vec![
            y.value(),
            grads.get(xv)?.clone(),
            grads.get(wv)?.clone(),
        ])
    };
    let in_pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("building a rayon pool")
            .install(compute)
            .expect("the computation runs")
    };
    let reference = in_pool(1);
    for threads in [2, 3] {
        for (k, (a, b)) in reference.iter().zip(&in_pool(threads)).enumerate() {
            assert!(a.bit_eq(b), "result {k} differs at {threads} threads");
        }
    }
}
