//! The SoftSort paper's speed comparison (Prillo & Eisenschlos 2020, "SoftSort: A Continuous
//! Relaxation for the argsort Operator", the synthetic speed task).
//!
//! For each operator and each size `n`, `B = 20` rows of `n` free scores, drawn uniform in
//! `[−1, 1)`, are trained so that the relaxed permutation matrix `P` of each row approaches the
//! identity: the scores are min–max normalised per row (minimum and maximum detached), the loss
//! is `mean(1 − log diag P)`, and SGD (lr 10, momentum 0.5, weight decay 0.01) updates them.
//! The mean wall-clock time of a training step (forward, backward and update) is measured
//! after untimed warm-up steps. `scripts/torch/speed.py` runs the same task in PyTorch.
//!
//! ```
//! use experiments::speed::{run_sweep, Operator, SweepConfig};
//!
//! let config = SweepConfig {
//!     operators: vec![Operator::SoftsortAbs, Operator::FastSoftsortAbs],
//!     sizes: vec![8],
//!     fast_sizes: vec![8, 64],
//!     warmup: 1,
//!     steps: 2,
//!     skip_after: None,
//!     seed: 0,
//! };
//! let result = run_sweep(&config, |_| {})?;
//! assert_eq!(result.measurements.len(), 3);
//! assert!(result.measurements.iter().all(|m| m.seconds_per_step > 0.0));
//! # Ok::<(), experiments::Error>(())
//! ```

mod operator;
mod output;
mod sweep;
mod task;

pub use operator::{Operator, NEURALSORT_TAU, SINKHORN_ITERATIONS, SINKHORN_TAU, SOFTSORT_TAU};
pub use output::{csv_table, write_csv, write_svg, AxisScale};
pub use sweep::{
    fast_sizes, max_dense_n, run_sweep, size_range, Measurement, Progress, Skip, SweepConfig,
    SweepResult, MAX_DENSE_ENTRIES, MAX_FAST_N,
};
pub use task::{
    min_max_normalize, task_loss, SpeedScores, TrainingRun, BATCH, LEARNING_RATE, MOMENTUM,
    WEIGHT_DECAY,
};
