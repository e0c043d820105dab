//! Prints the experiment grid of the SoftSort paper, one shell command per run.
//!
//! Example: `cargo build --release -p experiments && cargo run --release -p experiments --bin
//! grid -- --data data | parallel -j 2`

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use clap::Parser;
use experiments::grid::{grid_lines, GridOptions};
use experiments::run::log;

/// Print one command line per run of the experiment grid (every method, n and repetition),
/// for GNU parallel or a Slurm array.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Print only this experiment's lines, such as sort-mnist.
    #[arg(long)]
    experiment: Option<String>,
    /// Repetitions of each configuration, with seeds 0, 1, ….
    #[arg(long, default_value_t = 10)]
    repetitions: usize,
    /// Folder of the built binaries.
    #[arg(long, value_name = "DIR", default_value = "target/release")]
    bin_dir: PathBuf,
    /// Data folder passed to every run.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Results folder; each experiment writes to a subfolder named after it.
    #[arg(long, value_name = "DIR", default_value = "results")]
    out: PathBuf,
    /// Training steps per run [default: each binary's default].
    #[arg(long)]
    steps: Option<usize>,
}

fn main() {
    let cli = Cli::parse();
    let options = GridOptions {
        repetitions: cli.repetitions,
        bin_dir: cli.bin_dir,
        data: cli.data,
        out: cli.out,
        steps: cli.steps,
    };
    match grid_lines(&options, cli.experiment.as_deref()) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
        }
        Err(error) => {
            log(format!("error: {error}"));
            std::process::exit(1);
        }
    }
}
