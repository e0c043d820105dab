//! Index tensors and gathering along the last axis: the differentiable half of sort and top-k.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::for_each_row;
use crate::shape::Shape;
use crate::tape::Var;
use crate::tensor::Tensor;

/// A dense, row-major array of `usize` positions, such as the result of
/// [`argsort`](crate::argsort).
///
/// Index tensors take no part in differentiation: they are plain data, not tape values. Like
/// [`Tensor`], the elements sit behind an [`Arc`], so cloning is cheap.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IndexTensor {
    shape: Shape,
    data: Arc<Vec<usize>>,
}

impl IndexTensor {
    /// Builds an index tensor from row-major elements and a shape.
    ///
    /// # Errors
    /// [`Error::Shape`] if the number of elements differs from the product of the axis lengths.
    pub fn from_vec(data: Vec<usize>, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(Error::shape(
                "IndexTensor::from_vec",
                format!(
                    "{} elements cannot fill shape {shape}, which holds {}",
                    data.len(),
                    shape.numel()
                ),
            ));
        }
        Ok(IndexTensor {
            shape,
            data: Arc::new(data),
        })
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The axis lengths, a shortcut for `shape().dims()`.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[usize] {
        &self.data
    }

    /// Copies the elements into a new `Vec` in row-major order.
    pub fn to_vec(&self) -> Vec<usize> {
        self.data.to_vec()
    }

    /// Returns the element at a multi-index, or `None` if the index has the wrong number of axes
    /// or is out of bounds.
    pub fn get(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.shape.ndim() {
            return None;
        }
        let mut offset = 0;
        for (&i, &d) in index.iter().zip(self.dims()) {
            if i >= d {
                return None;
            }
            offset = offset * d + i;
        }
        Some(self.data[offset])
    }
}

/// Checks that `indices` can gather from `x` along the last axis and returns the length of that
/// axis in `x` and in `indices`.
fn gather_lengths<T: Float>(
    op: &str,
    x: &Tensor<T>,
    indices: &IndexTensor,
) -> Result<(usize, usize)> {
    let (xd, id) = (x.dims(), indices.dims());
    if xd.is_empty() || xd.len() != id.len() || xd[..xd.len() - 1] != id[..id.len() - 1] {
        return Err(Error::shape(
            op,
            format!(
                "cannot gather indices of shape {} from a tensor of shape {}: both need the same axes except the last, and at least one axis",
                indices.shape(),
                x.shape()
            ),
        ));
    }
    let n = xd[xd.len() - 1];
    if let Some(pos) = indices.data().iter().position(|&i| i >= n) {
        return Err(Error::invalid(
            op,
            "index",
            indices.data()[pos],
            format!("element {pos} of the indices is out of range for a last axis of length {n}"),
        ));
    }
    Ok((n, id[id.len() - 1]))
}

/// Gathers along the last axis: `out[..., j] = x[..., indices[..., j]]`.
///
/// `indices` has the shape of `x` except in the last axis, whose length is free; the output has
/// the shape of `indices`. Indices may repeat or leave positions out.
///
/// ```
/// use autograd::{take_along_last_axis, IndexTensor, Tensor};
///
/// let x = Tensor::from_vec(vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0], [2, 3])?;
/// let indices = IndexTensor::from_vec(vec![2, 0, 1, 1], [2, 2])?;
/// assert_eq!(take_along_last_axis(&x, &indices)?.to_vec(), vec![30.0, 10.0, 50.0, 50.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] if the leading axes differ or `x` is a scalar, [`Error::InvalidArgument`]
/// if an index is not below the length of the last axis.
pub fn take_along_last_axis<T: Float>(x: &Tensor<T>, indices: &IndexTensor) -> Result<Tensor<T>> {
    gather("take_along_last_axis", x, indices)
}

fn gather<T: Float>(op: &str, x: &Tensor<T>, indices: &IndexTensor) -> Result<Tensor<T>> {
    let (n, k) = gather_lengths(op, x, indices)?;
    let mut out = vec![T::zero(); indices.numel()];
    if k > 0 {
        let (xd, id) = (x.data(), indices.data());
        for_each_row(&mut out, k, indices.numel(), |r, row| {
            let source = &xd[r * n..(r + 1) * n];
            for (o, &i) in row.iter_mut().zip(&id[r * k..(r + 1) * k]) {
                *o = source[i];
            }
        });
    }
    Tensor::from_vec(out, indices.shape().clone())
}

/// The tape op behind [`Var::take_along_last_axis`], [`Var::sort`] and [`Var::topk`].
pub(crate) struct TakeAlongLastAxis {
    /// The name reported in errors: the public op that recorded this gather.
    pub(crate) name: &'static str,
    pub(crate) indices: IndexTensor,
}

impl<T: Float> Op<T> for TakeAlongLastAxis {
    fn name(&self) -> &str {
        self.name
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        gather(self.name, &inputs[0], &self.indices)
    }

    // The gradient scatters back: ∂L/∂x[..., i] = Σ_{j : indices[..., j] = i} g[..., j], which for
    // a permutation (sort) routes each output gradient to the element it came from.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let x = &args.inputs[0];
        let (n, k) = gather_lengths(self.name, x, &self.indices)?;
        let mut out = vec![T::zero(); x.numel()];
        if n > 0 {
            let (gd, id) = (args.grad_output.data(), self.indices.data());
            for_each_row(&mut out, n, x.numel(), |r, row| {
                for (&g, &i) in gd[r * k..(r + 1) * k].iter().zip(&id[r * k..(r + 1) * k]) {
                    row[i] += g;
                }
            });
        }
        Ok(vec![Some(Tensor::from_vec(out, x.shape().clone())?)])
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Gathers along the last axis, `y[..., j] = x[..., indices[..., j]]`, as
    /// [`take_along_last_axis`] does.
    ///
    /// Derivative: `∂L/∂x[..., i] = Σ_{j : indices[..., j] = i} ∂L/∂y[..., j]`: each gradient
    /// goes back to the position it was read from, summed over repeats, and positions that
    /// were never read get 0.
    ///
    /// ```
    /// use autograd::{IndexTensor, Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3])?);
    /// let y = x.take_along_last_axis(&IndexTensor::from_vec(vec![2, 2, 0], [3])?)?;
    /// assert_eq!(y.value().to_vec(), vec![3.0, 3.0, 1.0]);
    /// let grads = tape.backward(y.sum()?)?;
    /// assert_eq!(grads.get(x)?.to_vec(), vec![1.0, 0.0, 2.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`take_along_last_axis`].
    pub fn take_along_last_axis(self, indices: &IndexTensor) -> Result<Var<'t, T>> {
        let op = TakeAlongLastAxis {
            name: "take_along_last_axis",
            indices: indices.clone(),
        };
        self.tape.apply(op, &[self])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;

    #[test]
    fn index_tensor_rejects_wrong_length() {
        let err = IndexTensor::from_vec(vec![0; 5], [2, 3]).unwrap_err();
        assert!(err.to_string().contains("5 elements"), "{err}");
    }

    #[test]
    fn index_tensor_get_checks_bounds() {
        let t = IndexTensor::from_vec(vec![4, 5, 6, 7, 8, 9], [2, 3]).unwrap();
        assert_eq!(t.get(&[1, 0]), Some(7));
        assert_eq!(t.get(&[2, 0]), None);
        assert_eq!(t.get(&[0]), None);
    }

    #[test]
    fn gather_rejects_out_of_range_index() {
        let x = Tensor::<f64>::zeros([2, 3]);
        let indices = IndexTensor::from_vec(vec![0, 3], [2, 1]).unwrap();
        let err = take_along_last_axis(&x, &indices).unwrap_err().to_string();
        assert!(err.contains("take_along_last_axis"), "{err}");
        assert!(err.contains("index = 3"), "{err}");
        assert!(err.contains("length 3"), "{err}");
    }

    #[test]
    fn gather_rejects_mismatched_leading_axes() {
        let x = Tensor::<f64>::zeros([2, 3]);
        let indices = IndexTensor::from_vec(vec![0, 0, 0], [3, 1]).unwrap();
        let err = take_along_last_axis(&x, &indices).unwrap_err().to_string();
        assert!(err.contains("[3, 1]"), "{err}");
        let scalar = Tensor::<f64>::scalar(1.0);
        let none = IndexTensor::from_vec(vec![0], []).unwrap();
        assert!(take_along_last_axis(&scalar, &none).is_err());
    }

    #[test]
    fn gather_backward_sums_repeated_indices() {
        let tape = Tape::<f64>::new();
        let x = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2]).unwrap());
        let indices = IndexTensor::from_vec(vec![1, 1, 1, 0, 0, 0], [2, 3]).unwrap();
        let y = x.take_along_last_axis(&indices).unwrap();
        assert_eq!(y.value().to_vec(), vec![2.0, 2.0, 2.0, 3.0, 3.0, 3.0]);
        let weights =
            tape.constant(Tensor::from_vec(vec![1.0, 10.0, 100.0, 1.0, 2.0, 3.0], [2, 3]).unwrap());
        let grads = tape
            .backward(y.mul(weights).unwrap().sum().unwrap())
            .unwrap();
        assert_eq!(grads.get(x).unwrap().to_vec(), vec![0.0, 111.0, 6.0, 0.0]);
    }
}
