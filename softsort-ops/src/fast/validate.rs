//! Input checks shared by the ops of this module.

use autograd::{Error, Float, Result, Shape, Tensor};

/// Checks that τ is finite and positive, also after conversion to `T`, and that `1/τ` is
/// finite in `T`; returns τ as `T`.
///
/// A τ that rounds to zero in `T`, or whose inverse overflows `T` (τ below about 3e-39 in
/// `f32` or 5.6e-309 in `f64`), is rejected: the logits are scaled by `1/τ` and would become
/// infinite or NaN.
pub(crate) fn check_tau<T: Float>(op: &str, tau: f64) -> Result<T> {
    if !(tau.is_finite() && tau > 0.0) {
        return Err(Error::invalid(
            op,
            "tau",
            format!("{tau:e}"),
            "the temperature must be finite and > 0",
        ));
    }
    let dtype = std::any::type_name::<T>();
    let converted = T::from_f64(tau);
    if !(converted.is_finite() && converted > T::zero()) {
        return Err(Error::invalid(
            op,
            "tau",
            format!("{tau:e}"),
            format!(
                "tau rounds to zero or infinity in {dtype}; use a temperature representable as \
                 a positive {dtype}"
            ),
        ));
    }
    if !(T::one() / converted).is_finite() {
        return Err(Error::invalid(
            op,
            "tau",
            format!("{tau:e}"),
            format!("1/tau overflows {dtype}; use a larger temperature"),
        ));
    }
    Ok(converted)
}

/// Returns the number of value columns `d` for values of shape `[..., n]` (`d = 1`) or
/// `[..., n, d]` checked by [`check_values`] against scores of shape `scores`. Unlike a ratio
/// of element counts it is defined for an empty batch.
pub(crate) fn value_width(scores: &Shape, values: &Shape) -> usize {
    if values.dims().len() > scores.dims().len() {
        *values.dims().last().unwrap_or(&1)
    } else {
        1
    }
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

/// Checks the inputs `[scores, target]` of a permutation negative log-likelihood: τ, scores of
/// shape `[..., n]`, and a target of the same shape whose every row is a permutation of
/// `0..n`, with at least one row because the losses are means over the rows. Returns
/// `(τ, rows, n)`.
pub(crate) fn check_nll_inputs<T: Float>(
    op: &str,
    inputs: &[Tensor<T>],
    tau: f64,
) -> Result<(T, usize, usize)> {
    check_arity(op, inputs, 2)?;
    let tau = check_tau::<T>(op, tau)?;
    let (rows, n) = check_scores(op, &inputs[0])?;
    check_permutation_target(op, &inputs[1], &inputs[0], n)?;
    if rows == 0 {
        return Err(Error::shape(
            op,
            format!(
                "scores have shape {}: the loss is a mean over the batch rows and there are \
                 none; pass at least one row",
                inputs[0].shape()
            ),
        ));
    }
    Ok((tau, rows, n))
}

/// Checks that `target` has the shape of `scores` and that every row of it is a permutation
/// of `0..n`, given as floating-point integers.
fn check_permutation_target<T: Float>(
    op: &str,
    target: &Tensor<T>,
    scores: &Tensor<T>,
    n: usize,
) -> Result<()> {
    if target.shape() != scores.shape() {
        return Err(Error::shape(
            op,
            format!(
                "target has shape {}, but scores have shape {}; pass one permutation per row of scores",
                target.shape(),
                scores.shape()
            ),
        ));
    }
    let mut seen = vec![false; n];
    for (r, row) in target.data().chunks(n).enumerate() {
        seen.iter_mut().for_each(|x| *x = false);
        for (i, &v) in row.iter().enumerate() {
            let x = v.as_f64();
            // NaN fails the first comparison and ±∞ one of the two bounds.
            let valid = x >= 0.0 && x < n as f64 && (x as usize) as f64 == x;
            if !valid || std::mem::replace(&mut seen[x as usize], true) {
                return Err(Error::invalid(
                    op,
                    "target",
                    format!("{v} at row {r}, position {i}"),
                    format!(
                        "each row must be a permutation of the indices 0..{n}, every index once"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Converts an entry of a target checked by [`check_nll_inputs`] to its index.
#[inline]
pub(crate) fn target_index<T: Float>(entry: T) -> usize {
    entry.as_f64() as usize
}
