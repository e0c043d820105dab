//! Shapes, strides and NumPy broadcasting.

use std::fmt;

use smallvec::SmallVec;

use crate::error::{Error, Result};

/// The extent of each axis of a tensor, outermost first.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub SmallVec<[usize; 6]>);

impl Shape {
    /// Builds a shape from axis lengths.
    pub fn new(dims: &[usize]) -> Self {
        Shape(SmallVec::from_slice(dims))
    }

    /// The shape of a scalar: no axes, one element.
    pub fn scalar() -> Self {
        Shape(SmallVec::new())
    }

    /// The axis lengths.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.0.len()
    }

    /// The number of elements: the product of the axis lengths (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> SmallVec<[usize; 6]> {
        let mut strides: SmallVec<[usize; 6]> = SmallVec::from_elem(1, self.ndim());
        for axis in (0..self.ndim().saturating_sub(1)).rev() {
            strides[axis] = strides[axis + 1] * self.0[axis + 1];
        }
        strides
    }

    /// Resolves a possibly negative axis (`-1` is the last) against this shape.
    pub fn axis(&self, op: &str, axis: isize) -> Result<usize> {
        let ndim = self.ndim() as isize;
        let resolved = if axis < 0 { axis + ndim } else { axis };
        if resolved < 0 || resolved >= ndim {
            return Err(Error::invalid(
                op,
                "axis",
                axis,
                format!("a tensor of shape {self} has axes -{ndim}..{ndim}"),
            ));
        }
        Ok(resolved as usize)
    }

    /// Splits the shape around `axis` into (outer, length, inner) element counts.
    pub fn split_at_axis(&self, axis: usize) -> (usize, usize, usize) {
        let outer = self.0[..axis].iter().product();
        let inner = self.0[axis + 1..].iter().product();
        (outer, self.0[axis], inner)
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape::new(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape::new(&dims)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape::new(&dims)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Computes the NumPy broadcast of two shapes: axes are aligned from the right, and an axis of
/// length 1 stretches to match the other.
pub fn broadcast_shapes(op: &str, a: &Shape, b: &Shape) -> Result<Shape> {
    let ndim = a.ndim().max(b.ndim());
    let mut dims: SmallVec<[usize; 6]> = SmallVec::with_capacity(ndim);
    for i in 0..ndim {
        let da = dim_from_right(a, ndim, i);
        let db = dim_from_right(b, ndim, i);
        let d = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(
                op,
                format!("shapes {a} and {b} cannot be broadcast together (axis {i} has lengths {da} and {db})"),
            ));
        };
        dims.push(d);
    }
    Ok(Shape(dims))
}

fn dim_from_right(shape: &Shape, ndim: usize, i: usize) -> usize {
    let offset = ndim - shape.ndim();
    if i < offset {
        1
    } else {
        shape.0[i - offset]
    }
}

/// Strides that read a tensor of shape `from` as if it had the broadcast shape `to`: broadcast
/// axes get stride 0.
///
/// # Panics
/// If `from` does not broadcast to `to`; callers check with [`broadcast_shapes`] first.
pub fn broadcast_strides(from: &Shape, to: &Shape) -> SmallVec<[usize; 6]> {
    let own = from.strides();
    let offset = to.ndim() - from.ndim();
    let mut strides: SmallVec<[usize; 6]> = SmallVec::from_elem(0, to.ndim());
    for i in 0..from.ndim() {
        let d = from.0[i];
        assert!(
            d == to.0[i + offset] || d == 1,
            "shape {from} does not broadcast to {to}"
        );
        strides[i + offset] = if d == 1 { 0 } else { own[i] };
    }
    strides
}
