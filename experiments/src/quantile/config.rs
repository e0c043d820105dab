//! The methods, their published temperatures and the settings of one run.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cnn::CnnInit;
use crate::error::{Error, Result};
use crate::limits::{check_sequence_run, SequenceRun};
use crate::run::CommonArgs;

/// The name of the experiment in result files and grid lines.
pub const EXPERIMENT: &str = "quantile-mnist";

/// The sequence lengths of Table 2 of the SoftSort paper.
pub const SEQUENCE_LENGTHS: [usize; 3] = [5, 9, 15];

/// The number `M` of sequences per training batch in the SoftSort paper.
pub const BATCH_SEQUENCES: usize = 5;

/// A relaxed sorting operator and whether its scores are perturbed with Gumbel noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// NeuralSort on the scores, deterministic loss.
    DetNeuralsort,
    /// NeuralSort on Gumbel-perturbed scores, stochastic loss.
    StochNeuralsort,
    /// SoftSort (absolute distance) on the scores, deterministic loss.
    DetSoftsort,
    /// SoftSort (absolute distance) on Gumbel-perturbed scores, stochastic loss.
    StochSoftsort,
}

impl Method {
    /// Every method, in the column order of the SoftSort paper's tables.
    pub const ALL: [Method; 4] = [
        Method::DetNeuralsort,
        Method::StochNeuralsort,
        Method::DetSoftsort,
        Method::StochSoftsort,
    ];

    /// Returns the flag value, such as `"det-softsort"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::DetNeuralsort => "det-neuralsort",
            Method::StochNeuralsort => "stoch-neuralsort",
            Method::DetSoftsort => "det-softsort",
            Method::StochSoftsort => "stoch-softsort",
        }
    }

    /// Whether the method trains on Gumbel-perturbed scores with the stochastic loss.
    pub fn is_stochastic(self) -> bool {
        matches!(self, Method::StochNeuralsort | Method::StochSoftsort)
    }

    /// Whether the method uses SoftSort (otherwise NeuralSort).
    pub fn is_softsort(self) -> bool {
        matches!(self, Method::DetSoftsort | Method::StochSoftsort)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Returns the temperature the SoftSort paper reports for `method` at sequence length `n`, or `None`
/// for a length outside [`SEQUENCE_LENGTHS`].
///
/// | n  | det. NeuralSort | stoch. NeuralSort | det. SoftSort | stoch. SoftSort |
/// |----|-----------------|-------------------|---------------|-----------------|
/// | 5  | 1024            | 2048              | 2048          | 4096            |
/// | 9  | 512             | 512               | 2048          | 2048            |
/// | 15 | 1024            | 4096              | 256           | 2048            |
///
/// ```
/// use experiments::quantile::{default_tau, Method};
///
/// assert_eq!(default_tau(Method::DetSoftsort, 15), Some(256.0));
/// assert_eq!(default_tau(Method::DetSoftsort, 7), None);
/// ```
pub fn default_tau(method: Method, n: usize) -> Option<f64> {
    let row = match n {
        5 => [1024.0, 2048.0, 2048.0, 4096.0],
        9 => [512.0, 512.0, 2048.0, 2048.0],
        15 => [1024.0, 4096.0, 256.0, 2048.0],
        _ => return None,
    };
    let column = Method::ALL
        .iter()
        .position(|&m| m == method)
        .expect("ALL lists every method");
    Some(row[column])
}

/// The settings of one quantile-regression run; the flags of the `quantile-mnist` binary.
#[derive(Clone, Debug, clap::Args, Serialize, Deserialize)]
pub struct QuantileConfig {
    /// Sequence length n; must be odd so that the median is one element.
    #[arg(short, long, default_value_t = 5, allow_negative_numbers = true)]
    pub n: usize,
    /// Sorting relaxation and loss.
    #[arg(long, value_enum, default_value_t = Method::DetSoftsort)]
    pub method: Method,
    /// Temperature τ of the relaxation [default: the SoftSort paper's value for (method, n),
    /// given for n = 5, 9 and 15].
    #[arg(long, allow_negative_numbers = true)]
    pub tau: Option<f64>,
    /// Training steps (one batch of M sequences each).
    #[arg(long, default_value_t = 2000, allow_negative_numbers = true)]
    pub steps: usize,
    /// Sequences per training batch (M).
    #[arg(long, default_value_t = BATCH_SEQUENCES, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Gumbel samples per sequence for the stochastic methods.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub samples: usize,
    /// Learning rate of each network's Adam optimiser.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f64,
    /// Validation sequences per evaluation, drawn from the validation images (the same
    /// sequences every time).
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    pub eval_size: usize,
    /// Test sequences, drawn from the test images, evaluated once with the best model.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub test_size: usize,
    /// Training steps between two validations; the last step is always validated.
    #[arg(long, default_value_t = 250, allow_negative_numbers = true)]
    pub eval_every: usize,
    /// Sequences per forward pass during evaluation; bounds the memory, not the result.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    pub eval_chunk: usize,
    /// Parameter initialisation of both networks.
    #[arg(long, value_enum, default_value_t = CnnInit::TruncatedNormal)]
    pub init: CnnInit,
    /// Data folder, output folder, seed and quiet mode.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
}

impl QuantileConfig {
    /// Creates the settings of the flags' defaults for `n` and `method`, writing to `out`.
    pub fn new(n: usize, method: Method, out: std::path::PathBuf) -> Self {
        QuantileConfig {
            n,
            method,
            tau: None,
            steps: 2000,
            batch_size: BATCH_SEQUENCES,
            samples: 5,
            lr: 1e-3,
            eval_size: 200,
            test_size: 1000,
            eval_every: 250,
            eval_chunk: 20,
            init: CnnInit::TruncatedNormal,
            common: CommonArgs {
                data: None,
                out,
                seed: 0,
                quiet: true,
            },
        }
    }

    /// Returns the file name, without extension, of the result and checkpoint:
    /// `quantile-mnist-{method}-n{n}-seed{seed}`.
    pub fn file_stem(&self) -> String {
        format!(
            "{EXPERIMENT}-{}-n{}-seed{}",
            self.method, self.n, self.common.seed
        )
    }

    /// Returns the temperature of the run: `--tau` if given, otherwise [`default_tau`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no temperature is given for a length without a published
    /// one, or if the temperature is not positive and finite.
    pub fn resolved_tau(&self) -> Result<f64> {
        let tau =
            match self.tau.or_else(|| default_tau(self.method, self.n)) {
                Some(tau) => tau,
                None => return Err(Error::invalid(
                    "quantile-mnist",
                    "n",
                    self.n,
                    "the paper gives default temperatures for n = 5, 9 and 15 only; pass --tau \
                     to choose one for this n",
                )),
            };
        if !(tau.is_finite() && tau > 0.0) {
            return Err(Error::invalid(
                "quantile-mnist",
                "tau",
                tau,
                "the temperature must be positive and finite",
            ));
        }
        Ok(tau)
    }

    /// Checks every setting, so that a run fails before training rather than after.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first invalid flag.
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 || self.n.is_multiple_of(2) {
            return Err(Error::invalid(
                "quantile-mnist",
                "n",
                self.n,
                "the sequence length must be odd so that the median is one element",
            ));
        }
        if self.n < 3 {
            return Err(Error::invalid(
                "quantile-mnist",
                "n",
                self.n,
                "the median of a single number needs no sorting; give n = 3 or more (the \
                 paper uses 5, 9 and 15)",
            ));
        }
        self.resolved_tau()?;
        let positive = [
            ("steps", self.steps),
            ("batch-size", self.batch_size),
            ("samples", self.samples),
            ("eval-size", self.eval_size),
            ("test-size", self.test_size),
            ("eval-every", self.eval_every),
            ("eval-chunk", self.eval_chunk),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::invalid(
                    "quantile-mnist",
                    name,
                    value,
                    "it must be at least 1",
                ));
            }
        }
        if self.eval_size < 2 || self.test_size < 2 {
            return Err(Error::invalid(
                "quantile-mnist",
                "eval-size/test-size",
                format!("{}/{}", self.eval_size, self.test_size),
                "R² and Spearman's correlation need at least 2 sequences",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(
                "quantile-mnist",
                "lr",
                self.lr,
                "the learning rate must be positive and finite",
            ));
        }
        self.validate_sizes()
    }

    /// Checks that one training step and one evaluation fit in memory (see
    /// [`crate::limits`]).
    fn validate_sizes(&self) -> Result<()> {
        check_sequence_run(&SequenceRun {
            op: "quantile-mnist",
            n: self.n,
            batch_size: self.batch_size,
            samples: if self.method.is_stochastic() {
                self.samples
            } else {
                1
            },
            forward_passes: &[
                ("batch-size", self.batch_size),
                ("eval-chunk", self.eval_chunk),
            ],
            evaluations: &[("eval-size", self.eval_size), ("test-size", self.test_size)],
        })
    }
}
