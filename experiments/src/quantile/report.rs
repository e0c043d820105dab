//! Aggregation of result files into Table 2 of the SoftSort paper (Prillo & Eisenschlos 2020),
//! and the command lines of the grid that fills it.

use serde::{Deserialize, Serialize};

use crate::quantile::config::{Method, SEQUENCE_LENGTHS};
use crate::quantile::train::QuantileResult;

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

/// Formats rows from [`summarize_table2`] as a Markdown table; rows from the embedded
/// sample are marked, because a model trained on 600 images cannot be compared with the
/// published numbers.
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

/// Returns the command lines of the full Table 2 grid: every method at every length of
/// [`SEQUENCE_LENGTHS`] and every seed in `seeds`, each with `steps` training steps and the
/// published temperature of [`default_tau`](crate::quantile::default_tau), writing into `out_dir/quantile/`.
///
/// ```
/// use experiments::quantile::grid_lines;
///
/// let lines = grid_lines(1000, &[0], "results");
/// assert_eq!(lines.len(), 12);
/// assert_eq!(
///     lines[0],
///     "quantile-mnist --n 5 --method det-neuralsort --steps 1000 --seed 0 --out results/quantile"
/// );
/// ```
pub fn grid_lines(steps: usize, seeds: &[u64], out_dir: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for n in SEQUENCE_LENGTHS {
        for method in Method::ALL {
            for seed in seeds {
                lines.push(format!(
                    "quantile-mnist --n {n} --method {method} --steps {steps} --seed {seed} \
                     --out {out_dir}/quantile"
                ));
            }
        }
    }
    lines
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
