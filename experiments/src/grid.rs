//! The full experiment grid of the SoftSort paper (Prillo & Eisenschlos 2020) as shell commands, one run per line, to feed GNU
//! parallel (`grid | parallel -j 2`) or a Slurm array (`sed -n "${SLURM_ARRAY_TASK_ID}p"`).
//!
//! Each experiment contributes a function from [`GridOptions`] to its command lines and an
//! entry in [`EXPERIMENTS`].
//!
//! ```
//! use experiments::grid::{grid_lines, GridOptions};
//!
//! let lines = grid_lines(&GridOptions::default(), Some("sort-mnist"))?;
//! assert_eq!(lines.len(), 5 * 6 * 10);
//! assert!(lines[0].starts_with("target/release/sort-mnist --method det-softsort -n 3 --tau 1024"));
//! # Ok::<(), experiments::Error>(())
//! ```

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::sort_mnist::{default_tau, Method};

/// The settings shared by the lines of every experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridOptions {
    /// Repetitions of each configuration; repetition `r` uses seed `r`.
    pub repetitions: usize,
    /// The folder of the built binaries, such as `target/release`.
    pub bin_dir: PathBuf,
    /// The data folder passed as `--data`, if any.
    pub data: Option<PathBuf>,
    /// The results folder; each experiment writes to a subfolder named after it.
    pub out: PathBuf,
    /// Training steps per run, if not the binary's default.
    pub steps: Option<usize>,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            repetitions: 10,
            bin_dir: PathBuf::from("target/release"),
            data: None,
            out: PathBuf::from("results"),
            steps: None,
        }
    }
}

/// An experiment's name and the function that lists its command lines.
pub type GridEntry = (&'static str, fn(&GridOptions) -> Vec<String>);

/// Every experiment with a grid, in the order [`grid_lines`] prints them.
pub const EXPERIMENTS: &[GridEntry] = &[
    ("sort-mnist", sort_mnist_lines),
    (crate::quantile::EXPERIMENT, crate::quantile::grid_lines),
    ("knn", knn_lines),
    ("speed", speed_lines),
];

/// The neighbour counts `k` of Table 3.
pub const KNN_K: [usize; 4] = [1, 3, 5, 9];

/// Lists the runs of Table 3: both datasets, both sorters and every `k` of [`KNN_K`], each
/// repeated with seeds `0..repetitions`. Temperature and learning rate are the binary's
/// defaults.
pub fn knn_lines(options: &GridOptions) -> Vec<String> {
    let binary = shell_quote(&options.bin_dir.join("knn").display().to_string());
    let mut lines = Vec::new();
    for dataset in ["mnist", "fashion-mnist"] {
        for sorter in ["softsort", "neuralsort"] {
            for k in KNN_K {
                for seed in 0..options.repetitions {
                    let mut line =
                        format!("{binary} --dataset {dataset} --sorter {sorter} --k {k}");
                    if let Some(steps) = options.steps {
                        line.push_str(&format!(" --steps {steps}"));
                    }
                    line.push_str(&common_flags(options, "knn", seed));
                    lines.push(line);
                }
            }
        }
    }
    lines
}

/// Lists the one run of the speed comparison: it times every operator over the default range
/// of `n`, so it has no repetitions and should run alone on the machine.
pub fn speed_lines(options: &GridOptions) -> Vec<String> {
    let binary = shell_quote(&options.bin_dir.join("speed").display().to_string());
    let out = shell_quote(&options.out.join("speed").display().to_string());
    vec![format!("{binary} --out {out} --quiet")]
}

/// The sequence lengths of Table 1.
pub const SORT_MNIST_LENGTHS: [usize; 5] = [3, 5, 7, 9, 15];

/// Lists the command lines of every experiment, or of the one named `only`.
///
/// # Errors
/// [`Error::InvalidArgument`] if `only` names no experiment, for zero repetitions or for zero
/// training steps.
pub fn grid_lines(options: &GridOptions, only: Option<&str>) -> Result<Vec<String>> {
    if options.repetitions == 0 {
        return Err(Error::invalid(
            "grid",
            "repetitions",
            0,
            "give --repetitions 1 or more (the paper uses 10)",
        ));
    }
    if options.steps == Some(0) {
        return Err(Error::invalid(
            "grid",
            "steps",
            0,
            "give --steps 1 or more, or leave it out for each binary's default",
        ));
    }
    if let Some(name) = only {
        if !EXPERIMENTS.iter().any(|(known, _)| *known == name) {
            let known: Vec<&str> = EXPERIMENTS.iter().map(|(known, _)| *known).collect();
            return Err(Error::invalid(
                "grid",
                "experiment",
                name,
                format!("choose one of {known:?}"),
            ));
        }
    }
    Ok(EXPERIMENTS
        .iter()
        .filter(|(name, _)| only.is_none_or(|wanted| wanted == *name))
        .flat_map(|(_, lines)| lines(options))
        .collect())
}

/// Formats the common tail of a command line: data folder, output folder, seed and `--quiet`.
/// Paths are quoted for a POSIX shell.
pub fn common_flags(options: &GridOptions, experiment: &str, seed: usize) -> String {
    let mut flags = String::new();
    if let Some(data) = &options.data {
        flags.push_str(&format!(
            " --data {}",
            shell_quote(&data.display().to_string())
        ));
    }
    flags.push_str(&format!(
        " --out {} --seed {seed} --quiet",
        shell_quote(&options.out.join(experiment).display().to_string())
    ));
    flags
}

/// Quotes `word` for a POSIX shell when it contains anything but safe characters:
/// `my data` becomes `'my data'`, and a `'` inside becomes `'\''`.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Lists the runs of Table 1: every method and `n` of [`SORT_MNIST_LENGTHS`] with the
/// temperature of [`default_tau`], each repeated with seeds `0..repetitions`.
pub fn sort_mnist_lines(options: &GridOptions) -> Vec<String> {
    let binary = options.bin_dir.join("sort-mnist");
    let mut lines = Vec::new();
    for n in SORT_MNIST_LENGTHS {
        for method in Method::ALL {
            for seed in 0..options.repetitions {
                let mut line = format!(
                    "{} --method {method} -n {n} --tau {}",
                    shell_quote(&binary.display().to_string()),
                    default_tau(n)
                );
                if let Some(steps) = options.steps {
                    line.push_str(&format!(" --steps {steps}"));
                }
                line.push_str(&common_flags(options, "sort-mnist", seed));
                lines.push(line);
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quote_leaves_safe_words_alone() {
        assert_eq!(shell_quote("data/mnist-1"), "data/mnist-1");
    }

    #[test]
    fn shell_quote_wraps_spaces_and_quotes() {
        assert_eq!(shell_quote("my data"), "'my data'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
