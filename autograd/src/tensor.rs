//! The n-dimensional array type.

use std::fmt;
use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::shape::Shape;

/// A dense, row-major, n-dimensional array of `f32` or `f64`.
///
/// The elements sit behind an [`Arc`], so cloning a tensor is cheap and a tape can keep the
/// values it recorded without copying them; [`Tensor::data_mut`] copies only when the buffer is
/// shared.
///
/// ```
/// use autograd::Tensor;
///
/// let t = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap();
/// assert_eq!(t.shape().dims(), &[2, 3]);
/// assert_eq!(t.get(&[1, 2]), Some(6.0));
/// assert_eq!(t.to_string(), "tensor([[1.0000, 2.0000, 3.0000],\n        [4.0000, 5.0000, 6.0000]], shape=[2, 3])");
/// ```
#[derive(Clone)]
pub struct Tensor<T> {
    shape: Shape,
    data: Arc<Vec<T>>,
}

impl<T: Float> Tensor<T> {
    /// Builds a tensor from row-major elements and a shape.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no tensor of the shape can exist (see
    /// [`Shape::check_size`]); [`Error::Shape`] if the number of elements differs from the
    /// product of the axis lengths.
    pub fn from_vec(data: Vec<T>, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        let numel = checked_len::<T>("Tensor::from_vec", &shape)?;
        if data.len() != numel {
            return Err(Error::shape(
                "Tensor::from_vec",
                format!(
                    "{} elements cannot fill shape {shape}, which holds {numel}",
                    data.len(),
                ),
            ));
        }
        Ok(Tensor {
            shape,
            data: Arc::new(data),
        })
    }

    /// Builds a tensor whose every element is `value`, or reports why it cannot.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `Tensor::full` if no tensor of the shape can exist
    /// (see [`Shape::check_size`]) or if the allocator cannot provide the memory.
    ///
    /// ```
    /// use autograd::Tensor;
    ///
    /// assert_eq!(Tensor::try_full([2], 1.5f32)?.to_vec(), vec![1.5, 1.5]);
    /// assert!(Tensor::<f64>::try_full([1 << 62, 4], 0.0).is_err());
    /// # Ok::<(), autograd::Error>(())
    /// ```
    pub fn try_full(shape: impl Into<Shape>, value: T) -> Result<Self> {
        let shape = shape.into();
        let (mut data, numel) = allocate::<T>("Tensor::full", &shape)?;
        data.resize(numel, value);
        Ok(Tensor {
            shape,
            data: Arc::new(data),
        })
    }

    /// Builds a tensor of zeros, or reports why it cannot; see [`Tensor::try_full`].
    ///
    /// # Errors
    /// As [`Tensor::try_full`].
    pub fn try_zeros(shape: impl Into<Shape>) -> Result<Self> {
        Self::try_full(shape, T::zero())
    }

    /// Builds a tensor of ones, or reports why it cannot; see [`Tensor::try_full`].
    ///
    /// # Errors
    /// As [`Tensor::try_full`].
    pub fn try_ones(shape: impl Into<Shape>) -> Result<Self> {
        Self::try_full(shape, T::one())
    }

    /// Builds a tensor whose every element is `value`.
    ///
    /// # Panics
    /// With the message of [`Tensor::try_full`]'s error if no tensor of the shape can exist or
    /// the memory cannot be allocated. Use [`Tensor::try_full`] for shapes taken from user input.
    pub fn full(shape: impl Into<Shape>, value: T) -> Self {
        Self::try_full(shape, value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds a tensor of zeros.
    ///
    /// # Panics
    /// As [`Tensor::full`]; [`Tensor::try_zeros`] returns the error instead.
    pub fn zeros(shape: impl Into<Shape>) -> Self {
        Self::full(shape, T::zero())
    }

    /// Builds a tensor of ones.
    ///
    /// # Panics
    /// As [`Tensor::full`]; [`Tensor::try_ones`] returns the error instead.
    pub fn ones(shape: impl Into<Shape>) -> Self {
        Self::full(shape, T::one())
    }

    /// Builds a scalar (a tensor of shape `[]`).
    pub fn scalar(value: T) -> Self {
        Tensor {
            shape: Shape::scalar(),
            data: Arc::new(vec![value]),
        }
    }

    /// Builds a tensor of independent draws from the uniform distribution on `[low, high)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `low < high` and both are finite, if no tensor of the
    /// shape can exist, or if the allocator cannot provide the memory.
    pub fn uniform(shape: impl Into<Shape>, low: T, high: T, rng: &mut impl Rng) -> Result<Self> {
        let (lo, hi) = (low.as_f64(), high.as_f64());
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::invalid(
                "Tensor::uniform",
                "range",
                format!("[{lo}, {hi})"),
                "low and high must be finite with low < high",
            ));
        }
        let shape = shape.into();
        let (mut data, n) = allocate::<T>("Tensor::uniform", &shape)?;
        let dist = Uniform::new(lo, hi);
        data.extend((0..n).map(|_| T::from_f64(dist.sample(rng))));
        Self::from_vec(data, shape)
    }

    /// Builds a tensor of independent draws from the normal distribution with the given mean and
    /// standard deviation.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless the mean is finite and the standard deviation is finite
    /// and non-negative, if no tensor of the shape can exist, or if the allocator cannot provide
    /// the memory.
    pub fn normal(shape: impl Into<Shape>, mean: T, std: T, rng: &mut impl Rng) -> Result<Self> {
        let (mu, sigma) = (mean.as_f64(), std.as_f64());
        let dist =
            match Normal::new(mu, sigma) {
                Ok(dist) if mu.is_finite() && sigma.is_finite() && sigma >= 0.0 => dist,
                _ => return Err(Error::invalid(
                    "Tensor::normal",
                    "(mean, std)",
                    format!("({mu}, {sigma})"),
                    "the mean must be finite and the standard deviation finite and non-negative",
                )),
            };
        let shape = shape.into();
        let (mut data, n) = allocate::<T>("Tensor::normal", &shape)?;
        data.extend((0..n).map(|_| T::from_f64(dist.sample(rng))));
        Self::from_vec(data, shape)
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The axis lengths, a shortcut for `shape().dims()`.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.ndim()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, for writing; copies them first if another tensor shares
    /// the buffer.
    pub fn data_mut(&mut self) -> &mut [T] {
        Arc::make_mut(&mut self.data).as_mut_slice()
    }

    /// Consumes the tensor and returns its elements, copying only if the buffer is shared.
    pub fn into_vec(self) -> Vec<T> {
        Arc::try_unwrap(self.data).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Copies the elements into a new `Vec` in row-major order.
    pub fn to_vec(&self) -> Vec<T> {
        self.data.to_vec()
    }

    /// Returns the element at a multi-index, or `None` if the index has the wrong number of axes
    /// or is out of bounds.
    pub fn get(&self, index: &[usize]) -> Option<T> {
        self.offset(index).and_then(|i| self.data.get(i).copied())
    }

    /// Returns the only element of a one-element tensor.
    ///
    /// # Errors
    /// [`Error::Shape`] if the tensor has more or fewer than one element.
    pub fn item(&self) -> Result<T> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "Tensor::item",
                format!("expected one element, got shape {}", self.shape),
            ));
        }
        Ok(self.data[0])
    }

    /// Returns the same elements under another shape with as many elements.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no tensor of the shape can exist (see
    /// [`Shape::check_size`]); [`Error::Shape`] if the element counts differ.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        if checked_len::<T>("reshape", &shape)? != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "cannot reshape {} into {shape}: the element counts differ",
                    self.shape
                ),
            ));
        }
        Ok(Tensor {
            shape,
            data: Arc::clone(&self.data),
        })
    }

    /// Applies `f` to every element.
    pub fn map(&self, f: impl Fn(T) -> T) -> Self {
        Tensor {
            shape: self.shape.clone(),
            data: Arc::new(self.data.iter().map(|&x| f(x)).collect()),
        }
    }

    /// Converts every element to another float type.
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: Arc::new(self.data.iter().map(|&x| U::from_f64(x.as_f64())).collect()),
        }
    }

    /// Returns the index of the first element that is NaN or infinite, if any.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.data.iter().position(|x| !x.is_finite())
    }

    /// Returns whether two tensors have the same shape and bit-identical elements.
    pub fn bit_eq(&self, other: &Self) -> bool {
        self.shape == other.shape
            && self
                .data
                .iter()
                .zip(other.data.iter())
                .all(|(a, b)| a.as_f64().to_bits() == b.as_f64().to_bits())
    }

    fn offset(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.ndim() {
            return None;
        }
        let mut offset = 0usize;
        for (&i, &d) in index.iter().zip(self.dims()) {
            if i >= d {
                return None;
            }
            offset = offset.checked_mul(d)?.checked_add(i)?;
        }
        Some(offset)
    }
}

/// Checks that a tensor of `shape` with elements of type `T` can exist, and returns its element
/// count; see [`Shape::check_size`].
pub(crate) fn checked_len<T>(op: &str, shape: &Shape) -> Result<usize> {
    shape.check_size(op, std::mem::size_of::<T>())
}

/// Returns an empty vector with room for the elements of `shape`, and their count, or an error
/// naming `op`, the shape and the bytes requested if the shape is too large or the allocator
/// refuses.
pub(crate) fn allocate<T>(op: &str, shape: &Shape) -> Result<(Vec<T>, usize)> {
    let numel = checked_len::<T>(op, shape)?;
    let mut data = Vec::new();
    data.try_reserve_exact(numel).map_err(|e| {
        Error::invalid(
            op,
            "shape",
            shape,
            format!(
                "allocating {} bytes for {numel} elements failed ({e}); use smaller axis lengths",
                numel * std::mem::size_of::<T>()
            ),
        )
    })?;
    Ok((data, numel))
}

impl<T: Float> PartialEq for Tensor<T> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data == other.data
    }
}

const SUMMARY_THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;

impl<T: Float> fmt::Display for Tensor<T> {
    /// Prints like PyTorch: `tensor([[1.0000, 2.0000], ...], shape=[2, 2])`, with four decimals,
    /// and eliding the middle of long axes once the tensor passes 1000 elements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summarize = self.numel() > SUMMARY_THRESHOLD;
        let scientific = self.data.iter().any(|x| {
            x.is_finite() && *x != T::zero() && (x.abs().as_f64() >= 1e8 || x.abs().as_f64() < 1e-4)
        });
        write!(f, "tensor(")?;
        write_axis(f, self, 0, 0, summarize, scientific)?;
        write!(f, ", shape={})", self.shape)
    }
}

impl<T: Float> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)?;
        write!(f, " ({})", T::DTYPE)
    }
}

fn write_axis<T: Float>(
    f: &mut fmt::Formatter<'_>,
    t: &Tensor<T>,
    axis: usize,
    offset: usize,
    summarize: bool,
    scientific: bool,
) -> fmt::Result {
    if axis == t.ndim() {
        let x = t.data[offset].as_f64();
        return if scientific {
            write!(f, "{x:.4e}")
        } else {
            write!(f, "{x:.4}")
        };
    }
    let len = t.dims()[axis];
    let stride: usize = t.dims()[axis + 1..].iter().product();
    let indent = " ".repeat("tensor(".len() + axis + 1);
    let separator = if axis + 1 == t.ndim() {
        ", ".to_string()
    } else {
        format!(",{}{indent}", "\n".repeat(t.ndim() - axis - 1))
    };
    write!(f, "[")?;
    let elide = summarize && len > 2 * EDGE_ITEMS;
    for i in 0..len {
        if elide && i == EDGE_ITEMS {
            write!(f, "...{separator}")?;
        }
        if elide && (EDGE_ITEMS..len - EDGE_ITEMS).contains(&i) {
            continue;
        }
        write_axis(f, t, axis + 1, offset + i * stride, summarize, scientific)?;
        if i + 1 < len {
            write!(f, "{separator}")?;
        }
    }
    write!(f, "]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn from_vec_rejects_wrong_length() {
        let err = Tensor::<f64>::from_vec(vec![1.0; 5], [2, 3]).unwrap_err();
        assert!(
            err.to_string()
                .contains("5 elements cannot fill shape [2, 3]"),
            "{err}"
        );
    }

    #[test]
    fn display_matches_pytorch_layout() {
        let t = Tensor::<f64>::from_vec((0..8).map(f64::from).collect(), [2, 2, 2]).unwrap();
        let expected = "tensor([[[0.0000, 1.0000],\n         [2.0000, 3.0000]],\n\n        [[4.0000, 5.0000],\n         [6.0000, 7.0000]]], shape=[2, 2, 2])";
        assert_eq!(t.to_string(), expected);
        assert_eq!(
            Tensor::scalar(1.5f32).to_string(),
            "tensor(1.5000, shape=[])"
        );
    }

    #[test]
    fn display_elides_large_tensors() {
        let t = Tensor::<f32>::zeros([2000]);
        let text = t.to_string();
        assert!(text.contains("..."), "{text}");
        assert!(text.len() < 200, "{text}");
    }

    #[test]
    fn seeded_random_is_reproducible() {
        let a = Tensor::<f32>::normal([10], 0.0, 1.0, &mut rand::rngs::StdRng::seed_from_u64(7))
            .unwrap();
        let b = Tensor::<f32>::normal([10], 0.0, 1.0, &mut rand::rngs::StdRng::seed_from_u64(7))
            .unwrap();
        assert!(a.bit_eq(&b));
        let u =
            Tensor::<f64>::uniform([1000], -1.0, 1.0, &mut rand::rngs::StdRng::seed_from_u64(1))
                .unwrap();
        assert!(u.data().iter().all(|&x| (-1.0..1.0).contains(&x)));
    }

    #[test]
    fn invalid_distribution_parameters_are_rejected() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        assert!(Tensor::<f64>::uniform([2], 1.0, 1.0, &mut rng).is_err());
        assert!(Tensor::<f64>::normal([2], 0.0, -1.0, &mut rng).is_err());
        assert!(Tensor::<f64>::normal([2], f64::NAN, 1.0, &mut rng).is_err());
    }

    #[test]
    fn get_checks_bounds() {
        let t = Tensor::<f64>::zeros([2, 3]);
        assert_eq!(t.get(&[1, 2]), Some(0.0));
        assert_eq!(t.get(&[2, 0]), None);
        assert_eq!(t.get(&[0]), None);
    }
}
