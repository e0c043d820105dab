//! Each fused operator against the same math composed from the engine's primitive ops, in
//! f64: forward values and the gradient of a random weighted sum of the output must agree.

mod common;

use autograd::{Result, Tape, Tensor, Var};
use common::{assert_close, logsumexp, scores_case, uniform, with_n, BATCH_SHAPES};
use proptest::prelude::*;
use rand::SeedableRng;
use softsort_ops::{
    apply_permutation, permutation_cross_entropy, Distance, NeuralSort, Sinkhorn, SoftSort,
};

/// Evaluates `f` on `inputs` and returns its value and the gradients of
/// `Σ weights ⊙ f(inputs)` with respect to every input, for seeded random weights.
fn value_and_grads(
    inputs: &[Tensor<f64>],
    seed: u64,
    f: impl for<'t> Fn(&[Var<'t, f64>]) -> Result<Var<'t, f64>>,
) -> (Tensor<f64>, Vec<Tensor<f64>>) {
    let tape = Tape::new();
    let vars: Vec<Var<f64>> = inputs.iter().map(|t| tape.param(t.clone())).collect();
    let out = f(&vars).unwrap();
    let value = out.value();
    let weights = Tensor::uniform(
        value.shape().clone(),
        -1.0,
        1.0,
        &mut rand::rngs::StdRng::seed_from_u64(seed),
    )
    .unwrap();
    let loss = out.mul(tape.constant(weights)).unwrap().sum().unwrap();
    let grads = tape.backward(loss).unwrap();
    let grads = vars
        .iter()
        .map(|&v| grads.get(v).unwrap().clone())
        .collect();
    (value, grads)
}

fn assert_same(
    fused: (Tensor<f64>, Vec<Tensor<f64>>),
    composed: (Tensor<f64>, Vec<Tensor<f64>>),
    what: &str,
) {
    assert_close(&fused.0, &composed.0, 1e-10, &format!("{what} forward"));
    for (k, (a, b)) in fused.1.iter().zip(&composed.1).enumerate() {
        assert_close(a, b, 1e-9, &format!("{what} gradient of input {k}"));
    }
}

/// SoftSort from primitives: `ŝ = sort(s)`, then `softmax(−d(ŝ_i − s_j)/τ)` over `j`.
fn softsort_composed<'t>(
    s: Var<'t, f64>,
    tau: f64,
    distance: Distance,
    descending: bool,
) -> Result<Var<'t, f64>> {
    let (sorted, _) = s.sort(descending)?; // [..., n]
    let diff = sorted.unsqueeze(-1)?.sub(s.unsqueeze(-2)?)?; // [..., n, n]
    let d = match distance {
        Distance::Abs => diff.abs()?,
        Distance::Squared => diff.powf(2.0)?,
    };
    d.mul_scalar(-1.0 / tau)?.softmax(-1)
}

/// NeuralSort from primitives: `A_i = Σ_j |s_i − s_j|` as an n × n sum, then
/// `softmax_i((c_k s_i − A_i)/τ)`.
fn neuralsort_composed<'t>(s: Var<'t, f64>, tau: f64, descending: bool) -> Result<Var<'t, f64>> {
    let n = *s.shape().dims().last().unwrap();
    let sign = if descending { 1.0 } else { -1.0 };
    let c: Vec<f64> = (1..=n)
        .map(|k| sign * (n as f64 + 1.0 - 2.0 * k as f64))
        .collect();
    let c = s.tape().constant(Tensor::from_vec(c, [n, 1])?);
    let s_row = s.unsqueeze(-2)?; // [..., 1, n]
    let a = s.unsqueeze(-1)?.sub(s_row)?.abs()?.sum_axes(&[-1], false)?; // [..., n]
    let logits = c.mul(s_row)?.sub(a.unsqueeze(-2)?)?.mul_scalar(1.0 / tau)?;
    logits.softmax(-1)
}

/// Sinkhorn from primitives: row then column normalisation in the log domain, `L − lse(L)`
/// being `log_softmax`, `iterations` times.
fn sinkhorn_composed<'t>(x: Var<'t, f64>, tau: f64, iterations: usize) -> Result<Var<'t, f64>> {
    let mut l = x.mul_scalar(1.0 / tau)?;
    for _ in 0..iterations {
        l = l.log_softmax(-1)?.log_softmax(-2)?;
    }
    l.exp()
}

/// The same Sinkhorn with the log-sum-exp written out from `max_axes`, `exp`, `sum_axes` and
/// `log`, the maximum taken on a detached copy.
fn sinkhorn_composed_logsumexp<'t>(
    x: Var<'t, f64>,
    tau: f64,
    iterations: usize,
) -> Result<Var<'t, f64>> {
    let mut l = x.mul_scalar(1.0 / tau)?;
    for _ in 0..iterations {
        l = l.sub(logsumexp(l, -1)?)?;
        l = l.sub(logsumexp(l, -2)?)?;
    }
    l.exp()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn softsort_matches_composition((scores, tau) in scores_case(), squared in any::<bool>(), ascending in any::<bool>(), seed in any::<u64>()) {
        let distance = if squared { Distance::Squared } else { Distance::Abs };
        let op = SoftSort::new(tau).distance(distance).ascending(ascending);
        let fused = value_and_grads(std::slice::from_ref(&scores), seed, |v| op.apply(v[0]));
        let composed = value_and_grads(&[scores], seed, |v| softsort_composed(v[0], tau, distance, !ascending));
        assert_same(fused, composed, "softsort");
    }

    #[test]
    fn neuralsort_matches_composition((scores, tau) in scores_case(), ascending in any::<bool>(), seed in any::<u64>()) {
        let op = NeuralSort::new(tau).ascending(ascending);
        let fused = value_and_grads(std::slice::from_ref(&scores), seed, |v| op.apply(v[0]));
        let composed = value_and_grads(&[scores], seed, |v| neuralsort_composed(v[0], tau, !ascending));
        assert_same(fused, composed, "neuralsort");
    }

    #[test]
    fn sinkhorn_matches_composition(
        (x, tau, iterations) in (0..BATCH_SHAPES.len(), 1usize..=10, 0.2f64..2.0, 1usize..=12).prop_flat_map(|(b, n, tau, it)| {
            let mut dims = with_n(BATCH_SHAPES[b], n);
            dims.push(n);
            (uniform(dims, -2.0, 2.0), Just(tau), Just(it))
        }),
        seed in any::<u64>(),
    ) {
        let op = Sinkhorn::new(tau).iterations(iterations);
        let fused = value_and_grads(std::slice::from_ref(&x), seed, |v| Ok(op.apply(v[0])?.0));
        let composed = value_and_grads(std::slice::from_ref(&x), seed, |v| sinkhorn_composed(v[0], tau, iterations));
        let written_out = value_and_grads(&[x], seed, |v| sinkhorn_composed_logsumexp(v[0], tau, iterations));
        assert_same(fused.clone(), composed, "sinkhorn");
        assert_same(fused, written_out, "sinkhorn with explicit log-sum-exp");
    }

    #[test]
    fn apply_permutation_matches_matmul(
        (p, x) in (1usize..=4, 1usize..=10, 1usize..=5).prop_flat_map(|(b, n, d)| (uniform(vec![b, n, n], 0.0, 1.0), uniform(vec![b, n, d], -1.0, 1.0))),
        seed in any::<u64>(),
    ) {
        let fused = value_and_grads(&[p.clone(), x.clone()], seed, |v| apply_permutation(v[0], v[1]));
        let composed = value_and_grads(&[p, x], seed, |v| v[0].matmul(v[1]));
        assert_same(fused, composed, "apply_permutation");
    }

    #[test]
    fn cross_entropy_matches_composition(
        (p, n) in (0..BATCH_SHAPES.len(), 1usize..=10).prop_flat_map(|(b, n)| {
            let mut dims = with_n(BATCH_SHAPES[b], n);
            dims.push(n);
            (uniform(dims, 0.0, 1.0), Just(n))
        }),
        shift in 0usize..10,
    ) {
        let rows = p.numel() / n;
        let targets: Vec<usize> = (0..rows).map(|r| (r + shift) % n).collect();
        let row_dims = p.dims()[..p.ndim() - 1].to_vec();
        let mut one_hot = vec![0.0; p.numel()];
        for (r, &t) in targets.iter().enumerate() {
            one_hot[r * n + t] = 1.0;
        }
        let one_hot = Tensor::from_vec(one_hot, p.dims().to_vec()).unwrap();
        let fused = value_and_grads(std::slice::from_ref(&p), 0, |v| permutation_cross_entropy(v[0], &targets, &row_dims));
        let composed = value_and_grads(&[p], 0, |v| {
            let picked = v[0].add_scalar(1e-20)?.log()?.mul(v[0].tape().constant(one_hot.clone()))?;
            picked.sum()?.mul_scalar(-1.0 / rows as f64)
        });
        assert_same(fused, composed, "permutation_cross_entropy");
    }
}
