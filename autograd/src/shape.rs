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
    ///
    /// Saturates at `usize::MAX` when the product overflows; no tensor has such a shape, since
    /// every constructor checks it with [`Shape::check_size`].
    pub fn numel(&self) -> usize {
        self.checked_numel().unwrap_or(usize::MAX)
    }

    /// Returns the number of elements, or `None` if the product of the non-zero axis lengths
    /// overflows `usize`.
    ///
    /// Zero axes are left out of the overflow test so that every stride, and every product of
    /// axis lengths taken by a kernel, fits whenever this returns `Some`: `[0, 2⁶³, 2⁶³]` is
    /// rejected even though it has no elements.
    ///
    /// ```
    /// use autograd::Shape;
    ///
    /// assert_eq!(Shape::new(&[2, 3]).checked_numel(), Some(6));
    /// assert_eq!(Shape::new(&[4, 0]).checked_numel(), Some(0));
    /// assert_eq!(Shape::new(&[1 << 63, 2]).checked_numel(), None);
    /// ```
    pub fn checked_numel(&self) -> Option<usize> {
        let nonzero = self
            .0
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        Some(if self.0.contains(&0) { 0 } else { nonzero })
    }

    /// Checks that a tensor of this shape with elements of `elem_bytes` bytes can exist, and
    /// returns its element count.
    ///
    /// With `p` the product of the non-zero axis lengths, the shape is accepted when
    /// `p · elem_bytes ≤ isize::MAX`, the largest allocation Rust allows. Bounding `p` rather
    /// than the element count keeps every shape derived by shortening axes (a slice, a
    /// reduction) within the bound too.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `op` and the shape if the bound fails.
    ///
    /// ```
    /// use autograd::Shape;
    ///
    /// assert_eq!(Shape::new(&[2, 3]).check_size("demo", 8).unwrap(), 6);
    /// let err = Shape::new(&[1 << 62, 2]).check_size("demo", 8).unwrap_err();
    /// assert!(err.to_string().starts_with("demo: invalid shape = [4611686018427387904, 2]"));
    /// ```
    pub fn check_size(&self, op: &str, elem_bytes: usize) -> Result<usize> {
        let fits = self
            .0
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(elem_bytes.max(1), |acc, &d| acc.checked_mul(d))
            .is_some_and(|bytes| bytes <= isize::MAX as usize);
        match self.checked_numel() {
            Some(numel) if fits => Ok(numel),
            _ => Err(Error::invalid(
                op,
                "shape",
                self,
                format!(
                    "the product of the axis lengths times {elem_bytes} bytes per element \
                     exceeds isize::MAX ({} bytes), so no such tensor can be stored; \
                     use smaller axis lengths",
                    isize::MAX
                ),
            )),
        }
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
///
/// # Errors
/// [`Error::Shape`] naming `op` if an axis has two lengths other than 1, or if the element count
/// of the result overflows `usize` (see [`Shape::checked_numel`]).
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
    let shape = Shape(dims);
    if shape.checked_numel().is_none() {
        return Err(Error::shape(
            op,
            format!("broadcasting {a} and {b} gives shape {shape}, whose element count overflows usize; use smaller axis lengths"),
        ));
    }
    Ok(shape)
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
