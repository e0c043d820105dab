//! Training the embedding network with the differentiable kNN loss, and evaluating it with
//! exact kNN.

use std::path::Path;
use std::time::Instant;

use autograd::nn::{NamedGradients, Optimizer, Params, Sgd, SgdConfig};
use autograd::Tape;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::knn::classify::{accuracy, knn_classify};
use crate::knn::embed::{embed_all, images_to_tensor};
use crate::knn::loss::{knn_loss, Sorter};
use crate::knn_cnn::EmbeddingCnn;
use crate::labeled_images::LabeledImages;
use crate::limits::{check_product, MAX_IMAGES_PER_STEP, MAX_RELAXATION_ENTRIES};
use crate::run::BestCheckpoint;

/// The settings of one differentiable kNN run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnnConfig {
    /// The number of neighbours `k`, in training (the relaxed top-`k`) and in evaluation.
    pub k: usize,
    /// The temperature `τ` of the sorting operator.
    pub tau: f64,
    /// The relaxed sorting operator.
    pub sorter: Sorter,
    /// The SGD learning rate.
    pub lr: f64,
    /// The SGD momentum.
    pub momentum: f64,
    /// The SGD weight decay (L2 penalty added to the gradient).
    pub weight_decay: f64,
    /// The number of training steps.
    pub steps: usize,
    /// The query images per step.
    pub queries: usize,
    /// The candidate neighbour images per step, drawn from the training set apart from the
    /// queries.
    pub neighbours: usize,
    /// The steps between validation runs; the last step is always validated.
    pub eval_every: usize,
    /// The validation images used, from the start of the validation set (`None`: all).
    pub validation_size: Option<usize>,
    /// The training images that serve as the kNN reference set in validation and test, from
    /// the start of the training set (`None`: all).
    pub reference_size: Option<usize>,
    /// The test images used, from the start of the test set (`None`: all).
    pub test_size: Option<usize>,
    /// The images per batch when embedding whole sets.
    pub embed_batch: usize,
    /// The seed of the initialisation and of the sampled batches.
    pub seed: u64,
}

impl Default for KnnConfig {
    /// SoftSort with `k = 9`, `τ = 1`, learning rate 0.01, momentum 0.9 and weight decay
    /// 5e-4; 100 queries against 100 neighbours per step; every image in evaluation.
    fn default() -> Self {
        KnnConfig {
            k: 9,
            tau: 1.0,
            sorter: Sorter::SoftSort,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            steps: 500,
            queries: 100,
            neighbours: 100,
            eval_every: 100,
            validation_size: None,
            reference_size: None,
            test_size: None,
            embed_batch: 500,
            seed: 0,
        }
    }
}

impl KnnConfig {
    /// Checks the settings that no later step checks.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, arg: &str, value: String, hint: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::invalid("knn", arg, value, hint))
            }
        };
        check(
            self.neighbours >= 1,
            "neighbours",
            self.neighbours.to_string(),
            "give --neighbours 1 or more (the candidate neighbours of each query per step)",
        )?;
        check(
            self.k >= 1 && self.k <= self.neighbours,
            "k",
            self.k.to_string(),
            &format!(
                "give --k between 1 and --neighbours ({}), the candidates per step",
                self.neighbours
            ),
        )?;
        check(
            self.tau.is_finite() && self.tau > 0.0,
            "tau",
            self.tau.to_string(),
            "the temperature must be positive and finite",
        )?;
        check(
            self.lr.is_finite() && self.lr > 0.0,
            "lr",
            self.lr.to_string(),
            "the learning rate must be positive and finite",
        )?;
        for (arg, count, flag) in [
            ("steps", self.steps, "--steps"),
            ("queries", self.queries, "--queries"),
            ("eval-every", self.eval_every, "--eval-every"),
            ("embed_batch", self.embed_batch, "the embedding batch size"),
        ] {
            check(
                count >= 1,
                arg,
                count.to_string(),
                &format!("give {flag} 1 or more"),
            )?;
        }
        for (arg, size) in [
            ("validation-size", self.validation_size),
            ("reference-size", self.reference_size),
            ("test-size", self.test_size),
        ] {
            check(
                size != Some(0),
                arg,
                "0".to_string(),
                "use at least one image, or omit the setting to use all",
            )?;
        }
        self.validate_sizes()
    }

    /// Checks that one training step and one embedding batch fit in memory (see
    /// [`crate::limits`]). The 28×28 images take a quarter of the memory of the 112×28 images
    /// that [`MAX_IMAGES_PER_STEP`] counts.
    fn validate_sizes(&self) -> Result<()> {
        let max_images = 4 * MAX_IMAGES_PER_STEP;
        let images = self.queries.saturating_add(self.neighbours);
        check_product(
            "knn",
            "queries + neighbours",
            &[images],
            max_images,
            &format!("a training step embeds at most {max_images} images; lower --queries or --neighbours"),
        )?;
        check_product(
            "knn",
            "embed_batch",
            &[self.embed_batch],
            max_images,
            &format!("an embedding batch holds at most {max_images} images; lower --embed-batch"),
        )?;
        check_product(
            "knn",
            "queries × neighbours × neighbours",
            &[self.queries, self.neighbours, self.neighbours],
            MAX_RELAXATION_ENTRIES,
            &format!(
                "the relaxed permutation matrices of a step hold at most {MAX_RELAXATION_ENTRIES} entries; lower --queries or --neighbours"
            ),
        )
    }
}

/// A size setting above the number of images available, which the run lowers to that number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeCap {
    /// The command-line flag of the setting, such as `--test-size`.
    pub flag: &'static str,
    /// The value asked for.
    pub requested: usize,
    /// The images available, which the run uses instead.
    pub available: usize,
}

impl KnnConfig {
    /// Lists the settings among `validation_size`, `reference_size` and `test_size` that
    /// request more images than `data` has. [`train_and_test`] uses all the images of such a
    /// set.
    pub fn capped_sizes(&self, data: &Dataset) -> Vec<SizeCap> {
        [
            (
                "--validation-size",
                self.validation_size,
                data.validation.len(),
            ),
            ("--reference-size", self.reference_size, data.train.len()),
            ("--test-size", self.test_size, data.test.len()),
        ]
        .into_iter()
        .filter_map(|(flag, size, available)| {
            size.filter(|&requested| requested > available)
                .map(|requested| SizeCap {
                    flag,
                    requested,
                    available,
                })
        })
        .collect()
    }
}

/// The validation accuracy after one training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The training step (1-based) after which the model was evaluated.
    pub step: usize,
    /// The mean training loss of the steps since the previous evaluation.
    pub mean_loss: f64,
    /// The exact-kNN accuracy on the validation images.
    pub validation_accuracy: f64,
}

/// The outcome of [`train_and_test`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnnOutcome {
    /// The validation history, one entry per evaluation.
    pub evaluations: Vec<Evaluation>,
    /// The step whose model had the best validation accuracy (the earliest on ties).
    pub best_step: usize,
    /// That model's validation accuracy.
    pub best_validation_accuracy: f64,
    /// That model's exact-kNN accuracy on the test images.
    pub test_accuracy: f64,
    /// The validation images used.
    pub validation_images: usize,
    /// The training images used as the kNN reference set.
    pub reference_images: usize,
    /// The test images used.
    pub test_images: usize,
    /// The wall-clock seconds spent in training steps.
    pub train_seconds: f64,
    /// The wall-clock seconds spent embedding and classifying, in validation and test.
    pub eval_seconds: f64,
}

/// Trains the embedding network on `data.train` with the differentiable kNN loss, validates it
/// every `config.eval_every` steps with exact kNN, keeps the best model in `checkpoint`
/// (safetensors) and reports that model's test accuracy.
///
/// Each step draws `queries + neighbours` distinct training images, embeds them, and applies
/// [`knn_loss`] to the first `queries` embeddings against the rest. `on_step(step, loss)` is
/// called after every step, for example to update a progress bar.
///
/// # Errors
/// [`Error::InvalidArgument`] for settings rejected by [`KnnConfig::validate`], for a training
/// set smaller than `queries + neighbours`, for a non-finite loss (the run diverged) and for
/// a reference set smaller than `k`. Checkpoint and tensor errors are passed on.
pub fn train_and_test(
    config: &KnnConfig,
    data: &Dataset,
    checkpoint: &Path,
    mut on_step: impl FnMut(usize, f64),
) -> Result<KnnOutcome> {
    config.validate()?;
    let per_step = config.queries + config.neighbours;
    if data.train.len() < per_step {
        return Err(Error::invalid(
            "knn",
            "queries + neighbours",
            per_step,
            format!("the training set has only {} images", data.train.len()),
        ));
    }
    let reference = head(&data.train, config.reference_size);
    let validation = head(&data.validation, config.validation_size);
    let test = head(&data.test, config.test_size);

    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut model = EmbeddingCnn::new(&mut rng)?;
    let mut sgd = Sgd::new(SgdConfig {
        momentum: config.momentum,
        weight_decay: config.weight_decay,
        ..SgdConfig::new(config.lr)
    })?;

    let mut evaluations = Vec::new();
    let mut best = BestCheckpoint::new(checkpoint.to_path_buf());
    let mut best_step = 0;
    let mut losses_since_eval = Vec::new();
    let mut train_seconds = 0.0;
    let mut eval_seconds = 0.0;
    for step in 1..=config.steps {
        let started = Instant::now();
        let indices = rand::seq::index::sample(&mut rng, data.train.len(), per_step).into_vec();
        let loss = train_step(config, &data.train, &indices, &mut model, &mut sgd)?;
        if !loss.is_finite() {
            return Err(Error::invalid(
                "knn",
                "loss",
                format!("{loss} at step {step}"),
                "the training diverged; lower the learning rate or raise the temperature",
            ));
        }
        train_seconds += started.elapsed().as_secs_f64();
        losses_since_eval.push(loss);
        on_step(step, loss);

        if step % config.eval_every == 0 || step == config.steps {
            let started = Instant::now();
            let validation_accuracy = evaluate(&model, &reference, &validation, config)?;
            eval_seconds += started.elapsed().as_secs_f64();
            let mean_loss = losses_since_eval.iter().sum::<f64>() / losses_since_eval.len() as f64;
            losses_since_eval.clear();
            evaluations.push(Evaluation {
                step,
                mean_loss,
                validation_accuracy,
            });
            if best.offer(validation_accuracy, &model)? {
                best_step = step;
            }
        }
    }

    let best_validation_accuracy = best
        .best_score()
        .expect("the last step is always evaluated, so a checkpoint exists");
    best.restore(&mut model)?;
    let started = Instant::now();
    let test_accuracy = evaluate(&model, &reference, &test, config)?;
    eval_seconds += started.elapsed().as_secs_f64();
    Ok(KnnOutcome {
        evaluations,
        best_step,
        best_validation_accuracy,
        test_accuracy,
        validation_images: validation.len(),
        reference_images: reference.len(),
        test_images: test.len(),
        train_seconds,
        eval_seconds,
    })
}

/// Runs one SGD step on the images at `indices` (queries first) and returns the loss.
fn train_step(
    config: &KnnConfig,
    train: &LabeledImages,
    indices: &[usize],
    model: &mut EmbeddingCnn,
    sgd: &mut Sgd<f32>,
) -> Result<f64> {
    let labels: Vec<u8> = indices.iter().map(|&i| train.label(i)).collect();
    let (query_labels, neighbour_labels) = labels.split_at(config.queries);
    let (loss, grads): (f64, NamedGradients<f32>) = {
        let tape = Tape::new();
        let params = Params::new(&tape, &*model);
        let x = tape.constant(images_to_tensor(train, indices)?);
        let embeddings = model.forward(&params, x)?;
        let queries = embeddings.slice(0, 0, config.queries)?;
        let neighbours = embeddings.slice(0, config.queries, indices.len())?;
        let loss = knn_loss(
            queries,
            query_labels,
            neighbours,
            neighbour_labels,
            config.k,
            config.sorter,
            config.tau,
        )?;
        (f64::from(loss.value().item()?), params.backward(loss)?)
    };
    sgd.step(model, &grads)?;
    Ok(loss)
}

/// Returns the exact-kNN accuracy on `queries` with `reference` as the labelled set.
fn evaluate(
    model: &EmbeddingCnn,
    reference: &LabeledImages,
    queries: &LabeledImages,
    config: &KnnConfig,
) -> Result<f64> {
    let reference_embeddings = embed_all(model, reference, config.embed_batch)?;
    let query_embeddings = embed_all(model, queries, config.embed_batch)?;
    let predicted = knn_classify(
        &query_embeddings,
        &reference_embeddings,
        reference.labels(),
        config.k,
    )?;
    accuracy(&predicted, queries.labels())
}

/// Returns the first `size` images of `images`, or all of them for `None` or a larger size.
fn head(images: &LabeledImages, size: Option<usize>) -> LabeledImages {
    match size {
        Some(size) if size < images.len() => images.slice(0..size),
        _ => images.clone(),
    }
}
