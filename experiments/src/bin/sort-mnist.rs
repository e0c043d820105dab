//! Trains a CNN to sort sequences of four-digit MNIST numbers with a relaxed sorting operator
//! (Table 1 of the SoftSort paper) and writes the test accuracy of the best validation model.
//!
//! Example: `cargo run --release -p experiments --bin sort-mnist -- --method det-softsort -n 3
//! --steps 1500 --data data`

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use experiments::run::{log, log_error};
use experiments::sort_mnist::{run, Config};

/// Learn to sort four-digit handwritten numbers with SoftSort, NeuralSort or Sinkhorn.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

fn main() {
    let cli = Cli::parse();
    match run(&cli.config) {
        Ok(result) => {
            println!("{}", result.summary());
            if result.data_is_sample {
                log(
                    "trained on the embedded MNIST sample; fetch the full data with \
                     scripts/fetch-data.sh and pass --data data",
                );
            }
        }
        Err(error) => {
            log_error(error);
            std::process::exit(1);
        }
    }
}
