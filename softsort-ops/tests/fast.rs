//! Checks of the O(n log n) SoftSort ops and the row-at-a-time dense ops against dense
//! references composed from autograd primitives, against finite differences, and at scale.

use autograd::{Error, GradCheck, Op, Tape, Tensor, Var};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use softsort_ops::fast;

// ---------------------------------------------------------------------------------------------
// Dense references
// ---------------------------------------------------------------------------------------------

fn reshape<'t>(v: Var<'t, f64>, shape: &[usize]) -> Var<'t, f64> {
    v.reshape(shape.to_vec()).unwrap()
}

/// The descending sort order with ties broken by index, as the ops define it.
fn descending_order(s: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].partial_cmp(&s[a]).unwrap());
    order
}

/// A constant `[n, n]` matrix with ones at `(i, columns[i])`.
fn one_hot<'t>(tape: &'t Tape<f64>, columns: &[usize]) -> Var<'t, f64> {
    let n = columns.len();
    let mut m = vec![0.0; n * n];
    for (i, &j) in columns.iter().enumerate() {
        m[i * n + j] = 1.0;
    }
    tape.constant(Tensor::from_vec(m, [n, n]).unwrap())
}

#[derive(Clone, Copy, Debug)]
enum Distance {
    Abs,
    Squared,
}

/// The SoftSort logits `−d(ŝ_i, s_j)/τ` of one row of scores `[n]`; with `transposed`, entry
/// `[j, i]` instead of `[i, j]`.
fn dense_logits<'t>(
    s: Var<'t, f64>,
    tau: f64,
    distance: Distance,
    transposed: bool,
) -> Var<'t, f64> {
    let tape = s.tape();
    let values = s.value().to_vec();
    let n = values.len();
    let sort = one_hot(tape, &descending_order(&values));
    let sorted = sort.matmul(reshape(s, &[n, 1])).unwrap(); // ŝ as [n, 1]
    let diff = if transposed {
        reshape(sorted, &[1, n]).sub(reshape(s, &[n, 1])).unwrap()
    } else {
        sorted.sub(reshape(s, &[1, n])).unwrap()
    };
    let dist = match distance {
        Distance::Abs => diff.abs().unwrap(),
        Distance::Squared => diff.mul(diff).unwrap(),
    };
    dist.mul_scalar(-1.0 / tau).unwrap()
}

/// Dense SoftSort `P` (`[n, n]`) of one row of scores. The largest logit of every row is the
/// zero at `j = order[i]`, so no max subtraction is needed.
fn dense_p<'t>(s: Var<'t, f64>, tau: f64, distance: Distance) -> Var<'t, f64> {
    let e = dense_logits(s, tau, distance, false).exp().unwrap();
    e.div(e.sum_axes(&[1], true).unwrap()).unwrap()
}

/// Dense `Pᵀ` (`[n, n]`) for `d = |·|`.
fn dense_p_transposed<'t>(s: Var<'t, f64>, tau: f64) -> Var<'t, f64> {
    let e = dense_logits(s, tau, Distance::Abs, true).exp().unwrap();
    e.div(e.sum_axes(&[0], true).unwrap()).unwrap()
}

/// Dense `log Z` (`[n, 1]`) for `d = |·|`.
fn dense_log_z<'t>(s: Var<'t, f64>, tau: f64) -> Var<'t, f64> {
    let e = dense_logits(s, tau, Distance::Abs, false).exp().unwrap();
    e.sum_axes(&[1], true).unwrap().log().unwrap()
}

/// Dense `−(1/n) Σ_i log P[i, π(i)]` from the log-softmax, for one row.
fn dense_nll<'t>(s: Var<'t, f64>, target: &[usize], tau: f64) -> Var<'t, f64> {
    let n = target.len();
    let logits = dense_logits(s, tau, Distance::Abs, false);
    let log_p = logits.sub(dense_log_z(s, tau)).unwrap();
    let picked = log_p.mul(one_hot(s.tape(), target)).unwrap();
    picked.sum().unwrap().mul_scalar(-1.0 / n as f64).unwrap()
}

/// Dense NeuralSort `P` (`[n, n]`) of one row of scores, with max subtraction.
fn dense_neuralsort_p<'t>(s: Var<'t, f64>, tau: f64) -> Var<'t, f64> {
    let tape = s.tape();
    let n = s.value().numel();
    let col = reshape(s, &[n, 1]);
    let row = reshape(s, &[1, n]);
    let abs_dev = col
        .sub(row)
        .unwrap()
        .abs()
        .unwrap()
        .sum_axes(&[0], true)
        .unwrap(); // [1, n]
    let scale: Vec<f64> = (0..n).map(|k| n as f64 - 1.0 - 2.0 * k as f64).collect();
    let scale = tape.constant(Tensor::from_vec(scale, [n, 1]).unwrap());
    let logits = scale
        .matmul(row)
        .unwrap()
        .sub(abs_dev)
        .unwrap()
        .mul_scalar(1.0 / tau)
        .unwrap();
    let max = logits.max_axes(&[1], true).unwrap().detach();
    let e = logits.sub(max).unwrap().exp().unwrap();
    e.div(e.sum_axes(&[1], true).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Comparison helpers
// ---------------------------------------------------------------------------------------------

/// Evaluates `f` on parameters `inputs` and returns the output and the gradients of
/// `Σ output · weights`.
fn value_and_grads(
    inputs: &[Tensor<f64>],
    weights: &[f64],
    f: impl for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let tape = Tape::new();
    let vars: Vec<Var<f64>> = inputs.iter().map(|t| tape.param(t.clone())).collect();
    let out = f(&tape, &vars);
    let value = out.value().to_vec();
    assert_eq!(value.len(), weights.len(), "output size");
    let w = tape.constant(Tensor::from_vec(weights.to_vec(), out.shape()).unwrap());
    let grads = tape.backward(out.mul(w).unwrap().sum().unwrap()).unwrap();
    let grads = vars
        .iter()
        .map(|&v| grads.get(v).unwrap().to_vec())
        .collect();
    (value, grads)
}

/// Asserts `|a − b| ≤ tol · (1 + max |b|)` elementwise.
fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = 1.0 + b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.is_finite(), "{what}[{i}] = {x} is not finite");
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: fast {x:e}, dense {y:e}, |diff| {:e} > {tol:e} · {scale:e}",
            (x - y).abs()
        );
    }
}

/// Compares a fast op with its dense reference: outputs and gradients of every input.
fn compare(
    what: &str,
    inputs: &[Tensor<f64>],
    tol: f64,
    fast_fn: impl for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
    dense_fn: impl for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
) {
    let out_len = {
        let tape = Tape::new();
        let vars: Vec<Var<f64>> = inputs.iter().map(|t| tape.constant(t.clone())).collect();
        fast_fn(&tape, &vars).value().numel()
    };
    let mut rng = StdRng::seed_from_u64(out_len as u64);
    let weights: Vec<f64> = (0..out_len).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let (fast_value, fast_grads) = value_and_grads(inputs, &weights, fast_fn);
    let (dense_value, dense_grads) = value_and_grads(inputs, &weights, dense_fn);
    assert_close(&format!("{what} value"), &fast_value, &dense_value, tol);
    for (k, (a, b)) in fast_grads.iter().zip(&dense_grads).enumerate() {
        assert_close(&format!("{what} gradient of input {k}"), a, b, tol);
    }
}

// ---------------------------------------------------------------------------------------------
// Random cases
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Scores {
    /// Standard normal.
    Normal,
    /// Integers in `0..n/4`, times 1000: many ties, |s| up to 1e4 and more.
    TiedWide,
    /// Uniform in `[−1e4, 1e4]`.
    Wide,
    /// Uniform in `[0, 0.01·n]`: neighbours about 0.01 apart, close at τ = 1e-3.
    Dense,
}

fn scores(kind: Scores, n: usize, rng: &mut StdRng) -> Vec<f64> {
    (0..n)
        .map(|_| match kind {
            Scores::Normal => rng.gen_range(-2.0..2.0),
            Scores::TiedWide => 1000.0 * rng.gen_range(0..(n / 4).max(1)) as f64,
            Scores::Wide => rng.gen_range(-1e4..1e4),
            Scores::Dense => rng.gen_range(0.0..0.01 * n as f64),
        })
        .collect()
}

const KINDS: [Scores; 4] = [
    Scores::Normal,
    Scores::TiedWide,
    Scores::Wide,
    Scores::Dense,
];
const TAUS: [f64; 4] = [1e-3, 0.1, 1.0, 10.0];
const SIZES: [usize; 5] = [1, 2, 7, 64, 200];

/// Runs `check(n, tau, scores, rng)` over every size, score kind and temperature.
fn for_each_case(mut check: impl FnMut(&str, usize, f64, Vec<f64>, &mut StdRng)) {
    let mut rng = StdRng::seed_from_u64(7);
    for n in SIZES {
        for kind in KINDS {
            for tau in TAUS {
                let s = scores(kind, n, &mut rng);
                let case = format!("n={n} {kind:?} tau={tau}");
                check(&case, n, tau, s, &mut rng);
            }
        }
    }
}

fn random(len: usize, rng: &mut StdRng) -> Vec<f64> {
    (0..len).map(|_| rng.gen_range(-3.0..3.0)).collect()
}

const TOL: f64 = 1e-10;

#[test]
fn apply_matches_dense() {
    for_each_case(|case, n, tau, s, rng| {
        let s = Tensor::from_vec(s, [n]).unwrap();
        let x = Tensor::from_vec(random(n * 3, rng), [n, 3]).unwrap();
        compare(
            &format!("apply {case}"),
            &[s, x],
            TOL,
            |_, v| fast::apply(v[0], v[1], tau).unwrap(),
            |_, v| dense_p(v[0], tau, Distance::Abs).matmul(v[1]).unwrap(),
        );
    });
}

#[test]
fn soft_sort_matches_dense() {
    for_each_case(|case, n, tau, s, _| {
        let s = Tensor::from_vec(s, [n]).unwrap();
        compare(
            &format!("soft_sort {case}"),
            &[s],
            TOL,
            |_, v| fast::soft_sort(v[0], tau).unwrap(),
            |_, v| {
                let col = reshape(v[0], &[n, 1]);
                reshape(dense_p(v[0], tau, Distance::Abs).matmul(col).unwrap(), &[n])
            },
        );
    });
}

#[test]
fn transpose_apply_matches_dense() {
    for_each_case(|case, n, tau, s, rng| {
        let s = Tensor::from_vec(s, [n]).unwrap();
        let v = Tensor::from_vec(random(n * 2, rng), [n, 2]).unwrap();
        compare(
            &format!("transpose_apply {case}"),
            &[s, v],
            TOL,
            |_, v| fast::transpose_apply(v[0], v[1], tau).unwrap(),
            |_, v| dense_p_transposed(v[0], tau).matmul(v[1]).unwrap(),
        );
    });
}

#[test]
fn soft_ranks_match_dense() {
    for_each_case(|case, n, tau, s, _| {
        let s = Tensor::from_vec(s, [n]).unwrap();
        let positions: Vec<f64> = (1..=n).map(|i| i as f64).collect();
        let positions = Tensor::from_vec(positions, [n, 1]).unwrap();
        compare(
            &format!("soft_ranks {case}"),
            &[s],
            TOL,
            |_, v| fast::soft_ranks(v[0], tau).unwrap(),
            |tape, v| {
                let ranks = dense_p_transposed(v[0], tau)
                    .matmul(tape.constant(positions.clone()))
                    .unwrap();
                reshape(ranks, &[n])
            },
        );
    });
}

#[test]
fn log_normalizers_match_dense() {
    for_each_case(|case, n, tau, s, _| {
        let s = Tensor::from_vec(s, [n]).unwrap();
        compare(
            &format!("log_normalizers {case}"),
            &[s],
            TOL,
            |_, v| fast::log_normalizers(v[0], tau).unwrap(),
            |_, v| reshape(dense_log_z(v[0], tau), &[n]),
        );
    });
}

#[test]
fn permutation_nll_matches_dense() {
    for_each_case(|case, n, tau, s, rng| {
        let s = Tensor::from_vec(s, [n]).unwrap();
        let mut shuffled: Vec<usize> = (0..n).collect();
        shuffled.shuffle(rng);
        let identity: Vec<usize> = (0..n).collect();
        for (name, target) in [("random", shuffled), ("identity", identity)] {
            let as_float: Vec<f64> = target.iter().map(|&i| i as f64).collect();
            let target_tensor = Tensor::from_vec(as_float, [n]).unwrap();
            compare(
                &format!("permutation_nll {name} {case}"),
                std::slice::from_ref(&s),
                TOL,
                |tape, v| {
                    let target = tape.constant(target_tensor.clone());
                    fast::permutation_nll(v[0], target, tau).unwrap()
                },
                |_, v| dense_nll(v[0], &target, tau),
            );
        }
    });
}

#[test]
fn squared_apply_matches_dense() {
    for_each_case(|case, n, tau, s, rng| {
        let s = Tensor::from_vec(s, [n]).unwrap();
        let x = Tensor::from_vec(random(n * 2, rng), [n, 2]).unwrap();
        compare(
            &format!("squared_apply {case}"),
            &[s, x],
            TOL,
            |_, v| fast::squared_apply(v[0], v[1], tau).unwrap(),
            |_, v| dense_p(v[0], tau, Distance::Squared).matmul(v[1]).unwrap(),
        );
    });
}

#[test]
fn neuralsort_apply_matches_dense() {
    for_each_case(|case, n, tau, s, rng| {
        // The NeuralSort logits reach n·max|s|/τ, and both implementations round them to
        // about 1e-16 of that magnitude in different ways, which the softmax passes on: the
        // tolerance grows with that bound.
        let max_abs = s.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let logit_scale = n as f64 * 2.0 * max_abs / tau;
        let tol = TOL.max(1e-14 * logit_scale);
        let s = Tensor::from_vec(s, [n]).unwrap();
        let x = Tensor::from_vec(random(n * 2, rng), [n, 2]).unwrap();
        compare(
            &format!("neuralsort_apply {case}"),
            &[s, x],
            tol,
            |_, v| fast::neuralsort_apply(v[0], v[1], tau).unwrap(),
            |_, v| dense_neuralsort_p(v[0], tau).matmul(v[1]).unwrap(),
        );
    });
}

#[test]
fn neuralsort_apply_matches_dense_tightly() {
    // Moderate scores and temperatures keep the logits small enough for the 1e-10 bound.
    let mut rng = StdRng::seed_from_u64(11);
    for n in [1, 2, 7, 64, 200] {
        for tau in [0.1, 1.0, 10.0] {
            let s = Tensor::from_vec(scores(Scores::Normal, n, &mut rng), [n]).unwrap();
            let x = Tensor::from_vec(random(n, &mut rng), [n]).unwrap();
            compare(
                &format!("neuralsort_apply n={n} tau={tau}"),
                &[s, x],
                TOL,
                |_, v| fast::neuralsort_apply(v[0], v[1], tau).unwrap(),
                |_, v| {
                    let col = reshape(v[1], &[n, 1]);
                    reshape(dense_neuralsort_p(v[0], tau).matmul(col).unwrap(), &[n])
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Batches, threads, f32
// ---------------------------------------------------------------------------------------------

/// Runs every op on a `[rows, n]` batch (values `[rows, n, 2]`), returning the outputs and
/// the score gradients of a weighted sum of all of them.
fn run_all_ops(s: &Tensor<f64>, x: &Tensor<f64>, target: &Tensor<f64>) -> Vec<Tensor<f64>> {
    let tape = Tape::new();
    let sv = tape.param(s.clone());
    let xv = tape.param(x.clone());
    let tv = tape.constant(target.clone());
    let tau = 0.3;
    let outs = [
        fast::apply(sv, xv, tau).unwrap(),
        fast::soft_sort(sv, tau).unwrap(),
        fast::transpose_apply(sv, xv, tau).unwrap(),
        fast::soft_ranks(sv, tau).unwrap(),
        fast::log_normalizers(sv, tau).unwrap(),
        fast::permutation_nll(sv, tv, tau).unwrap(),
        fast::squared_apply(sv, xv, tau).unwrap(),
        fast::neuralsort_apply(sv, xv, tau).unwrap(),
    ];
    let mut total = outs[0].mean().unwrap();
    for (k, out) in outs.iter().enumerate().skip(1) {
        let term = out.mean().unwrap().mul_scalar(1.0 + k as f64).unwrap();
        total = total.add(term).unwrap();
    }
    let grads = tape.backward(total).unwrap();
    let mut result: Vec<Tensor<f64>> = outs.iter().map(|o| o.value()).collect();
    result.push(grads.get(sv).unwrap().clone());
    result.push(grads.get(xv).unwrap().clone());
    result
}

fn batch_inputs(rows: usize, n: usize, seed: u64) -> (Tensor<f64>, Tensor<f64>, Tensor<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let s: Vec<f64> = (0..rows * n)
        .map(|_| (rng.gen_range(-20..20) as f64) * 0.1)
        .collect();
    let x = random(rows * n * 2, &mut rng);
    let mut target = Vec::with_capacity(rows * n);
    for _ in 0..rows {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(&mut rng);
        target.extend(p.iter().map(|&i| i as f64));
    }
    (
        Tensor::from_vec(s, [rows, n]).unwrap(),
        Tensor::from_vec(x, [rows, n, 2]).unwrap(),
        Tensor::from_vec(target, [rows, n]).unwrap(),
    )
}

#[test]
fn batch_rows_are_independent() {
    let (rows, n) = (3, 9);
    let (s, x, target) = batch_inputs(rows, n, 3);
    let batched = run_all_ops(&s, &x, &target);
    // The elementwise outputs of row r equal those of the same computation on row r alone.
    for r in 0..rows {
        let pick = |t: &Tensor<f64>, width: usize| {
            let data = t.data()[r * n * width..(r + 1) * n * width].to_vec();
            Tensor::from_vec(
                data,
                if width == 1 {
                    vec![1, n]
                } else {
                    vec![1, n, width]
                },
            )
            .unwrap()
        };
        let single = run_all_ops(&pick(&s, 1), &pick(&x, 2), &pick(&target, 1));
        for (k, width) in [(0, 2), (1, 1), (2, 2), (3, 1), (4, 1), (6, 2), (7, 2)] {
            assert_eq!(
                pick(&batched[k], width).to_vec(),
                single[k].to_vec(),
                "output {k} of row {r}"
            );
        }
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let (s, x, target) = batch_inputs(64, 120, 5);
    let run_with = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run_all_ops(&s, &x, &target))
    };
    let one = run_with(1);
    let three = run_with(3);
    for (k, (a, b)) in one.iter().zip(&three).enumerate() {
        assert!(a.bit_eq(b), "result {k} differs between 1 and 3 threads");
    }
}

#[test]
fn f32_agrees_with_f64() {
    let (s, x, target) = batch_inputs(2, 30, 9);
    let tau = 0.5;
    let tape = Tape::<f32>::new();
    let sv = tape.param(s.cast::<f32>());
    let xv = tape.param(x.cast::<f32>());
    let tv = tape.constant(target.cast::<f32>());
    let outs32 = [
        fast::apply(sv, xv, tau).unwrap(),
        fast::transpose_apply(sv, xv, tau).unwrap(),
        fast::log_normalizers(sv, tau).unwrap(),
        fast::permutation_nll(sv, tv, tau).unwrap(),
        fast::squared_apply(sv, xv, tau).unwrap(),
        fast::neuralsort_apply(sv, xv, tau).unwrap(),
    ];
    let tape64 = Tape::<f64>::new();
    let sv = tape64.param(s.clone());
    let xv = tape64.param(x.clone());
    let tv = tape64.constant(target.clone());
    let outs64 = [
        fast::apply(sv, xv, tau).unwrap(),
        fast::transpose_apply(sv, xv, tau).unwrap(),
        fast::log_normalizers(sv, tau).unwrap(),
        fast::permutation_nll(sv, tv, tau).unwrap(),
        fast::squared_apply(sv, xv, tau).unwrap(),
        fast::neuralsort_apply(sv, xv, tau).unwrap(),
    ];
    for (k, (a, b)) in outs32.iter().zip(&outs64).enumerate() {
        let a: Vec<f64> = a.value().cast::<f64>().to_vec();
        assert_close(&format!("f32 output {k}"), &a, &b.value().to_vec(), 1e-4);
    }
}

// ---------------------------------------------------------------------------------------------
// Scale: one row of 10⁶ scores
// ---------------------------------------------------------------------------------------------

/// One row of 10⁶ scores with |s| up to 1e4, rounded to 1e-2 so that many of them tie.
fn million_scores() -> Tensor<f64> {
    let n = 1_000_000;
    let mut rng = StdRng::seed_from_u64(13);
    let s: Vec<f64> = (0..n)
        .map(|_| (rng.gen_range(-1e4..1e4f64) * 100.0).round() / 100.0)
        .collect();
    Tensor::from_vec(s, [n]).unwrap()
}

#[test]
fn million_scores_nll_stays_finite() {
    let s = million_scores();
    let n = s.numel();
    let identity = Tensor::from_vec((0..n).map(|i| i as f64).collect(), [n]).unwrap();
    for tau in [1e-6, 1.0, 1e6] {
        let tape = Tape::new();
        let sv = tape.param(s.clone());
        let target = tape.constant(identity.clone());
        let loss = fast::permutation_nll(sv, target, tau).unwrap();
        let value = loss.value().item().unwrap();
        assert!(value.is_finite(), "tau={tau}: loss {value}");
        assert!(value >= 0.0, "tau={tau}: negative loss {value}");
        let grads = tape.backward(loss).unwrap();
        let g = grads.get(sv).unwrap();
        assert_eq!(g.first_non_finite(), None, "tau={tau}: gradient");
    }
}

#[test]
fn million_scores_soft_sort_stays_finite() {
    let s = million_scores();
    for tau in [1e-6, 1e6] {
        let tape = Tape::new();
        let sv = tape.param(s.clone());
        let sorted = fast::soft_sort(sv, tau).unwrap();
        let values = sorted.value();
        assert_eq!(values.first_non_finite(), None, "tau={tau}: sorted values");
        // Soft-sorted values are convex combinations of the scores.
        assert!(
            values.data().iter().all(|v| v.abs() <= 1e4),
            "tau={tau}: out of range"
        );
        let grads = tape.backward(sorted.mean().unwrap()).unwrap();
        let g = grads.get(sv).unwrap();
        assert_eq!(g.first_non_finite(), None, "tau={tau}: gradient");
    }
}

// ---------------------------------------------------------------------------------------------
// Finite differences
// ---------------------------------------------------------------------------------------------

/// Scores of shape `[2, n]` whose values in each row are at least 0.1 apart, shuffled.
fn separated_scores() -> impl Strategy<Value = Tensor<f64>> {
    (2usize..6, any::<u64>()).prop_map(|(n, seed)| {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(2 * n);
        for _ in 0..2 {
            let mut value = rng.gen_range(-2.0..2.0);
            let mut row = Vec::with_capacity(n);
            for _ in 0..n {
                row.push(value);
                value += rng.gen_range(0.1..1.0);
            }
            row.shuffle(&mut rng);
            data.extend(row);
        }
        Tensor::from_vec(data, [2, n]).unwrap()
    })
}

fn values_like(s: &Tensor<f64>, width: usize, seed: u64) -> Tensor<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut dims = s.dims().to_vec();
    dims.push(width);
    Tensor::from_vec(random(s.numel() * width, &mut rng), dims).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn apply_gradcheck(s in separated_scores(), tau in 0.05f64..2.0, seed in any::<u64>()) {
        let x = values_like(&s, 2, seed);
        GradCheck::default()
            .check("fast_softsort_apply", &[s, x], |_, v| fast::apply(v[0], v[1], tau))
            .unwrap();
    }

    #[test]
    fn soft_sort_gradcheck(s in separated_scores(), tau in 0.05f64..2.0) {
        GradCheck::default()
            .check("fast_softsort_apply", &[s], |_, v| fast::soft_sort(v[0], tau))
            .unwrap();
    }

    #[test]
    fn transpose_apply_gradcheck(s in separated_scores(), tau in 0.05f64..2.0, seed in any::<u64>()) {
        let v = values_like(&s, 2, seed);
        GradCheck::default()
            .check("fast_softsort_transpose_apply", &[s, v], |_, v| {
                fast::transpose_apply(v[0], v[1], tau)
            })
            .unwrap();
    }

    #[test]
    fn soft_ranks_gradcheck(s in separated_scores(), tau in 0.05f64..2.0) {
        GradCheck::default()
            .check("soft_ranks", &[s], |_, v| fast::soft_ranks(v[0], tau))
            .unwrap();
    }

    #[test]
    fn log_normalizers_gradcheck(s in separated_scores(), tau in 0.05f64..2.0) {
        GradCheck::default()
            .check("fast_softsort_log_normalizer", &[s], |_, v| fast::log_normalizers(v[0], tau))
            .unwrap();
    }

    #[test]
    fn permutation_nll_gradcheck(s in separated_scores(), tau in 0.05f64..2.0, seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = s.dims()[1];
        let mut target = Vec::new();
        for _ in 0..2 {
            let mut p: Vec<usize> = (0..n).collect();
            p.shuffle(&mut rng);
            target.extend(p.iter().map(|&i| i as f64));
        }
        let target = Tensor::from_vec(target, [2, n]).unwrap();
        GradCheck::default()
            .check("fast_softsort_permutation_nll", &[s], |tape, v| {
                fast::permutation_nll(v[0], tape.constant(target.clone()), tau)
            })
            .unwrap();
    }

    #[test]
    fn squared_apply_gradcheck(s in separated_scores(), tau in 0.05f64..2.0, seed in any::<u64>()) {
        let x = values_like(&s, 2, seed);
        GradCheck::default()
            .check("rowwise_softsort_squared_apply", &[s, x], |_, v| {
                fast::squared_apply(v[0], v[1], tau)
            })
            .unwrap();
    }

    #[test]
    fn neuralsort_apply_gradcheck(s in separated_scores(), tau in 0.2f64..2.0, seed in any::<u64>()) {
        let x = values_like(&s, 2, seed);
        GradCheck::default()
            .check("rowwise_neuralsort_apply", &[s, x], |_, v| {
                fast::neuralsort_apply(v[0], v[1], tau)
            })
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Invalid input
// ---------------------------------------------------------------------------------------------

fn error_text(result: autograd::Result<Var<'_, f64>>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_temperatures_are_rejected() {
    let tape = Tape::<f64>::new();
    let s = tape.param(Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap());
    for tau in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let text = error_text(fast::soft_sort(s, tau));
        assert!(text.contains("fast_softsort_apply"), "{text}");
        assert!(text.contains(&format!("tau = {tau}")), "{text}");
    }
    let text = error_text(fast::squared_apply(s, s, 0.0));
    assert!(text.contains("rowwise_softsort_squared_apply"), "{text}");
    let text = error_text(fast::neuralsort_apply(s, s, -2.0));
    assert!(text.contains("rowwise_neuralsort_apply"), "{text}");
}

#[test]
fn tau_underflowing_f32_is_rejected() {
    let tape = Tape::<f32>::new();
    let s = tape.param(Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap());
    let err = fast::log_normalizers(s, 1e-60).map(|_| ()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("f32"), "{text}");
    assert!(text.contains("1e-60"), "{text}");
}

#[test]
fn non_finite_inputs_are_rejected() {
    let tape = Tape::<f64>::new();
    let bad = tape.param(Tensor::from_vec(vec![1.0, f64::NAN, 0.0], [3]).unwrap());
    let good = tape.param(Tensor::from_vec(vec![1.0, 2.0, 0.0], [3]).unwrap());
    let text = error_text(fast::log_normalizers(bad, 1.0));
    assert!(
        text.contains("invalid scores = NaN at flat index 1"),
        "{text}"
    );
    let inf = tape.param(Tensor::from_vec(vec![1.0, 2.0, f64::INFINITY], [3]).unwrap());
    let text = error_text(fast::apply(good, inf, 1.0));
    assert!(
        text.contains("invalid values = inf at flat index 2"),
        "{text}"
    );
    let text = error_text(fast::transpose_apply(good, inf, 1.0));
    assert!(text.contains("invalid weights = inf"), "{text}");
}

#[test]
fn bad_shapes_are_rejected() {
    let tape = Tape::<f64>::new();
    let empty = tape.param(Tensor::from_vec(vec![], [2, 0]).unwrap());
    let text = error_text(fast::soft_sort(empty, 1.0));
    assert!(text.contains("the last axis n must be ≥ 1"), "{text}");
    let scalar = tape.param(Tensor::scalar(1.0));
    let text = error_text(fast::log_normalizers(scalar, 1.0));
    assert!(text.contains("got a scalar"), "{text}");
    let s = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]).unwrap());
    let wrong = tape.param(Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap());
    for text in [
        error_text(fast::apply(s, wrong, 1.0)),
        error_text(fast::transpose_apply(s, wrong, 1.0)),
        error_text(fast::squared_apply(s, wrong, 1.0)),
        error_text(fast::neuralsort_apply(s, wrong, 1.0)),
    ] {
        assert!(text.contains("have shape [2]"), "{text}");
    }
}

#[test]
fn bad_targets_are_rejected() {
    let tape = Tape::<f64>::new();
    let s = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]).unwrap());
    for (target, shown) in [
        (vec![0.0, 1.0, 1.0], "1 at row 0, position 2"),
        (vec![0.0, 1.0, 3.0], "3 at row 0, position 2"),
        (vec![0.5, 1.0, 2.0], "0.5 at row 0, position 0"),
        (vec![-1.0, 1.0, 2.0], "-1 at row 0, position 0"),
    ] {
        let target = tape.constant(Tensor::from_vec(target, [3]).unwrap());
        let text = error_text(fast::permutation_nll(s, target, 1.0));
        assert!(text.contains("fast_softsort_permutation_nll"), "{text}");
        assert!(text.contains(shown), "{text}");
    }
    let short = tape.constant(Tensor::from_vec(vec![0.0, 1.0], [2]).unwrap());
    let text = error_text(fast::permutation_nll(s, short, 1.0));
    assert!(text.contains("target has shape [2]"), "{text}");
}

#[test]
fn error_types_name_the_op() {
    let mut op = fast::SoftSortApply::<f64>::new(1.0);
    let err = op
        .forward(&[Tensor::from_vec(vec![1.0], [1]).unwrap()])
        .unwrap_err();
    assert!(
        matches!(err, Error::Shape { ref op, .. } if op == "fast_softsort_apply"),
        "{err}"
    );
}
