//! Criterion benchmarks of the autograd engine: matrix products against raw
//! `matrixmultiply::sgemm`, elementwise ops, softmax, and the fixed cost of recording an op on
//! the tape.
//!
//! Run with `cargo bench -p benches --bench autograd`. For the matrix products the throughput is
//! set to `2·m·k·n` elements per call, so criterion's "elem/s" is FLOP/s.

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use autograd::{matmul_tensors, Tape, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn random(shape: &[usize], seed: u64) -> Tensor<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Tensor::uniform(shape, -1.0, 1.0, &mut rng).expect("valid range")
}

/// `c = a · b` for row-major `m × k` and `k × n` matrices, straight through `matrixmultiply`.
fn raw_sgemm(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    assert_eq!(a.len(), m * k);
    assert_eq!(b.len(), k * n);
    assert_eq!(c.len(), m * n);
    // SAFETY: the asserts above guarantee that the row-major strides address only elements
    // inside `a`, `b` and `c`, and `c` is a distinct mutable slice.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul_f32");
    group.sample_size(10);
    for n in [256usize, 512, 1024] {
        let a = random(&[n, n], 1);
        let b = random(&[n, n], 2);
        group.throughput(Throughput::Elements((2 * n * n * n) as u64));
        group.bench_with_input(BenchmarkId::new("autograd", n), &n, |bench, _| {
            bench.iter(|| matmul_tensors(black_box(&a), black_box(&b)).expect("square shapes"))
        });
        let mut out = vec![0.0f32; n * n];
        group.bench_with_input(BenchmarkId::new("sgemm", n), &n, |bench, &n| {
            bench.iter(|| raw_sgemm(black_box(a.data()), black_box(b.data()), &mut out, n, n, n))
        });
    }

    // A batch of 20 products of 128 × 128 matrices. The autograd kernel spreads the batch over
    // the rayon pool; the raw sgemm baseline runs the 20 products one after another.
    let (batch, size) = (20usize, 128usize);
    let a = random(&[batch, size, size], 3);
    let b = random(&[batch, size, size], 4);
    group.throughput(Throughput::Elements(
        (2 * batch * size * size * size) as u64,
    ));
    group.bench_function("autograd/batched_20x128", |bench| {
        bench.iter(|| matmul_tensors(black_box(&a), black_box(&b)).expect("batched shapes"))
    });
    let mut out = vec![0.0f32; batch * size * size];
    let block = size * size;
    group.bench_function("sgemm/batched_20x128", |bench| {
        bench.iter(|| {
            for i in 0..batch {
                raw_sgemm(
                    &a.data()[i * block..(i + 1) * block],
                    &b.data()[i * block..(i + 1) * block],
                    &mut out[i * block..(i + 1) * block],
                    size,
                    size,
                    size,
                );
            }
        })
    });
    group.finish();
}

fn elementwise(c: &mut Criterion) {
    let mut group = c.benchmark_group("elementwise_f32");
    let x = random(&[1000, 1000], 5);
    let y = random(&[1000, 1000], 6);
    let row = random(&[1000], 7);
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("add_same_shape_1M", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let (a, b) = (tape.constant(x.clone()), tape.constant(y.clone()));
            a.add(b).expect("same shapes").value()
        })
    });
    group.bench_function("mul_broadcast_row_1M", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let (a, b) = (tape.constant(x.clone()), tape.constant(row.clone()));
            a.mul(b).expect("broadcastable shapes").value()
        })
    });
    group.finish();
}

fn softmax(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax_f32");
    group.sample_size(10);
    let x = random(&[20, 2000, 2000], 8);
    group.throughput(Throughput::Elements(x.numel() as u64));
    group.bench_function("softmax_last_axis_20x2000x2000", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            tape.constant(x.clone())
                .softmax(-1)
                .expect("finite input")
                .value()
        })
    });
    group.finish();
}

/// Records `ops` adds of two-element tensors and runs the backward pass: the fixed cost per
/// op, since the arithmetic is negligible.
fn tape_overhead(c: &mut Criterion) {
    let ops = 100usize;
    let mut group = c.benchmark_group("tape_overhead_f32");
    group.throughput(Throughput::Elements(ops as u64));
    let x = Tensor::<f32>::from_vec(vec![0.5, -0.5], [2]).expect("two elements");
    group.bench_function("100_adds_of_2_elements_forward_backward", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let leaf = tape.param(x.clone());
            let mut acc = leaf;
            for _ in 0..ops {
                acc = acc.add(leaf).expect("same shapes");
            }
            let grads = tape.backward(acc.sum().expect("sum")).expect("scalar loss");
            grads.get(leaf).expect("leaf gradient").data()[0]
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = matmul, elementwise, softmax, tape_overhead
}
criterion_main!(benches);
