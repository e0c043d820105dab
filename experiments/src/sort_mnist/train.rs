//! The training loop, validation with the best-model checkpoint, and the final test.

use std::time::Instant;

use autograd::nn::{Adam, AdamConfig, Module, Optimizer, Params};
use autograd::Tape;
use rand::rngs::StdRng;
use rand::SeedableRng;
use softsort_ops::Gumbel;

use super::config::Config;
use super::relaxation::{fast_softsort_loss, loss, predict, relax};
use super::result::{Evaluation, SortMnistResult, EXPERIMENT};
use crate::cnn::ScoreCnn;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::labeled_images::LabeledImages;
use crate::large_mnist::{LargeMnistGenerator, SequenceBatch, DIGITS_PER_NUMBER};
use crate::metrics::{permutation_accuracy, PermutationAccuracy};
use crate::run::{create_output_dir, log, progress_bar, show_loss, write_json, BestCheckpoint};

/// The seed of the validation sequences. It does not depend on the run's seed, so every run
/// is validated on the same sequences.
pub const VALIDATION_SEED: u64 = 0x5EED_0001;

/// The seed of the test sequences, shared by every run like [`VALIDATION_SEED`].
pub const TEST_SEED: u64 = 0x5EED_0002;

/// Upper bound on the sequences scored at once during evaluation.
const EVAL_CHUNK: usize = 50;

/// Upper bound on the images scored at once during evaluation, so that long sequences get
/// smaller chunks.
const EVAL_CHUNK_IMAGES: usize = 1000;

/// Trains the CNN with the settings of `config`, validates it every `config.eval_every` steps,
/// tests the best model and writes the result to `<out>/<file stem>.json` (see
/// [`Config::file_stem`]) with the best model beside it (`.safetensors`).
///
/// Log lines and the progress bar go to standard error unless `config.common.quiet` is set.
///
/// # Errors
/// A bad setting ([`Config::validate`]), data that cannot be loaded or does not fit
/// ([`Dataset::check_image_size`], [`Dataset::check_every_digit`]), a non-finite training
/// loss (try a larger temperature or a smaller learning rate), or a file that cannot be
/// written.
pub fn run(config: &Config) -> Result<SortMnistResult> {
    let started = Instant::now();
    config.validate()?;
    let data = Dataset::load_mnist(config.common.data.as_deref())?;
    if !config.common.quiet {
        log(format!("loaded {}", data.summary()));
    }
    run_with_data(config, &data, started)
}

/// Runs as [`run`] does on `data` instead of the data that `config.common.data` selects;
/// `started` is the start of the run for [`SortMnistResult::total_seconds`].
///
/// # Errors
/// As [`run`], except loading.
pub fn run_with_data(config: &Config, data: &Dataset, started: Instant) -> Result<SortMnistResult> {
    config.validate()?;
    data.check_image_size()?;
    data.check_every_digit()?;
    let quiet = config.common.quiet;
    let say = |message: String| {
        if !quiet {
            log(message);
        }
    };

    let out_dir = create_output_dir(&config.common.out)?;
    let stem = config.file_stem();
    let mut best = BestCheckpoint::new(out_dir.join(format!("{stem}.safetensors")));

    let tau = config.temperature();
    let seed = config.common.seed;
    let rows = DIGITS_PER_NUMBER * data.train.rows();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = ScoreCnn::new(rows, data.train.cols(), config.init, &mut rng)?;
    let mut adam = Adam::new(AdamConfig {
        lr: config.lr,
        ..AdamConfig::default()
    })?;
    let mut batches = LargeMnistGenerator::new(&data.train, config.n, seed.wrapping_add(1))?;
    say(format!(
        "training {} with n = {}, tau = {tau}, {} steps of {} sequences, {} parameters",
        config.method,
        config.n,
        config.steps,
        config.batch_size,
        model.num_parameters()
    ));

    let bar = progress_bar(config.steps as u64, quiet);
    let mut evaluations = Vec::new();
    let mut loss_sum = 0.0;
    let mut losses = 0usize;
    let mut training_seconds = 0.0;
    for step in 1..=config.steps {
        let step_started = Instant::now();
        let batch = batches.next_batch(config.batch_size)?;
        let loss_value = train_step(config, tau, &mut model, &mut adam, &batch, step)?;
        training_seconds += step_started.elapsed().as_secs_f64();
        loss_sum += loss_value;
        losses += 1;
        show_loss(&bar, loss_value);
        bar.inc(1);

        if step % config.eval_every == 0 || step == config.steps {
            let accuracy = evaluate(
                &model,
                config,
                &data.validation,
                config.eval_size,
                VALIDATION_SEED,
            )?;
            let evaluation = Evaluation {
                step,
                train_loss: loss_sum / losses as f64,
                validation_all_correct: accuracy.all_correct,
                validation_any_correct: accuracy.per_position,
            };
            loss_sum = 0.0;
            losses = 0;
            let improved = best.offer(accuracy.all_correct, &model)?;
            let mark = if improved { ", saved as best" } else { "" };
            bar.suspend(|| {
                say(format!(
                    "step {step}: train loss {:.4}, validation all-correct {:.4}, any-correct {:.4}{mark}",
                    evaluation.train_loss, accuracy.all_correct, accuracy.per_position
                ))
            });
            evaluations.push(evaluation);
        }
    }
    bar.finish_and_clear();

    best.restore(&mut model)?;
    let best_step = evaluations
        .iter()
        .find(|e| Some(e.validation_all_correct) == best.best_score())
        .map_or(config.steps, |e| e.step);
    say(format!(
        "testing the model of step {best_step} (loaded from {}) on {} sequences",
        best.path().display(),
        config.test_size
    ));
    let test = evaluate(&model, config, &data.test, config.test_size, TEST_SEED)?;

    let result = SortMnistResult {
        experiment: EXPERIMENT.to_string(),
        config: config.clone(),
        tau,
        data: data.summary(),
        data_is_sample: data.source.is_sample(),
        parameters: model.num_parameters(),
        evaluations,
        best_step,
        best_validation_all_correct: best.best_score().unwrap_or(0.0),
        test_sequences: config.test_size,
        test_all_correct: test.all_correct,
        test_any_correct: test.per_position,
        seconds_per_step: training_seconds / config.steps as f64,
        total_seconds: started.elapsed().as_secs_f64(),
        checkpoint: best.path().to_path_buf(),
    };
    let json_path = out_dir.join(format!("{stem}.json"));
    write_json(&json_path, &result)?;
    say(format!("wrote {}", json_path.display()));
    Ok(result)
}

/// Takes one Adam step on `batch` and returns the loss before the step.
fn train_step(
    config: &Config,
    tau: f64,
    model: &mut ScoreCnn,
    adam: &mut Adam<f32>,
    batch: &SequenceBatch,
    step: usize,
) -> Result<f64> {
    let grads = {
        let tape = Tape::new();
        let params = Params::new(&tape, &*model);
        let scores = model
            .forward(&params, tape.constant(batch.images.clone()))?
            .reshape([batch.batch_size, batch.sequence_len])?;
        let loss = if config.fast_loss {
            fast_softsort_loss(scores, &batch.permutations, tau)?
        } else {
            let noise = config
                .method
                .is_stochastic()
                .then(|| Gumbel::new(config.samples, noise_seed(config.common.seed, step)));
            let relaxed = relax(
                config.method,
                scores,
                tau,
                config.sinkhorn_iterations,
                noise,
            )?;
            loss(relaxed.p, &batch.permutations)?
        };
        let value = f64::from(loss.value().item()?);
        if !value.is_finite() {
            return Err(Error::invalid(
                "sort-mnist training",
                &format!("loss at step {step}"),
                value,
                "the training diverged; try a larger --tau or a smaller --lr",
            ));
        }
        (params.backward(loss)?, value)
    };
    adam.step(model, &grads.0)?;
    // A step that overflows the parameters would otherwise surface in the next step as
    // non-finite scores, far from its cause.
    for (name, parameter) in model.named_parameters() {
        if let Some(index) = parameter.first_non_finite() {
            return Err(Error::invalid(
                "sort-mnist training",
                &format!("parameter {name} after step {step}"),
                format!("{} at flat index {index}", parameter.data()[index]),
                "the training diverged; try a smaller --lr or a larger --tau",
            ));
        }
    }
    Ok(grads.1)
}

/// Derives the seed of the Gumbel noise of one training step from the run's seed.
fn noise_seed(seed: u64, step: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(step as u64)
}

/// Measures how well `model` sorts `sequences` sequences of `config.n` numbers drawn from
/// `images` by a generator seeded with `seed`, predicting with [`predict`].
///
/// # Errors
/// [`Error::InvalidArgument`] if `sequences` is 0 or `images` lacks a digit, and the errors of
/// the model and the relaxation.
pub fn evaluate(
    model: &ScoreCnn,
    config: &Config,
    images: &LabeledImages,
    sequences: usize,
    seed: u64,
) -> Result<PermutationAccuracy> {
    let mut generator = LargeMnistGenerator::new(images, config.n, seed)?;
    let mut predicted = Vec::with_capacity(sequences * config.n);
    let mut truth = Vec::with_capacity(sequences * config.n);
    let mut remaining = sequences;
    while remaining > 0 {
        let chunk = remaining
            .min(EVAL_CHUNK)
            .min((EVAL_CHUNK_IMAGES / config.n).max(1));
        let batch = generator.next_batch(chunk)?;
        let scores = model.scores(&batch.images)?.reshape([chunk, config.n])?;
        predicted.extend(predict(
            config.method,
            &scores,
            config.temperature(),
            config.sinkhorn_iterations,
        )?);
        truth.extend_from_slice(&batch.permutations);
        remaining -= chunk;
    }
    permutation_accuracy(&predicted, &truth, config.n)
}
