//! Input checks shared by the operators.
//!
//! Every error is an [`autograd::Error`], so the operators compose with the engine's own ops
//! under one error type. Messages name the operator, the argument and the rejected value, for
//! example `softsort: invalid temperature = -0.5: must be positive and finite`.

use autograd::{Error, Float, Result, Tensor};

use crate::kernels::all_finite;

/// Checks that a temperature (or another positive scale) is positive and finite.
pub(crate) fn check_positive(op: &str, arg: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            arg,
            value,
            "must be positive and finite",
        ))
    }
}

/// Checks a temperature as [`check_positive`] does and returns `1/τ` in `T`, rejecting a τ so
/// small that its inverse overflows `T` (below about 2.9e-39 in `f32`, 5.6e-309 in `f64`),
/// which would turn every logit into ±inf and the output into NaN.
pub(crate) fn inverse_temperature<T: Float>(op: &str, tau: f64) -> Result<T> {
    check_positive(op, "temperature", tau)?;
    let inverse = T::from_f64(1.0 / tau);
    if inverse.is_finite() {
        Ok(inverse)
    } else {
        Err(Error::invalid(
            op,
            "temperature",
            format!("{tau:e}"),
            format!(
                "1/temperature overflows {}; use a larger temperature",
                T::DTYPE
            ),
        ))
    }
}

/// Returns the largest logit magnitude that leaves headroom in `T`: `T::MAX / 1024`, so that
/// sums of a few logits cannot overflow.
pub(crate) fn overflow_limit<T: Float>() -> f64 {
    T::max_value().as_f64() / 1024.0
}

/// Returns the largest logit magnitude whose rounding error stays within the range of `exp`:
/// `1/ε²` (about 7e13 in `f32`, 2e31 in `f64`). Beyond it, the cancellations in Sinkhorn's
/// backward pass produced NaN.
pub(crate) fn precision_limit<T: Float>() -> f64 {
    let epsilon = T::epsilon().as_f64();
    1.0 / (epsilon * epsilon)
}

/// Rejects inputs whose logits the operator cannot compute. `before` is the caller's bound on
/// what it forms from the scores before dividing by τ (such as `max |x|` or the largest squared
/// distance), taken in `f64`. It must stay within [`overflow_limit`], and the logits
/// `before / τ` within `logit_limit` ([`overflow_limit`] or [`precision_limit`]). The error
/// names the scores if the first bound fails and the temperature otherwise.
pub(crate) fn check_logit_range<T: Float>(
    op: &str,
    tau: f64,
    before: f64,
    logit_limit: f64,
) -> Result<()> {
    let dtype = T::DTYPE;
    let limit = overflow_limit::<T>();
    if before > limit {
        return Err(Error::invalid(
            op,
            "scores",
            format!("values up to {before:.1e} before τ"),
            format!("this exceeds the {limit:.0e} that {dtype} arithmetic handles here; rescale the scores"),
        ));
    }
    let logits = before / tau;
    if logits > logit_limit {
        return Err(Error::invalid(
            op,
            "temperature",
            format!("{tau:e}"),
            format!(
                "the logits reach {logits:.1e}, beyond the {logit_limit:.0e} that {dtype} arithmetic handles here; use a larger temperature or smaller scores"
            ),
        ));
    }
    Ok(())
}

/// Upper bound on the entries of a dense `[..., n, n]` output (4 GB in `f32`).
const MAX_DENSE_ENTRIES: usize = 1 << 30;

/// Checks that the `[..., n, n]` matrices of `batch` rows of `n` scores fit the bound above,
/// so that a huge input gets an error instead of an allocation failure.
pub(crate) fn check_dense_size(op: &str, batch: usize, n: usize) -> Result<()> {
    let entries = batch.checked_mul(n).and_then(|rows| rows.checked_mul(n));
    if entries.is_some_and(|entries| entries <= MAX_DENSE_ENTRIES) {
        return Ok(());
    }
    Err(Error::shape(
        op,
        format!(
            "{batch} rows of n = {n} scores need {batch} × {n} × {n} entries of P, more than {MAX_DENSE_ENTRIES}; use the fast operators of softsort_ops::fast, which never form P"
        ),
    ))
}

/// Returns the largest absolute value of a slice, in `f64` (0 for an empty slice).
pub(crate) fn largest_magnitude<T: Float>(x: &[T]) -> f64 {
    x.iter().fold(0.0f64, |m, v| m.max(v.as_f64().abs()))
}

/// Checks that every element is finite.
pub(crate) fn check_finite<T: Float>(op: &str, arg: &str, t: &Tensor<T>) -> Result<()> {
    if all_finite(t.data()) {
        return Ok(());
    }
    match t.first_non_finite() {
        None => Ok(()),
        Some(index) => Err(Error::invalid(
            op,
            arg,
            format!("{} at flat index {index}", t.data()[index]),
            "every element must be finite; check the values upstream for overflow or NaN",
        )),
    }
}

/// Checks scores of shape `[..., n]` with `n ≥ 1` and finite elements; returns `(batch, n)`,
/// where `batch` is the product of the leading axes.
pub(crate) fn check_scores<T: Float>(op: &str, scores: &Tensor<T>) -> Result<(usize, usize)> {
    let dims = scores.dims();
    let Some(&n) = dims.last() else {
        return Err(Error::shape(
            op,
            "scores must have at least one axis, [..., n]; got a scalar",
        ));
    };
    if n == 0 {
        return Err(Error::shape(
            op,
            format!(
                "scores of shape {} have no elements to sort (n = 0)",
                scores.shape()
            ),
        ));
    }
    check_finite(op, "scores", scores)?;
    Ok((scores.numel() / n, n))
}

/// Checks square matrices of shape `[..., n, n]` with `n ≥ 1` and finite elements; returns
/// `(batch, n)`.
pub(crate) fn check_square<T: Float>(op: &str, arg: &str, x: &Tensor<T>) -> Result<(usize, usize)> {
    let dims = x.dims();
    if dims.len() < 2 || dims[dims.len() - 1] != dims[dims.len() - 2] {
        return Err(Error::shape(
            op,
            format!(
                "{arg} must have shape [..., n, n] (square in the last two axes), got {}",
                x.shape()
            ),
        ));
    }
    let n = dims[dims.len() - 1];
    if n == 0 {
        return Err(Error::shape(
            op,
            format!("{arg} of shape {} is empty (n = 0)", x.shape()),
        ));
    }
    check_finite(op, arg, x)?;
    Ok((x.numel() / (n * n), n))
}
