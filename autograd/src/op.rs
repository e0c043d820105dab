//! The trait through which every differentiable op, built-in or user-defined, joins the tape.

use crate::error::Result;
use crate::float::Float;
use crate::tensor::Tensor;

/// What [`Op::backward`] receives: the recorded inputs and output, and the gradient of the loss
/// with respect to the output.
pub struct BackwardArgs<'a, T> {
    /// The input values, in the order they were passed to [`Tape::apply`](crate::Tape::apply).
    pub inputs: &'a [Tensor<T>],
    /// The value [`Op::forward`] returned.
    pub output: &'a Tensor<T>,
    /// `∂L/∂output`, of the output's shape.
    pub grad_output: &'a Tensor<T>,
    /// For each input, whether its gradient is needed; an op may skip the work for the others.
    pub needs_grad: &'a [bool],
}

/// A differentiable operation: a forward computation and its vector-Jacobian product.
///
/// Implement it to add an op from another crate, then record it with
/// [`Tape::apply`](crate::Tape::apply). `forward` may keep residuals (an argmax, a normaliser)
/// in `self` for `backward` to use; the tape stores the op after the forward pass.
///
/// `backward` returns one entry per input: `None` where `needs_grad` is false, otherwise
/// `∂L/∂input`. A gradient may have the input's shape or any shape that the input broadcasts to:
/// the tape sums it back to the input's shape, so broadcasting ops need not reduce it themselves.
///
/// An op that cannot be differentiated (an argsort, a rounding) returns `false` from
/// [`Op::is_differentiable`]; the tape then rejects it with
/// [`Error::NotDifferentiable`](crate::Error::NotDifferentiable) whenever an input requires a
/// gradient, instead of silently cutting the graph.
///
/// # Example
///
/// A cube op, `y = x³` with `∂L/∂x = 3x² · ∂L/∂y`, written outside the crate:
///
/// ```
/// use autograd::{BackwardArgs, Op, Result, Tape, Tensor};
///
/// struct Cube;
///
/// impl Op<f64> for Cube {
///     fn name(&self) -> &str {
///         "cube"
///     }
///
///     fn forward(&mut self, inputs: &[Tensor<f64>]) -> Result<Tensor<f64>> {
///         Ok(inputs[0].map(|x| x * x * x))
///     }
///
///     fn backward(&self, args: &BackwardArgs<f64>) -> Result<Vec<Option<Tensor<f64>>>> {
///         let x = args.inputs[0].data();
///         let g = args.grad_output.data();
///         let dx = x.iter().zip(g).map(|(x, g)| 3.0 * x * x * g).collect();
///         Ok(vec![Some(Tensor::from_vec(dx, args.inputs[0].shape().clone())?)])
///     }
/// }
///
/// let tape = Tape::new();
/// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0], [2])?);
/// let loss = tape.apply(Cube, &[x])?.sum()?;
/// let grads = tape.backward(loss)?;
/// assert_eq!(grads.get(x)?.to_vec(), vec![3.0, 12.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
pub trait Op<T: Float>: 'static {
    /// The op's name, used in error messages.
    fn name(&self) -> &str;

    /// Computes the output from the input values.
    ///
    /// # Errors
    /// Any [`Error`](crate::Error) for inputs the op cannot take, naming the op.
    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>>;

    /// Computes `∂L/∂input` for each input whose `needs_grad` is set.
    ///
    /// # Errors
    /// Any [`Error`](crate::Error). The tape never calls it for ops whose
    /// [`Op::is_differentiable`] is false.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>>;

    /// Returns whether the op has a backward. Ops that return `false` are rejected on tracked
    /// inputs.
    fn is_differentiable(&self) -> bool {
        true
    }
}
