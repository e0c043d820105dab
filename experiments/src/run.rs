//! Helpers every experiment binary shares: the `--data`, `--out` and `--seed` flags, the output
//! folder, JSON result files, the progress bar, logging and the best-validation checkpoint.
//!
//! ```
//! use experiments::run::{create_output_dir, read_json, write_json};
//!
//! let dir = create_output_dir(&std::env::temp_dir().join("run-doc"))?;
//! let path = dir.join("result.json");
//! write_json(&path, &vec![1.0, 2.5])?;
//! let back: Vec<f64> = read_json(&path)?;
//! assert_eq!(back, vec![1.0, 2.5]);
//! # Ok::<(), experiments::Error>(())
//! ```

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use autograd::nn::{load_checkpoint, save_checkpoint, Module};
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// The flags every experiment binary takes; binaries include them with
/// `#[command(flatten)] common: CommonArgs`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args, Serialize, serde::Deserialize)]
pub struct CommonArgs {
    /// Data folder that contains mnist/ (and fashion-mnist/), as filled by
    /// scripts/fetch-data.sh. Without it: $SOFTSORT_DATA, then a data/ folder found upwards
    /// from the current folder, then the small MNIST sample built into the binary.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for the JSON result and the checkpoint; created if missing.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Seed of every random draw: initialisation, batches and noise.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: u64,
    /// Hide the progress bar and the log lines on standard error.
    #[arg(long)]
    pub quiet: bool,
}

/// Returns the name of the running program, from its path.
fn program_name() -> String {
    std::env::args()
        .next()
        .and_then(|arg0| {
            Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "experiments".to_string())
}

/// Prints one log line on standard error, prefixed with the program's name.
pub fn log(message: impl Display) {
    eprintln!("[{}] {message}", program_name());
}

/// Prints `error` as the program's last log line, `[program] error: …`. A message that starts
/// with the program's own name (the settings checks name it, as in `sort-mnist: invalid n`)
/// loses that prefix, so that the name appears once.
pub fn log_error(error: impl Display) {
    let program = program_name();
    let message = error.to_string();
    let message = message
        .strip_prefix(&format!("{program}: "))
        .unwrap_or(&message);
    eprintln!("[{program}] error: {message}");
}

/// Creates `dir` and its missing parents, and returns it.
///
/// # Errors
/// [`Error::Write`] if a folder cannot be created.
pub fn create_output_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(dir.to_path_buf())
}

/// Writes `value` to `path` as pretty-printed JSON followed by a newline.
///
/// # Errors
/// [`Error::Json`] if `value` cannot be encoded, [`Error::Write`] if the file cannot be written.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a JSON file written by [`write_json`].
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::Json`] if it does not parse as `T`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds a progress bar over `steps` training steps that shows the step count, the speed in
/// steps per second, the time left and a message (set it with [`show_loss`]). It is hidden if
/// `hidden` is true, and indicatif also hides it when standard error is not a terminal.
pub fn progress_bar(steps: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} steps, {per_sec}, {eta} left, {msg}",
    )
    .expect("the template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

/// Shows the latest training loss in the message of `bar`.
pub fn show_loss(bar: &ProgressBar, loss: f64) {
    bar.set_message(format!("loss {loss:.4}"));
}

/// The checkpoint of the model with the best validation score so far, in safetensors format.
#[derive(Clone, Debug)]
pub struct BestCheckpoint {
    path: PathBuf,
    best: Option<f64>,
}

impl BestCheckpoint {
    /// Keeps the best model in `path`; nothing is written until [`BestCheckpoint::offer`].
    pub fn new(path: PathBuf) -> Self {
        BestCheckpoint { path, best: None }
    }

    /// Returns the checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the best validation score offered so far.
    pub fn best_score(&self) -> Option<f64> {
        self.best
    }

    /// Saves `model` if `score` (higher is better) beats every earlier score, or if it is the
    /// first one, and returns whether it did. Ties keep the earlier model.
    ///
    /// # Errors
    /// [`Error::Write`] naming the path if the file cannot be created,
    /// [`autograd::Error::Checkpoint`] (wrapped) if writing it fails later.
    pub fn offer(&mut self, score: f64, model: &dyn Module<f32>) -> Result<bool> {
        if self.best.is_some_and(|best| score <= best) {
            return Ok(false);
        }
        // Creating the file first turns the common failures (a missing folder, no permission)
        // into an error that prints the path and the cause plainly.
        std::fs::File::create(&self.path).map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })?;
        save_checkpoint(&self.path, model, None)?;
        self.best = Some(score);
        Ok(true)
    }

    /// Loads the best model into `model`. Does nothing if no model was saved.
    ///
    /// # Errors
    /// [`autograd::Error::Checkpoint`] (wrapped) if the file cannot be read or does not fit
    /// `model`.
    pub fn restore(&self, model: &mut dyn Module<f32>) -> Result<()> {
        if self.best.is_some() {
            load_checkpoint(&self.path, model, None)?;
        }
        Ok(())
    }
}
