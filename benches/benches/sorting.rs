//! Forward plus backward of each sorting operator on the speed task of the SoftSort paper
//! (Prillo & Eisenschlos, 2020): a batch of 20 score vectors of length n, the relaxed
//! permutation matrix `P`, and the loss `mean(1 − log diag P)`, i.e. one plus the row-wise
//! cross-entropy with the identity as the target permutation. All in `f32`.
//!
//! The `fused_*` cases compute the same loss without forming `P`, with the fused negative
//! log-likelihoods of `softsort_ops::fast`. They take the exact `−log P` where the dense path
//! takes `log(P + 1e-20)`, so their loss values differ where `P[i, i]` underflows, but the work
//! per step is the same.
//!
//! Run with `cargo bench -p benches --bench sorting`; results are recorded in
//! docs/benchmarks.md.

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use autograd::{Result, Tape, Tensor, Var};
use criterion::{criterion_group, BenchmarkId, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use softsort_ops::{fast, permutation_cross_entropy, Distance, NeuralSort, Sinkhorn, SoftSort};

const BATCH: usize = 20;

/// One training step: the operator's forward pass, the loss and the backward pass.
fn step(scores: &Tensor<f32>, op: impl for<'t> Fn(Var<'t, f32>) -> Result<Var<'t, f32>>) -> f32 {
    let n = *scores.dims().last().expect("scores have a last axis");
    let tape = Tape::new();
    let s = tape.param(scores.clone());
    let p = op(s).expect("the operator accepts the scores");
    let rows = p.shape().numel() / n;
    let identity: Vec<usize> = (0..rows / n).flat_map(|_| 0..n).collect();
    let row_dims = &p.shape().dims()[..p.shape().ndim() - 1].to_vec();
    let loss = permutation_cross_entropy(p, &identity, row_dims)
        .and_then(|l| l.add_scalar(1.0))
        .expect("the loss is defined");
    let grads = tape.backward(loss).expect("the loss depends on the scores");
    grads.get(s).expect("scores are a parameter").data()[0]
}

/// Runs one training step with a fused loss `nll(scores, target)`: the loss plus one and the
/// backward pass.
fn fused_step(
    scores: &Tensor<f32>,
    identity: &Tensor<f32>,
    nll: impl for<'t> Fn(Var<'t, f32>, Var<'t, f32>) -> Result<Var<'t, f32>>,
) -> f32 {
    let tape = Tape::new();
    let s = tape.param(scores.clone());
    let target = tape.constant(identity.clone());
    let loss = nll(s, target)
        .and_then(|l| l.add_scalar(1.0))
        .expect("the loss is defined");
    let grads = tape.backward(loss).expect("the loss depends on the scores");
    grads.get(s).expect("scores are a parameter").data()[0]
}

fn sorting(c: &mut Criterion) {
    let mut group = c.benchmark_group("sorting");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut rng = StdRng::seed_from_u64(0);
    for n in [100, 500, 1000, 2000, 4000] {
        let scores = Tensor::<f32>::normal([BATCH, n], 0.0, 1.0, &mut rng).expect("valid shape");
        group.bench_with_input(BenchmarkId::new("softsort_abs_tau1", n), &scores, |b, s| {
            b.iter(|| step(s, |v| SoftSort::new(1.0).apply(v)))
        });
        group.bench_with_input(
            BenchmarkId::new("softsort_squared_tau0.1", n),
            &scores,
            |b, s| {
                b.iter(|| {
                    step(s, |v| {
                        SoftSort::new(0.1).distance(Distance::Squared).apply(v)
                    })
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("neuralsort_tau100", n), &scores, |b, s| {
            b.iter(|| step(s, |v| NeuralSort::new(100.0).apply(v)))
        });
        let identity: Vec<f32> = (0..BATCH * n).map(|k| (k % n) as f32).collect();
        let identity = Tensor::from_vec(identity, [BATCH, n]).expect("valid shape");
        group.bench_with_input(
            BenchmarkId::new("fused_softsort_abs_tau1", n),
            &scores,
            |b, s| b.iter(|| fused_step(s, &identity, |v, t| fast::permutation_nll(v, t, 1.0))),
        );
        group.bench_with_input(
            BenchmarkId::new("fused_softsort_squared_tau0.1", n),
            &scores,
            |b, s| {
                b.iter(|| {
                    fused_step(s, &identity, |v, t| {
                        fast::squared_permutation_nll(v, t, 0.1)
                    })
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("fused_neuralsort_tau100", n),
            &scores,
            |b, s| {
                b.iter(|| {
                    fused_step(s, &identity, |v, t| {
                        fast::neuralsort_permutation_nll(v, t, 100.0)
                    })
                })
            },
        );
        // Sinkhorn takes n × n log-scores and runs 20 rounds forward and backward, 40 times
        // the exponentials of SoftSort, so it stops at n = 1000 to keep the run short.
        if n <= 1000 {
            let log_scores =
                Tensor::<f32>::normal([BATCH, n, n], 0.0, 1.0, &mut rng).expect("valid shape");
            group.bench_with_input(
                BenchmarkId::new("sinkhorn_tau1_20it", n),
                &log_scores,
                |b, x| b.iter(|| step(x, |v| Ok(Sinkhorn::new(1.0).apply(v)?.0))),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, sorting);

/// Runs the benchmarks on a rayon worker thread, as a training loop inside the pool does (the
/// `speed` binary runs the same way). Called from the main thread instead, every parallel loop
/// of a step is handed over to the pool and back, which cost about 35 µs per step at n = 100.
fn main() {
    rayon::scope(|_| benches());
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
