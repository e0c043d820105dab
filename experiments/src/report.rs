//! Table 1 of the SoftSort paper from sort-mnist result files: the mean and standard deviation
//! over repetitions of the test accuracies per method, training budget and `n`, beside the
//! published NeuralSort numbers.
//!
//! ```
//! use experiments::report::{aggregate, table1_markdown};
//!
//! let table = table1_markdown(&aggregate(&[]));
//! assert!(table.contains("| NeuralSort (published) | 0.930 (0.951) |"));
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::run::read_json;
use crate::sort_mnist::{Method, SortMnistResult, EXPERIMENT};

/// Deterministic NeuralSort in Table 1 of the SoftSort paper (Prillo & Eisenschlos 2020),
/// as `(n, all correct, any correct)`.
pub const PUBLISHED_NEURALSORT: [(usize, f64, f64); 5] = [
    (3, 0.930, 0.951),
    (5, 0.837, 0.927),
    (7, 0.738, 0.909),
    (9, 0.649, 0.896),
    (15, 0.386, 0.857),
];

/// The mean and sample standard deviation of one metric over repetitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanStd {
    /// The arithmetic mean.
    pub mean: f64,
    /// The sample standard deviation (divisor `k − 1`), 0 for a single value.
    pub std: f64,
}

impl MeanStd {
    /// Computes the mean and sample standard deviation of non-empty `values`.
    ///
    /// # Panics
    /// If `values` is empty.
    pub fn of(values: &[f64]) -> Self {
        assert!(!values.is_empty(), "MeanStd::of needs at least one value");
        let count = values.len() as f64;
        let mean = values.iter().sum::<f64>() / count;
        let std = if values.len() > 1 {
            let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (squares / (count - 1.0)).sqrt()
        } else {
            0.0
        };
        MeanStd { mean, std }
    }
}

/// The aggregated results of one cell of Table 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The relaxation.
    pub method: Method,
    /// The number of training steps of every run in the cell.
    pub steps: usize,
    /// The sequence length.
    pub n: usize,
    /// The number of runs (repetitions with distinct seeds).
    pub runs: usize,
    /// Whether any run used the embedded sample instead of the full MNIST.
    pub any_sample: bool,
    /// Test all-correct accuracy.
    pub all_correct: MeanStd,
    /// Test any-correct (per-position) accuracy.
    pub any_correct: MeanStd,
}

/// The sort-mnist results found in a folder, and the JSON files skipped.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    /// The parsed results, in file-name order.
    pub results: Vec<SortMnistResult>,
    /// The JSON files that were not sort-mnist results, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads every `*.json` file in `dir` and its subfolders and keeps the sort-mnist results.
/// Files of other experiments and files that do not parse are listed in
/// [`Collected::skipped`].
///
/// Results whose accuracies are not finite fractions in `[0, 1]` are skipped with a reason
/// that names the field.
///
/// # Errors
/// [`Error::InvalidArgument`] if `dir` does not exist or is a file, [`Error::Io`] if a folder
/// cannot be listed.
pub fn collect_results(dir: &Path) -> Result<Collected> {
    let mut files = Vec::new();
    list_json_files(dir, &mut files)?;
    files.sort();
    let mut collected = Collected::default();
    for file in files {
        match read_json::<serde_json::Value>(&file) {
            Ok(value) if value.get("experiment").and_then(|e| e.as_str()) != Some(EXPERIMENT) => {
                collected
                    .skipped
                    .push((file, format!("not a {EXPERIMENT} result")));
            }
            Ok(value) => match serde_json::from_value::<SortMnistResult>(value) {
                Ok(result) => match check_accuracies(&result) {
                    Ok(()) => collected.results.push(result),
                    Err(reason) => collected.skipped.push((file, reason)),
                },
                Err(error) => collected.skipped.push((file, error.to_string())),
            },
            Err(error) => collected.skipped.push((file, error.to_string())),
        }
    }
    Ok(collected)
}

/// Checks that the accuracies of `result` are finite fractions in `[0, 1]`, and otherwise
/// returns a reason that names the field and its value.
fn check_accuracies(result: &SortMnistResult) -> std::result::Result<(), String> {
    let fields = [
        ("test_all_correct", result.test_all_correct),
        ("test_any_correct", result.test_any_correct),
        (
            "best_validation_all_correct",
            result.best_validation_all_correct,
        ),
    ];
    for (field, value) in fields {
        if !(0.0..=1.0).contains(&value) {
            return Err(format!(
                "invalid {field} = {value:e}: an accuracy is a fraction in [0, 1]; rerun \
                 {EXPERIMENT} for this configuration or remove the file"
            ));
        }
    }
    Ok(())
}

/// Appends every `*.json` file in `dir` and its subfolders to `files`.
///
/// # Errors
/// [`Error::InvalidArgument`] if `dir` does not exist or is a file, [`Error::Io`] if a folder
/// cannot be listed.
pub(crate) fn list_json_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.exists() {
        return Err(Error::invalid(
            "report",
            "RESULTS",
            dir.display(),
            "no such folder; give the folder that the experiments wrote their *.json results to \
             (their --out)",
        ));
    }
    if !dir.is_dir() {
        return Err(Error::invalid(
            "report",
            "RESULTS",
            dir.display(),
            "RESULTS must be a folder; give the folder that holds the *.json result files \
             (it is searched with its subfolders)",
        ));
    }
    let io_error = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        if path.is_dir() {
            list_json_files(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// Groups results by method, number of steps and `n`, in that order, and averages the test
/// accuracies of each group.
pub fn aggregate(results: &[SortMnistResult]) -> Vec<Cell> {
    let mut groups: BTreeMap<(Method, usize, usize), Vec<&SortMnistResult>> = BTreeMap::new();
    for result in results {
        let key = (result.config.method, result.config.steps, result.config.n);
        groups.entry(key).or_default().push(result);
    }
    groups
        .into_iter()
        .map(|((method, steps, n), runs)| {
            let all: Vec<f64> = runs.iter().map(|r| r.test_all_correct).collect();
            let any: Vec<f64> = runs.iter().map(|r| r.test_any_correct).collect();
            Cell {
                method,
                steps,
                n,
                runs: runs.len(),
                any_sample: runs.iter().any(|r| r.data_is_sample),
                all_correct: MeanStd::of(&all),
                any_correct: MeanStd::of(&any),
            }
        })
        .collect()
}

/// Formats Table 1 as markdown: one row per method and training budget, one column per `n`,
/// each cell `all-correct (any-correct)` as mean ± standard deviation over the runs (the value
/// alone for one run), with the number of runs. The first row is the published deterministic NeuralSort.
pub fn table1_markdown(cells: &[Cell]) -> String {
    let mut lengths: Vec<usize> = PUBLISHED_NEURALSORT.iter().map(|p| p.0).collect();
    lengths.extend(cells.iter().map(|c| c.n));
    lengths.sort_unstable();
    lengths.dedup();

    let mut table = String::from("| Method |");
    for n in &lengths {
        table.push_str(&format!(" n = {n} |"));
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(lengths.len()));
    table.push('\n');

    table.push_str("| NeuralSort (published) |");
    for n in &lengths {
        match PUBLISHED_NEURALSORT.iter().find(|p| p.0 == *n) {
            Some((_, all, any)) => table.push_str(&format!(" {all:.3} ({any:.3}) |")),
            None => table.push_str(" |"),
        }
    }
    table.push('\n');

    let mut rows: Vec<(Method, usize)> = cells.iter().map(|c| (c.method, c.steps)).collect();
    rows.dedup();
    for (method, steps) in rows {
        let unit = if steps == 1 { "step" } else { "steps" };
        table.push_str(&format!("| {method}, {steps} {unit} |"));
        for n in &lengths {
            let cell = cells
                .iter()
                .find(|c| c.method == method && c.steps == steps && c.n == *n);
            match cell {
                Some(cell) => table.push_str(&format!(" {} |", format_cell(cell))),
                None => table.push_str(" |"),
            }
        }
        table.push('\n');
    }
    if cells.iter().any(|c| c.any_sample) {
        table.push_str(
            "\n\\* includes runs on the embedded MNIST sample, not comparable to published \
             numbers.\n",
        );
    }
    table
}

fn format_cell(cell: &Cell) -> String {
    let sample = if cell.any_sample { "\\*" } else { "" };
    if cell.runs == 1 {
        // A single run has no spread, so no "± 0.000" that would suggest one.
        return format!(
            "{:.3} ({:.3}), 1 run{sample}",
            cell.all_correct.mean, cell.any_correct.mean
        );
    }
    format!(
        "{:.3} ± {:.3} ({:.3} ± {:.3}), {} runs{sample}",
        cell.all_correct.mean,
        cell.all_correct.std,
        cell.any_correct.mean,
        cell.any_correct.std,
        cell.runs
    )
}
