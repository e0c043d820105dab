//! Edge cases of the `fast` ops: empty batches, temperatures whose inverse overflows, and the
//! `f32` NeuralSort likelihood at large score spreads.

use autograd::{Error, Result, Tape, Tensor, Var};
use softsort_ops::fast;
use softsort_ops::SortFloat;

type BinaryOp = for<'t> fn(Var<'t, f64>, Var<'t, f64>) -> Result<Var<'t, f64>>;

/// Runs `op(scores, values)` on an empty batch of shape `[0, 3]` (values `[0, 3]` or
/// `[0, 3, 2]`) and checks that the output and both gradients are empty with the input shapes.
fn check_empty(name: &str, op: BinaryOp, wide: bool) {
    let tape = Tape::<f64>::new();
    let s = tape.param(Tensor::from_vec(vec![], [0, 3]).unwrap());
    let value_shape: Vec<usize> = if wide { vec![0, 3, 2] } else { vec![0, 3] };
    let x = tape.param(Tensor::from_vec(vec![], value_shape.clone()).unwrap());
    let y = op(s, x).unwrap_or_else(|e| panic!("{name}: forward failed: {e}"));
    let w = tape.constant(Tensor::zeros(y.shape()));
    let grads = tape
        .backward(y.mul(w).unwrap().sum().unwrap())
        .unwrap_or_else(|e| panic!("{name}: backward failed: {e}"));
    assert_eq!(y.value().numel(), 0, "{name}");
    assert_eq!(y.shape().dims()[0], 0, "{name}");
    assert_eq!(grads.get(s).unwrap().dims(), &[0, 3], "{name}");
    assert_eq!(grads.get(x).unwrap().dims(), &value_shape[..], "{name}");
}

#[test]
fn soft_sort_accepts_an_empty_batch() {
    check_empty("soft_sort", |s, _| fast::soft_sort(s, 1.0), false);
}

#[test]
fn apply_accepts_an_empty_batch() {
    check_empty("fast_softsort_apply", |s, x| fast::apply(s, x, 1.0), false);
    check_empty("apply wide", |s, x| fast::apply(s, x, 1.0), true);
}

#[test]
fn transpose_apply_accepts_an_empty_batch() {
    check_empty(
        "transpose_apply",
        |s, x| fast::transpose_apply(s, x, 1.0),
        false,
    );
    check_empty(
        "transpose_apply wide",
        |s, x| fast::transpose_apply(s, x, 1.0),
        true,
    );
}

#[test]
fn soft_ranks_accepts_an_empty_batch() {
    check_empty("soft_ranks", |s, _| fast::soft_ranks(s, 1.0), false);
}

#[test]
fn log_normalizers_accepts_an_empty_batch() {
    check_empty(
        "log_normalizers",
        |s, _| fast::log_normalizers(s, 1.0),
        false,
    );
}

#[test]
fn squared_apply_accepts_an_empty_batch() {
    check_empty(
        "squared_apply",
        |s, x| fast::squared_apply(s, x, 1.0),
        false,
    );
    check_empty(
        "squared_apply wide",
        |s, x| fast::squared_apply(s, x, 1.0),
        true,
    );
}

#[test]
fn neuralsort_apply_accepts_an_empty_batch() {
    check_empty(
        "neuralsort_apply",
        |s, x| fast::neuralsort_apply(s, x, 1.0),
        false,
    );
    check_empty(
        "neuralsort_apply wide",
        |s, x| fast::neuralsort_apply(s, x, 1.0),
        true,
    );
}

/// Checks that a permutation likelihood rejects an empty batch with a shape error naming `op`.
fn check_empty_nll(op: &str, loss: BinaryOp) {
    let tape = Tape::<f64>::new();
    let s = tape.param(Tensor::from_vec(vec![], [0, 3]).unwrap());
    let target = tape.constant(Tensor::from_vec(vec![], [0, 3]).unwrap());
    match loss(s, target) {
        Err(e @ Error::Shape { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(op), "{msg}");
            assert!(msg.contains("none"), "{msg}");
        }
        other => panic!(
            "{op}: expected a shape error, got {:?}",
            other.map(|v| v.value())
        ),
    }
}

#[test]
fn permutation_nll_rejects_an_empty_batch() {
    check_empty_nll("fast_softsort_permutation_nll", |s, t| {
        fast::permutation_nll(s, t, 1.0)
    });
}

#[test]
fn squared_permutation_nll_rejects_an_empty_batch() {
    check_empty_nll("fused_softsort_squared_permutation_nll", |s, t| {
        fast::squared_permutation_nll(s, t, 1.0)
    });
}

#[test]
fn neuralsort_permutation_nll_rejects_an_empty_batch() {
    check_empty_nll("fused_neuralsort_permutation_nll", |s, t| {
        fast::neuralsort_permutation_nll(s, t, 1.0)
    });
}

/// Runs every op on scores `[0.5, 2, 1]` with temperature `tau` and checks that each one
/// rejects it with a message naming the op, τ in exponent notation and the overflow.
fn check_tiny_tau<T: SortFloat>(tau: f64, tau_text: &str) {
    type Run<T> = for<'t> fn(Var<'t, T>, Var<'t, T>, f64) -> Result<Var<'t, T>>;
    let runs: [(&str, Run<T>); 8] = [
        ("fast_softsort_apply", |s, x, t| fast::apply(s, x, t)),
        ("fast_softsort_transpose_apply", |s, x, t| {
            fast::transpose_apply(s, x, t)
        }),
        ("fast_softsort_log_normalizer", |s, _, t| {
            fast::log_normalizers(s, t)
        }),
        ("rowwise_softsort_squared_apply", |s, x, t| {
            fast::squared_apply(s, x, t)
        }),
        ("rowwise_neuralsort_apply", |s, x, t| {
            fast::neuralsort_apply(s, x, t)
        }),
        ("fast_softsort_permutation_nll", |s, p, t| {
            fast::permutation_nll(s, p, t)
        }),
        ("fused_softsort_squared_permutation_nll", |s, p, t| {
            fast::squared_permutation_nll(s, p, t)
        }),
        ("fused_neuralsort_permutation_nll", |s, p, t| {
            fast::neuralsort_permutation_nll(s, p, t)
        }),
    ];
    for (op, run) in runs {
        let tape = Tape::<T>::new();
        let data = [0.5, 2.0, 1.0].map(T::from_f64).to_vec();
        let s = tape.param(Tensor::from_vec(data, [3]).unwrap());
        let target = [1.0, 2.0, 0.0].map(T::from_f64).to_vec();
        let p = tape.constant(Tensor::from_vec(target, [3]).unwrap());
        match run(s, p, tau) {
            Err(e @ Error::InvalidArgument { .. }) => {
                let msg = e.to_string();
                let overflow = format!("1/tau overflows {}", std::any::type_name::<T>());
                assert!(msg.contains(op), "{msg}");
                assert!(msg.contains(&format!("tau = {tau_text}")), "{msg}");
                assert!(msg.contains(&overflow), "{msg}");
                assert!(msg.len() < 400, "{msg}");
            }
            Err(e) => panic!("{op}: unexpected error {e}"),
            Ok(v) => panic!(
                "{op}: accepted tau = {tau:e}, output {:?}",
                v.value().to_vec()
            ),
        }
    }
}

#[test]
fn tau_overflowing_f32_inverse_rejected() {
    check_tiny_tau::<f32>(1e-39, "1e-39");
}

#[test]
fn tau_overflowing_f64_inverse_rejected() {
    check_tiny_tau::<f64>(1e-320, "1e-320");
}

#[test]
fn tau_with_finite_inverse_accepted() {
    // 1/1e-38 = 1e38 < f32::MAX ≈ 3.4e38.
    let tape = Tape::<f32>::new();
    let s = tape.param(Tensor::from_vec(vec![0.5f32, 2.0, 1.0], [3]).unwrap());
    let y = fast::soft_sort(s, 1e-38).unwrap();
    assert_eq!(y.value().to_vec(), vec![2.0, 1.0, 0.5]);
}

/// Returns the loss and score gradient of the NeuralSort permutation likelihood in `T`.
fn neuralsort_nll<T: SortFloat>(scores: &[f64], target: &[f64], tau: f64) -> (f64, Vec<f64>) {
    let n = scores.len();
    let tape = Tape::<T>::new();
    let s = tape
        .param(Tensor::from_vec(scores.iter().map(|&x| T::from_f64(x)).collect(), [n]).unwrap());
    let p = tape
        .constant(Tensor::from_vec(target.iter().map(|&x| T::from_f64(x)).collect(), [n]).unwrap());
    let loss = fast::neuralsort_permutation_nll(s, p, tau).unwrap();
    let grads = tape.backward(loss).unwrap();
    let g = grads
        .get(s)
        .unwrap()
        .to_vec()
        .iter()
        .map(|x| x.as_f64())
        .collect();
    (loss.value().item().unwrap().as_f64(), g)
}

#[test]
fn neuralsort_nll_in_f32_matches_f64_at_a_large_spread() {
    let scores = [1e4, -1e4, 3.0, -9999.5, 9999.0, 0.0, 5000.0, -0.001];
    // The f64 reference runs on the same scores rounded to f32.
    let rounded: Vec<f64> = scores.iter().map(|&x| x as f32 as f64).collect();
    let target = [0.0, 4.0, 6.0, 2.0, 5.0, 7.0, 3.0, 1.0];
    let (loss32, g32) = neuralsort_nll::<f32>(&rounded, &target, 1e-3);
    let (loss64, g64) = neuralsort_nll::<f64>(&rounded, &target, 1e-3);
    assert!(loss64 > 0.05, "reference loss {loss64}");
    assert!(
        (loss32 - loss64).abs() <= 1e-3 * loss64.abs(),
        "f32 loss {loss32}, f64 loss {loss64}"
    );
    for (i, (a, b)) in g32.iter().zip(&g64).enumerate() {
        assert!((a - b).abs() <= 1e-3, "gradient {i}: f32 {a}, f64 {b}");
    }
}

/// Returns `Y = P · s` and the gradient of `Σ_k w_k Y_k` for NeuralSort `P`, computed in `T`.
fn neuralsort_sorted<T: SortFloat>(scores: &[f64], w: &[f64], tau: f64) -> (Vec<f64>, Vec<f64>) {
    let n = scores.len();
    let tape = Tape::<T>::new();
    let to_tensor = |x: &[f64]| Tensor::from_vec(x.iter().map(|&v| T::from_f64(v)).collect(), [n]);
    let s = tape.param(to_tensor(scores).unwrap());
    let w = tape.constant(to_tensor(w).unwrap());
    let y = fast::neuralsort_apply(s, s, tau).unwrap();
    let grads = tape.backward(y.mul(w).unwrap().sum().unwrap()).unwrap();
    let as_f64 = |t: &Tensor<T>| t.to_vec().iter().map(|x| x.as_f64()).collect();
    (as_f64(&y.value()), as_f64(grads.get(s).unwrap()))
}

#[test]
fn neuralsort_apply_in_f32_matches_f64_at_a_large_spread() {
    let scores = [1e4, -1e4, 3.0, -9999.5, 9999.0, 0.0, 5000.0, -0.001];
    let rounded: Vec<f64> = scores.iter().map(|&x| x as f32 as f64).collect();
    let w = [0.3, -1.2, 0.7, 2.0, -0.4, 1.1, -0.9, 0.5];
    let (y32, g32) = neuralsort_sorted::<f32>(&rounded, &w, 1e-3);
    let (y64, g64) = neuralsort_sorted::<f64>(&rounded, &w, 1e-3);
    for (i, (a, b)) in y32.iter().zip(&y64).enumerate() {
        assert!(
            (a - b).abs() <= 1e-3 * b.abs().max(1.0),
            "output {i}: f32 {a}, f64 {b}"
        );
    }
    for (i, (a, b)) in g32.iter().zip(&g64).enumerate() {
        assert!(
            (a - b).abs() <= 1e-3 * b.abs().max(1.0),
            "gradient {i}: f32 {a}, f64 {b}"
        );
    }
    // The two smallest-magnitude scores, 0 and −0.001, share sorted positions 4 and 5.
    assert!(y64[4] < 0.0, "{y64:?}");
    assert!(y64[4] > -0.001, "{y64:?}");
}
