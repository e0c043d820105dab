//! Trains an embedding network with the differentiable kNN loss of the SoftSort paper on MNIST
//! or Fashion-MNIST and reports the exact-kNN test accuracy of the best validation model.
//!
//! ```text
//! cargo run --release -p experiments --bin knn -- --data /path/to/data --dataset mnist
//! ```

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use experiments::knn::{train_and_test, KnnConfig, KnnOutcome, Sorter};
use experiments::run::{
    create_output_dir, log, log_error, progress_bar, show_loss, write_json, CommonArgs,
};
use experiments::{Dataset, DatasetKind};
use serde::Serialize;

/// The dataset flag's values.
#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum DatasetArg {
    /// Handwritten digits.
    Mnist,
    /// Clothing images; needs the full files (scripts/fetch-data.sh --fashion-only).
    FashionMnist,
}

/// The sorter flag's values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SorterArg {
    /// SoftSort with the absolute distance.
    Softsort,
    /// NeuralSort.
    Neuralsort,
}

/// Differentiable kNN: train a CNN embedding so that the relaxed top-k neighbours of each
/// query share its label, then classify test images by exact kNN over the training images.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Dataset to train and test on.
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetArg,
    #[command(flatten)]
    common: CommonArgs,
    /// Relaxed sorting operator.
    #[arg(long, value_enum, default_value = "softsort")]
    sorter: SorterArg,
    /// Number of neighbours k, in training and in the exact-kNN evaluation (the SoftSort paper
    /// (Prillo & Eisenschlos 2020) tries 1, 3, 5 and 9).
    #[arg(long, default_value_t = 9, allow_negative_numbers = true)]
    k: usize,
    /// Temperature of the sorting operator.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    tau: f64,
    /// SGD learning rate (momentum 0.9, weight decay 5e-4).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    lr: f64,
    /// Training steps.
    #[arg(long, default_value_t = 500, allow_negative_numbers = true)]
    steps: usize,
    /// Query images per step.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    queries: usize,
    /// Candidate neighbours per query set and step.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    neighbours: usize,
    /// Steps between validation runs (the last step is always validated).
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    eval_every: usize,
    /// Validation images to use, from the start of the validation set [default: all].
    #[arg(long, allow_negative_numbers = true)]
    validation_size: Option<usize>,
    /// Training images to use as the kNN reference set in validation and test, from the start
    /// of the training set [default: all].
    #[arg(long, allow_negative_numbers = true)]
    reference_size: Option<usize>,
    /// Test images to use, from the start of the test set [default: all].
    #[arg(long, allow_negative_numbers = true)]
    test_size: Option<usize>,
}

/// The JSON result file.
#[derive(Serialize)]
struct Report<'a> {
    experiment: &'static str,
    dataset: DatasetArg,
    data: String,
    config: &'a KnnConfig,
    outcome: &'a KnnOutcome,
    checkpoint: PathBuf,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log_error(message);
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let kind = match args.dataset {
        DatasetArg::Mnist => DatasetKind::Mnist,
        DatasetArg::FashionMnist => DatasetKind::FashionMnist,
    };
    let config = KnnConfig {
        k: args.k,
        tau: args.tau,
        sorter: match args.sorter {
            SorterArg::Softsort => Sorter::SoftSort,
            SorterArg::Neuralsort => Sorter::NeuralSort,
        },
        lr: args.lr,
        steps: args.steps,
        queries: args.queries,
        neighbours: args.neighbours,
        eval_every: args.eval_every,
        validation_size: args.validation_size,
        reference_size: args.reference_size,
        test_size: args.test_size,
        seed: args.common.seed,
        ..KnnConfig::default()
    };
    config.validate()?;
    let data = Dataset::load(kind, args.common.data.as_deref())?;
    data.check_image_size()?;
    if !args.common.quiet {
        log(data.summary());
        for cap in config.capped_sizes(&data) {
            log(format!(
                "{} {} exceeds the {} images available; capped to {}",
                cap.flag, cap.requested, cap.available, cap.available
            ));
        }
    }
    let out = create_output_dir(&args.common.out)?;
    let stem = format!("knn-{}-{}-k{}", kind.dir_name(), config.sorter, config.k);
    let checkpoint = out.join(format!("{stem}.safetensors"));
    let json_path = out.join(format!("{stem}.json"));

    let bar = progress_bar(config.steps as u64, args.common.quiet);
    let started = Instant::now();
    let outcome = train_and_test(&config, &data, &checkpoint, |_, loss| {
        show_loss(&bar, loss);
        bar.inc(1);
    })?;
    bar.finish_and_clear();

    let report = Report {
        experiment: "knn",
        dataset: args.dataset,
        data: data.summary(),
        config: &config,
        outcome: &outcome,
        checkpoint: checkpoint.clone(),
    };
    write_json(&json_path, &report)?;
    println!(
        "knn {} {} k={} tau={} steps={}: test accuracy {:.4} ({} test images, best validation {:.4} at step {}), {:.0} s, result {}",
        kind,
        config.sorter,
        config.k,
        config.tau,
        config.steps,
        outcome.test_accuracy,
        outcome.test_images,
        outcome.best_validation_accuracy,
        outcome.best_step,
        started.elapsed().as_secs_f64(),
        json_path.display()
    );
    Ok(())
}
