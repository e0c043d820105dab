//! One training step of the SoftSort paper's MNIST CNN, and conv2d alone.
//!
//! The network takes 1×112×28 images (four MNIST digits stacked): conv 5×5 1→32 with same
//! padding, ReLU, 2×2 max-pool, conv 5×5 32→64 same, ReLU, max-pool, linear 7·28·64 → 64,
//! ReLU, linear 64 → 1. A step is the forward pass, the mean of the squared scores as a
//! stand-in loss, the backward pass and an Adam update.

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod paper_cnn;

use autograd::nn::{Adam, AdamConfig};
use autograd::{Padding, Tape, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use paper_cnn::{training_step, PaperCnn};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn bench_training_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("training_step");
    group.sample_size(10);
    for batch in [60, 300] {
        let mut rng = StdRng::seed_from_u64(0);
        let mut model = PaperCnn::new(&mut rng).unwrap();
        let mut adam = Adam::new(AdamConfig {
            lr: 1e-4,
            ..AdamConfig::default()
        })
        .unwrap();
        let images = Tensor::uniform([batch, 1, 112, 28], 0.0, 1.0, &mut rng).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(batch), &images, |b, images| {
            b.iter(|| training_step(&mut model, &mut adam, images).unwrap())
        });
    }
    group.finish();
}

/// The second convolution of the network (the costliest op) on 60 images: forward and the
/// gradients of input, weight and bias.
fn bench_conv2d(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d_forward_backward");
    group.sample_size(10);
    let mut rng = StdRng::seed_from_u64(1);
    let x = Tensor::<f32>::uniform([60, 32, 56, 14], -1.0, 1.0, &mut rng).unwrap();
    let w = Tensor::<f32>::uniform([64, 32, 5, 5], -0.1, 0.1, &mut rng).unwrap();
    let b = Tensor::<f32>::zeros([64]);
    group.bench_function("60x32x56x14_k5_o64", |bench| {
        bench.iter(|| {
            let tape = Tape::new();
            let (xv, wv, bv) = (
                tape.param(x.clone()),
                tape.param(w.clone()),
                tape.param(b.clone()),
            );
            let y = xv.conv2d(wv, Some(bv), 1, Padding::Same).unwrap();
            let grads = tape.backward(y.sum().unwrap()).unwrap();
            grads.get(wv).unwrap().data()[0]
        })
    });
    group.finish();
}

criterion_group!(benches, bench_training_step, bench_conv2d);
criterion_main!(benches);
