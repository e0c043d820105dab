//! Collects sort-mnist result files into Table 1 of the SoftSort paper, as markdown.
//!
//! Example: `cargo run --release -p experiments --bin report -- results/sort-mnist`

use std::path::PathBuf;

use clap::Parser;
use experiments::report::{aggregate, collect_results, table1_markdown};
use experiments::run::log;

/// Print Table 1 (test accuracy per method and n, mean ± standard deviation over runs) from the
/// JSON result files in a folder and its subfolders.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Folder searched for *.json result files.
    #[arg(default_value = "results")]
    results: PathBuf,
    /// Write the table to this file as well as to standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let collected = match collect_results(&cli.results) {
        Ok(collected) => collected,
        Err(error) => {
            log(format!("error: {error}"));
            std::process::exit(1);
        }
    };
    for (path, reason) in &collected.skipped {
        log(format!("skipped {}: {reason}", path.display()));
    }
    log(format!(
        "read {} sort-mnist results from {}",
        collected.results.len(),
        cli.results.display()
    ));
    let table = table1_markdown(&aggregate(&collected.results));
    print!("{table}");
    if let Some(path) = cli.output {
        if let Err(error) = std::fs::write(&path, &table) {
            log(format!("error: writing {} failed: {error}", path.display()));
            std::process::exit(1);
        }
        log(format!("wrote {}", path.display()));
    }
}
