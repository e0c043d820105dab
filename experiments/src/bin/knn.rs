//! Trains an embedding network with the differentiable kNN loss of the SoftSort paper on MNIST
//! or Fashion-MNIST and reports the exact-kNN test accuracy of the best validation model.
//!
//! ```text
//! cargo run --release -p experiments --bin knn -- --data /path/to/data --dataset mnist
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use experiments::knn::{train_and_test, KnnConfig, KnnOutcome, Sorter};
use experiments::{Dataset, DatasetKind};
use indicatif::{ProgressBar, ProgressStyle};
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
    /// Data folder that contains mnist/ and fashion-mnist/, as filled by
    /// scripts/fetch-data.sh. Without it: $SOFTSORT_DATA, then a data/ folder found upwards
    /// from the current folder, then (MNIST only) the small sample built into the binary.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Output folder for the JSON result and the checkpoint; created if missing.
    #[arg(long, value_name = "DIR", default_value = "results")]
    out: PathBuf,
    /// Seed of the initialisation and of the sampled batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Relaxed sorting operator.
    #[arg(long, value_enum, default_value = "softsort")]
    sorter: SorterArg,
    /// Number of neighbours k (the paper tries 1, 3, 5 and 9).
    #[arg(long, default_value_t = 9)]
    k: usize,
    /// Temperature of the sorting operator.
    #[arg(long, default_value_t = 1.0)]
    tau: f64,
    /// SGD learning rate (momentum 0.9, weight decay 5e-4).
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// Training steps.
    #[arg(long, default_value_t = 500)]
    steps: usize,
    /// Query images per step.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// Candidate neighbours per query set and step.
    #[arg(long, default_value_t = 100)]
    neighbours: usize,
    /// Steps between validation runs (the last step is always validated).
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    /// Validation images to use, from the start of the validation set [default: all].
    #[arg(long)]
    validation_size: Option<usize>,
    /// Training images to use as the kNN reference set in validation and test, from the start
    /// of the training set [default: all].
    #[arg(long)]
    reference_size: Option<usize>,
    /// Test images to use, from the start of the test set [default: all].
    #[arg(long)]
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
            eprintln!("knn: {message}");
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
        seed: args.seed,
        ..KnnConfig::default()
    };
    config.validate()?;
    let data = Dataset::load(kind, args.data.as_deref())?;
    if !args.quiet {
        eprintln!("knn: {}", data.summary());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| {
        format!(
            "creating the output folder {} failed: {e}",
            args.out.display()
        )
    })?;
    let stem = format!("knn-{}-{}-k{}", kind.dir_name(), config.sorter, config.k);
    let checkpoint = args.out.join(format!("{stem}.safetensors"));
    let json_path = args.out.join(format!("{stem}.json"));

    let bar = progress_bar(config.steps as u64, args.quiet);
    let started = Instant::now();
    let outcome = train_and_test(&config, &data, &checkpoint, |_, loss| {
        bar.set_message(format!("loss {loss:.3}"));
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
    let mut text = serde_json::to_string_pretty(&report)?;
    text.push('\n');
    std::fs::write(&json_path, text)
        .map_err(|e| format!("writing {} failed: {e}", json_path.display()))?;
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

/// Builds the progress bar over the training steps, hidden with `--quiet`.
fn progress_bar(steps: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} steps, {per_sec}, {eta} left, {msg}",
    )
    .expect("the template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}
