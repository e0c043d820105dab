//! Flattening of all axes after the first.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::tape::Var;
use crate::tensor::Tensor;

struct Flatten;

impl<T: Float> Op<T> for Flatten {
    fn name(&self) -> &str {
        "flatten"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        if x.ndim() == 0 {
            return Err(Error::shape(
                "flatten",
                "a scalar has no batch axis to keep; flatten needs at least one axis",
            ));
        }
        let rest: usize = x.dims()[1..].iter().product();
        x.reshape([x.dims()[0], rest])
    }

    // The elements do not move, so the gradient is ∂L/∂y under the input's shape.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        Ok(vec![Some(
            args.grad_output.reshape(args.inputs[0].shape().clone())?,
        )])
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Reshapes `[N, d1, d2, …]` to `[N, d1·d2·…]`, keeping the row-major element order, as
    /// PyTorch's `flatten(1)`. The gradient is reshaped back; no element is copied either way.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f32>::new();
    /// let x = tape.constant(Tensor::zeros([2, 3, 4, 5]));
    /// assert_eq!(x.flatten()?.shape().dims(), &[2, 60]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for a scalar.
    pub fn flatten(self) -> Result<Var<'t, T>> {
        self.tape.apply(Flatten, &[self])
    }
}
