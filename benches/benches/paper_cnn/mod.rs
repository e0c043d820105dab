//! The SoftSort paper's MNIST CNN and one training step of it, shared by the `training` bench
//! and the `step_cpu_time` example.
//!
//! The network takes 1×112×28 images (four MNIST digits stacked): conv 5×5 1→32 with same
//! padding, ReLU, 2×2 max-pool, conv 5×5 32→64 same, ReLU, max-pool, linear 7·28·64 → 64,
//! ReLU, linear 64 → 1.

use autograd::nn::{self, init, Adam, Conv2d, Linear, Module, Optimizer, Params};
use autograd::{Padding, Result, Tape, Tensor, Var};
use rand::rngs::StdRng;

/// The four layers of the network.
pub struct PaperCnn {
    conv1: Conv2d<f32>,
    conv2: Conv2d<f32>,
    fc1: Linear<f32>,
    fc2: Linear<f32>,
}

impl PaperCnn {
    /// Weights from a truncated normal with std 0.1 and biases of 0.1, the initialisation of the
    /// SoftSort paper's CNN (Prillo & Eisenschlos 2020).
    pub fn new(rng: &mut StdRng) -> Result<Self> {
        let conv = |out: usize, inp: usize, rng: &mut StdRng| -> Result<Conv2d<f32>> {
            Conv2d::from_parts(
                init::truncated_normal([out, inp, 5, 5], 0.1, rng)?,
                Some(init::constant([out], 0.1)),
                1,
                Padding::Same,
            )
        };
        let linear = |inp: usize, out: usize, rng: &mut StdRng| -> Result<Linear<f32>> {
            Linear::from_parts(
                init::truncated_normal([inp, out], 0.1, rng)?,
                Some(init::constant([out], 0.1)),
            )
        };
        Ok(PaperCnn {
            conv1: conv(32, 1, rng)?,
            conv2: conv(64, 32, rng)?,
            fc1: linear(7 * 28 * 64, 64, rng)?,
            fc2: linear(64, 1, rng)?,
        })
    }

    pub fn forward<'t>(&self, p: &Params<'t, f32>, x: Var<'t, f32>) -> Result<Var<'t, f32>> {
        let h = self
            .conv1
            .forward(&p.scope("conv1"), x)?
            .relu()?
            .max_pool2d(2, 2)?;
        let h = self
            .conv2
            .forward(&p.scope("conv2"), h)?
            .relu()?
            .max_pool2d(2, 2)?;
        let h = self.fc1.forward(&p.scope("fc1"), h.flatten()?)?.relu()?;
        self.fc2.forward(&p.scope("fc2"), h)
    }
}

impl Module<f32> for PaperCnn {
    fn named_parameters(&self) -> Vec<(String, &Tensor<f32>)> {
        let mut all = nn::scoped("conv1", self.conv1.named_parameters());
        all.extend(nn::scoped("conv2", self.conv2.named_parameters()));
        all.extend(nn::scoped("fc1", self.fc1.named_parameters()));
        all.extend(nn::scoped("fc2", self.fc2.named_parameters()));
        all
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<f32>)> {
        let mut all = nn::scoped("conv1", self.conv1.named_parameters_mut());
        all.extend(nn::scoped("conv2", self.conv2.named_parameters_mut()));
        all.extend(nn::scoped("fc1", self.fc1.named_parameters_mut()));
        all.extend(nn::scoped("fc2", self.fc2.named_parameters_mut()));
        all
    }
}

/// Runs one step (forward pass, the mean of the squared scores as loss, backward pass and an
/// Adam update) and returns the loss.
pub fn training_step(
    model: &mut PaperCnn,
    adam: &mut Adam<f32>,
    images: &Tensor<f32>,
) -> Result<f32> {
    let (loss_value, grads) = {
        let tape = Tape::new();
        let params = Params::new(&tape, model);
        let scores = model.forward(&params, tape.constant(images.clone()))?;
        let loss = scores.mul(scores)?.mean()?;
        (loss.value().item()?, params.backward(loss)?)
    };
    adam.step(model, &grads)?;
    Ok(loss_value)
}
