//! Quantile (median) regression on large-MNIST sequences, the second experiment of the
//! SoftSort paper (Prillo & Eisenschlos 2020, Table 2), which follows the protocol of
//! NeuralSort (Grover et al. 2019).
//!
//! Each example is a sequence of `n` four-digit numbers drawn as large-MNIST images, and the
//! target is the value of its median. Two copies of the paper's CNN
//! ([`ScoreCnn`](crate::cnn::ScoreCnn)) see every image: the *score* network gives a sorting
//! score `s_j`, the *value* network a regression value `v_j`. A relaxed sort of `s` gives
//! `P`, whose middle row `⌊n/2⌋` (0-based), divided by its sum, is a weight vector `w` over
//! the items (see [`median_weights`]). The losses are
//!
//! ```text
//! deterministic:  (y − Σ_j w_j v_j)²
//! stochastic:     (1/S) Σ_samples Σ_j w_j (v_j − y)²      (w from Gumbel-perturbed scores)
//! ```
//!
//! averaged over the `M` sequences of a batch.
//!
//! # Scale
//!
//! The networks work in units of `10⁴`: the target is `y = median / 10⁴ ∈ [0, 1)`, and a
//! value `v_j` predicts `number_j / 10⁴`. Metrics are reported as the paper's "MSE (×10⁻⁴)"
//! column: `mse_e4 = mean((10⁴·ŷ − median)²) · 10⁻⁴`, which is the same number as
//! `mean((ŷ − y)²) · 10⁴` on the scaled targets.
//!
//! # Evaluation
//!
//! The headline prediction is the *hard* one: `ŷ = v_k` for the item `k` that the scores rank
//! in the middle (descending, ties by index). It is the `τ → 0` limit of `Σ_j w_j v_j` for
//! both operator families, and matches the reference NeuralSort code, which evaluates with
//! temperature 1e-10. The *soft* prediction `Σ_j w_j v_j` with the deterministic operator of
//! the method's family at the training temperature is reported next to it. Both use the
//! noise-free scores, also for the stochastic methods.

mod config;
mod eval;
mod loss;
mod model;
mod report;
mod train;

pub use config::{
    default_tau, Method, QuantileConfig, BATCH_SEQUENCES, EXPERIMENT, SEQUENCE_LENGTHS,
};
pub use eval::{evaluate, MedianMetrics, QuantileEvaluation, NUMBER_SCALE};
pub use loss::{
    deterministic_loss, hard_median_index, median_row, median_weights, stochastic_loss,
};
pub use model::{split_gradients, QuantileModel, SCORE_SCOPE, VALUE_SCOPE};
pub use report::{
    collect_results, grid_lines, published_mse_e4, summarize_table2, table2_markdown,
    QuantileCollected, Table2Row, PUBLISHED_TABLE2,
};
pub use train::{run, run_on, EvalCurvePoint, QuantileResult};
