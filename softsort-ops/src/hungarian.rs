//! The Hungarian algorithm, used to round a Sinkhorn matrix to the nearest permutation.

use autograd::{Error, Float, Result, Tensor};

use crate::error::check_square;
use crate::kernels::zeroed;

/// Solves the linear assignment problem `max_σ Σ_i scores[i·n + σ(i)]` over permutations `σ`
/// of `0..n` for a row-major `n × n` matrix of finite scores, returning `σ` (row `i` is
/// assigned column `σ[i]`).
///
/// This is the O(n³) shortest-augmenting-path form of the Hungarian algorithm (Kuhn–Munkres
/// with row and column potentials, as in Jonker & Volgenant), run on the costs `−scores` in
/// `f64`. The scores are first divided by their largest magnitude, which leaves the optimal
/// assignment unchanged and keeps the potentials from overflowing for scores near `f64::MAX`.
///
/// ```
/// use softsort_ops::hungarian::max_weight_assignment;
///
/// // The diagonal sums to 3, the anti-diagonal to 10.
/// assert_eq!(max_weight_assignment(&[1.0, 5.0, 5.0, 2.0], 2)?, vec![1, 0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`autograd::Error::Shape`] if `scores.len() != n · n`, and
/// [`autograd::Error::InvalidArgument`] if a score is NaN or infinite.
pub fn max_weight_assignment(scores: &[f64], n: usize) -> Result<Vec<usize>> {
    if scores.len() != n * n {
        return Err(Error::shape(
            "hungarian",
            format!(
                "expected {n} × {n} = {} scores, got {}",
                n * n,
                scores.len()
            ),
        ));
    }
    if let Some(i) = scores.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            "hungarian",
            "score",
            scores[i],
            format!("element {i} is not finite; every score must be a finite number"),
        ));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let magnitude = scores.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let scale = if magnitude > 0.0 {
        1.0 / magnitude
    } else {
        1.0
    };
    let cost = |i: usize, j: usize| -scores[i * n + j] * scale;
    // 1-based arrays with a virtual column 0, in the classic formulation.
    let mut row_potential = vec![0.0f64; n + 1];
    let mut column_potential = vec![0.0f64; n + 1];
    let mut row_of_column = vec![0usize; n + 1];
    let mut previous_column = vec![0usize; n + 1];
    let mut min_slack = vec![0.0f64; n + 1];
    let mut used = vec![false; n + 1];
    for row in 1..=n {
        row_of_column[0] = row;
        let mut column = 0;
        min_slack.fill(f64::INFINITY);
        used.fill(false);
        // Grow a tree of tight edges from `row` until it reaches a free column.
        loop {
            used[column] = true;
            let i = row_of_column[column];
            let mut delta = f64::INFINITY;
            let mut next = 0;
            for j in 1..=n {
                if used[j] {
                    continue;
                }
                let slack = cost(i - 1, j - 1) - row_potential[i] - column_potential[j];
                if slack < min_slack[j] {
                    min_slack[j] = slack;
                    previous_column[j] = column;
                }
                if min_slack[j] < delta {
                    delta = min_slack[j];
                    next = j;
                }
            }
            for j in 0..=n {
                if used[j] {
                    row_potential[row_of_column[j]] += delta;
                    column_potential[j] -= delta;
                } else {
                    min_slack[j] -= delta;
                }
            }
            column = next;
            if row_of_column[column] == 0 {
                break;
            }
        }
        // Flip the augmenting path back to the root.
        loop {
            let before = previous_column[column];
            row_of_column[column] = row_of_column[before];
            column = before;
            if column == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0; n];
    for j in 1..=n {
        assignment[row_of_column[j] - 1] = j - 1;
    }
    Ok(assignment)
}

/// Rounds each matrix of `log_scores` (`[..., n, n]`) to the permutation matrix that
/// maximises `Σ_i log_scores[i, σ(i)]`. Apply it to Sinkhorn's input (or to `log P`) for the
/// hard Gumbel-Sinkhorn permutation; it has no gradient.
///
/// ```
/// use autograd::Tensor;
/// use softsort_ops::hungarian::round_to_permutation;
///
/// let x = Tensor::from_vec(vec![0.1, 0.9, 0.8, 0.2], [2, 2])?;
/// assert_eq!(round_to_permutation(&x)?.to_vec(), vec![0.0, 1.0, 1.0, 0.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`autograd::Error::Shape`] unless the last two axes are equal and non-empty,
/// [`autograd::Error::InvalidArgument`] for non-finite scores.
pub fn round_to_permutation<T: Float>(log_scores: &Tensor<T>) -> Result<Tensor<T>> {
    let (batch, n) = check_square("hungarian", "log_scores", log_scores)?;
    let data = log_scores.data();
    let mut out = zeroed(batch * n * n);
    for b in 0..batch {
        let scores: Vec<f64> = data[b * n * n..(b + 1) * n * n]
            .iter()
            .map(|x| x.as_f64())
            .collect();
        for (i, j) in max_weight_assignment(&scores, n)?.into_iter().enumerate() {
            out[b * n * n + i * n + j] = T::one();
        }
    }
    Tensor::from_vec(out, log_scores.shape().clone())
}
