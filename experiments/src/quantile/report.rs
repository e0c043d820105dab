//! Aggregation of result files into Table 2 of the SoftSort paper (Prillo & Eisenschlos 2020),
//! and the command lines of the grid that fills it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::grid::{common_flags, GridOptions};
use crate::quantile::config::{Method, EXPERIMENT, SEQUENCE_LENGTHS};
use crate::quantile::train::QuantileResult;
use crate::report::list_json_files;
use crate::run::read_json;

/// The published test MSE (×10⁻⁴) of the SoftSort paper's Table 2 that this project
/// compares against: `(method, n, mse_e4)`. Only the deterministic NeuralSort column is
/// recorded here.
pub const PUBLISHED_TABLE2: [(Method, usize, f64); 3] = [
    (Method::DetNeuralsort, 5, 45.50),
    (Method::DetNeuralsort, 9, 34.98),
    (Method::DetNeuralsort, 15, 34.78),
];

/// Returns the published test MSE (×10⁻⁴) of `method` at length `n`, if recorded in
/// [`PUBLISHED_TABLE2`].
pub fn published_mse_e4(method: Method, n: usize) -> Option<f64> {
    PUBLISHED_TABLE2
        .iter()
        .find(|(m, length, _)| *m == method && *length == n)
        .map(|&(_, _, mse)| mse)
}

/// One cell group of Table 2: the runs of one method at one sequence length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table2Row {
    /// The sequence length.
    pub n: usize,
    /// The method.
    pub method: Method,
    /// The number of runs (seeds) aggregated.
    pub runs: usize,
    /// The training steps of the runs; the largest if they differ.
    pub steps: usize,
    /// Mean test MSE (×10⁻⁴) of the hard prediction over the runs.
    pub mse_e4_mean: f64,
    /// Sample standard deviation of the test MSE (×10⁻⁴); 0 for a single run.
    pub mse_e4_std: f64,
    /// Mean test R² of the hard prediction.
    pub r_squared_mean: f64,
    /// Mean test Spearman correlation of the hard prediction.
    pub spearman_mean: f64,
    /// Whether any run used the embedded sample instead of full MNIST.
    pub embedded_sample: bool,
    /// The published MSE (×10⁻⁴), if recorded.
    pub published_mse_e4: Option<f64>,
}

/// Groups results by `(n, method)` and averages their test metrics, ordered by `n`, then
/// by method in the order of [`Method::ALL`].
///
/// ```
/// use experiments::quantile::summarize_table2;
///
/// assert!(summarize_table2(&[]).is_empty());
/// ```
pub fn summarize_table2(results: &[QuantileResult]) -> Vec<Table2Row> {
    let mut keys: Vec<(usize, usize, Method)> = results
        .iter()
        .map(|r| (r.config.n, method_rank(r.config.method), r.config.method))
        .collect();
    keys.sort_by_key(|&(n, rank, _)| (n, rank));
    keys.dedup();

    keys.into_iter()
        .map(|(n, _, method)| {
            let group: Vec<&QuantileResult> = results
                .iter()
                .filter(|r| r.config.n == n && r.config.method == method)
                .collect();
            let mse: Vec<f64> = group.iter().map(|r| r.test.hard.mse_e4).collect();
            Table2Row {
                n,
                method,
                runs: group.len(),
                steps: group.iter().map(|r| r.config.steps).max().unwrap_or(0),
                mse_e4_mean: mean(&mse),
                mse_e4_std: sample_std(&mse),
                r_squared_mean: mean(
                    &group
                        .iter()
                        .map(|r| r.test.hard.r_squared)
                        .collect::<Vec<_>>(),
                ),
                spearman_mean: mean(
                    &group
                        .iter()
                        .map(|r| r.test.hard.spearman)
                        .collect::<Vec<_>>(),
                ),
                embedded_sample: group.iter().any(|r| r.embedded_sample),
                published_mse_e4: published_mse_e4(method, n),
            }
        })
        .collect()
}

/// Formats rows from [`summarize_table2`] as a Markdown table. Rows from the embedded sample
/// are marked, because a model trained on its 1,100 training images cannot be compared with
/// the published numbers.
pub fn table2_markdown(rows: &[Table2Row]) -> String {
    let mut text = String::from(
        "| n | method | runs | steps | test MSE (×1e-4) | R² | Spearman | published MSE (×1e-4) |\n\
         |---|--------|------|-------|------------------|----|----------|-----------------------|\n",
    );
    for row in rows {
        let published = row
            .published_mse_e4
            .map_or_else(|| "–".to_string(), |mse| format!("{mse:.2}"));
        let sample = if row.embedded_sample {
            " (embedded sample)"
        } else {
            ""
        };
        text.push_str(&format!(
            "| {} | {}{sample} | {} | {} | {:.2} ± {:.2} | {:.3} | {:.3} | {published} |\n",
            row.n,
            row.method,
            row.runs,
            row.steps,
            row.mse_e4_mean,
            row.mse_e4_std,
            row.r_squared_mean,
            row.spearman_mean,
        ));
    }
    text
}

/// Lists the runs of Table 2: every method at every length of [`SEQUENCE_LENGTHS`] with the
/// published temperature of [`default_tau`](crate::quantile::default_tau), each repeated with
/// seeds `0..repetitions`.
///
/// ```
/// use experiments::grid::GridOptions;
/// use experiments::quantile::grid_lines;
///
/// let lines = grid_lines(&GridOptions { repetitions: 1, ..GridOptions::default() });
/// assert_eq!(lines.len(), 12);
/// assert_eq!(
///     lines[0],
///     "target/release/quantile-mnist --method det-neuralsort -n 5 \
///      --out results/quantile-mnist --seed 0 --quiet"
/// );
/// ```
pub fn grid_lines(options: &GridOptions) -> Vec<String> {
    let binary = options.bin_dir.join(EXPERIMENT);
    let mut lines = Vec::new();
    for n in SEQUENCE_LENGTHS {
        for method in Method::ALL {
            for seed in 0..options.repetitions {
                let mut line = format!(
                    "{} --method {method} -n {n}",
                    crate::grid::shell_quote(&binary.display().to_string())
                );
                if let Some(steps) = options.steps {
                    line.push_str(&format!(" --steps {steps}"));
                }
                line.push_str(&common_flags(options, EXPERIMENT, seed));
                lines.push(line);
            }
        }
    }
    lines
}

/// The quantile-mnist results found in a folder, and the JSON files skipped.
#[derive(Clone, Debug, Default)]
pub struct QuantileCollected {
    /// The parsed results, in file-name order.
    pub results: Vec<QuantileResult>,
    /// The JSON files that were not quantile-mnist results, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads every `*.json` file in `dir` and its subfolders and keeps the quantile-mnist
/// results. Files of other experiments and files that do not parse are listed in
/// [`QuantileCollected::skipped`].
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if a folder cannot be listed.
pub fn collect_results(dir: &Path) -> Result<QuantileCollected> {
    let mut files = Vec::new();
    list_json_files(dir, &mut files)?;
    files.sort();
    let mut collected = QuantileCollected::default();
    for file in files {
        match read_json::<serde_json::Value>(&file) {
            Ok(value) if value.get("experiment").and_then(|e| e.as_str()) != Some(EXPERIMENT) => {
                collected
                    .skipped
                    .push((file, format!("not a {EXPERIMENT} result")));
            }
            Ok(value) => match serde_json::from_value::<QuantileResult>(value) {
                Ok(result) => collected.results.push(result),
                Err(error) => collected.skipped.push((file, error.to_string())),
            },
            Err(error) => collected.skipped.push((file, error.to_string())),
        }
    }
    Ok(collected)
}

fn method_rank(method: Method) -> usize {
    Method::ALL
        .iter()
        .position(|&m| m == method)
        .expect("ALL lists every method")
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn sample_std(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let mu = mean(values);
    let variance = values.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (values.len() - 1) as f64;
    variance.sqrt()
}
