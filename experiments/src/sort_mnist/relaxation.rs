//! From per-image scores to relaxed permutation matrices, the loss and hard predictions.

use autograd::{Tape, Tensor, Var};
use softsort_ops::fast::SoftSortPermutationNll;
use softsort_ops::hungarian::round_to_permutation;
use softsort_ops::{permutation_cross_entropy, Gumbel, NeuralSort, Sinkhorn, SoftSort};

use super::config::Method;
use crate::error::{Error, Result};
use crate::metrics::argmax_rows;

/// A batch of relaxed permutation matrices.
pub struct Relaxed<'t> {
    /// `P` of shape `[M, n, n]`, or `[S, M, n, n]` for `S` Gumbel samples.
    pub p: Var<'t, f32>,
    /// The number `S` of Gumbel samples, 1 for a deterministic relaxation.
    pub samples: usize,
}

/// Builds the Sinkhorn log-scores of a batch of scores `[M, n]`: `X[m, i, j] = a_i · s[m, j]`
/// with the fixed anchors `a_i = (n − 1)/2 − i`, decreasing from row 0, so the result is
/// `[M, n, n]`.
///
/// Sinkhorn normalisation is unchanged by adding a constant to a row or a column of `X`, so
/// this equals the squared-distance form `−(s_j − a_i)²/2 = a_i s_j − s_j²/2 − a_i²/2` of the
/// Gumbel-Sinkhorn sorting network. The assignment that maximises `Σ_i a_i s_σ(i)` matches
/// the largest anchor with the largest score (rearrangement inequality), so any scores that
/// increase with the number sort the sequence correctly after Hungarian rounding.
///
/// # Errors
/// [`Error::InvalidArgument`] unless `scores` is `[M, n]` with `M, n ≥ 1`.
pub fn log_alpha<'t>(scores: Var<'t, f32>) -> Result<Var<'t, f32>> {
    let (batch, n) = batch_dims("log_alpha", &scores)?;
    let anchors = (0..n).map(|i| (n as f32 - 1.0) / 2.0 - i as f32).collect();
    let anchors = scores.tape().constant(Tensor::from_vec(anchors, [n, 1])?);
    Ok(scores.reshape([batch, 1, n])?.mul(anchors)?)
}

/// Applies the relaxation of `method` with temperature `tau` to scores `[M, n]`.
///
/// With `noise` set, the stochastic methods perturb their input with its Gumbel samples and
/// return `[S, M, n, n]` for `S` samples (training). Without it, and for the deterministic
/// methods always, the result is `[M, n, n]`: this is how models are evaluated.
///
/// # Errors
/// [`Error::InvalidArgument`] unless `scores` is `[M, n]`, and the operators' errors (such as
/// non-finite scores).
pub fn relax<'t>(
    method: Method,
    scores: Var<'t, f32>,
    tau: f64,
    sinkhorn_iterations: usize,
    noise: Option<Gumbel>,
) -> Result<Relaxed<'t>> {
    batch_dims("relax", &scores)?;
    let (p, samples) = match (method, noise) {
        (Method::DetSoftsort, _) | (Method::StochSoftsort, None) => {
            (SoftSort::new(tau).apply(scores)?, 1)
        }
        (Method::StochSoftsort, Some(gumbel)) => (
            SoftSort::new(tau).apply_gumbel(scores, &gumbel)?,
            gumbel.samples(),
        ),
        (Method::DetNeuralsort, _) | (Method::StochNeuralsort, None) => {
            (NeuralSort::new(tau).apply(scores)?, 1)
        }
        (Method::StochNeuralsort, Some(gumbel)) => (
            NeuralSort::new(tau).apply_gumbel(scores, &gumbel)?,
            gumbel.samples(),
        ),
        (Method::Sinkhorn, _) | (Method::GumbelSinkhorn, None) => {
            let sinkhorn = Sinkhorn::new(tau).iterations(sinkhorn_iterations);
            (sinkhorn.apply(log_alpha(scores)?)?.0, 1)
        }
        (Method::GumbelSinkhorn, Some(gumbel)) => {
            let sinkhorn = Sinkhorn::new(tau).iterations(sinkhorn_iterations);
            let (p, _) = sinkhorn.apply_gumbel(log_alpha(scores)?, &gumbel)?;
            (p, gumbel.samples())
        }
    };
    Ok(Relaxed { p, samples })
}

/// Computes the training loss: the mean over all rows of all matrices of `P` (`[..., n, n]`)
/// of the cross-entropy `−log(P[i, π(i)] + 1e-20)` with the true permutations `π`.
///
/// `permutations` is `[M, n]` row-major, as in
/// [`SequenceBatch::permutations`](crate::large_mnist::SequenceBatch::permutations). With a
/// leading sample axis (`P` of shape `[S, M, n, n]`) every sample is compared with the same
/// permutations.
///
/// # Errors
/// [`Error::InvalidArgument`] if `permutations` does not fit `P`, and the errors of
/// [`permutation_cross_entropy`].
pub fn loss<'t>(p: Var<'t, f32>, permutations: &[usize]) -> Result<Var<'t, f32>> {
    let dims = p.shape().dims().to_vec();
    // [M, n, n] or [S, M, n, n]: the permutations must be [M, n].
    let fits = matches!(dims.len(), 3 | 4)
        && !permutations.is_empty()
        && permutations.len() == dims[dims.len() - 3] * dims[dims.len() - 1];
    if !fits {
        return Err(Error::invalid(
            "sort_mnist::loss",
            "permutations",
            format!("{} indices for P of shape {dims:?}", permutations.len()),
            "pass one [M, n] block of true permutations for P of shape [M, n, n] or [S, M, n, n]",
        ));
    }
    let samples = if dims.len() == 4 { dims[0] } else { 1 };
    let targets = permutations.repeat(samples);
    Ok(permutation_cross_entropy(
        p,
        &targets,
        &dims[..dims.len() - 1],
    )?)
}

/// Computes the det-softsort loss without forming `P`, in O(n log n) per sequence:
/// `−(1/(M·n)) Σ log P[i, π(i)]` with the SoftSort operator of `softsort_ops::fast`.
///
/// It equals [`loss`] of the deterministic SoftSort `P` except where `P[i, π(i)]` is so small
/// that the offset `1e-20` of [`loss`] matters, which is below about `1e-13` in `f32`. There
/// this loss keeps growing with the score gap, while [`loss`] stops near `46 = −ln 1e-20`.
///
/// # Errors
/// As [`loss`], and the errors of [`SoftSortPermutationNll`].
pub fn fast_softsort_loss<'t>(
    scores: Var<'t, f32>,
    permutations: &[usize],
    tau: f64,
) -> Result<Var<'t, f32>> {
    let (batch, n) = batch_dims("fast_softsort_loss", &scores)?;
    if permutations.len() != batch * n {
        return Err(Error::invalid(
            "fast_softsort_loss",
            "permutations",
            format!("{} indices for scores [{batch}, {n}]", permutations.len()),
            "pass one true permutation per row of scores",
        ));
    }
    let targets = permutations.iter().map(|&index| index as f32).collect();
    let targets = scores
        .tape()
        .constant(Tensor::from_vec(targets, [batch, n])?);
    Ok(scores
        .tape()
        .apply(SoftSortPermutationNll::new(tau), &[scores, targets])?)
}

/// Predicts hard permutations `[M, n]` row-major from scores `[M, n]`: the argmax of each row
/// of the deterministic relaxation, or for the Sinkhorn methods the Hungarian assignment that
/// maximises the sum of the log-scores of [`log_alpha`].
///
/// # Errors
/// As [`relax`].
pub fn predict(
    method: Method,
    scores: &Tensor<f32>,
    tau: f64,
    sinkhorn_iterations: usize,
) -> Result<Vec<usize>> {
    let tape = Tape::new();
    let _guard = tape.no_grad();
    let scores = tape.constant(scores.clone());
    let matrix = if method.is_sinkhorn() {
        round_to_permutation(&log_alpha(scores)?.value())?
    } else {
        relax(method, scores, tau, sinkhorn_iterations, None)?
            .p
            .value()
    };
    argmax_rows(&matrix)
}

/// Returns `(M, n)` of scores that must be `[M, n]` with `M, n ≥ 1`.
fn batch_dims(op: &str, scores: &Var<'_, f32>) -> Result<(usize, usize)> {
    match *scores.shape().dims() {
        [batch, n] if batch > 0 && n > 0 => Ok((batch, n)),
        ref dims => Err(Error::invalid(
            op,
            "scores shape",
            format!("{dims:?}"),
            "expected [M, n]: M sequences of n scores, both at least 1",
        )),
    }
}
