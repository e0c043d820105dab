//! Quantile (median) regression on large-MNIST sequences with relaxed sorting: the second
//! experiment of the SoftSort paper. See `experiments::quantile` for the model and metrics.

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use experiments::quantile::{run, QuantileConfig};
use experiments::run::log_error;

/// Trains a score network and a value network to predict the median of sequences of
/// large-MNIST numbers, and reports the test MSE (×1e-4), R² and Spearman correlation.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: QuantileConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.config) {
        Ok(result) => {
            println!("{}", result.summary_line());
            ExitCode::SUCCESS
        }
        Err(error) => {
            log_error(error);
            ExitCode::FAILURE
        }
    }
}
