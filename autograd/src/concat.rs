//! Ops along one axis that cut a tensor into ranges or join tensors end to end: `slice`,
//! `concat` and `stack`.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::layout::insertion_axis;
use crate::op::{BackwardArgs, Op};
use crate::parallel::for_each_row;
use crate::shape::Shape;
use crate::tape::Var;
use crate::tensor::{checked_len, Tensor};

/// Copies the elements of `x` whose index along `axis` lies in `start..end`.
fn narrow_tensor<T: Float>(
    x: &Tensor<T>,
    axis: usize,
    start: usize,
    end: usize,
) -> Result<Tensor<T>> {
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    let width = (end - start) * inner;
    let mut dims = x.dims().to_vec();
    dims[axis] = end - start;
    let data = x.data();
    let mut out = vec![T::zero(); outer * width];
    for_each_row(&mut out, width, outer * width, |o, row| {
        let from = o * len * inner + start * inner;
        row.copy_from_slice(&data[from..from + width]);
    });
    Tensor::from_vec(out, dims)
}

/// Writes `g` into zeros of `shape` at indices `start..` along `axis`, which inverts
/// [`narrow_tensor`].
fn pad_tensor<T: Float>(
    g: &Tensor<T>,
    shape: &Shape,
    axis: usize,
    start: usize,
) -> Result<Tensor<T>> {
    let (_, len, inner) = shape.split_at_axis(axis);
    let width = g.dims()[axis] * inner;
    let data = g.data();
    let mut out = vec![T::zero(); shape.numel()];
    for_each_row(&mut out, len * inner, shape.numel(), |o, row| {
        let from = o * width;
        row[start * inner..start * inner + width].copy_from_slice(&data[from..from + width]);
    });
    Tensor::from_vec(out, shape.clone())
}

/// A narrow to the indices `start..end` along one axis.
struct Slice {
    axis: isize,
    start: usize,
    end: usize,
    resolved_axis: usize,
}

impl<T: Float> Op<T> for Slice {
    fn name(&self) -> &str {
        "slice"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let axis = x.shape().axis("slice", self.axis)?;
        let len = x.dims()[axis];
        if self.start > self.end || self.end > len {
            return Err(Error::invalid(
                "slice",
                "range",
                format!("{}..{}", self.start, self.end),
                format!(
                    "axis {} of shape {} has length {len}; need start <= end <= {len}",
                    self.axis,
                    x.shape()
                ),
            ));
        }
        self.resolved_axis = axis;
        narrow_tensor(x, axis, self.start, self.end)
    }

    // The kept elements receive their output gradient; the others receive zero.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let grad = pad_tensor(
            args.grad_output,
            args.inputs[0].shape(),
            self.resolved_axis,
            self.start,
        )?;
        Ok(vec![Some(grad)])
    }
}

/// A join of the inputs end to end along `axis`. With `stacked`, every input first gets a new
/// axis of length 1 at `axis`, which makes it `stack`.
struct Concat {
    stacked: bool,
    axis: isize,
    resolved_axis: usize,
}

impl Concat {
    fn op_name(&self) -> &'static str {
        if self.stacked {
            "stack"
        } else {
            "concat"
        }
    }

    /// Checks the input shapes and returns the inputs as they are joined (with the stacking
    /// axis inserted) and the resolved axis.
    fn prepare<T: Float>(&self, inputs: &[Tensor<T>]) -> Result<(Vec<Tensor<T>>, usize)> {
        let name = self.op_name();
        let Some(first) = inputs.first() else {
            return Err(Error::invalid(
                name,
                "inputs",
                "[]",
                "pass at least one value to join",
            ));
        };
        if self.stacked {
            let axis = insertion_axis(name, first.ndim(), self.axis)?;
            let mut joined = Vec::with_capacity(inputs.len());
            for (k, x) in inputs.iter().enumerate() {
                if x.shape() != first.shape() {
                    return Err(Error::shape(
                        name,
                        format!(
                            "input {k} has shape {}, but input 0 has shape {}; stacked values must have equal shapes",
                            x.shape(),
                            first.shape()
                        ),
                    ));
                }
                let mut dims = x.dims().to_vec();
                dims.insert(axis, 1);
                joined.push(x.reshape(dims)?);
            }
            Ok((joined, axis))
        } else {
            let axis = first.shape().axis(name, self.axis)?;
            for (k, x) in inputs.iter().enumerate() {
                let same_rank = x.ndim() == first.ndim();
                let matches =
                    same_rank && (0..x.ndim()).all(|d| d == axis || x.dims()[d] == first.dims()[d]);
                if !matches {
                    return Err(Error::shape(
                        name,
                        format!(
                            "input {k} has shape {}, but input 0 has shape {}; concatenated values must have the same lengths on every axis except axis {axis}",
                            x.shape(),
                            first.shape()
                        ),
                    ));
                }
            }
            Ok((inputs.to_vec(), axis))
        }
    }
}

impl<T: Float> Op<T> for Concat {
    fn name(&self) -> &str {
        self.op_name()
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let (joined, axis) = self.prepare(inputs)?;
        self.resolved_axis = axis;
        let name = self.op_name();
        let (_, _, inner) = joined[0].shape().split_at_axis(axis);
        let total = joined
            .iter()
            .try_fold(0usize, |acc, x| acc.checked_add(x.dims()[axis]))
            .ok_or_else(|| {
                Error::shape(
                    name,
                    format!("the lengths of axis {axis} of the inputs add up to more than usize::MAX; join fewer or smaller values"),
                )
            })?;
        let mut dims = joined[0].dims().to_vec();
        dims[axis] = total;
        let numel = checked_len::<T>(name, &Shape::new(&dims))?;
        let mut out = vec![T::zero(); numel];
        for_each_row(&mut out, total * inner, numel, |o, row| {
            let mut at = 0;
            for x in &joined {
                let width = x.dims()[axis] * inner;
                row[at..at + width].copy_from_slice(&x.data()[o * width..(o + 1) * width]);
                at += width;
            }
        });
        Tensor::from_vec(out, dims)
    }

    // Each input's gradient is the range of the output gradient that the input filled.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let axis = self.resolved_axis;
        let mut start = 0;
        let mut grads = Vec::with_capacity(args.inputs.len());
        for (x, &needed) in args.inputs.iter().zip(args.needs_grad) {
            let len = if self.stacked { 1 } else { x.dims()[axis] };
            let grad = if needed {
                let g = narrow_tensor(args.grad_output, axis, start, start + len)?;
                Some(g.reshape(x.shape().clone())?)
            } else {
                None
            };
            grads.push(grad);
            start += len;
        }
        Ok(grads)
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Keeps the indices `start..end` along `axis` (negative axes count from the end), like
    /// `torch.narrow`. The gradient is the output gradient at the kept indices and zero
    /// elsewhere.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])?);
    /// let y = x.slice(1, 1, 3)?;
    /// assert_eq!(y.value().to_vec(), vec![2.0, 3.0, 5.0, 6.0]);
    /// let grads = tape.backward(y.sum()?)?;
    /// assert_eq!(grads.get(x)?.to_vec(), vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axis` is not an axis of the value or the range is not
    /// `start <= end <= length`.
    pub fn slice(self, axis: isize, start: usize, end: usize) -> Result<Var<'t, T>> {
        let op = Slice {
            axis,
            start,
            end,
            resolved_axis: 0,
        };
        self.tape.apply(op, &[self])
    }
}

fn join<'t, T: Float>(stacked: bool, values: &[Var<'t, T>], axis: isize) -> Result<Var<'t, T>> {
    let op = Concat {
        stacked,
        axis,
        resolved_axis: 0,
    };
    let Some(first) = values.first() else {
        return Err(Error::invalid(
            op.op_name(),
            "inputs",
            "[]",
            "pass at least one value to join",
        ));
    };
    first.tape.apply(op, values)
}

/// Joins `values` end to end along an existing `axis` (negative axes count from the end), like
/// `torch.cat`. Every other axis must have the same length in all values. The gradient of each
/// value is its range of the output gradient.
///
/// ```
/// use autograd::{concat, Tape, Tensor};
///
/// let tape = Tape::<f64>::new();
/// let a = tape.param(Tensor::from_vec(vec![1.0, 2.0], [2, 1])?);
/// let b = tape.param(Tensor::from_vec(vec![3.0, 4.0, 5.0, 6.0], [2, 2])?);
/// let y = concat(&[a, b], 1)?;
/// assert_eq!(y.value().to_vec(), vec![1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
/// let weights = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])?);
/// let grads = tape.backward(y.mul(weights)?.sum()?)?;
/// assert_eq!(grads.get(a)?.to_vec(), vec![1.0, 4.0]);
/// assert_eq!(grads.get(b)?.to_vec(), vec![2.0, 3.0, 5.0, 6.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `values` is empty or `axis` is not an axis of the first value,
/// [`Error::Shape`] if the ranks or the other axes' lengths differ, and
/// [`Error::TapeMismatch`] if the values belong to different tapes.
pub fn concat<'t, T: Float>(values: &[Var<'t, T>], axis: isize) -> Result<Var<'t, T>> {
    join(false, values, axis)
}

/// Joins values of equal shape along a new axis inserted at `axis` (`0..=ndim`; `-1` appends
/// it), like `torch.stack`. The gradient of value `k` is the output gradient at index `k` of
/// the new axis.
///
/// ```
/// use autograd::{stack, Tape, Tensor};
///
/// let tape = Tape::<f32>::new();
/// let a = tape.constant(Tensor::from_vec(vec![1.0, 2.0], [2])?);
/// let b = tape.constant(Tensor::from_vec(vec![3.0, 4.0], [2])?);
/// let rows = stack(&[a, b], 0)?;
/// let columns = stack(&[a, b], -1)?;
/// assert_eq!(rows.value().to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(columns.value().to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `values` is empty or `axis` is outside
/// `-(ndim + 1)..=ndim`, [`Error::Shape`] if the shapes differ, and [`Error::TapeMismatch`]
/// if the values belong to different tapes.
pub fn stack<'t, T: Float>(values: &[Var<'t, T>], axis: isize) -> Result<Var<'t, T>> {
    join(true, values, axis)
}
