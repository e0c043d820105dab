//! Evaluation of a quantile model on freshly drawn, seeded sequences.

use autograd::{Tape, Tensor};
use serde::{Deserialize, Serialize};
use softsort_ops::{NeuralSort, SoftSort};

use crate::error::{Error, Result};
use crate::labeled_images::LabeledImages;
use crate::large_mnist::LargeMnistGenerator;
use crate::metrics::{mse, r_squared, spearman};
use crate::quantile::config::Method;
use crate::quantile::loss::{hard_median_index, median_weights};
use crate::quantile::model::QuantileModel;

/// The factor between numbers and the networks' units: a value `v` predicts the number
/// `v · NUMBER_SCALE`, and targets are `median / NUMBER_SCALE`.
pub const NUMBER_SCALE: f64 = 1e4;

/// The regression metrics of one kind of prediction over an evaluation set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MedianMetrics {
    /// `mean((prediction − median)²) · 10⁻⁴` with predictions and medians in the numbers'
    /// own units (`0..=9999`). This is the "MSE (×10⁻⁴)" column of the SoftSort paper's
    /// Table 2.
    pub mse_e4: f64,
    /// The coefficient of determination of the predicted medians.
    pub r_squared: f64,
    /// Spearman's rank correlation between predicted and true medians.
    pub spearman: f64,
}

/// The metrics of a model on one evaluation set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantileEvaluation {
    /// The number of sequences.
    pub sequences: usize,
    /// Metrics of the hard prediction `v_k`, with `k` the element the scores rank in the
    /// middle; the headline numbers.
    pub hard: MedianMetrics,
    /// Metrics of the soft prediction `Σ_j w_j v_j` with the median weights of the
    /// deterministic operator of the method's family at the training temperature.
    pub soft: MedianMetrics,
    /// The fraction of sequences whose element ranked in the middle shows the true median
    /// number.
    pub median_identified: f64,
}

/// Evaluates `model` on `sequences` sequences of length `n` drawn from `images` by a
/// [`LargeMnistGenerator`] seeded with `seed`, so that equal seeds give the same set. The
/// sequences are processed `chunk` at a time, which bounds the memory and does not change
/// the result.
///
/// # Errors
/// [`Error::InvalidArgument`] if `sequences < 2` or `chunk = 0`, or if the networks output a
/// non-finite score or value; errors of the generator and the networks.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &QuantileModel,
    images: &LabeledImages,
    n: usize,
    method: Method,
    tau: f64,
    sequences: usize,
    chunk: usize,
    seed: u64,
) -> Result<QuantileEvaluation> {
    if sequences < 2 || chunk == 0 {
        return Err(Error::invalid(
            "quantile::evaluate",
            "sequences/chunk",
            format!("{sequences}/{chunk}"),
            "evaluate at least 2 sequences, in chunks of at least 1",
        ));
    }
    let mut generator = LargeMnistGenerator::new(images, n, seed)?;
    let mut truth = Vec::with_capacity(sequences);
    let mut hard = Vec::with_capacity(sequences);
    let mut soft = Vec::with_capacity(sequences);
    let mut identified = 0usize;

    let mut done = 0;
    while done < sequences {
        let size = chunk.min(sequences - done);
        let batch = generator.next_batch(size)?;
        let (scores, values) = model.predict(&batch.images)?;
        check_finite("value", &values)?;
        let weights = soft_median_weights(&scores, size, n, method, tau)?;

        for s in 0..size {
            let numbers = batch.numbers_row(s);
            let median = f64::from(numbers[batch.permutation_row(s)[n / 2]]);
            let row_scores = &scores.data()[s * n..(s + 1) * n];
            let row_values = &values.data()[s * n..(s + 1) * n];
            let row_weights = &weights[s * n..(s + 1) * n];

            let k = hard_median_index(row_scores)?;
            identified += usize::from(f64::from(numbers[k]) == median);
            let soft_value: f64 = row_weights
                .iter()
                .zip(row_values)
                .map(|(&w, &v)| f64::from(w) * f64::from(v))
                .sum();
            truth.push(median);
            hard.push(f64::from(row_values[k]) * NUMBER_SCALE);
            soft.push(soft_value * NUMBER_SCALE);
        }
        done += size;
    }

    Ok(QuantileEvaluation {
        sequences,
        hard: median_metrics(&hard, &truth)?,
        soft: median_metrics(&soft, &truth)?,
        median_identified: identified as f64 / sequences as f64,
    })
}

/// Computes the metrics of predicted medians against true ones, both in the numbers' units.
fn median_metrics(predicted: &[f64], truth: &[f64]) -> Result<MedianMetrics> {
    Ok(MedianMetrics {
        mse_e4: mse(predicted, truth)? / NUMBER_SCALE,
        r_squared: r_squared(predicted, truth)?,
        spearman: spearman(predicted, truth)?,
    })
}

/// Returns the median weights `[M·n]` of the deterministic operator of `method`'s family
/// at temperature `tau`, for scores `[M·n]`.
fn soft_median_weights(
    scores: &Tensor<f32>,
    sequences: usize,
    n: usize,
    method: Method,
    tau: f64,
) -> Result<Vec<f32>> {
    check_finite("score", scores)?;
    let tape = Tape::new();
    let _guard = tape.no_grad();
    let scores = tape.constant(scores.reshape([sequences, n])?);
    let p = if method.is_softsort() {
        SoftSort::new(tau).apply(scores)?
    } else {
        NeuralSort::new(tau).apply(scores)?
    };
    Ok(median_weights(p)?.value().to_vec())
}

/// Rejects a network output with a non-finite element.
fn check_finite(what: &str, output: &Tensor<f32>) -> Result<()> {
    match output.data().iter().find(|x| !x.is_finite()) {
        Some(&bad) => Err(Error::invalid(
            "quantile::evaluate",
            what,
            bad,
            "the network output is not finite; training diverged, try a smaller learning rate",
        )),
        None => Ok(()),
    }
}
