//! Times one SGD training step of each sorting operator on the SoftSort paper's synthetic
//! speed task, for a range of sizes n, and writes `speed.csv`, `speed.svg` and `speed.json`.
//!
//! ```sh
//! cargo run --release -p experiments --bin speed -- --n-max 2000 --skip-after 2 --out results/speed
//! ```

use std::process::ExitCode;

use clap::Parser;
use experiments::speed::{
    fast_sizes, run_sweep, size_range, write_csv, write_svg, AxisScale, Measurement, Operator,
    Progress, SweepConfig, SweepResult, BATCH,
};
use serde::Serialize;

// NOTE: stand-ins for the shared experiment helpers (flags, JSON output, progress bar); they
// keep the names and signatures of those helpers so that switching is a change of imports.
use shared::{create_output_dir, log, progress_bar, write_json, CommonArgs};

/// Times the SoftSort paper's speed task (20 rows of n scores trained towards the identity
/// permutation with SGD) for each sorting operator and size n.
#[derive(Debug, Parser, Serialize)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Operators to time, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Operator::ALL.to_vec())]
    operators: Vec<Operator>,
    /// Explicit sizes n, comma-separated; replaces --n-min, --n-max and --n-step.
    #[arg(long, value_delimiter = ',')]
    n: Option<Vec<usize>>,
    /// Smallest n of the range.
    #[arg(long, default_value_t = 100)]
    n_min: usize,
    /// Largest n of the range, inclusive.
    #[arg(long, default_value_t = 4000)]
    n_max: usize,
    /// Step between the sizes of the range.
    #[arg(long, default_value_t = 100)]
    n_step: usize,
    /// Largest n of the fast operators, which also run at 1, 2, 5 × 10^k above the range.
    #[arg(long, default_value_t = 100_000)]
    fast_n_max: usize,
    /// Untimed training steps before the timed ones, per operator and n.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Timed training steps per operator and n; the mean step time is reported.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Skip an operator's larger sizes once its mean step takes longer than this (seconds).
    #[arg(long, value_name = "SECONDS")]
    skip_after: Option<f64>,
    /// Scale of the plot's n axis (the time axis is always logarithmic).
    #[arg(long, value_enum, default_value_t = AxisScale::Log)]
    x_scale: AxisScale,
}

/// The JSON result file.
#[derive(Serialize)]
struct Report<'a> {
    experiment: &'static str,
    arguments: &'a Args,
    sweep: &'a SweepConfig,
    batch: usize,
    environment: Environment,
    result: &'a SweepResult,
    summary: String,
}

/// The machine and build behind the measurements.
#[derive(Serialize)]
struct Environment {
    threads: usize,
    os: &'static str,
    arch: &'static str,
    debug_build: bool,
    crate_version: &'static str,
}

impl Environment {
    fn current() -> Self {
        Environment {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            debug_build: cfg!(debug_assertions),
            crate_version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn describe(&self) -> String {
        let build = if self.debug_build { "debug" } else { "release" };
        format!(
            "experiments {} ({build}), {} {}, {} threads, f32",
            self.crate_version, self.os, self.arch, self.threads
        )
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            log(format!("error: {error}"));
            ExitCode::FAILURE
        }
    }
}

fn sweep_config(args: &Args) -> experiments::Result<SweepConfig> {
    let sizes = match &args.n {
        Some(list) => {
            let mut list = list.clone();
            list.sort_unstable();
            list.dedup();
            list
        }
        None => size_range(args.n_min, args.n_max, args.n_step)?,
    };
    Ok(SweepConfig {
        operators: args.operators.clone(),
        fast_sizes: fast_sizes(&sizes, args.fast_n_max),
        sizes,
        warmup: args.warmup,
        steps: args.steps,
        skip_after: args.skip_after,
        seed: args.common.seed,
    })
}

fn run(args: &Args) -> experiments::Result<String> {
    let config = sweep_config(args)?;
    config.validate()?;
    let out = create_output_dir(&args.common.out)?;
    let environment = Environment::current();

    let bar = progress_bar(config.total_steps(), args.common.quiet);
    let quiet = args.common.quiet;
    let result = run_sweep(&config, |progress| match progress {
        Progress::Step { operator, n, loss } => {
            bar.set_message(format!("{operator} n={n} loss {loss:.4}"));
            bar.inc(1);
        }
        Progress::Measured(m) => {
            if !quiet {
                bar.suspend(|| log(describe_measurement(&m)));
            }
        }
        Progress::Skipped {
            skip,
            steps_left_out,
        } => {
            bar.set_length(bar.length().unwrap_or(0).saturating_sub(steps_left_out));
            if !quiet {
                bar.suspend(|| {
                    log(format!(
                        "{}: {:.3} s per step at n = {} exceeds --skip-after; skipping n = {:?}",
                        skip.operator, skip.seconds_per_step, skip.last_n, skip.skipped_sizes
                    ))
                });
            }
        }
    })?;
    bar.finish_and_clear();

    let comment = format!(
        "speed task, batch {BATCH}, {} warm-up and {} timed steps; {}",
        config.warmup,
        config.steps,
        environment.describe()
    );
    let csv_path = out.join("speed.csv");
    let svg_path = out.join("speed.svg");
    let json_path = out.join("speed.json");
    write_csv(&csv_path, &result.measurements, Some(&comment))?;
    let title = format!(
        "Speed task: one SGD step, batch {BATCH}, {}",
        environment.describe()
    );
    write_svg(&svg_path, &result.measurements, &title, args.x_scale)?;

    let summary = summarize(&result, &out.display().to_string());
    let report = Report {
        experiment: "speed",
        arguments: args,
        sweep: &config,
        batch: BATCH,
        environment,
        result: &result,
        summary: summary.clone(),
    };
    write_json(&json_path, &report)?;
    Ok(summary)
}

fn describe_measurement(m: &Measurement) -> String {
    format!(
        "{} n = {}: {:.3} ms per step, loss {:.4} -> {:.4}",
        m.operator,
        m.n,
        m.seconds_per_step * 1e3,
        m.first_loss,
        m.final_loss
    )
}

/// Builds the one-line summary: each operator's step time at its largest measured n.
fn summarize(result: &SweepResult, out: &str) -> String {
    let mut parts = Vec::new();
    for operator in Operator::ALL {
        let largest = result
            .measurements
            .iter()
            .filter(|m| m.operator == operator)
            .max_by_key(|m| m.n);
        if let Some(m) = largest {
            parts.push(format!(
                "{operator} {:.3} ms/step at n={}",
                m.seconds_per_step * 1e3,
                m.n
            ));
        }
    }
    format!(
        "speed: {}; {} skipped; wrote {out}/speed.{{csv,svg,json}}",
        parts.join(", "),
        result.skipped.len()
    )
}

mod shared {
    use std::fmt::Display;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use experiments::{Error, Result};
    use indicatif::{ProgressBar, ProgressStyle};
    use serde::Serialize;

    /// The flags every experiment binary takes.
    #[derive(Clone, Debug, clap::Args, Serialize)]
    pub struct CommonArgs {
        /// Data folder; the speed task generates its scores and reads no data.
        #[arg(long, value_name = "DIR")]
        pub data: Option<PathBuf>,
        /// Output folder for the result files; created if missing.
        #[arg(long, value_name = "DIR", default_value = "results")]
        pub out: PathBuf,
        /// Seed of the initial scores.
        #[arg(long, default_value_t = 0)]
        pub seed: u64,
        /// Hide the progress bar and the log lines on standard error.
        #[arg(long)]
        pub quiet: bool,
    }

    /// Prints one log line on standard error, prefixed with the program's name.
    pub fn log(message: impl Display) {
        eprintln!("[speed] {message}");
    }

    /// Creates `dir` and its missing parents, and returns it.
    pub fn create_output_dir(dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(dir.to_path_buf())
    }

    /// Writes `value` to `path` as pretty-printed JSON followed by a newline.
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

    /// Builds a progress bar over `steps` training steps with speed, time left and a message.
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
}
