//! A small CNN learns whether the bright bar in a noisy 8×8 image is horizontal or vertical.

use autograd::nn::{self, Adam, AdamConfig, Conv2d, Linear, Module, Optimizer, Params};
use autograd::{Padding, Result, Tape, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SIDE: usize = 8;

/// conv 3×3 1→4 (same) → ReLU → 2×2 max-pool → flatten (64) → linear 64→1.
struct BarNet {
    conv: Conv2d<f32>,
    fc: Linear<f32>,
}

impl BarNet {
    fn new(rng: &mut StdRng) -> Self {
        BarNet {
            conv: Conv2d::new(1, 4, 3, 1, Padding::Same, true, rng).unwrap(),
            fc: Linear::new(4 * (SIDE / 2) * (SIDE / 2), 1, true, rng).unwrap(),
        }
    }

    fn forward<'t>(&self, p: &Params<'t, f32>, images: Var<'t, f32>) -> Result<Var<'t, f32>> {
        let h = self.conv.forward(&p.scope("conv"), images)?.relu()?;
        let h = h.max_pool2d(2, 2)?.flatten()?;
        self.fc.forward(&p.scope("fc"), h)
    }
}

impl Module<f32> for BarNet {
    fn named_parameters(&self) -> Vec<(String, &Tensor<f32>)> {
        let mut all = nn::scoped("conv", self.conv.named_parameters());
        all.extend(nn::scoped("fc", self.fc.named_parameters()));
        all
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<f32>)> {
        let mut all = nn::scoped("conv", self.conv.named_parameters_mut());
        all.extend(nn::scoped("fc", self.fc.named_parameters_mut()));
        all
    }
}

/// `count` images `[count, 1, 8, 8]` of uniform noise in [0, 0.5) with one bar of brightness
/// 1 along a random row (label +1) or column (label −1), and the labels `[count, 1]`.
fn bars(count: usize, rng: &mut StdRng) -> (Tensor<f32>, Tensor<f32>) {
    let mut images = Vec::with_capacity(count * SIDE * SIDE);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let horizontal = rng.gen::<bool>();
        let line = rng.gen_range(0..SIDE);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let on_bar = if horizontal { y == line } else { x == line };
                images.push(if on_bar { 1.0 } else { rng.gen_range(0.0..0.5) });
            }
        }
        labels.push(if horizontal { 1.0 } else { -1.0 });
    }
    (
        Tensor::from_vec(images, [count, 1, SIDE, SIDE]).unwrap(),
        Tensor::from_vec(labels, [count, 1]).unwrap(),
    )
}

fn accuracy(model: &BarNet, images: &Tensor<f32>, labels: &Tensor<f32>) -> f64 {
    let tape = Tape::new();
    let params = Params::new(&tape, model);
    let scores = model
        .forward(&params, tape.constant(images.clone()))
        .unwrap()
        .value();
    let correct = scores
        .data()
        .iter()
        .zip(labels.data())
        .filter(|(s, l)| s.signum() == l.signum())
        .count();
    correct as f64 / labels.numel() as f64
}

#[test]
fn cnn_learns_bar_orientation() {
    let mut rng = StdRng::seed_from_u64(2024);
    let mut model = BarNet::new(&mut rng);
    let mut adam = Adam::new(AdamConfig {
        lr: 0.01,
        ..AdamConfig::default()
    })
    .unwrap();
    let (test_images, test_labels) = bars(200, &mut rng);
    let before = accuracy(&model, &test_images, &test_labels);

    for _ in 0..150 {
        let (images, labels) = bars(32, &mut rng);
        let grads = {
            let tape = Tape::new();
            let params = Params::new(&tape, &model);
            let scores = model.forward(&params, tape.constant(images)).unwrap();
            // Squared error against the ±1 labels.
            let error = scores.sub(tape.constant(labels)).unwrap();
            let loss = error.mul(error).unwrap().mean().unwrap();
            params.backward(loss).unwrap()
        };
        adam.step(&mut model, &grads).unwrap();
    }

    let after = accuracy(&model, &test_images, &test_labels);
    assert!(
        after >= 0.95,
        "test accuracy {after} (was {before} before training)"
    );
}
