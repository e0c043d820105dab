//! The sweep over operators and problem sizes, with the time budget that stops an operator.

use serde::Serialize;

use super::operator::Operator;
use super::task::{TrainingRun, BATCH};
use crate::error::{Error, Result};
use crate::limits::{check_product, MAX_RELAXATION_ENTRIES};

/// Upper bound on `n` for the operators that never form the dense `[B, n, n]` matrix. One
/// step of `fast_softsort_abs` at n = 10^6 took about 70 ms on 2 cores (release build), so
/// the bound still allows sweeps well past the dense sizes.
pub const MAX_FAST_N: usize = 10_000_000;

/// Upper bound on the entries `B · n · n` of the dense matrix of one step (2 GB in f32),
/// which allows the paper's largest size n = 4000.
pub const MAX_DENSE_ENTRIES: usize = MAX_RELAXATION_ENTRIES * 4;

/// The settings of a sweep: the operators, their sizes and the number of steps.
#[derive(Clone, Debug, Serialize)]
pub struct SweepConfig {
    /// The operators, timed one after the other in this order.
    pub operators: Vec<Operator>,
    /// The sizes `n` of the dense operators, increasing.
    pub sizes: Vec<usize>,
    /// The sizes `n` of the fast operators ([`Operator::is_fast`]), increasing.
    pub fast_sizes: Vec<usize>,
    /// Untimed steps before the timed ones, for every (operator, n).
    pub warmup: usize,
    /// Timed steps for every (operator, n).
    pub steps: usize,
    /// An operator whose mean step takes longer than this many seconds skips its larger sizes.
    pub skip_after: Option<f64>,
    /// The seed of the initial scores, the same for every operator at a given n.
    pub seed: u64,
}

impl SweepConfig {
    /// Returns the sizes `operator` runs at, before any skipping.
    pub fn sizes_for(&self, operator: Operator) -> &[usize] {
        if operator.is_fast() {
            &self.fast_sizes
        } else {
            &self.sizes
        }
    }

    /// Returns the number of training steps the whole sweep runs if nothing is skipped.
    pub fn total_steps(&self) -> u64 {
        let per_size = (self.warmup + self.steps) as u64;
        self.operators
            .iter()
            .map(|&op| self.sizes_for(op).len() as u64 * per_size)
            .sum()
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no operators, no sizes, a size below 2 or above its
    /// operator's bound (see `check_sizes_fit`), zero timed steps, or a time budget that is
    /// not positive and finite.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "speed";
        if self.operators.is_empty() {
            return Err(Error::invalid(
                OP,
                "operators",
                "[]",
                "name at least one operator",
            ));
        }
        for &op in &self.operators {
            let sizes = self.sizes_for(op);
            if sizes.is_empty() {
                let hint = "give at least one n (check --n, --n-min, --n-max and --fast-n-max)";
                return Err(Error::invalid(OP, &format!("sizes of {op}"), "[]", hint));
            }
            if let Some(&n) = sizes.iter().find(|&&n| n < 2) {
                let hint =
                    "every n must be at least 2, because min–max normalisation needs two scores";
                return Err(Error::invalid(OP, "n", n, hint));
            }
            check_sizes_fit(op, sizes)?;
        }
        if self.steps == 0 {
            return Err(Error::invalid(OP, "steps", 0, "time at least one step"));
        }
        if let Some(budget) = self.skip_after {
            if !(budget.is_finite() && budget > 0.0) {
                return Err(Error::invalid(
                    OP,
                    "skip-after",
                    budget,
                    "give a positive number of seconds",
                ));
            }
        }
        Ok(())
    }
}

/// Checks that every size of `operator` fits its bound: `B · n · n ≤ MAX_DENSE_ENTRIES` for the
/// operators that form the dense matrix, `n ≤ MAX_FAST_N` for the others.
fn check_sizes_fit(operator: Operator, sizes: &[usize]) -> Result<()> {
    for &n in sizes {
        if operator.forms_dense_matrix() {
            let hint = format!(
                "{operator} forms a [{BATCH}, n, n] matrix of at most {MAX_DENSE_ENTRIES} \
                 entries, so n can be at most {}; lower --n or --n-max, or time a fast \
                 operator such as fast_softsort_abs",
                max_dense_n()
            );
            check_product(
                "speed",
                "batch × n × n",
                &[BATCH, n, n],
                MAX_DENSE_ENTRIES,
                &hint,
            )?;
        } else if n > MAX_FAST_N {
            let hint = format!(
                "{operator} runs at n up to {MAX_FAST_N}; lower --n, --n-max or --fast-n-max"
            );
            return Err(Error::invalid("speed", "n", n, hint));
        }
    }
    Ok(())
}

/// Returns the largest `n` with `B · n · n ≤ MAX_DENSE_ENTRIES`.
pub fn max_dense_n() -> usize {
    let mut n = ((MAX_DENSE_ENTRIES / BATCH) as f64).sqrt() as usize;
    while BATCH * (n + 1) * (n + 1) <= MAX_DENSE_ENTRIES {
        n += 1;
    }
    while BATCH * n * n > MAX_DENSE_ENTRIES {
        n -= 1;
    }
    n
}

/// Returns the sizes `min, min + step, …` up to and including `max`.
///
/// # Errors
/// [`Error::InvalidArgument`] for `step = 0`, `min > max` or `max > MAX_FAST_N` (no operator
/// runs above it, and the list would not fit in memory).
pub fn size_range(min: usize, max: usize, step: usize) -> Result<Vec<usize>> {
    if max > MAX_FAST_N {
        return Err(Error::invalid(
            "speed",
            "n-max",
            max,
            format!(
                "give --n-max at most {MAX_FAST_N}, the bound of the fast operators (the dense \
                 ones stop at n = {})",
                max_dense_n()
            ),
        ));
    }
    if step == 0 {
        return Err(Error::invalid(
            "speed",
            "n-step",
            0,
            "the step must be at least 1",
        ));
    }
    if min > max {
        return Err(Error::invalid(
            "speed",
            "n-min",
            min,
            format!("it must not exceed --n-max ({max})"),
        ));
    }
    Ok((min..=max).step_by(step).collect())
}

/// Returns the sizes of the fast operators: the dense sizes up to `fast_n_max`, then the
/// values `1, 2, 5 × 10^k` above the largest dense size, then `fast_n_max` itself if it lies
/// above the largest dense size. The
/// arithmetic cannot overflow, so any `fast_n_max` terminates; [`SweepConfig::validate`]
/// rejects sizes above [`MAX_FAST_N`].
///
/// ```
/// use experiments::speed::fast_sizes;
///
/// assert_eq!(fast_sizes(&[100, 200, 300], 3000), vec![100, 200, 300, 500, 1000, 2000, 3000]);
/// assert_eq!(fast_sizes(&[100, 200, 300], 200), vec![100, 200]);
/// assert!(fast_sizes(&[200_000], 100_000).is_empty());
/// ```
pub fn fast_sizes(dense: &[usize], fast_n_max: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = dense.iter().copied().filter(|&n| n <= fast_n_max).collect();
    // The added sizes lie above every dense size, also those beyond `fast_n_max`: with
    // `--n 200000 --fast-n-max 100000` the fast operators get no size (which validation
    // reports), not 1, 2, 5, ….
    let mut last = dense.iter().copied().max().unwrap_or(0);
    let mut decade = Some(1usize);
    while let Some(d) = decade.filter(|&d| d <= fast_n_max) {
        for n in [Some(d), d.checked_mul(2), d.checked_mul(5)]
            .into_iter()
            .flatten()
        {
            if n > last && n <= fast_n_max {
                sizes.push(n);
                last = n;
            }
        }
        decade = d.checked_mul(10);
    }
    if last < fast_n_max {
        sizes.push(fast_n_max);
    }
    sizes
}

/// The timing of one operator at one size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// The operator.
    pub operator: Operator,
    /// The number of scores per row.
    pub n: usize,
    /// The mean wall-clock seconds of a timed step (forward, backward and SGD update).
    pub seconds_per_step: f64,
    /// The loss of the first step, before any update (a warm-up step if there is one).
    pub first_loss: f64,
    /// The loss of the last timed step.
    pub final_loss: f64,
}

/// An operator that stopped before its largest sizes because a step took too long.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Skip {
    /// The operator.
    pub operator: Operator,
    /// The last size it ran at.
    pub last_n: usize,
    /// Its mean step time at `last_n`, in seconds.
    pub seconds_per_step: f64,
    /// The sizes it did not run at.
    pub skipped_sizes: Vec<usize>,
}

/// Every measurement of a sweep and the operators that stopped early.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SweepResult {
    /// The measurements in the order they were taken.
    pub measurements: Vec<Measurement>,
    /// The operators skipped at their larger sizes by the time budget.
    pub skipped: Vec<Skip>,
}

/// A progress report from [`run_sweep`].
#[derive(Clone, Debug)]
pub enum Progress {
    /// One training step finished.
    Step {
        /// The operator being timed.
        operator: Operator,
        /// The current size.
        n: usize,
        /// The loss of that step.
        loss: f64,
    },
    /// A size finished timing.
    Measured(Measurement),
    /// An operator exceeded the time budget, so `steps_left_out` training steps will not run.
    Skipped {
        /// The skip, as also stored in the result.
        skip: Skip,
        /// The number of training steps that will not run.
        steps_left_out: u64,
    },
}

/// Times every operator of `config` at each of its sizes in `f32`, reporting each step to
/// `on_progress`.
///
/// Every (operator, n) starts from scores drawn with `config.seed`, runs `config.warmup`
/// untimed steps and then `config.steps` timed steps, and records the mean step time. After
/// a size whose mean exceeds `config.skip_after`, the operator's larger sizes are skipped.
///
/// The sweep runs on a thread of rayon's global pool, so that the kernels' parallel loops
/// share work with the other threads of the pool directly instead of handing every loop over
/// from an outside thread and waiting for it. At n = 100 that handover took a quarter of a
/// step's time.
///
/// # Errors
/// As [`SweepConfig::validate`], and any error of a training step.
pub fn run_sweep(
    config: &SweepConfig,
    on_progress: impl FnMut(Progress) + Send,
) -> Result<SweepResult> {
    config.validate()?;
    rayon::scope(|_| sweep_in_pool(config, on_progress))
}

/// Runs the sweep of [`run_sweep`] on the current thread.
fn sweep_in_pool(
    config: &SweepConfig,
    mut on_progress: impl FnMut(Progress),
) -> Result<SweepResult> {
    let mut result = SweepResult::default();
    for &operator in &config.operators {
        let sizes = config.sizes_for(operator);
        for (index, &n) in sizes.iter().enumerate() {
            let measurement = measure(config, operator, n, &mut on_progress)?;
            let seconds = measurement.seconds_per_step;
            on_progress(Progress::Measured(measurement.clone()));
            result.measurements.push(measurement);

            let over_budget = config.skip_after.is_some_and(|budget| seconds > budget);
            let rest = &sizes[index + 1..];
            if over_budget && !rest.is_empty() {
                let skip = Skip {
                    operator,
                    last_n: n,
                    seconds_per_step: seconds,
                    skipped_sizes: rest.to_vec(),
                };
                let steps_left_out = rest.len() as u64 * (config.warmup + config.steps) as u64;
                on_progress(Progress::Skipped {
                    skip: skip.clone(),
                    steps_left_out,
                });
                result.skipped.push(skip);
                break;
            }
        }
    }
    Ok(result)
}

/// Trains `operator` at size `n` and returns its timing.
fn measure(
    config: &SweepConfig,
    operator: Operator,
    n: usize,
    on_progress: &mut impl FnMut(Progress),
) -> Result<Measurement> {
    let mut run = TrainingRun::<f32>::new(operator, n, config.seed)?;
    let mut first_loss = None;
    for _ in 0..config.warmup {
        let loss = run.step()?;
        first_loss.get_or_insert(loss);
        on_progress(Progress::Step { operator, n, loss });
    }
    let mut total_seconds = 0.0;
    let mut final_loss = f64::NAN;
    for _ in 0..config.steps {
        let (loss, seconds) = run.timed_step()?;
        total_seconds += seconds;
        first_loss.get_or_insert(loss);
        final_loss = loss;
        on_progress(Progress::Step { operator, n, loss });
    }
    Ok(Measurement {
        operator,
        n,
        seconds_per_step: total_seconds / config.steps as f64,
        first_loss: first_loss.unwrap_or(final_loss),
        final_loss,
    })
}
