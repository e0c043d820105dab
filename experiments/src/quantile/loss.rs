//! The median weights of a relaxed permutation matrix and the two regression losses.

use autograd::{Float, Var};

use crate::error::{Error, Result};

/// Returns the middle row `P[..., ⌊n/2⌋, :]` of relaxed permutation matrices `[..., n, n]`,
/// shape `[..., n]`. For odd `n` and descending order it approximates the one-hot vector of
/// the median element. Its gradient is `∂L/∂P[..., ⌊n/2⌋, :]`, zero on every other row.
///
/// # Errors
/// [`Error::InvalidArgument`] if `p` has fewer than two axes, is not square or `n = 0`.
pub fn median_row<'t, T: Float>(p: Var<'t, T>) -> Result<Var<'t, T>> {
    let n = square_size("median_row", p)?;
    let middle = n / 2;
    Ok(p.slice(-2, middle, middle + 1)?.squeeze(-2)?)
}

/// Returns the median weights `w = r / Σ_j r_j` of the middle row `r` (see [`median_row`]),
/// shape `[..., n]`. SoftSort and NeuralSort rows already sum to 1 up to rounding, so the
/// division only removes that rounding and keeps the prediction a convex combination. The
/// gradient is `∂w_j/∂r_k = (δ_jk − w_j) / Σ_i r_i`.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use experiments::quantile::median_weights;
///
/// let tape = Tape::<f64>::new();
/// let p = tape.constant(Tensor::from_vec(
///     vec![1.0, 0.0, 0.0, 0.0, 2.0, 6.0, 0.0, 0.0, 1.0],
///     [3, 3],
/// )?);
/// assert_eq!(median_weights(p)?.value().to_vec(), vec![0.0, 0.25, 0.75]);
/// # Ok::<(), experiments::Error>(())
/// ```
///
/// # Errors
/// As [`median_row`], and [`Error::InvalidArgument`] if a middle row has a sum that is not
/// positive and finite, which no SoftSort or NeuralSort output has.
pub fn median_weights<'t, T: Float>(p: Var<'t, T>) -> Result<Var<'t, T>> {
    let row = median_row(p)?;
    let totals = row.sum_axes(&[-1], true)?;
    let total_values = totals.value();
    if let Some(&bad) = total_values
        .data()
        .iter()
        .find(|t| !(t.as_f64().is_finite() && t.as_f64() > 0.0))
    {
        return Err(Error::invalid(
            "median_weights",
            "middle-row sum",
            bad.as_f64(),
            "the rows of a relaxed permutation matrix must have a positive, finite sum",
        ));
    }
    Ok(row.div(totals)?)
}

/// Computes the deterministic loss `mean_m (y_m − Σ_j w_mj v_mj)²` of the median weights
/// `w` of `p` (shape `[M, n, n]`), the predicted values `v` (`[M, n]`) and the targets `y`
/// (`[M]`). The gradient is `∂L/∂v_mj = −2 (y_m − ŷ_m) w_mj / M` with `ŷ_m = Σ_j w_mj v_mj`,
/// and flows on to `p` through [`median_weights`].
///
/// # Errors
/// [`Error::InvalidArgument`] if the shapes do not fit together, as [`median_weights`].
pub fn deterministic_loss<'t, T: Float>(
    p: Var<'t, T>,
    values: Var<'t, T>,
    targets: Var<'t, T>,
) -> Result<Var<'t, T>> {
    let (batch, n) = check_regression_shapes("deterministic_loss", values, targets)?;
    let dims = p.shape().dims().to_vec();
    if dims != [batch, n, n] {
        return Err(Error::invalid(
            "deterministic_loss",
            "shape of P",
            format!("{dims:?}"),
            format!("expected [M, n, n] = [{batch}, {n}, {n}] to match the values"),
        ));
    }
    let weights = median_weights(p)?;
    let predicted = weights.mul(values)?.sum_axes(&[-1], false)?;
    Ok(targets.sub(predicted)?.powf(2.0)?.mean()?)
}

/// Computes the stochastic loss `mean_{s,m} Σ_j w_smj (v_mj − y_m)²`, the expected squared
/// error of the value of the element that a sampled permutation puts in the middle. Here `w` are the
/// median weights of `p` (shape `[S, M, n, n]` for `S` noise samples, or `[M, n, n]`), the
/// values `v` (`[M, n]`) and the targets `y` (`[M]`). The gradients are
/// `∂L/∂v_mj = 2 (v_mj − y_m) Σ_s w_smj / (S·M)` and `∂L/∂w_smj = (v_mj − y_m)² / (S·M)`.
///
/// # Errors
/// [`Error::InvalidArgument`] if the shapes do not fit together, as [`median_weights`].
pub fn stochastic_loss<'t, T: Float>(
    p: Var<'t, T>,
    values: Var<'t, T>,
    targets: Var<'t, T>,
) -> Result<Var<'t, T>> {
    let (batch, n) = check_regression_shapes("stochastic_loss", values, targets)?;
    let dims = p.shape().dims().to_vec();
    let fits = match dims.as_slice() {
        [m, a, b] | [_, m, a, b] => (*m, *a, *b) == (batch, n, n),
        _ => false,
    };
    if !fits {
        return Err(Error::invalid(
            "stochastic_loss",
            "shape of P",
            format!("{dims:?}"),
            format!("expected [S, M, n, n] or [M, n, n] with M = {batch}, n = {n}"),
        ));
    }
    let weights = median_weights(p)?;
    let squared_errors = values.sub(targets.unsqueeze(-1)?)?.powf(2.0)?;
    let expected = weights.mul(squared_errors)?.sum_axes(&[-1], false)?;
    Ok(expected.mean()?)
}

/// Returns the index of the element that the scores rank in the middle: position `⌊n/2⌋`
/// of the descending order, equal scores keeping their order in the sequence. This is the
/// element whose one the hard (`τ → 0`) middle row of SoftSort and NeuralSort selects.
///
/// ```
/// use experiments::quantile::hard_median_index;
///
/// // Descending order: 2.0 (index 1), 0.9 (3), 0.3 (0), 0.1 (4), −1.0 (2).
/// assert_eq!(hard_median_index(&[0.3f32, 2.0, -1.0, 0.9, 0.1])?, 0);
/// # Ok::<(), experiments::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] if `scores` is empty or has a non-finite value.
pub fn hard_median_index<T: Float>(scores: &[T]) -> Result<usize> {
    if scores.is_empty() {
        return Err(Error::invalid(
            "hard_median_index",
            "scores",
            "[]",
            "a sequence needs at least one score",
        ));
    }
    if let Some(bad) = scores.iter().find(|s| !s.as_f64().is_finite()) {
        return Err(Error::invalid(
            "hard_median_index",
            "score",
            bad.as_f64(),
            "scores must be finite; the score network diverged",
        ));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // sort_by is stable, so equal scores keep increasing index order.
    order.sort_by(|&a, &b| scores[b].as_f64().total_cmp(&scores[a].as_f64()));
    Ok(order[scores.len() / 2])
}

/// Returns `n` for a value of shape `[..., n, n]`.
fn square_size<T: Float>(op: &str, p: Var<'_, T>) -> Result<usize> {
    let dims = p.shape().dims().to_vec();
    match dims.as_slice() {
        [.., a, b] if a == b && *a > 0 => Ok(*a),
        _ => Err(Error::invalid(
            op,
            "shape of P",
            format!("{dims:?}"),
            "expected [..., n, n] with n ≥ 1",
        )),
    }
}

/// Checks that `values` is `[M, n]` and `targets` is `[M]`, and returns `(M, n)`.
fn check_regression_shapes<T: Float>(
    op: &str,
    values: Var<'_, T>,
    targets: Var<'_, T>,
) -> Result<(usize, usize)> {
    let value_dims = values.shape().dims().to_vec();
    let target_dims = targets.shape().dims().to_vec();
    match (value_dims.as_slice(), target_dims.as_slice()) {
        ([m, n], [t]) if m == t && *m > 0 && *n > 0 => Ok((*m, *n)),
        _ => Err(Error::invalid(
            op,
            "shapes of values and targets",
            format!("{value_dims:?} and {target_dims:?}"),
            "expected values [M, n] and targets [M] with M, n ≥ 1",
        )),
    }
}
