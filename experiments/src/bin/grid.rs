//! Prints the experiment grid of the SoftSort paper, one shell command per run.
//!
//! Example: `cargo build --release -p experiments && cargo run --release -p experiments --bin
//! grid -- --data data | parallel -j 2`

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use experiments::grid::{grid_lines, GridOptions};
use experiments::run::{log, log_error};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = GridOptions {
        repetitions: cli.repetitions,
        bin_dir: cli.bin_dir,
        data: cli.data,
        out: cli.out,
        steps: cli.steps,
    };
    match grid_lines(&options, cli.experiment.as_deref()) {
        Ok(lines) => print_lines(&lines),
        Err(error) => {
            log_error(error);
            ExitCode::FAILURE
        }
    }
}

/// Prints `lines` on standard output. A reader that closes the pipe early (`grid | head -1`)
/// ends the output quietly with success; any other write error is reported.
fn print_lines(lines: &[String]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    let written = lines
        .iter()
        .try_for_each(|line| writeln!(stdout, "{line}"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            log(format!("error: writing the command lines failed: {error}"));
            ExitCode::FAILURE
        }
    }
}
