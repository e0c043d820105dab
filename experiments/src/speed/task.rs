//! The speed task's model and training step: free scores trained towards the identity
//! permutation with SGD.

use std::time::Instant;

use autograd::nn::{Module, Optimizer, Params, Sgd, SgdConfig};
use autograd::{Tape, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use softsort_ops::SortFloat;

use super::operator::Operator;
use crate::error::{Error, Result};

/// The number of independent rows of scores trained together.
pub const BATCH: usize = 20;
/// The SGD learning rate.
pub const LEARNING_RATE: f64 = 10.0;
/// The SGD momentum.
pub const MOMENTUM: f64 = 0.5;
/// The SGD weight decay (an L2 penalty added to the gradient).
pub const WEIGHT_DECAY: f64 = 0.01;

/// Free scores of shape `[B, n]`, the only parameters of the speed task.
pub struct SpeedScores<T: SortFloat> {
    /// The raw scores, normalised in every step by [`min_max_normalize`].
    pub scores: Tensor<T>,
}

impl<T: SortFloat> SpeedScores<T> {
    /// Draws `[batch, n]` scores uniform in `[−1, 1)` from a generator seeded with `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `batch = 0` or `n < 2`, because the min–max
    /// normalisation needs two distinct scores per row.
    pub fn new(batch: usize, n: usize, seed: u64) -> Result<Self> {
        if batch == 0 || n < 2 {
            return Err(Error::invalid(
                "SpeedScores::new",
                "shape",
                format!("[{batch}, {n}]"),
                "the batch must be at least 1 and n at least 2, because min–max normalisation needs two scores per row",
            ));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let scores = Tensor::uniform([batch, n], -T::one(), T::one(), &mut rng)?;
        Ok(SpeedScores { scores })
    }
}

impl<T: SortFloat> Module<T> for SpeedScores<T> {
    fn named_parameters(&self) -> Vec<(String, &Tensor<T>)> {
        vec![("scores".to_string(), &self.scores)]
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        vec![("scores".to_string(), &mut self.scores)]
    }
}

/// Computes `(s − min s)/(max s − min s)` per row of `s` (`[B, n]`), with the row minimum and
/// maximum detached, so the gradient is `∂L/∂s / (max s − min s)` and flows only through `s`.
///
/// # Errors
/// [`autograd::Error`] for a scalar input, and for a row whose scores are all equal, which
/// divides zero by zero.
pub fn min_max_normalize<'t, T: SortFloat>(scores: Var<'t, T>) -> autograd::Result<Var<'t, T>> {
    let low = scores.min_axes(&[-1], true)?.detach();
    let high = scores.max_axes(&[-1], true)?.detach();
    scores.sub(low)?.div(high.sub(low)?)
}

/// Computes the speed task's loss `mean(1 − log diag P)` for the model's current scores on
/// `tape`, returning the parameters (for the backward pass) and the loss.
///
/// # Errors
/// As [`Operator::loss`].
pub fn task_loss<'t, T: SortFloat>(
    tape: &'t Tape<T>,
    model: &SpeedScores<T>,
    operator: Operator,
) -> Result<(Params<'t, T>, Var<'t, T>)> {
    let params = Params::new(tape, model);
    let scores = min_max_normalize(params.get("scores")?)?;
    let loss = operator.loss(scores)?;
    Ok((params, loss))
}

/// One operator trained on one problem size: the scores and the optimiser state.
pub struct TrainingRun<T: SortFloat> {
    operator: Operator,
    model: SpeedScores<T>,
    optimizer: Sgd<T>,
}

impl<T: SortFloat> TrainingRun<T> {
    /// Sets up `[BATCH, n]` scores drawn with `seed` and SGD with lr 10, momentum 0.5 and
    /// weight decay 0.01.
    ///
    /// # Errors
    /// As [`SpeedScores::new`].
    pub fn new(operator: Operator, n: usize, seed: u64) -> Result<Self> {
        let config = SgdConfig {
            momentum: MOMENTUM,
            weight_decay: WEIGHT_DECAY,
            ..SgdConfig::new(LEARNING_RATE)
        };
        Ok(TrainingRun {
            operator,
            model: SpeedScores::new(BATCH, n, seed)?,
            optimizer: Sgd::new(config)?,
        })
    }

    /// Runs one training step (forward, backward and SGD update) and returns its loss, which
    /// is the loss before the update.
    ///
    /// # Errors
    /// As [`Operator::loss`], and [`autograd::Error`] from the optimiser for a non-finite
    /// gradient.
    pub fn step(&mut self) -> Result<f64> {
        let (grads, loss) = {
            let tape = Tape::new();
            let (params, loss) = task_loss(&tape, &self.model, self.operator)?;
            let value = loss.value().item()?.as_f64();
            (params.backward(loss)?, value)
        }; // the tape is dropped here, so the update writes the scores in place
        self.optimizer.step(&mut self.model, &grads)?;
        Ok(loss)
    }

    /// Runs one step as [`TrainingRun::step`] and returns its loss and wall-clock seconds.
    ///
    /// # Errors
    /// As [`TrainingRun::step`].
    pub fn timed_step(&mut self) -> Result<(f64, f64)> {
        let start = Instant::now();
        let loss = self.step()?;
        Ok((loss, start.elapsed().as_secs_f64()))
    }

    /// The current raw scores, `[BATCH, n]`.
    pub fn scores(&self) -> &Tensor<T> {
        &self.model.scores
    }
}
