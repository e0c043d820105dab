//! The settings of one sort-mnist run, parsed from the command line or built in code.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cnn::CnnInit;
use crate::error::{Error, Result};
use crate::limits::{check_sequence_run, SequenceRun};
use crate::run::CommonArgs;

/// The relaxed sorting operator that turns the scores into a soft permutation matrix.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// SoftSort, `P[i, j] = softmax_j(−|ŝ_i − s_j|/τ)`.
    DetSoftsort,
    /// SoftSort of Gumbel-perturbed scores (a relaxed Plackett–Luce sample).
    StochSoftsort,
    /// NeuralSort, `P[i, j] = softmax_j(((n + 1 − 2i) s_j − Σ_k |s_j − s_k|)/τ)` (i from 1).
    DetNeuralsort,
    /// NeuralSort of Gumbel-perturbed scores.
    StochNeuralsort,
    /// Sinkhorn normalisation of the log-scores `a_i · s_j` with fixed anchors `a_i`.
    Sinkhorn,
    /// Sinkhorn normalisation of Gumbel-perturbed log-scores.
    GumbelSinkhorn,
}

impl Method {
    /// Every method, in the order of Table 1.
    pub const ALL: [Method; 6] = [
        Method::DetSoftsort,
        Method::StochSoftsort,
        Method::DetNeuralsort,
        Method::StochNeuralsort,
        Method::Sinkhorn,
        Method::GumbelSinkhorn,
    ];

    /// Returns the name used on the command line and in result files, such as `det-softsort`.
    pub fn name(self) -> &'static str {
        match self {
            Method::DetSoftsort => "det-softsort",
            Method::StochSoftsort => "stoch-softsort",
            Method::DetNeuralsort => "det-neuralsort",
            Method::StochNeuralsort => "stoch-neuralsort",
            Method::Sinkhorn => "sinkhorn",
            Method::GumbelSinkhorn => "gumbel-sinkhorn",
        }
    }

    /// Whether the method perturbs its input with Gumbel noise during training.
    pub fn is_stochastic(self) -> bool {
        matches!(
            self,
            Method::StochSoftsort | Method::StochNeuralsort | Method::GumbelSinkhorn
        )
    }

    /// Whether the method is a Sinkhorn variant, whose predictions are rounded with the
    /// Hungarian algorithm.
    pub fn is_sinkhorn(self) -> bool {
        matches!(self, Method::Sinkhorn | Method::GumbelSinkhorn)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Returns the temperature of Table 4 of the SoftSort paper (Prillo & Eisenschlos 2020) for
/// sequences of length `n`: 1024 for `n ≤ 7` and 128 above.
pub fn default_tau(n: usize) -> f64 {
    if n <= 7 {
        1024.0
    } else {
        128.0
    }
}

/// The settings of one run. The defaults are those of the SoftSort paper, except the number
/// of steps: the paper trains for 100 epochs.
#[derive(Clone, Debug, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct Config {
    /// Sorting relaxation to train with.
    #[arg(long, value_enum, default_value_t = Method::DetSoftsort)]
    pub method: Method,
    /// Length of each sequence of numbers (Table 1 uses 3, 5, 7, 9 and 15).
    #[arg(short, long, default_value_t = 3, allow_negative_numbers = true)]
    pub n: usize,
    /// Temperature τ of the relaxation [default: 1024 for n ≤ 7, 128 above].
    #[arg(long, allow_negative_numbers = true)]
    pub tau: Option<f64>,
    /// Number of training steps (one batch each).
    #[arg(long, default_value_t = 1500, allow_negative_numbers = true)]
    pub steps: usize,
    /// Sequences per batch (M).
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.005, allow_negative_numbers = true)]
    pub lr: f64,
    /// Gumbel samples per sequence for the stochastic methods.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub samples: usize,
    /// Sinkhorn iterations (row then column normalisation) for the Sinkhorn methods.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    pub sinkhorn_iterations: usize,
    /// Steps between evaluations on the validation sequences; the last step is always
    /// evaluated.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    pub eval_every: usize,
    /// Validation sequences drawn from the validation images at each evaluation.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub eval_size: usize,
    /// Test sequences drawn from the test images for the final test of the best model.
    #[arg(long, default_value_t = 10_000, allow_negative_numbers = true)]
    pub test_size: usize,
    /// Compute the det-softsort loss with the O(n log n) operator instead of forming P.
    #[arg(long)]
    pub fast_loss: bool,
    /// Parameter initialisation of the CNN.
    #[arg(long, value_enum, default_value_t = CnnInit::TruncatedNormal)]
    pub init: CnnInit,
    /// Data folder, output folder, seed and quiet flag.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            method: Method::DetSoftsort,
            n: 3,
            tau: None,
            steps: 1500,
            batch_size: 20,
            lr: 0.005,
            samples: 5,
            sinkhorn_iterations: 20,
            eval_every: 100,
            eval_size: 1000,
            test_size: 10_000,
            fast_loss: false,
            init: CnnInit::TruncatedNormal,
            common: CommonArgs {
                data: None,
                out: PathBuf::from("results"),
                seed: 0,
                quiet: false,
            },
        }
    }
}

impl Config {
    /// Returns the temperature: `tau` if set, else [`default_tau`] of `n`.
    pub fn temperature(&self) -> f64 {
        self.tau.unwrap_or_else(|| default_tau(self.n))
    }

    /// Returns the stem of the result and checkpoint file names, such as
    /// `sort-mnist_det-softsort_n3_seed0`.
    pub fn file_stem(&self) -> String {
        format!(
            "{}_{}_n{}_seed{}",
            super::EXPERIMENT,
            self.method,
            self.n,
            self.common.seed
        )
    }

    /// Checks every setting, so that a bad one fails before data is loaded.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "sort-mnist";
        let counts = [
            ("n", self.n, 1),
            ("steps", self.steps, 1),
            ("batch-size", self.batch_size, 1),
            ("samples", self.samples, 1),
            ("sinkhorn-iterations", self.sinkhorn_iterations, 1),
            ("eval-every", self.eval_every, 1),
            ("eval-size", self.eval_size, 1),
            ("test-size", self.test_size, 1),
        ];
        for (name, value, min) in counts {
            if value < min {
                return Err(Error::invalid(
                    OP,
                    name,
                    value,
                    format!("--{name} must be at least {min}"),
                ));
            }
        }
        self.validate_sizes()?;
        let tau = self.temperature();
        if !(tau.is_finite() && tau > 0.0) {
            return Err(Error::invalid(
                OP,
                "tau",
                tau,
                "--tau must be positive and finite",
            ));
        }
        // The model trains in f32, so the rate must be finite there too.
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= f64::from(f32::MAX)) {
            return Err(Error::invalid(
                OP,
                "lr",
                self.lr,
                "--lr must be positive and finite in f32 (at most 3.4e38)",
            ));
        }
        if self.fast_loss && self.method != Method::DetSoftsort {
            return Err(Error::invalid(
                OP,
                "fast-loss",
                self.method,
                "--fast-loss exists only for --method det-softsort",
            ));
        }
        Ok(())
    }

    /// Checks that one training step and one evaluation fit in memory (see
    /// [`crate::limits`]).
    fn validate_sizes(&self) -> Result<()> {
        check_sequence_run(&SequenceRun {
            op: "sort-mnist",
            n: self.n,
            batch_size: self.batch_size,
            samples: if self.method.is_stochastic() {
                self.samples
            } else {
                1
            },
            forward_passes: &[("batch-size", self.batch_size)],
            evaluations: &[("eval-size", self.eval_size), ("test-size", self.test_size)],
        })
    }
}
