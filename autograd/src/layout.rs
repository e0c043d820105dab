//! Ops that change how elements are arranged without changing their values: reshapes,
//! axis permutations and broadcasting.

use smallvec::SmallVec;

use crate::elementwise::broadcast_tensor;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::for_each_row;
use crate::shape::Shape;
use crate::tape::Var;
use crate::tensor::{checked_len, Tensor};

/// Resolves a possibly negative position at which a new axis is inserted into a tensor of
/// `ndim` axes: `0..=ndim`, with `-1` meaning after the last axis.
pub(crate) fn insertion_axis(op: &str, ndim: usize, axis: isize) -> Result<usize> {
    let slots = ndim as isize + 1;
    let resolved = if axis < 0 { axis + slots } else { axis };
    if resolved < 0 || resolved >= slots {
        return Err(Error::invalid(
            op,
            "axis",
            axis,
            format!("a new axis of a tensor with {ndim} axes goes at -{slots}..{slots}"),
        ));
    }
    Ok(resolved as usize)
}

/// A view of the elements under a new shape with as many elements. `name` is the public method
/// that recorded it (`reshape`, `flatten_from`, `squeeze`, `unsqueeze`).
struct Reshape {
    name: &'static str,
    shape: Shape,
}

impl<T: Float> Op<T> for Reshape {
    fn name(&self) -> &str {
        self.name
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let numel = checked_len::<T>(self.name, &self.shape)?;
        if numel != x.numel() {
            return Err(Error::shape(
                self.name,
                format!(
                    "cannot reshape {} ({} elements) into {} ({} elements); the element counts must match",
                    x.shape(),
                    x.numel(),
                    self.shape,
                    numel
                ),
            ));
        }
        x.reshape(self.shape.clone())
    }

    // The Jacobian is the identity on the row-major elements: the gradient is reshaped back.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let g = args.grad_output.reshape(args.inputs[0].shape().clone())?;
        Ok(vec![Some(g)])
    }
}

/// Resolves a permutation of the axes of `shape`, rejecting wrong lengths and repeats.
fn resolve_permutation(op: &str, shape: &Shape, axes: &[isize]) -> Result<SmallVec<[usize; 6]>> {
    if axes.len() != shape.ndim() {
        return Err(Error::invalid(
            op,
            "axes",
            format!("{axes:?}"),
            format!(
                "a tensor of shape {shape} needs a permutation of all its {} axes",
                shape.ndim()
            ),
        ));
    }
    let mut perm: SmallVec<[usize; 6]> = SmallVec::new();
    for &axis in axes {
        let a = shape.axis(op, axis)?;
        if perm.contains(&a) {
            return Err(Error::invalid(
                op,
                "axes",
                format!("{axes:?}"),
                "each axis must appear exactly once",
            ));
        }
        perm.push(a);
    }
    Ok(perm)
}

/// Copies `x` into the layout whose axis `i` is the input's axis `perm[i]`.
fn permute_tensor<T: Float>(x: &Tensor<T>, perm: &[usize]) -> Result<Tensor<T>> {
    let in_strides = x.shape().strides();
    let dims: SmallVec<[usize; 6]> = perm.iter().map(|&p| x.dims()[p]).collect();
    let src_strides: SmallVec<[usize; 6]> = perm.iter().map(|&p| in_strides[p]).collect();
    let numel = x.numel();
    if dims.is_empty() || numel == 0 {
        return Tensor::from_vec(x.to_vec(), Shape(dims));
    }
    let last = dims.len() - 1;
    let (row_len, step) = (dims[last], src_strides[last]);
    let data = x.data();
    let mut out = vec![T::zero(); numel];
    for_each_row(&mut out, row_len, numel, |row, out_row| {
        let mut rest = row;
        let mut base = 0;
        for axis in (0..last).rev() {
            base += (rest % dims[axis]) * src_strides[axis];
            rest /= dims[axis];
        }
        for (j, o) in out_row.iter_mut().enumerate() {
            *o = data[base + j * step];
        }
    });
    Tensor::from_vec(out, Shape(dims))
}

/// An axis reordering in which output axis `i` is input axis `perm[i]`. `name` is `permute` or
/// `transpose`.
struct Permute {
    name: &'static str,
    axes: SmallVec<[isize; 6]>,
    perm: SmallVec<[usize; 6]>,
}

impl<T: Float> Op<T> for Permute {
    fn name(&self) -> &str {
        self.name
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        self.perm = resolve_permutation(self.name, inputs[0].shape(), &self.axes)?;
        permute_tensor(&inputs[0], &self.perm)
    }

    // A permutation is orthogonal: the gradient goes through the inverse permutation.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let mut inverse: SmallVec<[usize; 6]> = SmallVec::from_elem(0, self.perm.len());
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(vec![Some(permute_tensor(args.grad_output, &inverse)?)])
    }
}

/// A repetition of the input along broadcast axes (NumPy rules) up to a target shape.
struct BroadcastTo {
    shape: Shape,
}

impl<T: Float> Op<T> for BroadcastTo {
    fn name(&self) -> &str {
        "broadcast_to"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        broadcast_tensor("broadcast_to", &inputs[0], &self.shape)
    }

    // Each input element feeds every copy of it, so its gradient is the sum of the copies'
    // gradients. The tape performs that sum for any gradient of a shape the input broadcasts
    // to, so the output gradient is returned as it is.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        Ok(vec![Some(args.grad_output.clone())])
    }
}

impl<'t, T: Float> Var<'t, T> {
    fn reshape_as(self, name: &'static str, shape: Shape) -> Result<Var<'t, T>> {
        self.tape.apply(Reshape { name, shape }, &[self])
    }

    /// The same elements, in row-major order, under another shape with as many elements.
    /// The gradient is the output gradient reshaped back.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])?);
    /// let y = x.reshape([3, 2])?;
    /// assert_eq!(y.value().get(&[2, 0]), Some(5.0));
    /// let grads = tape.backward(y.sum()?)?;
    /// assert_eq!(grads.get(x)?.dims(), &[2, 3]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] if the element counts differ; [`Error::InvalidArgument`] if `shape` is
    /// too large to store (see [`Shape::check_size`]).
    pub fn reshape(self, shape: impl Into<Shape>) -> Result<Var<'t, T>> {
        self.reshape_as("reshape", shape.into())
    }

    /// Merges `axis` and every axis after it into one: `[2, 3, 4].flatten_from(1)` has shape
    /// `[2, 12]`. The gradient is reshaped back.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axis` is not an axis of the value.
    pub fn flatten_from(self, axis: isize) -> Result<Var<'t, T>> {
        let shape = self.shape();
        let a = shape.axis("flatten_from", axis)?;
        let mut dims = shape.dims()[..a].to_vec();
        dims.push(shape.dims()[a..].iter().product());
        self.reshape_as("flatten_from", Shape::new(&dims))
    }

    /// Reshapes `[N, d1, d2, …]` to `[N, d1·d2·…]`, as PyTorch's `flatten(1)`: the usual step
    /// between convolutional and linear layers. Same as `flatten_from(1)`.
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
    /// [`Error::InvalidArgument`] for a value with fewer than two axes.
    pub fn flatten(self) -> Result<Var<'t, T>> {
        self.flatten_from(1)
    }

    /// Inserts an axis of length 1 at position `axis` (`0..=ndim`; `-1` appends it). The
    /// gradient is reshaped back.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axis` is outside `-(ndim + 1)..=ndim`.
    pub fn unsqueeze(self, axis: isize) -> Result<Var<'t, T>> {
        let shape = self.shape();
        let a = insertion_axis("unsqueeze", shape.ndim(), axis)?;
        let mut dims = shape.dims().to_vec();
        dims.insert(a, 1);
        self.reshape_as("unsqueeze", Shape::new(&dims))
    }

    /// Removes the axis `axis`, which must have length 1. The gradient is reshaped back.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axis` is not an axis of the value, [`Error::Shape`] if
    /// its length is not 1.
    pub fn squeeze(self, axis: isize) -> Result<Var<'t, T>> {
        let shape = self.shape();
        let a = shape.axis("squeeze", axis)?;
        if shape.dims()[a] != 1 {
            return Err(Error::shape(
                "squeeze",
                format!(
                    "axis {axis} of shape {shape} has length {}, but only an axis of length 1 can be removed",
                    shape.dims()[a]
                ),
            ));
        }
        let mut dims = shape.dims().to_vec();
        dims.remove(a);
        self.reshape_as("squeeze", Shape::new(&dims))
    }

    /// Reorders the axes: axis `i` of the result is axis `axes[i]` of `self` (negative axes
    /// count from the end), as `torch.permute` does. The gradient goes through the inverse
    /// permutation.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f32>::new();
    /// let x = tape.constant(Tensor::from_vec((0..6).map(|v| v as f32).collect(), [1, 2, 3])?);
    /// let y = x.permute(&[2, 0, 1])?;
    /// assert_eq!(y.shape().dims(), &[3, 1, 2]);
    /// assert_eq!(y.value().to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `axes` names every axis exactly once.
    pub fn permute(self, axes: &[isize]) -> Result<Var<'t, T>> {
        let op = Permute {
            name: "permute",
            axes: SmallVec::from_slice(axes),
            perm: SmallVec::new(),
        };
        self.tape.apply(op, &[self])
    }

    /// Swaps axes `a` and `b` (negative axes count from the end); `x.transpose(-2, -1)` is the
    /// matrix transpose of each matrix in a batch. The gradient is transposed back.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])?);
    /// let y = x.transpose(0, 1)?;
    /// assert_eq!(y.shape().dims(), &[3, 2]);
    /// assert_eq!(y.value().to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `a` or `b` is not an axis of the value.
    pub fn transpose(self, a: isize, b: isize) -> Result<Var<'t, T>> {
        let shape = self.shape();
        let (ra, rb) = (shape.axis("transpose", a)?, shape.axis("transpose", b)?);
        let mut axes: SmallVec<[isize; 6]> = (0..shape.ndim() as isize).collect();
        axes.swap(ra, rb);
        let op = Permute {
            name: "transpose",
            axes,
            perm: SmallVec::new(),
        };
        self.tape.apply(op, &[self])
    }

    /// Repeats the value along its length-1 axes, and along new leading axes, to `shape`
    /// (NumPy broadcasting). The gradient of each input element is the sum of the gradients
    /// of its copies.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0], [2, 1])?);
    /// let y = x.broadcast_to([3, 2, 4])?;
    /// assert_eq!(y.value().get(&[2, 1, 3]), Some(2.0));
    /// let grads = tape.backward(y.sum()?)?;
    /// assert_eq!(grads.get(x)?.to_vec(), vec![12.0, 12.0]); // 3 · 4 copies each
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] if the value does not broadcast to `shape`; [`Error::InvalidArgument`]
    /// if `shape` is too large to store (see [`Shape::check_size`]).
    pub fn broadcast_to(self, shape: impl Into<Shape>) -> Result<Var<'t, T>> {
        let op = BroadcastTo {
            shape: shape.into(),
        };
        self.tape.apply(op, &[self])
    }
}
