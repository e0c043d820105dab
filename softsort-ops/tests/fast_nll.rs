//! Checks of the fused permutation negative log-likelihoods for SoftSort with squared distance
//! and NeuralSort: against the dense operators with `permutation_cross_entropy`, against the
//! same math composed from autograd primitives with `log_softmax`, against finite differences,
//! on bad input and across thread counts.

mod common;

use autograd::{Error, Op, Tape, Tensor, Var};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use softsort_ops::fast::{self, NeuralSortPermutationNll, SquaredSoftSortPermutationNll};
use softsort_ops::{permutation_cross_entropy, Distance, NeuralSort, SoftSort};

use common::{grad_check, separated_scores, BATCH_SHAPES};

#[derive(Clone, Copy, Debug)]
enum Relaxation {
    Squared,
    Neural,
}

const BOTH: [Relaxation; 2] = [Relaxation::Squared, Relaxation::Neural];

/// Records the fused loss of `relaxation` on the tape of `s`.
fn fused<'t>(
    relaxation: Relaxation,
    s: Var<'t, f64>,
    target: Var<'t, f64>,
    tau: f64,
) -> autograd::Result<Var<'t, f64>> {
    match relaxation {
        Relaxation::Squared => fast::squared_permutation_nll(s, target, tau),
        Relaxation::Neural => fast::neuralsort_permutation_nll(s, target, tau),
    }
}

/// Computes the loss on the dense path: `P` from the operator, then
/// `permutation_cross_entropy`.
fn dense<'t>(relaxation: Relaxation, s: Var<'t, f64>, target: &[usize], tau: f64) -> Var<'t, f64> {
    let p = match relaxation {
        Relaxation::Squared => SoftSort::new(tau).distance(Distance::Squared).apply(s),
        Relaxation::Neural => NeuralSort::new(tau).apply(s),
    }
    .unwrap();
    permutation_cross_entropy(p, target, s.shape().dims()).unwrap()
}

/// Composes the loss from autograd primitives: the logits `[B, n, n]`, `log_softmax` over the
/// last axis, and the negated mean of the entries the targets pick.
fn composed<'t>(
    relaxation: Relaxation,
    s: Var<'t, f64>,
    target: &[usize],
    tau: f64,
) -> Var<'t, f64> {
    let tape = s.tape();
    let n = *s.shape().dims().last().unwrap();
    let rows = s.shape().numel() / n;
    let s = s.reshape(vec![rows, n]).unwrap();
    let column = s.reshape(vec![rows, n, 1]).unwrap();
    let row = s.reshape(vec![rows, 1, n]).unwrap();
    let logits = match relaxation {
        Relaxation::Squared => {
            let (sorted, _) = s.sort(true).unwrap();
            let diff = sorted.reshape(vec![rows, n, 1]).unwrap().sub(row).unwrap();
            diff.mul(diff).unwrap().mul_scalar(-1.0 / tau).unwrap()
        }
        Relaxation::Neural => {
            let abs_dev = column
                .sub(row)
                .unwrap()
                .abs()
                .unwrap()
                .sum_axes(&[1], true)
                .unwrap();
            let c: Vec<f64> = (0..n).map(|k| n as f64 - 1.0 - 2.0 * k as f64).collect();
            let c = tape.constant(Tensor::from_vec(c, [n, 1]).unwrap());
            c.mul(row)
                .unwrap()
                .sub(abs_dev)
                .unwrap()
                .mul_scalar(1.0 / tau)
                .unwrap()
        }
    };
    let log_p = logits.log_softmax(-1).unwrap();
    let mut mask = vec![0.0; rows * n * n];
    for (k, &j) in target.iter().enumerate() {
        mask[k * n + j] = 1.0;
    }
    let mask = tape.constant(Tensor::from_vec(mask, [rows, n, n]).unwrap());
    log_p
        .mul(mask)
        .unwrap()
        .sum()
        .unwrap()
        .mul_scalar(-1.0 / (rows * n) as f64)
        .unwrap()
}

/// Returns the loss and its gradient with respect to the scores.
fn loss_and_grad(
    scores: &Tensor<f64>,
    f: impl for<'t> Fn(&'t Tape<f64>, Var<'t, f64>) -> Var<'t, f64>,
) -> (f64, Vec<f64>) {
    let tape = Tape::new();
    let s = tape.param(scores.clone());
    let loss = f(&tape, s);
    let value = loss.value().item().unwrap();
    let grads = tape.backward(loss).unwrap();
    (value, grads.get(s).unwrap().to_vec())
}

/// Asserts `|a − b| ≤ tol · max(max |b|, 1e-300)` elementwise: relative to the reference's
/// largest element.
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-300f64, |m, x| m.max(x.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.is_finite(), "{what}[{i}] = {x} is not finite");
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: fused {x:e}, reference {y:e}, |diff| {:e} > {tol:e} · {scale:e}",
            (x - y).abs()
        );
    }
}

/// Compares the fused loss with a reference, value and gradient.
fn compare(
    what: &str,
    relaxation: Relaxation,
    scores: &Tensor<f64>,
    target: &[usize],
    tau: f64,
    reference: impl for<'t> Fn(Var<'t, f64>) -> Var<'t, f64>,
) {
    let target_tensor = target_tensor(target, scores.dims());
    let (fused_value, fused_grad) = loss_and_grad(scores, |tape, s| {
        fused(relaxation, s, tape.constant(target_tensor.clone()), tau).unwrap()
    });
    let (ref_value, ref_grad) = loss_and_grad(scores, |_, s| reference(s));
    assert_close(&format!("{what} loss"), &[fused_value], &[ref_value], 1e-10);
    assert_close(&format!("{what} gradient"), &fused_grad, &ref_grad, 1e-10);
}

fn target_tensor(target: &[usize], dims: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(target.iter().map(|&i| i as f64).collect(), dims.to_vec()).unwrap()
}

/// Draws one random permutation of `0..n` per row.
fn random_targets(rows: usize, n: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut target = Vec::with_capacity(rows * n);
    for _ in 0..rows {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(rng);
        target.extend(p);
    }
    target
}

fn identity_targets(rows: usize, n: usize) -> Vec<usize> {
    (0..rows * n).map(|k| k % n).collect()
}

/// Draws uniform scores in `[−1, 1]`. With `tied`, they are rounded to multiples of 0.25, so
/// that rows repeat values.
fn uniform_scores(dims: &[usize], tied: bool, rng: &mut StdRng) -> Tensor<f64> {
    let count: usize = dims.iter().product();
    let data = (0..count)
        .map(|_| {
            let x: f64 = rng.gen_range(-1.0..1.0);
            if tied {
                (x * 4.0).round() / 4.0
            } else {
                x
            }
        })
        .collect();
    Tensor::from_vec(data, dims.to_vec()).unwrap()
}

/// Temperatures at which every picked `P[i, π(i)]` stays above about 1e-9 for scores in
/// `[−1, 1]` and `n ≤ 64`, so that the dense path's `log(P + 1e-20)` and its gradient
/// `1/(P + 1e-20)` agree with the exact ones to about 1e-11 relative.
fn dense_taus(relaxation: Relaxation, n: usize) -> [f64; 2] {
    match relaxation {
        Relaxation::Squared => [0.5, 2.0],
        // The logits of a row differ by up to 2(n − 1) + 2n < 4n before the division by τ.
        Relaxation::Neural => [(4 * n) as f64 / 15.0 + 0.5, 100.0],
    }
}

#[test]
fn matches_dense_operator_and_cross_entropy() {
    let mut rng = StdRng::seed_from_u64(1);
    for relaxation in BOTH {
        for dims in [
            vec![1],
            vec![2],
            vec![7],
            vec![3, 17],
            vec![2, 2, 64],
            vec![64],
        ] {
            let n = *dims.last().unwrap();
            let rows = dims.iter().product::<usize>() / n;
            for tau in dense_taus(relaxation, n) {
                for tied in [false, true] {
                    let scores = uniform_scores(&dims, tied, &mut rng);
                    let random = random_targets(rows, n, &mut rng);
                    let identity = identity_targets(rows, n);
                    for (name, target) in [("random", random), ("identity", identity)] {
                        let what = format!("{relaxation:?} {dims:?} tau={tau} tied={tied} {name}");
                        compare(&what, relaxation, &scores, &target, tau, |s| {
                            dense(relaxation, s, &target, tau)
                        });
                    }
                }
            }
        }
    }
}

#[test]
fn matches_log_softmax_composition() {
    // The composition takes the exact log P, so here the picked entries may be tiny: normal
    // scores with small temperatures, and rows long enough for several position blocks.
    let mut rng = StdRng::seed_from_u64(2);
    for relaxation in BOTH {
        for dims in [vec![1], vec![5], vec![2, 33], vec![200], vec![1, 600]] {
            let n = *dims.last().unwrap();
            let rows = dims.iter().product::<usize>() / n;
            let taus = match relaxation {
                Relaxation::Squared => [0.01, 0.1, 1.0],
                Relaxation::Neural => [0.1, 1.0, 100.0],
            };
            for tau in taus {
                let scores = Tensor::normal(dims.clone(), 0.0, 1.0, &mut rng).unwrap();
                let random = random_targets(rows, n, &mut rng);
                let identity = identity_targets(rows, n);
                for (name, target) in [("random", random), ("identity", identity)] {
                    let what = format!("{relaxation:?} {dims:?} tau={tau} {name}");
                    compare(&what, relaxation, &scores, &target, tau, |s| {
                        composed(relaxation, s, &target, tau)
                    });
                }
            }
        }
    }
}

#[test]
fn exact_where_dense_path_saturates() {
    // At τ = 0.01 the squared-distance P[0, π(0)] is about e^{−400}, far below the offset 1e-20
    // of the dense path, which then reports −log(1e-20) ≈ 46. The fused loss keeps the exact
    // value.
    let scores = Tensor::from_vec(vec![2.0, 0.0], [2]).unwrap();
    let reversed = Tensor::from_vec(vec![1.0, 0.0], [2]).unwrap();
    let tape = Tape::new();
    let s = tape.param(scores);
    let loss = fast::squared_permutation_nll(s, tape.constant(reversed), 0.01).unwrap();
    // Each row's picked logit is −(2 − 0)²/0.01 = −400 and log Z = log(1 + e^{−400}).
    let expected = 400.0 + (-400f64).exp().ln_1p();
    assert!((loss.value().item().unwrap() - expected).abs() < 1e-9);
    let dense_loss = dense(Relaxation::Squared, s, &[1, 0], 0.01);
    assert!((dense_loss.value().item().unwrap() - 1e-20f64.ln().abs()).abs() < 1e-6);
}

#[test]
fn extreme_scores_stay_finite() {
    let mut rng = StdRng::seed_from_u64(3);
    let n = 300;
    let data: Vec<f64> = (0..2 * n).map(|_| rng.gen_range(-1e4..1e4)).collect();
    let scores = Tensor::from_vec(data, [2, n]).unwrap();
    let target = target_tensor(&random_targets(2, n, &mut rng), &[2, n]);
    for relaxation in BOTH {
        for tau in [1e-6, 1.0, 1e6] {
            let tape = Tape::new();
            let s = tape.param(scores.clone());
            let loss = fused(relaxation, s, tape.constant(target.clone()), tau).unwrap();
            let value = loss.value().item().unwrap();
            assert!(value.is_finite(), "{relaxation:?} tau={tau}: loss {value}");
            assert!(
                value >= 0.0,
                "{relaxation:?} tau={tau}: negative loss {value}"
            );
            let grads = tape.backward(loss).unwrap();
            let g = grads.get(s).unwrap();
            assert_eq!(g.first_non_finite(), None, "{relaxation:?} tau={tau}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

/// Runs the forward pass of both ops on raw tensors and returns the two errors.
fn errors(scores: Tensor<f64>, target: Tensor<f64>, tau: f64) -> [Error; 2] {
    let mut squared = SquaredSoftSortPermutationNll::new(tau);
    let mut neural = NeuralSortPermutationNll::new(tau);
    let inputs = [scores, target];
    [
        squared
            .forward(&inputs)
            .expect_err("squared op accepted bad input"),
        neural
            .forward(&inputs)
            .expect_err("neuralsort op accepted bad input"),
    ]
}

fn assert_invalid(errors: [Error; 2], arg: &str) {
    for (error, op) in errors.iter().zip([
        "fused_softsort_squared_permutation_nll",
        "fused_neuralsort_permutation_nll",
    ]) {
        match error {
            Error::InvalidArgument { op: o, arg: a, .. } => {
                assert_eq!(o, op, "{error}");
                assert_eq!(a, arg, "{error}");
            }
            other => panic!("expected an invalid {arg} from {op}, got {other}"),
        }
    }
}

fn assert_shape_error(errors: [Error; 2]) {
    for error in errors {
        assert!(matches!(error, Error::Shape { .. }), "{error}");
    }
}

fn row(values: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), [values.len()]).unwrap()
}

#[test]
fn bad_temperatures_are_rejected() {
    for tau in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let errors = errors(row(&[1.0, 2.0]), row(&[1.0, 0.0]), tau);
        assert_invalid(errors, "tau");
    }
}

#[test]
fn non_finite_scores_are_rejected() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let errors = errors(row(&[1.0, bad]), row(&[1.0, 0.0]), 1.0);
        assert_invalid(errors, "scores");
    }
}

#[test]
fn bad_targets_are_rejected() {
    let cases: [&[f64]; 6] = [
        &[0.0, 0.0, 1.0],      // repeated index
        &[0.0, 1.0, 3.0],      // index n
        &[0.0, -1.0, 2.0],     // negative
        &[0.0, 1.5, 2.0],      // not an integer
        &[0.0, f64::NAN, 2.0], // not a number
        &[2.0, 1.0, f64::INFINITY],
    ];
    for target in cases {
        let errors = errors(row(&[0.1, 0.2, 0.3]), row(target), 1.0);
        assert_invalid(errors, "target");
    }
}

#[test]
fn bad_shapes_are_rejected() {
    assert_shape_error(errors(row(&[1.0, 2.0]), row(&[1.0, 0.0, 2.0]), 1.0));
    assert_shape_error(errors(Tensor::scalar(1.0), Tensor::scalar(0.0), 1.0));
    let empty = Tensor::from_vec(vec![], [2, 0]).unwrap();
    assert_shape_error(errors(empty.clone(), empty, 1.0));
    let mut op = SquaredSoftSortPermutationNll::new(1.0);
    assert!(matches!(
        op.forward(&[row(&[1.0])]),
        Err(Error::Shape { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Threads and f32
// ---------------------------------------------------------------------------------------------

/// Returns the loss and the score gradient of both ops.
fn run_both<T: softsort_ops::SortFloat>(scores: &Tensor<T>, target: &Tensor<T>) -> Vec<Tensor<T>> {
    let tape = Tape::new();
    let s = tape.param(scores.clone());
    let t = tape.constant(target.clone());
    let squared = fast::squared_permutation_nll(s, t, 0.1).unwrap();
    let neural = fast::neuralsort_permutation_nll(s, t, 100.0).unwrap();
    let mut out = vec![squared.value(), neural.value()];
    for loss in [squared, neural] {
        let grads = tape.backward(loss).unwrap();
        out.push(grads.get(s).unwrap().clone());
    }
    out
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut rng = StdRng::seed_from_u64(4);
    // n = 700 splits every row into 8 position blocks, 3 rows give 24 parallel tasks.
    let (rows, n) = (3, 700);
    let scores = Tensor::<f64>::normal([rows, n], 0.0, 1.0, &mut rng).unwrap();
    let target = target_tensor(&random_targets(rows, n, &mut rng), &[rows, n]);
    let run_with = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                (
                    run_both(&scores, &target),
                    run_both(&scores.cast::<f32>(), &target.cast::<f32>()),
                )
            })
    };
    let (one, one32) = run_with(1);
    let (three, three32) = run_with(3);
    for (k, (a, b)) in one.iter().zip(&three).enumerate() {
        assert!(
            a.bit_eq(b),
            "f64 result {k} differs between 1 and 3 threads"
        );
    }
    for (k, (a, b)) in one32.iter().zip(&three32).enumerate() {
        assert!(
            a.bit_eq(b),
            "f32 result {k} differs between 1 and 3 threads"
        );
    }
}

#[test]
fn f32_agrees_with_f64() {
    let mut rng = StdRng::seed_from_u64(5);
    let (rows, n) = (4, 150);
    let scores = Tensor::<f64>::normal([rows, n], 0.0, 1.0, &mut rng).unwrap();
    let target = target_tensor(&identity_targets(rows, n), &[rows, n]);
    let wide = run_both(&scores, &target);
    let narrow = run_both(&scores.cast::<f32>(), &target.cast::<f32>());
    for (k, (a, b)) in narrow.iter().zip(&wide).enumerate() {
        let a: Vec<f64> = a.cast::<f64>().to_vec();
        assert_close(&format!("f32 result {k}"), &a, &b.to_vec(), 2e-4);
    }
}

// ---------------------------------------------------------------------------------------------
// Finite differences
// ---------------------------------------------------------------------------------------------

/// Separated scores of a shape from [`BATCH_SHAPES`] with `n ≤ 8`, a temperature in
/// `[0.3, 2)` and a seed for the targets.
fn case() -> impl Strategy<Value = (Tensor<f64>, f64, u64)> {
    (0..BATCH_SHAPES.len(), 1usize..=8, 0.3f64..2.0, any::<u64>()).prop_flat_map(
        |(b, n, tau, seed)| (separated_scores(BATCH_SHAPES[b], n), Just(tau), Just(seed)),
    )
}

fn check_gradient(relaxation: Relaxation, scores: Tensor<f64>, tau: f64, seed: u64) {
    let n = *scores.dims().last().unwrap();
    let rows = scores.numel() / n;
    let mut rng = StdRng::seed_from_u64(seed);
    let target = target_tensor(&random_targets(rows, n, &mut rng), scores.dims());
    grad_check()
        .check(&format!("{relaxation:?}"), &[scores], |tape, v| {
            fused(relaxation, v[0], tape.constant(target.clone()), tau)
        })
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn squared_nll_gradcheck((scores, tau, seed) in case()) {
        check_gradient(Relaxation::Squared, scores, tau, seed);
    }

    #[test]
    fn neuralsort_nll_gradcheck((scores, tau, seed) in case()) {
        check_gradient(Relaxation::Neural, scores, tau, seed);
    }
}
