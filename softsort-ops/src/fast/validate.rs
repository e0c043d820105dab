//! Input checks shared by the ops of this module.

use autograd::{Error, Float, Result, Shape, Tensor};

/// Checks that τ is finite and positive, also after conversion to `T`, and returns it as `T`.
///
/// A τ that underflows to zero in `f32` (below about 1e-45) is rejected like zero itself.
pub(crate) fn check_tau<T: Float>(op: &str, tau: f64) -> Result<T> {
    let converted = T::from_f64(tau);
    if !(tau.is_finite() && tau > 0.0 && converted.is_finite() && converted > T::zero()) {
        return Err(Error::invalid(
            op,
            "tau",
            tau,
            format!(
                "the temperature must be finite and > 0 (and representable as a positive {})",
                T::DTYPE
            ),
        ));
    }
    Ok(converted)
}

/// Checks the inputs count.
pub(crate) fn check_arity<T>(op: &str, inputs: &[Tensor<T>], expected: usize) -> Result<()> {
    if inputs.len() != expected {
        return Err(Error::shape(
            op,
            format!("expected {expected} inputs, got {}", inputs.len()),
        ));
    }
    Ok(())
}

/// Checks scores of shape `[..., n]` with `n ≥ 1` and finite elements; returns `(rows, n)`.
pub(crate) fn check_scores<T: Float>(op: &str, scores: &Tensor<T>) -> Result<(usize, usize)> {
    let dims = scores.dims();
    let Some(&n) = dims.last() else {
        return Err(Error::shape(
            op,
            "scores must have shape [..., n] with at least one axis, got a scalar",
        ));
    };
    if n == 0 {
        return Err(Error::shape(
            op,
            format!(
                "scores have shape {}: the last axis n must be ≥ 1",
                scores.shape()
            ),
        ));
    }
    if n > u32::MAX as usize {
        return Err(Error::shape(
            op,
            format!(
                "rows of {n} scores are longer than the supported {}",
                u32::MAX
            ),
        ));
    }
    check_finite(op, "scores", scores)?;
    Ok((scores.numel() / n, n))
}

/// Checks that every element is finite, naming the first bad one.
pub(crate) fn check_finite<T: Float>(op: &str, arg: &str, t: &Tensor<T>) -> Result<()> {
    if let Some(i) = t.first_non_finite() {
        return Err(Error::invalid(
            op,
            arg,
            format!("{} at flat index {i}", t.data()[i]),
            format!("every element of {arg} must be finite; remove NaN and infinite values"),
        ));
    }
    Ok(())
}

/// Checks values of shape `[..., n]` (one column) or `[..., n, d]` against scores of shape
/// `[..., n]`; returns `d`. The values must be finite.
pub(crate) fn check_values<T: Float>(
    op: &str,
    arg: &str,
    scores: &Shape,
    values: &Tensor<T>,
) -> Result<usize> {
    let s = scores.dims();
    let v = values.dims();
    let d = if v == s {
        1
    } else if v.len() == s.len() + 1 && &v[..s.len()] == s && v[s.len()] >= 1 {
        v[s.len()]
    } else {
        return Err(Error::shape(
            op,
            format!(
                "{arg} have shape {}, but scores of shape {scores} need {arg} of shape {scores} \
                 or {scores} + [d] with d ≥ 1",
                values.shape()
            ),
        ));
    };
    check_finite(op, arg, values)?;
    Ok(d)
}
