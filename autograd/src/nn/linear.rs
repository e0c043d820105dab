//! The fully connected layer.

use rand::Rng;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::{check_layer_parts, Module, Params, WeightLayout};
use crate::tape::Var;
use crate::tensor::Tensor;

/// A fully connected layer `y = x · W + b` from `[batch, in]` to `[batch, out]`.
///
/// The weight is stored as `[in, out]` so that the forward pass is a plain `x.matmul(W)`.
/// PyTorch's `nn.Linear` stores the transpose, `[out, in]`: transpose `"weight"` when moving a
/// checkpoint between the two.
#[derive(Clone, Debug)]
pub struct Linear<T: Float> {
    /// The weight, `[in, out]`.
    pub weight: Tensor<T>,
    /// The bias, `[out]`, if the layer has one.
    pub bias: Option<Tensor<T>>,
}

impl<T: Float> Linear<T> {
    /// Creates a layer initialised as PyTorch's `nn.Linear`: weight and bias drawn from
    /// `U(−1/sqrt(in), 1/sqrt(in))`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `inputs` or `outputs` is zero, if the weight
    /// `[inputs, outputs]` is too large to store (see [`Shape::check_size`]), or if the
    /// allocator cannot provide the memory.
    ///
    /// [`Shape::check_size`]: crate::Shape::check_size
    pub fn new(inputs: usize, outputs: usize, bias: bool, rng: &mut impl Rng) -> Result<Self> {
        if inputs == 0 || outputs == 0 {
            return Err(Error::invalid(
                "Linear::new",
                "(inputs, outputs)",
                format!("({inputs}, {outputs})"),
                "both sizes must be at least 1",
            ));
        }
        let bound = T::from_f64(1.0 / (inputs as f64).sqrt());
        let weight = Tensor::uniform([inputs, outputs], -bound, bound, rng)?;
        let bias = bias
            .then(|| Tensor::uniform([outputs], -bound, bound, rng))
            .transpose()?;
        Ok(Linear { weight, bias })
    }

    /// Creates a layer from given tensors, such as those of an [`init`](crate::nn::init)
    /// function.
    ///
    /// # Errors
    /// [`Error::Shape`] unless the weight is `[in, out]` with `in, out ≥ 1` and the bias
    /// `[out]`; [`Error::InvalidArgument`] if either contains NaN or ±∞.
    pub fn from_parts(weight: Tensor<T>, bias: Option<Tensor<T>>) -> Result<Self> {
        let layout = WeightLayout {
            rank: 2,
            axes: "[in, out]",
            out_axis: 1,
            empty_hint: "a layer needs at least one input and one output",
        };
        check_layer_parts("Linear::from_parts", &weight, bias.as_ref(), layout)?;
        Ok(Linear { weight, bias })
    }

    /// Computes `x · W + b` with the layer's parameters as recorded in `params` (a view scoped
    /// to this layer, so that it finds `"weight"` and `"bias"`).
    ///
    /// Gradients: `∂L/∂W = xᵀ · G`, `∂L/∂b = Σ_rows G`, `∂L/∂x = G · Wᵀ` for `G = ∂L/∂y`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[batch, in]` or `params` lacks the layer's parameters.
    pub fn forward<'t>(&self, params: &Params<'t, T>, x: Var<'t, T>) -> Result<Var<'t, T>> {
        let y = x.matmul(params.get("weight")?)?;
        match self.bias {
            Some(_) => y.add(params.get("bias")?),
            None => Ok(y),
        }
    }
}

impl<T: Float> Module<T> for Linear<T> {
    fn named_parameters(&self) -> Vec<(String, &Tensor<T>)> {
        let mut all = vec![("weight".to_string(), &self.weight)];
        if let Some(b) = &self.bias {
            all.push(("bias".to_string(), b));
        }
        all
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        let mut all = vec![("weight".to_string(), &mut self.weight)];
        if let Some(b) = &mut self.bias {
            all.push(("bias".to_string(), b));
        }
        all
    }
}
