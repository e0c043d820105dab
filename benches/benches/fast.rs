//! Forward plus backward of the speed-task loss `mean(1 − log diag P)` with the O(n log n)
//! SoftSort (`softsort_ops::fast`), for `B` rows of `n` standard-normal scores at τ = 1.
//!
//! Run: `cargo bench -p benches --bench fast -- --warm-up-time 1 --measurement-time 2`.

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use autograd::{Tape, Tensor};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;
use softsort_ops::fast;

const TAU: f64 = 1.0;

/// Runs one training step's worth of work: the loss `1 + mean NLL of the identity
/// permutation` (= `mean(1 − log diag P)`) and its gradient with respect to the scores.
fn step(scores: &Tensor<f64>, identity: &Tensor<f64>) -> f64 {
    let tape = Tape::new();
    let s = tape.param(scores.clone());
    let target = tape.constant(identity.clone());
    let loss = fast::permutation_nll(s, target, TAU)
        .and_then(|nll| nll.add_scalar(1.0))
        .expect("valid inputs");
    let grads = tape.backward(loss).expect("loss is a scalar");
    grads.get(s).expect("scores are a parameter").data()[0]
}

fn inputs(rows: usize, n: usize) -> (Tensor<f64>, Tensor<f64>) {
    let mut rng = StdRng::seed_from_u64(n as u64);
    let scores = Tensor::normal([rows, n], 0.0, 1.0, &mut rng).expect("valid shape");
    let identity: Vec<f64> = (0..rows * n).map(|k| (k % n) as f64).collect();
    let identity = Tensor::from_vec(identity, [rows, n]).expect("valid shape");
    (scores, identity)
}

fn speed_task(c: &mut Criterion) {
    let mut group = c.benchmark_group("fast_softsort_speed_task");
    group.sample_size(10);
    let cases = [
        (20, 100),
        (20, 200),
        (20, 500),
        (20, 1000),
        (20, 2000),
        (20, 4000),
        (20, 10_000),
        (20, 100_000),
        (1, 1_000_000),
    ];
    for (rows, n) in cases {
        let (scores, identity) = inputs(rows, n);
        group.throughput(Throughput::Elements((rows * n) as u64));
        group.bench_with_input(
            BenchmarkId::new(format!("B={rows}"), n),
            &(scores, identity),
            |b, (scores, identity)| b.iter(|| step(scores, identity)),
        );
    }
    group.finish();
}

criterion_group!(benches, speed_task);

/// Runs the benchmarks on a rayon worker thread, as a training loop inside the pool does (the
/// `speed` binary runs the same way). Called from the main thread instead, every parallel loop
/// of a step is handed over to the pool and back, which cost about 35 µs per step at n = 100.
fn main() {
    rayon::scope(|_| benches());
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
