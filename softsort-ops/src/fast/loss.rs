//! The backward-pass setup shared by the permutation negative log-likelihood ops.

use autograd::{BackwardArgs, Float, Result, Tensor};

/// The layout of a scalar loss over scores `[..., n]`: `B` rows of length `n`, and the weight
/// `γ = g/(B·n)` that the incoming gradient `g` gives to each of the `B·n` terms of the mean.
pub(crate) struct MeanLoss<T> {
    /// Rows `B` (the product of the leading axes).
    pub rows: usize,
    /// Row length.
    pub n: usize,
    /// `g/(B·n)`.
    pub gamma: T,
}

impl<T: Float> MeanLoss<T> {
    /// Reads the layout from the scores (input 0) and the scalar incoming gradient.
    pub(crate) fn new(args: &BackwardArgs<T>) -> Result<Self> {
        let scores = &args.inputs[0];
        let n = *scores.dims().last().unwrap_or(&1);
        let rows = scores.numel() / n;
        let gamma = args.grad_output.item()? / T::from_f64((rows * n) as f64);
        Ok(MeanLoss { rows, n, gamma })
    }
}

/// Returns the zero gradient of the integer-valued target (input 1), if it needs one.
pub(crate) fn target_gradient<T: Float>(args: &BackwardArgs<T>) -> Option<Tensor<T>> {
    args.needs_grad[1].then(|| Tensor::zeros(args.inputs[1].shape().clone()))
}
