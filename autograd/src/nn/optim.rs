//! The interface shared by the optimisers.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::{Module, NamedGradients};
use crate::tensor::Tensor;

/// An update rule that moves a model's parameters against their gradients.
///
/// The learning rate may change between steps, for a schedule. The per-parameter state
/// (momentum buffers, moment estimates, step count) is exported and restored through
/// [`OptimizerState`], which [`save_checkpoint`](crate::nn::save_checkpoint) stores next to the
/// weights.
pub trait Optimizer<T: Float> {
    /// Updates every parameter of `model` from its entry in `grads`.
    ///
    /// Parameters are written in place through [`Tensor::data_mut`], which copies a buffer only
    /// if it is still shared, for example with a tape that is still alive.
    ///
    /// # Errors
    /// [`Error::Shape`] if a parameter has no gradient or one of another shape, or its state
    /// has another shape; [`Error::InvalidArgument`] if a gradient is not finite. Nothing is
    /// updated when an error is returned.
    fn step(&mut self, model: &mut dyn Module<T>, grads: &NamedGradients<T>) -> Result<()>;

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate used from the next step on.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `lr` is finite and non-negative.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;

    /// A copy of the internal state.
    fn state(&self) -> OptimizerState<T>;

    /// Replaces the internal state, as returned by [`Optimizer::state`] of an optimiser of the
    /// same kind.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if the state comes from another kind of optimiser or names an
    /// unknown buffer.
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()>;
}

/// The state of an optimiser between steps.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T: Float> {
    /// The optimiser's kind, such as `"sgd"` or `"adam"`.
    pub kind: String,
    /// The number of steps taken.
    pub steps: u64,
    /// Per-parameter buffers named `"{parameter}.{buffer}"`, such as `"fc.weight.exp_avg"`.
    pub tensors: Vec<(String, Tensor<T>)>,
}

/// Checks that `lr` is a usable learning rate.
pub(crate) fn check_learning_rate(op: &str, lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            "learning rate",
            lr,
            "it must be finite and non-negative",
        ))
    }
}

/// A parameter's name, its tensor for updating, and its gradient.
pub(crate) type ParameterUpdate<'m, 'g, T> = (String, &'m mut Tensor<T>, &'g Tensor<T>);

/// Pairs every parameter of `model` with its gradient, after checking that each gradient is
/// present, of the parameter's shape and finite.
pub(crate) fn pair_gradients<'m, 'g, T: Float>(
    op: &str,
    model: &'m mut dyn Module<T>,
    grads: &'g NamedGradients<T>,
) -> Result<Vec<ParameterUpdate<'m, 'g, T>>> {
    let mut pairs = Vec::new();
    for (name, param) in model.named_parameters_mut() {
        let Some(grad) = grads.get(&name) else {
            return Err(Error::shape(
                op,
                format!("no gradient for parameter {name:?}; pass the gradients of this model"),
            ));
        };
        if grad.shape() != param.shape() {
            return Err(Error::shape(
                op,
                format!(
                    "parameter {name:?} has shape {} but its gradient has shape {}",
                    param.shape(),
                    grad.shape()
                ),
            ));
        }
        if let Some(i) = grad.first_non_finite() {
            return Err(Error::invalid(
                op,
                &format!("gradient of {name:?}"),
                format!("{} at element {i}", grad.data()[i]),
                "gradients must be finite; lower the learning rate or check the loss for overflow",
            ));
        }
        pairs.push((name, param, grad));
    }
    Ok(pairs)
}

/// Checks that a state buffer has the shape of its parameter.
pub(crate) fn check_state_shape<T: Float>(
    op: &str,
    name: &str,
    buffer: &Tensor<T>,
    param: &Tensor<T>,
) -> Result<()> {
    if buffer.shape() == param.shape() {
        Ok(())
    } else {
        Err(Error::shape(
            op,
            format!(
                "the state of parameter {name:?} has shape {} but the parameter has shape {}; load a state saved for this model",
                buffer.shape(),
                param.shape()
            ),
        ))
    }
}

/// Splits a state tensor name `"{parameter}.{buffer}"` at its last dot.
pub(crate) fn split_state_name<'a>(
    kind: &str,
    name: &'a str,
    buffers: &[&str],
) -> Result<(&'a str, &'a str)> {
    match name.rsplit_once('.') {
        Some((param, buffer)) if buffers.contains(&buffer) => Ok((param, buffer)),
        _ => Err(Error::Checkpoint {
            path: String::new(),
            message: format!(
                "{kind} state entry {name:?} is not of the form \"parameter.buffer\" with a buffer in {buffers:?}"
            ),
        }),
    }
}
