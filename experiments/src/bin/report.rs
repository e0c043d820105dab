//! Collects sort-mnist result files into Table 1 of the SoftSort paper, and quantile-mnist
//! result files into its Table 2, as markdown.
//!
//! Example: `cargo run --release -p experiments --bin report -- results/sort-mnist`

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use clap::Parser;
use experiments::quantile;
use experiments::report::{aggregate, collect_results, table1_markdown};
use experiments::run::{log, log_error};

/// Print Table 1 (test accuracy per method and n, mean ± standard deviation over runs) and, if
/// there are quantile-mnist results, Table 2 (test MSE ×1e-4, R² and Spearman correlation) from
/// the JSON result files in a folder and its subfolders.
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
            log_error(error);
            std::process::exit(1);
        }
    };
    let quantile_collected = match quantile::collect_results(&cli.results) {
        Ok(collected) => collected,
        Err(error) => {
            log_error(error);
            std::process::exit(1);
        }
    };
    // A file is skipped only if neither experiment could read it.
    for (path, reason) in &collected.skipped {
        let quantile_read = quantile_collected
            .skipped
            .iter()
            .all(|(skipped, _)| skipped != path);
        if !quantile_read {
            log(format!("skipped {}: {reason}", path.display()));
        }
    }
    if collected.results.is_empty() && quantile_collected.results.is_empty() {
        log(format!(
            "error: no sort-mnist or quantile-mnist result files (*.json) in {}; run \
             sort-mnist or quantile-mnist with --out in that folder first",
            cli.results.display()
        ));
        std::process::exit(1);
    }
    log(format!(
        "read {} sort-mnist results from {}",
        collected.results.len(),
        cli.results.display()
    ));
    let mut table = table1_markdown(&aggregate(&collected.results));
    if !quantile_collected.results.is_empty() {
        log(format!(
            "read {} quantile-mnist results",
            quantile_collected.results.len()
        ));
        table.push('\n');
        table.push_str(&quantile::table2_markdown(&quantile::summarize_table2(
            &quantile_collected.results,
        )));
    }
    print!("{table}");
    if let Some(path) = cli.output {
        if let Err(error) = std::fs::write(&path, &table) {
            log(format!("error: writing {} failed: {error}", path.display()));
            std::process::exit(1);
        }
        log(format!("wrote {}", path.display()));
    }
}
