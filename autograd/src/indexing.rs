//! Ops that read elements at integer positions: `index_select` and `gather`. Their gradients
//! scatter-add the output gradient back, so an index used several times accumulates.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::for_each_row;
use crate::shape::Shape;
use crate::tape::Var;
use crate::tensor::{checked_len, Tensor};

/// A dense, row-major array of indices: the index argument of [`Var::gather`] and the result of
/// [`argsort`](crate::argsort).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexTensor {
    shape: Shape,
    data: Vec<usize>,
}

impl IndexTensor {
    /// Builds an index array from row-major elements and a shape.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no array of the shape can exist (see
    /// [`Shape::check_size`]); [`Error::Shape`] if the number of elements differs from the
    /// product of the axis lengths.
    pub fn from_vec(data: Vec<usize>, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        let numel = checked_len::<usize>("IndexTensor::from_vec", &shape)?;
        if data.len() != numel {
            return Err(Error::shape(
                "IndexTensor::from_vec",
                format!(
                    "{} indices cannot fill shape {shape}, which holds {numel}",
                    data.len(),
                ),
            ));
        }
        Ok(IndexTensor { shape, data })
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The indices in row-major order.
    pub fn data(&self) -> &[usize] {
        &self.data
    }

    /// The axis lengths, a shortcut for `shape().dims()`.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The number of indices.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Copies the indices into a new `Vec` in row-major order.
    pub fn to_vec(&self) -> Vec<usize> {
        self.data.clone()
    }

    /// Returns the index at a multi-index position, or `None` if the position has the wrong
    /// number of axes or is out of bounds.
    pub fn get(&self, position: &[usize]) -> Option<usize> {
        if position.len() != self.shape.ndim() {
            return None;
        }
        let mut offset = 0;
        for (&i, &d) in position.iter().zip(self.dims()) {
            if i >= d {
                return None;
            }
            offset = offset * d + i;
        }
        Some(self.data[offset])
    }
}

/// A selection of whole slices along one axis, in which output index `j` along `axis` is input
/// index `indices[j]`.
struct IndexSelect {
    axis: isize,
    indices: Vec<usize>,
    resolved_axis: usize,
}

impl<T: Float> Op<T> for IndexSelect {
    fn name(&self) -> &str {
        "index_select"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let axis = x.shape().axis("index_select", self.axis)?;
        let (_, len, inner) = x.shape().split_at_axis(axis);
        if let Some((j, &i)) = self.indices.iter().enumerate().find(|(_, &i)| i >= len) {
            return Err(Error::invalid(
                "index_select",
                "index",
                i,
                format!(
                    "indices[{j}] is out of range for axis {} of shape {}, which has length {len}",
                    self.axis,
                    x.shape()
                ),
            ));
        }
        let count = self.indices.len();
        let mut dims = x.dims().to_vec();
        dims[axis] = count;
        let numel = checked_len::<T>("index_select", &Shape::new(&dims))?;
        self.resolved_axis = axis;
        let data = x.data();
        let mut out = vec![T::zero(); numel];
        let work = out.len();
        for_each_row(&mut out, inner, work, |row, out_row| {
            let (o, j) = (row / count, row % count);
            let from = (o * len + self.indices[j]) * inner;
            out_row.copy_from_slice(&data[from..from + inner]);
        });
        Tensor::from_vec(out, dims)
    }

    // ∂L/∂x[.., i, ..] = Σ_{j : indices[j] = i} ∂L/∂y[.., j, ..]. Each block of the gradient
    // (one outer index) is filled by one closure in the order of `indices`, so the sums do not
    // depend on the thread count.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let x = &args.inputs[0];
        let (_, len, inner) = x.shape().split_at_axis(self.resolved_axis);
        let count = self.indices.len();
        let g = args.grad_output.data();
        let mut grad = vec![T::zero(); x.numel()];
        let work = args.grad_output.numel();
        for_each_row(&mut grad, len * inner, work, |o, block| {
            for (j, &i) in self.indices.iter().enumerate() {
                let from = (o * count + j) * inner;
                let source = &g[from..from + inner];
                for (acc, &v) in block[i * inner..(i + 1) * inner].iter_mut().zip(source) {
                    *acc += v;
                }
            }
        });
        Ok(vec![Some(Tensor::from_vec(grad, x.shape().clone())?)])
    }
}

/// A read of `x` at positions given by an index array of the same rank, as `torch.gather` does.
struct Gather {
    axis: isize,
    index: IndexTensor,
    resolved_axis: usize,
}

/// The offsets that locate an element of the index array inside `x`, split around `axis`.
struct GatherLayout {
    /// Length of the index array along `axis`.
    count: usize,
    /// Elements of the index array after `axis`.
    inner: usize,
    /// For each outer position of the index array, the offset of the same outer position in
    /// `x`.
    outer_offsets: Vec<usize>,
    /// For each inner position of the index array, the offset of the same inner position in
    /// `x`.
    inner_offsets: Vec<usize>,
    /// Stride of `axis` in `x`.
    axis_stride: usize,
}

/// Lists the offsets, in a buffer with strides `full_strides`, of every position of a box with
/// axis lengths `part` anchored at the origin, in the box's row-major order.
fn box_offsets(part: &[usize], full_strides: &[usize]) -> Vec<usize> {
    let mut offsets = vec![0usize];
    for (&len, &stride) in part.iter().zip(full_strides) {
        offsets = offsets
            .iter()
            .flat_map(|&base| (0..len).map(move |i| base + i * stride))
            .collect();
    }
    offsets
}

impl Gather {
    fn layout<T: Float>(&mut self, x: &Tensor<T>) -> Result<GatherLayout> {
        let index = &self.index;
        let axis = x.shape().axis("gather", self.axis)?;
        let fits = index.shape.ndim() == x.ndim()
            && (0..x.ndim()).all(|d| d == axis || index.shape.dims()[d] <= x.dims()[d]);
        if !fits {
            return Err(Error::shape(
                "gather",
                format!(
                    "an index of shape {} cannot gather from shape {} along axis {}: it needs the same rank and lengths no greater than the input's on every other axis",
                    index.shape,
                    x.shape(),
                    self.axis
                ),
            ));
        }
        let len = x.dims()[axis];
        if let Some((e, &i)) = index.data.iter().enumerate().find(|(_, &i)| i >= len) {
            return Err(Error::invalid(
                "gather",
                "index",
                i,
                format!(
                    "element {e} of the index is out of range for axis {} of shape {}, which has length {len}",
                    self.axis,
                    x.shape()
                ),
            ));
        }
        self.resolved_axis = axis;
        let strides = x.shape().strides();
        let dims = index.shape.dims();
        Ok(GatherLayout {
            count: dims[axis],
            inner: dims[axis + 1..].iter().product(),
            outer_offsets: box_offsets(&dims[..axis], &strides[..axis]),
            inner_offsets: box_offsets(&dims[axis + 1..], &strides[axis + 1..]),
            axis_stride: strides[axis],
        })
    }
}

impl<T: Float> Op<T> for Gather {
    fn name(&self) -> &str {
        "gather"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let l = self.layout(x)?;
        let data = x.data();
        let index = self.index.data();
        let mut out = vec![T::zero(); index.len()];
        let work = out.len();
        // Row r contains the index elements at outer position r / count and axis position
        // r % count.
        for_each_row(&mut out, l.inner, work, |r, out_row| {
            let base = l.outer_offsets[r / l.count];
            let picks = &index[r * l.inner..(r + 1) * l.inner];
            for ((o, &i), &offset) in out_row.iter_mut().zip(picks).zip(&l.inner_offsets) {
                *o = data[base + i * l.axis_stride + offset];
            }
        });
        Tensor::from_vec(out, self.index.shape.clone())
    }

    // ∂L/∂x[p] = Σ over output positions e that read p of ∂L/∂y[e]. Output positions with
    // the same outer coordinates (before `axis`) write only to that outer block of x, so each
    // block is filled by one closure in a fixed order and the sums do not depend on the thread
    // count.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let x = &args.inputs[0];
        let axis = self.resolved_axis;
        let index_dims = self.index.shape.dims();
        let (_, len, x_inner) = x.shape().split_at_axis(axis);
        let count = index_dims[axis];
        let inner = index_dims[axis + 1..].iter().product::<usize>();
        let inner_offsets = box_offsets(&index_dims[axis + 1..], &x.shape().strides()[axis + 1..]);
        let x_outer_dims = &x.dims()[..axis];
        let index_outer_dims = &index_dims[..axis];
        let g = args.grad_output.data();
        let index = self.index.data();
        let mut grad = vec![T::zero(); x.numel()];
        let work = index.len();
        for_each_row(&mut grad, len * x_inner, work, |o, block| {
            // Find the index array's outer position with the same coordinates as block o, if
            // the index array reaches that far.
            let mut rest = o;
            let mut index_outer = 0;
            let mut scale = 1;
            for d in (0..x_outer_dims.len()).rev() {
                let c = rest % x_outer_dims[d];
                rest /= x_outer_dims[d];
                if c >= index_outer_dims[d] {
                    return;
                }
                index_outer += c * scale;
                scale *= index_outer_dims[d];
            }
            let start = index_outer * count * inner;
            for j in 0..count {
                let from = start + j * inner;
                let picks = &index[from..from + inner];
                let grads = &g[from..from + inner];
                for ((&i, &v), &offset) in picks.iter().zip(grads).zip(&inner_offsets) {
                    block[i * x_inner + offset] += v;
                }
            }
        });
        Ok(vec![Some(Tensor::from_vec(grad, x.shape().clone())?)])
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Picks slices along `axis` (negative axes count from the end): index `j` of the output
    /// along `axis` is index `indices[j]` of `self`, like `torch.index_select`. Indices may
    /// repeat and come in any order, and an empty list gives an axis of length 0.
    ///
    /// Gradient: `∂L/∂x[.., i, ..] = Σ_{j : indices[j] = i} ∂L/∂y[.., j, ..]`, so a repeated
    /// index accumulates the gradients of all its copies.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2])?);
    /// let y = x.index_select(0, &[2, 0, 2])?;
    /// assert_eq!(y.value().to_vec(), vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
    /// let grads = tape.backward(y.sum()?)?;
    /// assert_eq!(grads.get(x)?.to_vec(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axis` is not an axis of the value or an index is not
    /// below the axis length.
    pub fn index_select(self, axis: isize, indices: &[usize]) -> Result<Var<'t, T>> {
        let op = IndexSelect {
            axis,
            indices: indices.to_vec(),
            resolved_axis: 0,
        };
        self.tape.apply(op, &[self])
    }

    /// Reads the value at positions given by `index` along `axis`, like `torch.gather`: for a
    /// 3-D value and `axis = 1`, `y[i][j][k] = x[i][index[i][j][k]][k]`. The output has the
    /// shape of `index`, which must have the value's rank and no greater length on any other
    /// axis.
    ///
    /// Gradient: a scatter-add, `∂L/∂x[i][m][k] = Σ_{j : index[i][j][k] = m} ∂L/∂y[i][j][k]`.
    ///
    /// ```
    /// use autograd::{IndexTensor, Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2])?);
    /// let index = IndexTensor::from_vec(vec![0, 0, 1, 0], [2, 2])?;
    /// let y = x.gather(1, &index)?;
    /// assert_eq!(y.value().to_vec(), vec![1.0, 1.0, 4.0, 3.0]);
    /// let grads = tape.backward(y.sum()?)?;
    /// assert_eq!(grads.get(x)?.to_vec(), vec![2.0, 0.0, 1.0, 1.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axis` is not an axis of the value or an index is not
    /// below the axis length, [`Error::Shape`] if `index` has another rank or a greater length
    /// on another axis.
    pub fn gather(self, axis: isize, index: &IndexTensor) -> Result<Var<'t, T>> {
        let op = Gather {
            axis,
            index: index.clone(),
            resolved_axis: 0,
        };
        self.tape.apply(op, &[self])
    }
}
