//! The JSON result of a sort-mnist run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::config::Config;

/// The value of [`SortMnistResult::experiment`], which distinguishes result files of this
/// experiment from those of others.
pub const EXPERIMENT: &str = "sort-mnist";

/// One evaluation on the validation sequences during training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The number of training steps taken.
    pub step: usize,
    /// The mean training loss over the steps since the previous evaluation.
    pub train_loss: f64,
    /// The fraction of validation sequences sorted entirely right.
    pub validation_all_correct: f64,
    /// The fraction of validation positions sorted right.
    pub validation_any_correct: f64,
}

/// The outcome of a run, written as `<out>/<file stem>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SortMnistResult {
    /// Always [`EXPERIMENT`].
    pub experiment: String,
    /// The settings of the run.
    pub config: Config,
    /// The temperature used (`config.tau` or its default for `n`).
    pub tau: f64,
    /// A one-line description of the data that was loaded.
    pub data: String,
    /// Whether the data was the small embedded sample rather than the full MNIST.
    pub data_is_sample: bool,
    /// The number of trainable parameters of the CNN.
    pub parameters: usize,
    /// The validation evaluations, in training order.
    pub evaluations: Vec<Evaluation>,
    /// The step of the evaluation with the best validation all-correct accuracy (the earliest
    /// one on ties), whose model was tested.
    pub best_step: usize,
    /// The validation all-correct accuracy at `best_step`.
    pub best_validation_all_correct: f64,
    /// The number of test sequences.
    pub test_sequences: usize,
    /// The fraction of test sequences sorted entirely right by the best model.
    pub test_all_correct: f64,
    /// The fraction of test positions sorted right by the best model.
    pub test_any_correct: f64,
    /// The mean wall-clock time of one training step (forward, backward and Adam update,
    /// including drawing the batch), without the evaluations.
    pub seconds_per_step: f64,
    /// The wall-clock time of the whole run, including loading and every evaluation.
    pub total_seconds: f64,
    /// The safetensors checkpoint of the best model.
    pub checkpoint: PathBuf,
}

impl SortMnistResult {
    /// Formats a one-line summary for standard output.
    pub fn summary(&self) -> String {
        let sample = if self.data_is_sample {
            " on the embedded sample"
        } else {
            ""
        };
        format!(
            "{} {} n={} tau={} seed={} steps={}{sample}: test all-correct {:.4}, any-correct {:.4} \
             on {} sequences (best validation {:.4} at step {}), {:.3} s/step",
            self.experiment,
            self.config.method,
            self.config.n,
            self.tau,
            self.config.common.seed,
            self.config.steps,
            self.test_all_correct,
            self.test_any_correct,
            self.test_sequences,
            self.best_validation_all_correct,
            self.best_step,
            self.seconds_per_step
        )
    }
}
