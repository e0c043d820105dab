//! The differentiable kNN loss: a relaxed top-`k` mask over the neighbours of each query.

use std::fmt;
use std::str::FromStr;

use autograd::{Error, Result, Tensor, Var};
use softsort_ops::{top_k_mask, NeuralSort, SoftSort, SortFloat};

/// The relaxed sorting operator that turns distance scores into a permutation matrix `P`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sorter {
    /// SoftSort with the absolute distance: `P[i, j] = softmax_j(−|ŝ_i − s_j| / τ)`.
    #[default]
    SoftSort,
    /// NeuralSort (Grover et al. 2019).
    NeuralSort,
}

impl Sorter {
    /// Applies the operator with temperature `tau` to scores `[..., n]`, giving `P` of shape
    /// `[..., n, n]` that sorts in descending order.
    ///
    /// # Errors
    /// As [`SoftSort::apply`] and [`NeuralSort::apply`]: a temperature that is not positive
    /// and finite, or non-finite scores.
    pub fn apply<'t, T: SortFloat>(self, scores: Var<'t, T>, tau: f64) -> Result<Var<'t, T>> {
        match self {
            Sorter::SoftSort => SoftSort::new(tau).apply(scores),
            Sorter::NeuralSort => NeuralSort::new(tau).apply(scores),
        }
    }
}

impl FromStr for Sorter {
    type Err = Error;

    /// Parses `"softsort"` or `"neuralsort"`, case-insensitively.
    fn from_str(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "softsort" => Ok(Sorter::SoftSort),
            "neuralsort" => Ok(Sorter::NeuralSort),
            _ => Err(Error::invalid(
                "knn",
                "sorter",
                name,
                "expected \"softsort\" or \"neuralsort\"",
            )),
        }
    }
}

impl fmt::Display for Sorter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sorter::SoftSort => "softsort",
            Sorter::NeuralSort => "neuralsort",
        })
    }
}

/// Computes the negative squared Euclidean distances `s[i, j] = −‖q_i − x_j‖²` between the
/// queries `q` (`[Q, D]`) and the neighbours `x` (`[N, D]`), giving `[Q, N]`.
///
/// It is expanded as `2 q_i·x_j − ‖q_i‖² − ‖x_j‖²`, so one matrix product does the work; the
/// gradient comes from the `matmul`, `mul` and `sum_axes` it is composed of.
///
/// # Errors
/// [`Error::Shape`] unless both inputs are 2-D with the same number of columns.
pub fn negative_squared_distances<'t, T: SortFloat>(
    queries: Var<'t, T>,
    neighbours: Var<'t, T>,
) -> Result<Var<'t, T>> {
    let (q_dims, x_dims) = (queries.shape(), neighbours.shape());
    if q_dims.ndim() != 2 || x_dims.ndim() != 2 || q_dims.dims()[1] != x_dims.dims()[1] {
        return Err(Error::shape(
            "negative_squared_distances",
            format!("expected queries [Q, D] and neighbours [N, D], got {q_dims} and {x_dims}"),
        ));
    }
    let cross = queries
        .matmul(neighbours.transpose(0, 1)?)?
        .mul_scalar(2.0)?;
    let query_norms = queries.mul(queries)?.sum_axes(&[1], true)?;
    let neighbour_norms = neighbours.mul(neighbours)?.sum_axes(&[1], false)?;
    cross.sub(query_norms)?.sub(neighbour_norms)
}

/// Computes the differentiable kNN loss of Grover et al. (2019), which the SoftSort paper
/// reuses:
///
/// ```text
/// P_i = sorter(s_i, τ)                s[i, j] = −‖q_i − x_j‖²           [Q, N, N]
/// m_i[j] = Σ_{r<k} P_i[r, j]          (soft top-k mask over the N neighbours)
/// loss = −(1/Q) Σ_i Σ_j [label(q_i) = label(x_j)] · m_i[j]
/// ```
///
/// For `τ → 0` the mask is 1 on the `k` nearest neighbours of each query, so the loss tends
/// to minus the mean number of same-label neighbours among them. Its minimum is `−k`.
///
/// # Errors
/// [`Error::Shape`] for embeddings that are not `[Q, D]` and `[N, D]` or label counts that
/// differ from `Q` and `N`; [`Error::InvalidArgument`] unless `1 ≤ k ≤ N`; the sorter's
/// errors for a bad temperature or non-finite distances.
pub fn knn_loss<'t, T: SortFloat>(
    queries: Var<'t, T>,
    query_labels: &[u8],
    neighbours: Var<'t, T>,
    neighbour_labels: &[u8],
    k: usize,
    sorter: Sorter,
    tau: f64,
) -> Result<Var<'t, T>> {
    let scores = negative_squared_distances(queries, neighbours)?;
    let (q, n) = (scores.shape().dims()[0], scores.shape().dims()[1]);
    if query_labels.len() != q || neighbour_labels.len() != n {
        return Err(Error::shape(
            "knn_loss",
            format!(
                "got {} query labels and {} neighbour labels for {q} queries and {n} neighbours",
                query_labels.len(),
                neighbour_labels.len()
            ),
        ));
    }
    let mask = top_k_mask(sorter.apply(scores, tau)?, k)?;
    let same_label = same_label_matrix::<T>(query_labels, neighbour_labels)?;
    let hits = mask.mul(queries.tape().constant(same_label))?;
    hits.sum_axes(&[1], false)?.mean()?.neg()
}

/// Builds the `[Q, N]` matrix with 1 where query `i` and neighbour `j` share a label, else 0.
fn same_label_matrix<T: SortFloat>(
    query_labels: &[u8],
    neighbour_labels: &[u8],
) -> Result<Tensor<T>> {
    let data = query_labels
        .iter()
        .flat_map(|&a| {
            neighbour_labels
                .iter()
                .map(move |&b| if a == b { T::one() } else { T::zero() })
        })
        .collect();
    Tensor::from_vec(data, [query_labels.len(), neighbour_labels.len()])
}
