//! Metrics of the experiments: permutation accuracy for the sorting task, and mean squared error,
//! R² and Spearman's rank correlation for regression.

use autograd::{Float, Tensor};

use crate::error::{Error, Result};

/// Computes the hard permutation predicted by a soft permutation matrix: the column of the
/// maximum of each row, `result[m·n + i] = argmax_j P[m, i, j]`.
///
/// `p` has shape `[M, n, n]` (a batch) or `[n, n]` (one matrix, `M = 1`), and the result is `[M, n]`
/// row-major. A row with several maxima gives the smallest column. The result need not be a
/// permutation, since two rows may share a maximum column.
///
/// # Errors
/// [`Error::InvalidArgument`] if the shape is not `[M, n, n]` or `[n, n]` with `M, n ≥ 1`, or if
/// an element is not finite.
pub fn argmax_rows<T: Float>(p: &Tensor<T>) -> Result<Vec<usize>> {
    let dims = p.dims();
    let square = match dims {
        [n, m] | [_, n, m] => n == m && *n > 0 && p.numel() > 0,
        _ => false,
    };
    if !square {
        return Err(Error::invalid(
            "argmax_rows",
            "shape of P",
            format!("{dims:?}"),
            "expected [M, n, n] or [n, n] with M, n ≥ 1",
        ));
    }
    if let Some(index) = p.first_non_finite() {
        return Err(Error::invalid(
            "argmax_rows",
            &format!("P (flat element {index})"),
            p.data()[index],
            "every element must be finite; check the scores and temperature that produced P",
        ));
    }

    let n = dims[dims.len() - 1];
    let argmax = p
        .data()
        .chunks(n)
        .map(|row| {
            let mut best = 0;
            for (column, &value) in row.iter().enumerate().skip(1) {
                if value > row[best] {
                    best = column;
                }
            }
            best
        })
        .collect();
    Ok(argmax)
}

/// The accuracy of predicted permutations against true ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PermutationAccuracy {
    /// The fraction of sequences whose whole predicted permutation equals the true one
    /// ("all correct").
    pub all_correct: f64,
    /// The fraction of positions `i`, over all sequences, where the predicted index equals the
    /// true one ("any correct" when averaged per position).
    pub per_position: f64,
}

/// Compares predicted permutations with true ones, both `[M, n]` row-major with `n =
/// sequence_len`: a sequence counts as all correct if its `n` entries all match, and each
/// matching entry counts towards the per-position accuracy.
///
/// # Errors
/// [`Error::InvalidArgument`] if `sequence_len` is zero, the two lengths differ, or they are
/// zero or not a multiple of `sequence_len`.
pub fn permutation_accuracy(
    predicted: &[usize],
    truth: &[usize],
    sequence_len: usize,
) -> Result<PermutationAccuracy> {
    const OP: &str = "permutation_accuracy";
    if sequence_len == 0 {
        return Err(Error::invalid(
            OP,
            "sequence_len",
            0,
            "sequences have at least one element",
        ));
    }
    if predicted.len() != truth.len() {
        return Err(Error::invalid(
            OP,
            "predicted.len()",
            predicted.len(),
            format!(
                "the true permutations have {} entries; pass the same number",
                truth.len()
            ),
        ));
    }
    if truth.is_empty() || !truth.len().is_multiple_of(sequence_len) {
        return Err(Error::invalid(
            OP,
            "truth.len()",
            truth.len(),
            format!("expected a positive multiple of sequence_len = {sequence_len}"),
        ));
    }

    let sequences = truth.len() / sequence_len;
    let mut all_correct = 0usize;
    let mut positions_correct = 0usize;
    for (predicted_row, true_row) in predicted
        .chunks(sequence_len)
        .zip(truth.chunks(sequence_len))
    {
        let matches = predicted_row
            .iter()
            .zip(true_row)
            .filter(|(a, b)| a == b)
            .count();
        positions_correct += matches;
        all_correct += usize::from(matches == sequence_len);
    }
    Ok(PermutationAccuracy {
        all_correct: all_correct as f64 / sequences as f64,
        per_position: positions_correct as f64 / truth.len() as f64,
    })
}

/// Computes the mean squared error `Σᵢ (predictedᵢ − targetᵢ)² / N`.
///
/// # Errors
/// [`Error::InvalidArgument`] if the inputs are empty, differ in length or contain a non-finite
/// value.
pub fn mse<T: Float>(predicted: &[T], target: &[T]) -> Result<f64> {
    check_pair("mse", predicted, target)?;
    let total: f64 = predicted
        .iter()
        .zip(target)
        .map(|(&p, &t)| (p.as_f64() - t.as_f64()).powi(2))
        .sum();
    Ok(total / target.len() as f64)
}

/// Computes the coefficient of determination `R² = 1 − Σᵢ (targetᵢ − predictedᵢ)² / Σᵢ (targetᵢ −
/// mean(target))²`: 1 for a perfect prediction, 0 for predicting the mean, negative for worse.
///
/// # Errors
/// As [`mse`], and [`Error::InvalidArgument`] if all targets are equal, which leaves R²
/// undefined.
pub fn r_squared<T: Float>(predicted: &[T], target: &[T]) -> Result<f64> {
    check_pair("r_squared", predicted, target)?;
    let mean = mean_f64(target);
    let total: f64 = target.iter().map(|&t| (t.as_f64() - mean).powi(2)).sum();
    if total == 0.0 {
        return Err(Error::invalid(
            "r_squared",
            "target",
            format!("{} values all equal to {mean}", target.len()),
            "R² needs targets that vary",
        ));
    }
    let residual: f64 = predicted
        .iter()
        .zip(target)
        .map(|(&p, &t)| (t.as_f64() - p.as_f64()).powi(2))
        .sum();
    Ok(1.0 - residual / total)
}

/// Computes Spearman's rank correlation: the Pearson correlation of the ranks of `x` and `y`,
/// where tied values get the mean of the ranks they span.
///
/// # Errors
/// As [`mse`], and [`Error::InvalidArgument`] if all values of `x` or of `y` are equal, which
/// leaves the correlation undefined.
pub fn spearman<T: Float>(x: &[T], y: &[T]) -> Result<f64> {
    check_pair("spearman", x, y)?;
    let x_ranks = average_ranks(x);
    let y_ranks = average_ranks(y);
    let mean = (x.len() as f64 + 1.0) / 2.0; // the mean of ranks 1..=N, with or without ties
    let mut covariance = 0.0;
    let mut x_variance = 0.0;
    let mut y_variance = 0.0;
    for (&a, &b) in x_ranks.iter().zip(&y_ranks) {
        covariance += (a - mean) * (b - mean);
        x_variance += (a - mean).powi(2);
        y_variance += (b - mean).powi(2);
    }
    for (name, variance) in [("x", x_variance), ("y", y_variance)] {
        if variance == 0.0 {
            return Err(Error::invalid(
                "spearman",
                name,
                format!("{} equal values", x.len()),
                "the rank correlation needs values that vary",
            ));
        }
    }
    Ok(covariance / (x_variance * y_variance).sqrt())
}

/// Returns the 1-based ranks of `values` in increasing order, ties getting the mean rank of the
/// positions they span.
fn average_ranks<T: Float>(values: &[T]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    // The only caller, spearman, rejects non-finite values first, so partial_cmp returns Some.
    order.sort_by(|&a, &b| values[a].partial_cmp(&values[b]).expect("finite values"));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end, whose mean is (start + 1 + end) / 2.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = rank;
        }
        start = end;
    }
    ranks
}

fn mean_f64<T: Float>(values: &[T]) -> f64 {
    values.iter().map(|&v| v.as_f64()).sum::<f64>() / values.len() as f64
}

fn check_pair<T: Float>(op: &str, first: &[T], second: &[T]) -> Result<()> {
    if first.is_empty() || first.len() != second.len() {
        return Err(Error::invalid(
            op,
            "lengths",
            format!("{} and {}", first.len(), second.len()),
            "expected two non-empty slices of equal length",
        ));
    }
    for (name, values) in [("first input", first), ("second input", second)] {
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                op,
                &format!("{name}[{index}]"),
                values[index],
                "every value must be finite",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn argmax_of_batched_rows() {
        #[rustfmt::skip]
        let p = Tensor::<f32>::from_vec(vec![
            0.1, 0.7, 0.2,
            0.6, 0.3, 0.1,
            0.0, 0.1, 0.9,

            0.2, 0.2, 0.6,
            0.4, 0.4, 0.2, // a tie: the first maximum wins
            0.9, 0.0, 0.1,
        ], [2, 3, 3]).unwrap();
        assert_eq!(argmax_rows(&p).unwrap(), vec![1, 0, 2, 2, 0, 0]);

        let single = Tensor::<f64>::from_vec(vec![0.0, 1.0, 1.0, 0.0], [2, 2]).unwrap();
        assert_eq!(argmax_rows(&single).unwrap(), vec![1, 0]);
    }

    #[test]
    fn argmax_rejects_bad_input() {
        let not_square = Tensor::<f32>::zeros([2, 3, 2]);
        let message = argmax_rows(&not_square).unwrap_err().to_string();
        assert!(message.contains("[2, 3, 2]"), "{message}");
        assert!(argmax_rows(&Tensor::<f32>::zeros([4])).is_err());
        assert!(argmax_rows(&Tensor::<f32>::zeros([0, 2, 2])).is_err());

        let with_nan = Tensor::<f32>::from_vec(vec![0.0, f32::NAN, 1.0, 0.0], [2, 2]).unwrap();
        let message = argmax_rows(&with_nan).unwrap_err().to_string();
        assert!(message.contains("flat element 1"), "{message}");
    }

    #[test]
    fn accuracy_of_hand_built_permutations() {
        let truth = [0, 1, 2, 2, 1, 0, 1, 2, 0];
        let predicted = [0, 1, 2, 2, 0, 1, 0, 0, 0];
        let accuracy = permutation_accuracy(&predicted, &truth, 3).unwrap();
        assert!(close(accuracy.all_correct, 1.0 / 3.0), "{accuracy:?}");
        assert!(close(accuracy.per_position, 5.0 / 9.0), "{accuracy:?}");

        let perfect = permutation_accuracy(&truth, &truth, 3).unwrap();
        assert_eq!(perfect.all_correct, 1.0);
        assert_eq!(perfect.per_position, 1.0);
    }

    #[test]
    fn accuracy_rejects_bad_lengths() {
        assert!(permutation_accuracy(&[0, 1], &[0, 1, 2], 3).is_err());
        assert!(permutation_accuracy(&[0, 1], &[0, 1], 3).is_err());
        assert!(permutation_accuracy(&[], &[], 3).is_err());
        assert!(permutation_accuracy(&[0], &[0], 0).is_err());
    }

    #[test]
    fn mse_and_r_squared_by_hand() {
        let target = [1.0, 2.0, 3.0];
        assert!(close(mse(&[1.0, 2.0, 5.0], &target).unwrap(), 4.0 / 3.0));
        // Residual sum 1, total sum of squares 2.
        assert!(close(r_squared(&[1.0, 2.0, 4.0], &target).unwrap(), 0.5));
        assert!(close(r_squared(&target, &target).unwrap(), 1.0));
        assert!(close(r_squared(&[2.0, 2.0, 2.0], &target).unwrap(), 0.0));
        assert!(r_squared(&[3.0, 2.0, 1.0], &target).unwrap() < 0.0);
    }

    #[test]
    fn regression_metrics_reject_bad_input() {
        let message = r_squared(&[1.0f32, 2.0], &[3.0, 3.0])
            .unwrap_err()
            .to_string();
        assert!(message.contains("all equal to 3"), "{message}");
        assert!(mse::<f64>(&[], &[]).is_err());
        assert!(mse(&[1.0], &[1.0, 2.0]).is_err());
        let message = mse(&[1.0, f64::INFINITY], &[1.0, 2.0])
            .unwrap_err()
            .to_string();
        assert!(message.contains("first input[1] = inf"), "{message}");
    }

    #[test]
    fn spearman_by_hand() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let cubes = [1.0, 8.0, 27.0, 64.0];
        assert!(close(spearman(&x, &cubes).unwrap(), 1.0));
        let reversed = [4.0, 3.0, 2.0, 1.0];
        assert!(close(spearman(&x, &reversed).unwrap(), -1.0));
        // Ranks [1, 2.5, 2.5, 4] against [1, 2, 3, 4]: 4.5 / sqrt(4.5 · 5).
        let tied = [1.0, 2.0, 2.0, 3.0];
        let expected = 4.5 / (4.5f64 * 5.0).sqrt();
        assert!(close(spearman(&tied, &x).unwrap(), expected));
        assert!(close(spearman(&x, &tied).unwrap(), expected));
    }

    #[test]
    fn spearman_rejects_constant_input() {
        let message = spearman(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0])
            .unwrap_err()
            .to_string();
        assert!(message.contains("invalid y"), "{message}");
    }

    #[test]
    fn average_ranks_with_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            vec![4.0, 1.0, 4.0, 2.0, 4.0]
        );
    }
}
