//! The training loop of `quantile-mnist`, and its result file.

use std::path::PathBuf;
use std::time::Instant;

use autograd::nn::{Adam, AdamConfig, NamedGradients, Optimizer, Params};
use autograd::{Tape, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use softsort_ops::{Gumbel, NeuralSort, SoftSort};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::large_mnist::{LargeMnistGenerator, SequenceBatch};
use crate::quantile::config::{Method, QuantileConfig, EXPERIMENT};
use crate::quantile::eval::{evaluate, QuantileEvaluation, NUMBER_SCALE};
use crate::quantile::loss::{deterministic_loss, stochastic_loss};
use crate::quantile::model::{split_gradients, QuantileModel};
use crate::run::{self, BestCheckpoint};

/// Seed offsets of the independent random streams of a run, added to `--seed`.
const TRAIN_STREAM: u64 = 1;
const VALIDATION_STREAM: u64 = 2;
const TEST_STREAM: u64 = 3;
/// The Gumbel noise of step `t` is seeded with `seed · GUMBEL_STRIDE + t + GUMBEL_OFFSET`.
const GUMBEL_STRIDE: u64 = 1_000_003;
const GUMBEL_OFFSET: u64 = 4;

/// One validation during training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalCurvePoint {
    /// The number of training steps taken.
    pub step: usize,
    /// The mean training loss since the previous validation, in the networks' units
    /// (`(median / 10⁴)²`).
    pub train_loss: f64,
    /// The validation metrics after `step` steps.
    pub validation: QuantileEvaluation,
}

/// The result file of one run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QuantileResult {
    /// Always [`EXPERIMENT`], so that reports can tell result files apart.
    pub experiment: String,
    /// The settings, as given.
    pub config: QuantileConfig,
    /// The temperature used.
    pub tau: f64,
    /// The data source and the split sizes.
    pub data: String,
    /// Whether the data was the small sample built into the binary.
    pub embedded_sample: bool,
    /// The step whose model had the lowest validation MSE of the hard prediction; the test
    /// metrics are those of that model.
    pub best_step: usize,
    /// The validation metrics of the best model.
    pub best_validation: QuantileEvaluation,
    /// The test metrics of the best model.
    pub test: QuantileEvaluation,
    /// Every validation, in order.
    pub curve: Vec<EvalCurvePoint>,
    /// Seconds spent in training steps, without evaluation.
    pub train_seconds: f64,
    /// `train_seconds / steps`.
    pub seconds_per_step: f64,
    /// Seconds of the whole run, including evaluation and checkpoints.
    pub total_seconds: f64,
    /// The safetensors file with both networks of the best model.
    pub checkpoint: PathBuf,
}

impl QuantileResult {
    /// Formats one line with the run's settings and its test metrics.
    pub fn summary_line(&self) -> String {
        format!(
            "quantile-mnist n={} {} tau={}: test MSE(x1e-4) {:.2} (soft {:.2}), R2 {:.3}, \
             Spearman {:.3}, median identified {:.3}; best step {}/{}, {:.3} s/step{}",
            self.config.n,
            self.config.method,
            self.tau,
            self.test.hard.mse_e4,
            self.test.soft.mse_e4,
            self.test.hard.r_squared,
            self.test.hard.spearman,
            self.test.median_identified,
            self.best_step,
            self.config.steps,
            self.seconds_per_step,
            if self.embedded_sample {
                " [embedded sample]"
            } else {
                ""
            },
        )
    }
}

/// Loads MNIST as [`Dataset::load_mnist`] does with `--data`, then trains as [`run_on`].
///
/// # Errors
/// As [`Dataset::load_mnist`] and [`run_on`].
pub fn run(config: &QuantileConfig) -> Result<QuantileResult> {
    config.validate()?;
    let data = Dataset::load_mnist(config.common.data.as_deref())?;
    run_on(config, &data)
}

/// Trains both networks on `data` for `config.steps` steps and validates every
/// `config.eval_every` steps and after the last. The best model (lowest validation MSE of
/// the hard prediction) is kept in a checkpoint and evaluated on the test sequences, and the
/// function writes the result file `<out>/<file stem>.json` (see
/// [`QuantileConfig::file_stem`]) next to the checkpoint.
///
/// # Errors
/// [`Error::InvalidArgument`] for invalid settings (see [`QuantileConfig::validate`]) or a
/// non-finite training loss; [`Error::Dataset`] for data that does not fit
/// ([`Dataset::check_image_size`], [`Dataset::check_every_digit`]); errors of the data,
/// networks, operators and files.
pub fn run_on(config: &QuantileConfig, data: &Dataset) -> Result<QuantileResult> {
    config.validate()?;
    data.check_image_size()?;
    data.check_every_digit()?;
    let started = Instant::now();
    let tau = config.resolved_tau()?;
    let seed = config.common.seed;
    let out = run::create_output_dir(&config.common.out)?;
    let stem = config.file_stem();
    let mut best = BestCheckpoint::new(out.join(format!("{stem}.safetensors")));

    let rows = crate::large_mnist::DIGITS_PER_NUMBER * data.train.rows();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = QuantileModel::new(rows, data.train.cols(), config.init, &mut rng)?;
    let adam = AdamConfig {
        lr: config.lr,
        ..AdamConfig::default()
    };
    let mut score_optimizer = Adam::new(adam)?;
    let mut value_optimizer = Adam::new(adam)?;
    let mut generator =
        LargeMnistGenerator::new(&data.train, config.n, seed.wrapping_add(TRAIN_STREAM))?;

    if !config.common.quiet {
        run::log(data.summary());
        run::log(format!(
            "n = {}, {}, tau = {tau}, {} steps of {} sequences",
            config.n, config.method, config.steps, config.batch_size
        ));
    }
    let bar = run::progress_bar(config.steps as u64, config.common.quiet);
    let mut curve = Vec::new();
    let mut train_seconds = 0.0;
    let mut loss_sum = 0.0;
    let mut loss_count = 0usize;
    let mut best_point = None;

    for step in 1..=config.steps {
        let step_started = Instant::now();
        let batch = generator.next_batch(config.batch_size)?;
        let gumbel_seed = seed
            .wrapping_mul(GUMBEL_STRIDE)
            .wrapping_add(step as u64 + GUMBEL_OFFSET);
        let (loss, grads) = loss_and_gradients(&model, &batch, config, tau, gumbel_seed)?;
        let (score_grads, value_grads) = split_gradients(&grads)?;
        score_optimizer.step(&mut model.scorer, &score_grads)?;
        value_optimizer.step(&mut model.valuer, &value_grads)?;
        train_seconds += step_started.elapsed().as_secs_f64();

        loss_sum += loss;
        loss_count += 1;
        run::show_loss(&bar, loss);
        bar.inc(1);

        if step % config.eval_every == 0 || step == config.steps {
            let validation = evaluate(
                &model,
                &data.validation,
                config.n,
                config.method,
                tau,
                config.eval_size,
                config.eval_chunk,
                seed.wrapping_add(VALIDATION_STREAM),
            )?;
            let improved = best.offer(-validation.hard.mse_e4, &model)?;
            if improved {
                best_point = Some((step, validation));
            }
            let point = EvalCurvePoint {
                step,
                train_loss: loss_sum / loss_count as f64,
                validation,
            };
            if !config.common.quiet {
                bar.suspend(|| {
                    run::log(format!(
                        "step {step}: train loss {:.5}, validation MSE(x1e-4) {:.2} (soft {:.2}), R2 {:.3}{}",
                        point.train_loss,
                        validation.hard.mse_e4,
                        validation.soft.mse_e4,
                        validation.hard.r_squared,
                        if improved { ", saved" } else { "" }
                    ))
                });
            }
            curve.push(point);
            loss_sum = 0.0;
            loss_count = 0;
        }
    }
    bar.finish_and_clear();

    best.restore(&mut model)?;
    let (best_step, best_validation) =
        best_point.expect("every run validates after its last step, so a best model exists");
    let test = evaluate(
        &model,
        &data.test,
        config.n,
        config.method,
        tau,
        config.test_size,
        config.eval_chunk,
        seed.wrapping_add(TEST_STREAM),
    )?;

    let result = QuantileResult {
        experiment: EXPERIMENT.to_string(),
        config: config.clone(),
        tau,
        data: data.summary(),
        embedded_sample: data.source.is_sample(),
        best_step,
        best_validation,
        test,
        curve,
        train_seconds,
        seconds_per_step: train_seconds / config.steps as f64,
        total_seconds: started.elapsed().as_secs_f64(),
        checkpoint: best.path().to_path_buf(),
    };
    run::write_json(&out.join(format!("{stem}.json")), &result)?;
    Ok(result)
}

/// Computes the training loss of one batch and the gradients of both networks.
fn loss_and_gradients(
    model: &QuantileModel,
    batch: &SequenceBatch,
    config: &QuantileConfig,
    tau: f64,
    gumbel_seed: u64,
) -> Result<(f64, NamedGradients<f32>)> {
    let (m, n) = (batch.batch_size, batch.sequence_len);
    let tape = Tape::new();
    let params = Params::new(&tape, model);
    let (scores, values) = model.forward(&params, tape.constant(batch.images.clone()))?;
    let scores = scores.reshape([m, n])?;
    let values = values.reshape([m, n])?;
    let targets = tape.constant(median_targets(batch)?);

    let loss = match config.method {
        Method::DetNeuralsort => {
            deterministic_loss(NeuralSort::new(tau).apply(scores)?, values, targets)?
        }
        Method::DetSoftsort => {
            deterministic_loss(SoftSort::new(tau).apply(scores)?, values, targets)?
        }
        Method::StochNeuralsort => {
            let gumbel = Gumbel::new(config.samples, gumbel_seed);
            stochastic_loss(
                NeuralSort::new(tau).apply_gumbel(scores, &gumbel)?,
                values,
                targets,
            )?
        }
        Method::StochSoftsort => {
            let gumbel = Gumbel::new(config.samples, gumbel_seed);
            stochastic_loss(
                SoftSort::new(tau).apply_gumbel(scores, &gumbel)?,
                values,
                targets,
            )?
        }
    };
    let loss_value = f64::from(loss.value().item()?);
    if !loss_value.is_finite() {
        return Err(Error::invalid(
            "quantile-mnist",
            "training loss",
            loss_value,
            "training diverged; try a smaller learning rate or another temperature",
        ));
    }
    Ok((loss_value, params.backward(loss)?))
}

/// Returns the targets `[M]`: each sequence's median number divided by [`NUMBER_SCALE`].
fn median_targets(batch: &SequenceBatch) -> Result<Tensor<f32>> {
    let n = batch.sequence_len;
    let targets = (0..batch.batch_size)
        .map(|s| {
            let median = batch.numbers_row(s)[batch.permutation_row(s)[n / 2]];
            (f64::from(median) / NUMBER_SCALE) as f32
        })
        .collect();
    Ok(Tensor::from_vec(targets, [batch.batch_size])?)
}
