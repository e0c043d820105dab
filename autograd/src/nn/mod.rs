//! Layers, initialisers, optimisers and checkpoints for training networks.
//!
//! A model is a plain struct that owns its parameters as [`Tensor`]s and implements [`Module`]
//! to list them by dotted name (`"conv1.weight"`). Each training step records the parameters
//! on a fresh [`Tape`](crate::Tape) through [`Params`], runs the forward pass, collects
//! [`NamedGradients`], drops the tape and lets an [`Optimizer`] update the tensors in place.
//!
//! ```
//! use autograd::nn::{self, Adam, AdamConfig, Linear, Module, NamedGradients, Optimizer, Params};
//! use autograd::{Tape, Tensor, Var};
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! /// A two-layer perceptron.
//! struct Mlp {
//!     hidden: Linear<f64>,
//!     output: Linear<f64>,
//! }
//!
//! impl Mlp {
//!     fn forward<'t>(&self, p: &Params<'t, f64>, x: Var<'t, f64>) -> autograd::Result<Var<'t, f64>> {
//!         let h = self.hidden.forward(&p.scope("hidden"), x)?.tanh()?;
//!         self.output.forward(&p.scope("output"), h)
//!     }
//! }
//!
//! impl Module<f64> for Mlp {
//!     fn named_parameters(&self) -> Vec<(String, &Tensor<f64>)> {
//!         let mut all = nn::scoped("hidden", self.hidden.named_parameters());
//!         all.extend(nn::scoped("output", self.output.named_parameters()));
//!         all
//!     }
//!
//!     fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<f64>)> {
//!         let mut all = nn::scoped("hidden", self.hidden.named_parameters_mut());
//!         all.extend(nn::scoped("output", self.output.named_parameters_mut()));
//!         all
//!     }
//! }
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let mut model = Mlp {
//!     hidden: Linear::new(2, 8, true, &mut rng)?,
//!     output: Linear::new(8, 1, true, &mut rng)?,
//! };
//! let mut optimizer = Adam::new(AdamConfig { lr: 0.05, ..AdamConfig::default() })?;
//! // Learn y = x0 − 2·x1 on four points.
//! let x = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0, -1.0, 0.5], [4, 2])?;
//! let y = Tensor::from_vec(vec![-2.0, 1.0, -1.0, -2.0], [4, 1])?;
//! let mut losses = Vec::new();
//! for _ in 0..200 {
//!     let grads: NamedGradients<f64> = {
//!         let tape = Tape::new();
//!         let params = Params::new(&tape, &model);
//!         let prediction = model.forward(&params, tape.constant(x.clone()))?;
//!         let error = prediction.sub(tape.constant(y.clone()))?;
//!         let loss = error.mul(error)?.mean()?;
//!         losses.push(loss.value().item()?);
//!         params.backward(loss)?
//!     }; // the tape is dropped here, so the update below writes in place
//!     optimizer.step(&mut model, &grads)?;
//! }
//! assert!(losses[199] < 0.01 * losses[0], "{} -> {}", losses[0], losses[199]);
//! # Ok::<(), autograd::Error>(())
//! ```

mod adam;
mod checkpoint;
mod conv;
pub mod init;
mod linear;
mod optim;
mod params;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use conv::Conv2d;
pub use linear::Linear;
pub use optim::{Optimizer, OptimizerState};
pub use params::{NamedGradients, Params};
pub use sgd::{Sgd, SgdConfig};

use crate::float::Float;
use crate::tensor::Tensor;

/// A model or layer that owns named parameters.
///
/// Both methods list the same names in the same order. Names are dotted paths
/// (`"conv1.weight"`), as in PyTorch's `state_dict`, so checkpoints written with
/// [`save_checkpoint`] load into a PyTorch model with the same structure (see [`Linear`] for
/// its weight layout).
pub trait Module<T: Float> {
    /// The parameters with their names.
    fn named_parameters(&self) -> Vec<(String, &Tensor<T>)>;

    /// The parameters with their names, for updating in place.
    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<T>)>;

    /// The total number of scalar parameters.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, t)| t.numel()).sum()
    }
}

/// Prefixes every name with `prefix.`, to list a sub-module's parameters inside a model.
pub fn scoped<P>(prefix: &str, parameters: Vec<(String, P)>) -> Vec<(String, P)> {
    parameters
        .into_iter()
        .map(|(name, p)| (format!("{prefix}.{name}"), p))
        .collect()
}

/// The layout a layer expects of its weight, for [`check_layer_parts`].
struct WeightLayout {
    /// The number of axes, such as 2 for `[in, out]`.
    rank: usize,
    /// The axes by name, for messages, such as `"[in, out]"`.
    axes: &'static str,
    /// The axis whose length the bias must have.
    out_axis: usize,
    /// Why no axis may be empty, for messages.
    empty_hint: &'static str,
}

/// Checks a layer's weight and optional bias: the weight's rank, no empty axis, a bias of the
/// output length, and finite values in both.
fn check_layer_parts<T: crate::Float>(
    layer: &str,
    weight: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    layout: WeightLayout,
) -> crate::Result<()> {
    use crate::Error;

    if weight.ndim() != layout.rank {
        return Err(Error::shape(
            layer,
            format!("the weight must be {}, got {}", layout.axes, weight.shape()),
        ));
    }
    if weight.dims().contains(&0) {
        return Err(Error::shape(
            layer,
            format!(
                "the weight {} has an empty axis; {}",
                weight.shape(),
                layout.empty_hint
            ),
        ));
    }
    let outputs = weight.dims()[layout.out_axis];
    if let Some(b) = bias {
        if b.dims() != [outputs] {
            return Err(Error::shape(
                layer,
                format!(
                    "the bias must be [{outputs}] to match the weight {}, got {}",
                    weight.shape(),
                    b.shape()
                ),
            ));
        }
    }
    check_finite_parameter(layer, "weight", weight)?;
    if let Some(b) = bias {
        check_finite_parameter(layer, "bias", b)?;
    }
    Ok(())
}

/// Rejects a layer parameter containing NaN or ±∞, which would turn every output non-finite.
fn check_finite_parameter<T: crate::Float>(
    layer: &str,
    name: &str,
    tensor: &Tensor<T>,
) -> crate::Result<()> {
    match tensor.first_non_finite() {
        None => Ok(()),
        Some(index) => Err(crate::Error::invalid(
            layer,
            name,
            format!("{} at flat index {index}", tensor.data()[index]),
            "layer parameters must be finite; check the tensor's source or initialiser",
        )),
    }
}
