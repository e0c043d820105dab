//! Sorting along the last axis: `argsort` on tensors, and `sort` and `topk` on tape values with
//! the gradient routed through the permutation.

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::indexing::IndexTensor;
use crate::parallel::for_each_row;
use crate::tape::Var;
use crate::tensor::Tensor;

/// Checks that `x` can be sorted along its last axis and returns that axis's length.
fn sortable_length<T: Float>(op: &str, x: &Tensor<T>) -> Result<usize> {
    let Some(&n) = x.dims().last() else {
        return Err(Error::shape(
            op,
            "cannot sort a scalar: the input needs at least one axis; reshape it to [1] first",
        ));
    };
    if let Some(i) = x.data().iter().position(|v| v.is_nan()) {
        return Err(Error::invalid(
            op,
            "input",
            x.data()[i],
            format!("element {i} is NaN, which has no place in an order; remove or replace NaNs before sorting"),
        ));
    }
    Ok(n)
}

/// Returns, for each row of the last axis, the positions of its first `k` elements in sorted
/// order.
///
/// The order is by value, ascending or descending, then by position ascending among equal
/// values (`-0.0` and `0.0` are equal). That is a total order on positions, so the result is
/// unique: it equals a stable sort's and does not depend on the sorting algorithm or the thread
/// count.
fn sorted_positions<T: Float>(
    x: &Tensor<T>,
    n: usize,
    k: usize,
    descending: bool,
) -> Result<IndexTensor> {
    let rows = x.dims()[..x.ndim() - 1].iter().product::<usize>();
    let mut out = vec![0usize; rows * k];
    let data = x.data();
    let log_n = (usize::BITS - n.leading_zeros()) as usize;
    for_each_row(&mut out, k.max(1), x.numel() * log_n.max(1), |r, row| {
        let values = &data[r * n..(r + 1) * n];
        let compare = |&i: &usize, &j: &usize| {
            // NaN was rejected by `sortable_length`, so `partial_cmp` is total here.
            let by_value = values[i].partial_cmp(&values[j]).unwrap_or(Ordering::Equal);
            let by_value = if descending {
                by_value.reverse()
            } else {
                by_value
            };
            by_value.then(i.cmp(&j))
        };
        let mut order: Vec<usize> = (0..n).collect();
        if k < n {
            // Only the first k are needed: partition around the k-th, then sort the front.
            order.select_nth_unstable_by(k, compare);
            order.truncate(k);
        }
        order.sort_unstable_by(compare);
        row.copy_from_slice(&order);
    });
    let mut dims = x.dims().to_vec();
    *dims.last_mut().expect("sortable_length checked ndim >= 1") = k;
    IndexTensor::from_vec(out, dims)
}

/// Returns the permutation that sorts each row of the last axis: `out[..., j]` is the position
/// in `x[..., :]` of the `j`-th smallest (or, if `descending`, largest) element.
///
/// Equal values keep their original order in both directions: among ties, the lower position
/// comes first. `-0.0` and `0.0` count as equal; infinities sort as the extremes.
///
/// ```
/// use autograd::{argsort, Tensor};
///
/// let x = Tensor::from_vec(vec![2.0, 0.0, 1.0, 1.0, 1.0, 0.0], [2, 3])?;
/// assert_eq!(argsort(&x, true)?.to_vec(), vec![0, 2, 1, 0, 1, 2]);
/// assert_eq!(argsort(&x, false)?.to_vec(), vec![1, 2, 0, 2, 0, 1]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] if `x` is a scalar, [`Error::InvalidArgument`] if an element is NaN.
pub fn argsort<T: Float>(x: &Tensor<T>, descending: bool) -> Result<IndexTensor> {
    let n = sortable_length("argsort", x)?;
    sorted_positions(x, n, n, descending)
}

impl<'t, T: Float> Var<'t, T> {
    /// Sorts each row of the last axis, ascending or descending, and returns the sorted values
    /// with the permutation [`argsort`] computes: `y[..., j] = x[..., p[..., j]]`.
    ///
    /// Derivative: a sort is a permutation wherever the values are distinct, so
    /// `∂L/∂x[..., p[..., j]] = ∂L/∂y[..., j]`: each gradient goes back to the element's source
    /// position. Among ties the gradient follows the tie-broken permutation (one of the
    /// one-sided derivatives). The permutation is plain data and takes no gradient.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3])?);
    /// let (y, permutation) = x.sort(true)?;
    /// assert_eq!(y.value().to_vec(), vec![2.0, 1.0, 0.0]);
    /// assert_eq!(permutation.to_vec(), vec![0, 2, 1]);
    /// // Weight the sorted positions by 1, 10, 100: each weight returns to its source.
    /// let weights = tape.constant(Tensor::from_vec(vec![1.0, 10.0, 100.0], [3])?);
    /// let grads = tape.backward(y.mul(weights)?.sum()?)?;
    /// assert_eq!(grads.get(x)?.to_vec(), vec![1.0, 100.0, 10.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] if the value is a scalar, [`Error::InvalidArgument`] if an element is
    /// NaN.
    pub fn sort(self, descending: bool) -> Result<(Var<'t, T>, IndexTensor)> {
        let x = self.value();
        let n = sortable_length("sort", &x)?;
        let indices = sorted_positions(&x, n, n, descending)?;
        Ok((self.gather(-1, &indices)?, indices))
    }

    /// Returns the `k` largest (`largest = true`) or smallest elements of each row of the last
    /// axis, in sorted order (largest first, or smallest first), with their positions.
    ///
    /// The result equals the first `k` entries of [`Var::sort`] with `descending = largest`,
    /// ties included, but takes `O(n + k log k)` time per row on average. Derivative: as for
    /// [`Var::sort`], each output gradient goes back to its source position, and the elements
    /// left out get 0.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f32>::new();
    /// let x = tape.param(Tensor::from_vec(vec![0.5, 3.0, -1.0, 3.0], [4])?);
    /// let (top, positions) = x.topk(2, true)?;
    /// assert_eq!(top.value().to_vec(), vec![3.0, 3.0]);
    /// assert_eq!(positions.to_vec(), vec![1, 3]);
    /// let grads = tape.backward(top.sum()?)?;
    /// assert_eq!(grads.get(x)?.to_vec(), vec![0.0, 1.0, 0.0, 1.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `k` exceeds the length of the last axis or an element is
    /// NaN, [`Error::Shape`] if the value is a scalar.
    pub fn topk(self, k: usize, largest: bool) -> Result<(Var<'t, T>, IndexTensor)> {
        let x = self.value();
        let n = sortable_length("topk", &x)?;
        if k > n {
            return Err(Error::invalid(
                "topk",
                "k",
                k,
                format!(
                    "the last axis of shape {} has length {n}; choose k <= {n}",
                    x.shape()
                ),
            ));
        }
        let indices = sorted_positions(&x, n, k, largest)?;
        Ok((self.gather(-1, &indices)?, indices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;

    fn tensor(data: &[f64], shape: &[usize]) -> Tensor<f64> {
        Tensor::from_vec(data.to_vec(), shape).unwrap()
    }

    #[test]
    fn argsort_hand_computed() {
        let x = tensor(&[2.0, 0.0, 1.0], &[3]);
        assert_eq!(argsort(&x, true).unwrap().to_vec(), vec![0, 2, 1]);
        assert_eq!(argsort(&x, false).unwrap().to_vec(), vec![1, 2, 0]);
    }

    #[test]
    fn argsort_result_indexing() {
        let x = tensor(&[3.0, 1.0, 2.0, 0.0, 5.0, 4.0], &[2, 3]);
        let p = argsort(&x, false).unwrap();
        assert_eq!(p.dims(), &[2, 3]);
        assert_eq!(p.numel(), 6);
        assert_eq!(p.get(&[0, 0]), Some(1));
        assert_eq!(p.get(&[1, 2]), Some(1));
        assert_eq!(p.get(&[2, 0]), None);
        assert_eq!(p.get(&[0]), None);
    }

    #[test]
    fn argsort_breaks_ties_by_position() {
        let x = tensor(&[1.0, 1.0, 0.0], &[3]);
        assert_eq!(argsort(&x, true).unwrap().to_vec(), vec![0, 1, 2]);
        assert_eq!(argsort(&x, false).unwrap().to_vec(), vec![2, 0, 1]);
        let zeros = tensor(&[0.0, -0.0, 0.0], &[3]);
        assert_eq!(argsort(&zeros, true).unwrap().to_vec(), vec![0, 1, 2]);
    }

    #[test]
    fn argsort_orders_infinities_last_and_first() {
        let x = tensor(&[f64::INFINITY, 0.0, f64::NEG_INFINITY], &[3]);
        assert_eq!(argsort(&x, false).unwrap().to_vec(), vec![2, 1, 0]);
    }

    #[test]
    fn argsort_rejects_nan_and_scalars() {
        let x = tensor(&[1.0, f64::NAN], &[2]);
        let err = argsort(&x, true).unwrap_err().to_string();
        assert!(err.contains("argsort"), "{err}");
        assert!(err.contains("element 1 is NaN"), "{err}");
        let err = argsort(&Tensor::<f64>::scalar(1.0), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("scalar"), "{err}");
    }

    #[test]
    fn sort_keeps_leading_axes_and_handles_empty_rows() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(Tensor::zeros([2, 3, 0]));
        let (y, p) = x.sort(false).unwrap();
        assert_eq!(y.shape().dims(), &[2, 3, 0]);
        assert_eq!(p.dims(), &[2, 3, 0]);
        let (top, p) = x.topk(0, true).unwrap();
        assert_eq!(top.shape().dims(), &[2, 3, 0]);
        assert_eq!(p.numel(), 0);
    }

    #[test]
    fn topk_rejects_k_above_length() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(Tensor::zeros([2, 3]));
        let err = x.topk(4, true).unwrap_err().to_string();
        assert!(err.contains("topk: invalid k = 4"), "{err}");
        assert!(err.contains("k <= 3"), "{err}");
    }

    #[test]
    fn sort_error_names_the_op() {
        let tape = Tape::<f32>::new();
        let x = tape.param(Tensor::from_vec(vec![f32::NAN], [1]).unwrap());
        let err = x.sort(false).unwrap_err().to_string();
        assert!(err.starts_with("sort:"), "{err}");
        let err = x.topk(1, false).unwrap_err().to_string();
        assert!(err.starts_with("topk:"), "{err}");
    }
}
