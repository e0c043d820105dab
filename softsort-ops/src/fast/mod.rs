//! SoftSort with absolute distance in O(n log n) time and O(n) memory per row, never forming
//! the n × n relaxed permutation matrix, plus row-at-a-time `P · X` for the dense relaxations.
//!
//! Conventions: scores have shape `[..., n]`, and every leading index is an independent row. A
//! relaxed permutation matrix `P` (of shape `[..., n, n]` if it were formed) has row `i` for
//! sorted position `i` (descending) and column `j` for input element `j`. So `P · s`
//! approximates `s` sorted descending. SoftSort is `P[i, j] = softmax_j(−d(ŝ_i, s_j)/τ)` with
//! `ŝ = sort(s)` descending.
//!
//! For `d = |·|`, `P` is the Laplace kernel `K(a, b) = exp(−|a − b|/τ)` between the sorted
//! scores, normalised by rows, and every sum against that kernel is a pair of linear
//! recurrences over the sorted scores with factors in `[0, 1]`: O(n) after an O(n log n) sort,
//! with no overflow for any τ > 0. The backward passes are recurrences too. The derivation is
//! in `docs/fast-softsort.md`.
//!
//! | op | output | residuals per score |
//! |----|--------|---------------------|
//! | [`SoftSortApply`] | `P · X` (with `X = s`: soft-sorted scores) | order (4 B) + `Z` |
//! | [`SoftSortTransposeApply`] | `Pᵀ · V`; [`soft_ranks`] | order (4 B) + `Z` |
//! | [`SoftSortLogNormalizer`] | `log Z` | order (4 B) + `Z` |
//! | [`SoftSortPermutationNll`] | mean `−log P[i, π(i)]` | order (4 B) + `Z` |
//! | [`SquaredSoftSortApply`] | `P · X`, `d = (·)²`, O(n²·d) time | order (4 B) |
//! | [`NeuralSortApply`] | `P · X` for NeuralSort, O(n²·d) time | order (4 B) + `A` |
//! | [`SquaredSoftSortPermutationNll`] | mean `−log P[i, π(i)]`, `d = (·)²`, O(n²) time | order (4 B) + `log Z` |
//! | [`NeuralSortPermutationNll`] | mean `−log P[k, π(k)]` for NeuralSort, O(n²) time | order (4 B) + `A` + `log Z` |
//!
//! Ties are broken by input index in the sort; `|x|` has derivative `sign(0) = 0` at zero, as
//! in the autograd crate, so tied scores pass no gradient to each other through the distance.
//! Batch rows run in parallel above a work threshold; each row is computed sequentially, so
//! results are bit-identical for any number of threads. The O(n²) losses also split the sorted
//! positions of a row into at most 8 blocks whose size depends on `n` alone, and add the
//! blocks' partial sums in block order, with the same guarantee.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use softsort_ops::fast;
//!
//! let tape = Tape::<f64>::new();
//! let s = tape.param(Tensor::from_vec(vec![0.2, -1.0, 0.7, 0.1], [2, 2])?);
//! let sorted = fast::soft_sort(s, 0.1)?; // [2, 2]: each row softly sorted, descending
//! let ranks = fast::soft_ranks(s, 0.1)?; // [2, 2]: 1-based expected ranks
//! let loss = sorted.sum()?.add(ranks.sum()?)?;
//! let grads = tape.backward(loss)?;
//! assert_eq!(grads.get(s)?.shape().dims(), &[2, 2]);
//! # Ok::<(), autograd::Error>(())
//! ```

mod apply;
pub(crate) mod batch;
mod deviations;
mod kernel;
mod loss;
mod neuralsort;
mod neuralsort_nll;
pub(crate) mod neuralsort_rows;
mod nll;
mod normalizer;
mod order;
mod rowwise;
mod squared;
mod squared_nll;
mod transpose;
mod validate;

pub use apply::SoftSortApply;
pub use neuralsort::NeuralSortApply;
pub use neuralsort_nll::NeuralSortPermutationNll;
pub use nll::SoftSortPermutationNll;
pub use normalizer::SoftSortLogNormalizer;
pub use squared::SquaredSoftSortApply;
pub use squared_nll::SquaredSoftSortPermutationNll;
pub use transpose::SoftSortTransposeApply;

use autograd::{Float, Result, Tensor, Var};

use crate::float::SortFloat;

/// Computes the soft-sorted scores `P · s` (shape `[..., n]`, descending) with `d = |·|`; see
/// [`SoftSortApply`].
///
/// # Errors
/// [`autograd::Error`] for τ not finite and > 0, non-finite scores or `n = 0`.
pub fn soft_sort<'t, T: SortFloat>(scores: Var<'t, T>, tau: f64) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(SoftSortApply::new(tau), &[scores, scores])
}

/// Computes `P · X` for values of shape `[..., n]` or `[..., n, d]` with `d = |·|`; see
/// [`SoftSortApply`].
///
/// # Errors
/// As [`soft_sort`], and [`autograd::Error::Shape`] for values that do not match the scores.
pub fn apply<'t, T: SortFloat>(
    scores: Var<'t, T>,
    values: Var<'t, T>,
    tau: f64,
) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(SoftSortApply::new(tau), &[scores, values])
}

/// Computes `Pᵀ · V` for `V` of shape `[..., n]` or `[..., n, d]` indexed by sorted position;
/// see [`SoftSortTransposeApply`].
///
/// # Errors
/// As [`apply`](fn@apply).
pub fn transpose_apply<'t, T: SortFloat>(
    scores: Var<'t, T>,
    weights: Var<'t, T>,
    tau: f64,
) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(SoftSortTransposeApply::new(tau), &[scores, weights])
}

/// Computes the soft ranks `r_j = Σ_i P[i, j] (i + 1)`, the expected 1-based descending rank
/// of each score (the largest score has rank near 1), shape `[..., n]`.
///
/// # Errors
/// As [`soft_sort`].
pub fn soft_ranks<'t, T: SortFloat>(scores: Var<'t, T>, tau: f64) -> Result<Var<'t, T>> {
    let shape = scores.shape();
    let n = shape.dims().last().copied().unwrap_or(0);
    let positions: Vec<T> = (0..shape.numel())
        .map(|k| T::from_f64((k % n.max(1) + 1) as f64))
        .collect();
    let positions = scores.tape().constant(Tensor::from_vec(positions, shape)?);
    transpose_apply(scores, positions, tau)
}

/// Computes `log Z_i`, the log row normalisers (shape `[..., n]`); see
/// [`SoftSortLogNormalizer`].
///
/// # Errors
/// As [`soft_sort`].
pub fn log_normalizers<'t, T: SortFloat>(scores: Var<'t, T>, tau: f64) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(SoftSortLogNormalizer::new(tau), &[scores])
}

/// Computes the scalar loss `−(1/(B·n)) Σ_b Σ_i log P_b[i, π_b(i)]` for target permutations
/// `π` of the shape of the scores; see [`SoftSortPermutationNll`].
///
/// # Errors
/// As [`soft_sort`], and [`autograd::Error::InvalidArgument`] for a target row that is not a
/// permutation of `0..n`.
pub fn permutation_nll<'t, T: SortFloat>(
    scores: Var<'t, T>,
    target: Var<'t, T>,
    tau: f64,
) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(SoftSortPermutationNll::new(tau), &[scores, target])
}

/// Computes `P · X` for SoftSort with squared distance, one row of `P` at a time; see
/// [`SquaredSoftSortApply`].
///
/// # Errors
/// As [`apply`](fn@apply).
pub fn squared_apply<'t, T: Float>(
    scores: Var<'t, T>,
    values: Var<'t, T>,
    tau: f64,
) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(SquaredSoftSortApply::new(tau), &[scores, values])
}

/// Computes `P · X` for NeuralSort, one row of `P` at a time; see [`NeuralSortApply`].
///
/// # Errors
/// As [`apply`](fn@apply).
pub fn neuralsort_apply<'t, T: Float>(
    scores: Var<'t, T>,
    values: Var<'t, T>,
    tau: f64,
) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(NeuralSortApply::new(tau), &[scores, values])
}

/// Computes the scalar loss `(1/(B·n)) Σ_b Σ_i −log P_b[i, π_b(i)]` for SoftSort with squared
/// distance, one row of `P` at a time; see [`SquaredSoftSortPermutationNll`].
///
/// # Errors
/// As [`permutation_nll`].
pub fn squared_permutation_nll<'t, T: SortFloat>(
    scores: Var<'t, T>,
    target: Var<'t, T>,
    tau: f64,
) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(SquaredSoftSortPermutationNll::new(tau), &[scores, target])
}

/// Computes the scalar loss `(1/(B·n)) Σ_b Σ_k −log P_b[k, π_b(k)]` for NeuralSort, one row of
/// `P` at a time; see [`NeuralSortPermutationNll`].
///
/// # Errors
/// As [`permutation_nll`].
pub fn neuralsort_permutation_nll<'t, T: SortFloat>(
    scores: Var<'t, T>,
    target: Var<'t, T>,
    tau: f64,
) -> Result<Var<'t, T>> {
    scores
        .tape()
        .apply(NeuralSortPermutationNll::new(tau), &[scores, target])
}
