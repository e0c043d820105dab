//! The operators the speed task times, each with the task's loss `mean(1 − log diag P)`.

use std::fmt;

use autograd::{Tensor, Var};
use softsort_ops::{
    fast, permutation_cross_entropy, Distance, NeuralSort, Sinkhorn, SoftSort, SortFloat,
};

/// The SoftSort temperature of the speed task, for both distances (and for the fast op).
pub const SOFTSORT_TAU: f64 = 0.1;
/// The NeuralSort temperature of the speed task.
pub const NEURALSORT_TAU: f64 = 100.0;
/// The Sinkhorn temperature, applied to the squared-distance SoftSort logits.
pub const SINKHORN_TAU: f64 = 0.1;
/// The number of Sinkhorn rounds (row then column normalisation).
pub const SINKHORN_ITERATIONS: usize = 20;

/// A relaxed sorting operator, timed on the loss `mean(1 − log diag P)`.
///
/// The temperatures are those of `scripts/torch/reference_ops.py`, the PyTorch side of the
/// comparison, which takes them from the SoftSort authors' speed comparison script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Operator {
    /// Dense SoftSort, `P[i, j] = softmax_j(−(ŝ_i − s_j)²/τ)`, τ = 0.1.
    SoftsortSq,
    /// Dense SoftSort, `P[i, j] = softmax_j(−|ŝ_i − s_j|/τ)`, τ = 0.1.
    SoftsortAbs,
    /// Dense NeuralSort, `P[k, i] = softmax_i(((n + 1 − 2k) s_i − Σ_j |s_i − s_j|)/τ)`, τ = 100.
    Neuralsort,
    /// Dense Sinkhorn: 20 log-domain rounds on the squared SoftSort logits
    /// `−(ŝ_i − s_j)²`, τ = 0.1.
    Sinkhorn,
    /// SoftSort with `|·|`, τ = 0.1, as the O(n log n) loss `fast::SoftSortPermutationNll`,
    /// which never forms `P`.
    FastSoftsortAbs,
    /// SoftSort with `(·)²`, τ = 0.1, as the fused loss
    /// `fast::SquaredSoftSortPermutationNll`: the same O(n²) work as `softsort_sq`, one row of
    /// `P` at a time, without storing `P` or its gradient.
    FusedSoftsortSq,
    /// NeuralSort, τ = 100, as the fused loss `fast::NeuralSortPermutationNll`, one row of `P`
    /// at a time, without storing `P` or its gradient.
    FusedNeuralsort,
}

impl Operator {
    /// Every operator, in the order of the CSV and the plot legend.
    pub const ALL: [Operator; 7] = [
        Operator::SoftsortSq,
        Operator::SoftsortAbs,
        Operator::Neuralsort,
        Operator::Sinkhorn,
        Operator::FastSoftsortAbs,
        Operator::FusedSoftsortSq,
        Operator::FusedNeuralsort,
    ];

    /// Returns the name used in the CSV, the JSON result and on the command line. The dense
    /// operators share their names with `scripts/torch/speed.py`.
    pub fn name(self) -> &'static str {
        match self {
            Operator::SoftsortSq => "softsort_sq",
            Operator::SoftsortAbs => "softsort_abs",
            Operator::Neuralsort => "neuralsort",
            Operator::Sinkhorn => "sinkhorn",
            Operator::FastSoftsortAbs => "fast_softsort_abs",
            Operator::FusedSoftsortSq => "fused_softsort_sq",
            Operator::FusedNeuralsort => "fused_neuralsort",
        }
    }

    /// Returns whether the operator avoids the dense `[20, n, n]` matrix and so runs to larger `n`.
    pub fn is_fast(self) -> bool {
        matches!(self, Operator::FastSoftsortAbs)
    }

    /// Returns whether the operator stores the dense `[20, n, n]` matrix `P`, so that its
    /// memory grows with `n²`. The fast and fused operators keep only O(n) per row.
    pub fn forms_dense_matrix(self) -> bool {
        matches!(
            self,
            Operator::SoftsortSq
                | Operator::SoftsortAbs
                | Operator::Neuralsort
                | Operator::Sinkhorn
        )
    }

    /// Computes the speed task's loss `mean(1 − log diag P)` for normalised scores of shape
    /// `[B, n]`, where `P` is this operator's relaxed permutation matrix of each row.
    ///
    /// The diagonal is the target of the identity permutation, so the dense operators use
    /// [`permutation_cross_entropy`] with `π(i) = i`, which reads `log(P[i, i] + 1e-20)`. The
    /// offset changes nothing unless an entry is below about 1e-13. The fast and fused operators compute
    /// `log P[i, i]` in closed form without the offset.
    ///
    /// # Errors
    /// [`autograd::Error`] for scores that are not `[B, n]` with `n ≥ 1`, or non-finite.
    pub fn loss<'t, T: SortFloat>(self, scores: Var<'t, T>) -> autograd::Result<Var<'t, T>> {
        let dims = scores.shape().dims().to_vec();
        let nll = match self {
            Operator::SoftsortSq => {
                let p = SoftSort::new(SOFTSORT_TAU)
                    .distance(Distance::Squared)
                    .apply(scores)?;
                diagonal_nll(p, &dims)?
            }
            Operator::SoftsortAbs => {
                let p = SoftSort::new(SOFTSORT_TAU)
                    .distance(Distance::Abs)
                    .apply(scores)?;
                diagonal_nll(p, &dims)?
            }
            Operator::Neuralsort => {
                diagonal_nll(NeuralSort::new(NEURALSORT_TAU).apply(scores)?, &dims)?
            }
            Operator::Sinkhorn => {
                let (p, _) = Sinkhorn::new(SINKHORN_TAU)
                    .iterations(SINKHORN_ITERATIONS)
                    .apply(squared_logits(scores)?)?;
                diagonal_nll(p, &dims)?
            }
            Operator::FastSoftsortAbs => {
                fast::permutation_nll(scores, identity_target(scores)?, SOFTSORT_TAU)?
            }
            Operator::FusedSoftsortSq => {
                fast::squared_permutation_nll(scores, identity_target(scores)?, SOFTSORT_TAU)?
            }
            Operator::FusedNeuralsort => {
                let target = identity_target(scores)?;
                fast::neuralsort_permutation_nll(scores, target, NEURALSORT_TAU)?
            }
        };
        nll.add_scalar(1.0)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Computes `−mean log P[..., i, i]` over every row of `P` (shape `[..., n, n]`).
fn diagonal_nll<'t, T: SortFloat>(
    p: Var<'t, T>,
    score_dims: &[usize],
) -> autograd::Result<Var<'t, T>> {
    let n = score_dims.last().copied().unwrap_or(0);
    let rows: usize = score_dims.iter().product();
    let mut targets = Vec::with_capacity(rows);
    for _ in 0..rows / n.max(1) {
        targets.extend(0..n);
    }
    permutation_cross_entropy(p, &targets, score_dims)
}

/// Builds the SoftSort squared-distance logits without the temperature, `X[i, j] = −(ŝ_i − s_j)²`
/// with `ŝ` the scores sorted descending, from primitive ops: the Sinkhorn operator's input.
fn squared_logits<'t, T: SortFloat>(scores: Var<'t, T>) -> autograd::Result<Var<'t, T>> {
    let (sorted, _) = scores.sort(true)?;
    let difference = sorted.unsqueeze(-1)?.sub(scores.unsqueeze(-2)?)?;
    difference.mul(difference)?.neg()
}

/// Records the identity permutation of every row of `scores` as a constant on their tape.
fn identity_target<'t, T: SortFloat>(scores: Var<'t, T>) -> autograd::Result<Var<'t, T>> {
    Ok(scores
        .tape()
        .constant(identity_rows(scores.shape().dims())?))
}

/// Builds a tensor of the given dims whose every row along the last axis is `0, 1, …, n − 1`.
fn identity_rows<T: SortFloat>(dims: &[usize]) -> autograd::Result<Tensor<T>> {
    let n = dims.last().copied().unwrap_or(0);
    let numel: usize = dims.iter().product();
    let data = (0..numel / n.max(1))
        .flat_map(|_| (0..n).map(|k| T::from_f64(k as f64)))
        .collect();
    Tensor::from_vec(data, dims.to_vec())
}
