//! Exact k-nearest-neighbour classification of embeddings, used to evaluate the trained
//! embedding network.

use autograd::parallel::for_each_row;
use autograd::{matmul_tensors, Tensor};

use crate::error::{Error, Result};
use crate::labeled_images::NUM_CLASSES;

/// The queries compared with one block of reference embeddings at a time.
const QUERY_BLOCK: usize = 256;
/// The reference embeddings in one block, so a block of distances is at most 256 × 4096.
const REFERENCE_BLOCK: usize = 4096;

/// One of the `k` nearest reference embeddings of a query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    /// The squared Euclidean distance to the query.
    pub distance: f32,
    /// The row of the reference embedding.
    pub index: usize,
}

impl Neighbour {
    /// Whether `self` comes before `other`: by smaller distance, then by smaller index.
    fn precedes(&self, other: &Neighbour) -> bool {
        self.distance < other.distance
            || (self.distance == other.distance && self.index < other.index)
    }
}

/// Finds the `k` reference rows nearest to each query row by squared Euclidean distance.
///
/// `queries` is `[Q, D]` and `reference` is `[R, D]`. The result holds `k` neighbours per
/// query, query after query, each list ordered by distance. Equal distances are ordered by
/// smaller reference index, so the result does not depend on the thread count. Distances are
/// computed as `‖q‖² + ‖x‖² − 2 q·x` in `f32` and clamped at 0, so their rounding error is
/// about `1e-7 · (‖q‖² + ‖x‖²)`, and neighbours closer than that may swap places.
///
/// # Errors
/// [`Error::InvalidArgument`] unless both inputs are 2-D with the same number of columns,
/// every value is finite and `1 ≤ k ≤ R`.
pub fn nearest_neighbours(
    queries: &Tensor<f32>,
    reference: &Tensor<f32>,
    k: usize,
) -> Result<Vec<Neighbour>> {
    const OP: &str = "nearest_neighbours";
    if queries.ndim() != 2 || reference.ndim() != 2 || queries.dims()[1] != reference.dims()[1] {
        return Err(Error::invalid(
            OP,
            "(queries, reference)",
            format!("shapes {} and {}", queries.shape(), reference.shape()),
            "expected [Q, D] and [R, D] with the same D",
        ));
    }
    let (q, d, r) = (queries.dims()[0], queries.dims()[1], reference.dims()[0]);
    if k == 0 || k > r {
        return Err(Error::invalid(
            OP,
            "k",
            k,
            format!("must be between 1 and the {r} reference embeddings"),
        ));
    }
    for (name, t) in [("queries", queries), ("reference", reference)] {
        if let Some(at) = t.first_non_finite() {
            return Err(Error::invalid(
                OP,
                name,
                format!("{} at flat index {at}", t.data()[at]),
                "embeddings must be finite; the network has diverged, so lower the learning rate",
            ));
        }
    }

    let query_norms = row_norms(queries.data(), d);
    let reference_norms = row_norms(reference.data(), d);
    let empty = Neighbour {
        distance: f32::INFINITY,
        index: usize::MAX,
    };
    let mut best = vec![empty; q * k];
    for q_start in (0..q).step_by(QUERY_BLOCK) {
        let q_end = (q_start + QUERY_BLOCK).min(q);
        let query_block = row_block(queries, q_start, q_end)?;
        for r_start in (0..r).step_by(REFERENCE_BLOCK) {
            let r_end = (r_start + REFERENCE_BLOCK).min(r);
            let reference_t = transpose(&row_block(reference, r_start, r_end)?)?;
            let dots = matmul_tensors(&query_block, &reference_t)?;
            let width = r_end - r_start;
            let block_best = &mut best[q_start * k..q_end * k];
            for_each_row(block_best, k, (q_end - q_start) * width, |row, slots| {
                let query_norm = query_norms[q_start + row];
                let dot_row = &dots.data()[row * width..(row + 1) * width];
                for (offset, &dot) in dot_row.iter().enumerate() {
                    let index = r_start + offset;
                    let distance = (query_norm + reference_norms[index] - 2.0 * dot).max(0.0);
                    insert_sorted(slots, Neighbour { distance, index });
                }
            });
        }
    }
    Ok(best)
}

/// Inserts `candidate` into `slots` (sorted, fixed length) if it precedes the last entry.
fn insert_sorted(slots: &mut [Neighbour], candidate: Neighbour) {
    let last = slots.len() - 1;
    if !candidate.precedes(&slots[last]) {
        return;
    }
    let mut at = last;
    while at > 0 && candidate.precedes(&slots[at - 1]) {
        slots[at] = slots[at - 1];
        at -= 1;
    }
    slots[at] = candidate;
}

/// Returns `‖row‖²` for each `d`-long row of `data`.
fn row_norms(data: &[f32], d: usize) -> Vec<f32> {
    data.chunks(d.max(1))
        .map(|row| row.iter().map(|&x| x * x).sum())
        .collect()
}

/// Copies rows `start..end` of the 2-D tensor `t`.
fn row_block(t: &Tensor<f32>, start: usize, end: usize) -> Result<Tensor<f32>> {
    let d = t.dims()[1];
    Ok(Tensor::from_vec(
        t.data()[start * d..end * d].to_vec(),
        [end - start, d],
    )?)
}

/// Transposes the 2-D tensor `t`.
fn transpose(t: &Tensor<f32>) -> Result<Tensor<f32>> {
    let (rows, cols) = (t.dims()[0], t.dims()[1]);
    let mut out = vec![0.0; rows * cols];
    for (i, row) in t.data().chunks(cols.max(1)).enumerate() {
        for (j, &x) in row.iter().enumerate() {
            out[j * rows + i] = x;
        }
    }
    Ok(Tensor::from_vec(out, [cols, rows])?)
}

/// Predicts a label from the labels of the `k` nearest neighbours by majority vote.
///
/// The label with the most votes wins. A tie goes to the tied label whose neighbours have the
/// smallest summed distance to the query, and a tie in that sum to the smallest label.
///
/// # Panics
/// If `neighbours` is empty or a neighbour's index is outside `labels`, both of which
/// [`nearest_neighbours`] rules out.
pub fn majority_vote(neighbours: &[Neighbour], labels: &[u8]) -> u8 {
    assert!(!neighbours.is_empty(), "majority_vote needs a neighbour");
    let mut votes = [0usize; NUM_CLASSES];
    let mut summed_distance = [0.0f64; NUM_CLASSES];
    for neighbour in neighbours {
        let label = usize::from(labels[neighbour.index]);
        votes[label] += 1;
        summed_distance[label] += f64::from(neighbour.distance);
    }
    let mut winner = usize::from(labels[neighbours[0].index]);
    for label in 0..NUM_CLASSES {
        let more_votes = votes[label] > votes[winner];
        let closer =
            votes[label] == votes[winner] && summed_distance[label] < summed_distance[winner];
        let smaller = votes[label] == votes[winner]
            && summed_distance[label] == summed_distance[winner]
            && label < winner;
        if more_votes || closer || smaller {
            winner = label;
        }
    }
    winner as u8
}

/// Classifies each query row by a majority vote (see [`majority_vote`]) of its `k` nearest
/// reference rows (see [`nearest_neighbours`]).
///
/// # Errors
/// As [`nearest_neighbours`], and [`Error::InvalidArgument`] if `reference_labels` does not
/// have one label per reference row or a label exceeds 9.
pub fn knn_classify(
    queries: &Tensor<f32>,
    reference: &Tensor<f32>,
    reference_labels: &[u8],
    k: usize,
) -> Result<Vec<u8>> {
    if reference.ndim() != 2 || reference_labels.len() != reference.dims()[0] {
        return Err(Error::invalid(
            "knn_classify",
            "reference_labels",
            format!("{} labels", reference_labels.len()),
            format!(
                "expected one label per row of the reference {}",
                reference.shape()
            ),
        ));
    }
    if let Some(&label) = reference_labels
        .iter()
        .find(|&&l| usize::from(l) >= NUM_CLASSES)
    {
        return Err(Error::invalid(
            "knn_classify",
            "reference_labels",
            label,
            format!("labels must be below {NUM_CLASSES}"),
        ));
    }
    let neighbours = nearest_neighbours(queries, reference, k)?;
    Ok(neighbours
        .chunks(k)
        .map(|row| majority_vote(row, reference_labels))
        .collect())
}

/// Returns the fraction of positions where `predicted` equals `truth`.
///
/// # Errors
/// [`Error::InvalidArgument`] if the lengths differ or both are empty.
pub fn accuracy(predicted: &[u8], truth: &[u8]) -> Result<f64> {
    if predicted.len() != truth.len() || truth.is_empty() {
        return Err(Error::invalid(
            "accuracy",
            "lengths",
            format!("{} predictions and {} labels", predicted.len(), truth.len()),
            "expected the same non-zero number of predictions and labels",
        ));
    }
    let correct = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    Ok(correct as f64 / truth.len() as f64)
}
