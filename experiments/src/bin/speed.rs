//! Times one SGD training step of each sorting operator on the SoftSort paper's synthetic
//! speed task, for a range of sizes n, and writes `speed.csv`, `speed.svg` and `speed.json`
//! to the `--out` folder. The scores are generated, so it reads no data.
//!
//! ```sh
//! cargo run --release -p experiments --bin speed -- --n-max 2000 --skip-after 2 --out results/speed
//! ```

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use std::path::PathBuf;

use experiments::run::{create_output_dir, log, log_error, progress_bar, write_json};
use experiments::speed::{
    fast_sizes, run_sweep, size_range, write_csv, write_svg, AxisScale, Measurement, Operator,
    Progress, SweepConfig, SweepResult, BATCH, MAX_FAST_N,
};
use serde::Serialize;

/// Times the SoftSort paper's speed task (20 rows of n scores trained towards the identity
/// permutation with SGD) for each sorting operator and size n.
#[derive(Debug, Parser, Serialize)]
#[command(version)]
struct Args {
    /// Output folder for speed.csv, speed.svg and speed.json; created if missing.
    #[arg(long, value_name = "DIR", default_value = "results")]
    out: PathBuf,
    /// Seed of the initial scores.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hide the progress bar and the log lines on standard error.
    #[arg(long)]
    quiet: bool,
    /// Operators to time, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Operator::ALL.to_vec())]
    operators: Vec<Operator>,
    /// Explicit sizes n, comma-separated. They replace --n-min, --n-max and --n-step.
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
    /// Largest n of the fast operators, which also run at 1, 2, 5 × 10^k above the range
    /// (at most 10000000).
    #[arg(long, default_value_t = 100_000)]
    fast_n_max: usize,
    /// Untimed training steps before the timed ones, per operator and n.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Timed training steps per operator and n. The mean step time is reported.
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
            log_error(error);
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
    if args.fast_n_max > MAX_FAST_N {
        return Err(experiments::Error::invalid(
            "speed",
            "fast-n-max",
            args.fast_n_max,
            format!("give at most {MAX_FAST_N} (one step at n = 10^6 takes about 70 ms)"),
        ));
    }
    Ok(SweepConfig {
        operators: args.operators.clone(),
        fast_sizes: fast_sizes(&sizes, args.fast_n_max),
        sizes,
        warmup: args.warmup,
        steps: args.steps,
        skip_after: args.skip_after,
        seed: args.seed,
    })
}

fn run(args: &Args) -> experiments::Result<String> {
    let config = sweep_config(args)?;
    config.validate()?;
    let out = create_output_dir(&args.out)?;
    let environment = Environment::current();

    let bar = progress_bar(config.total_steps(), args.quiet);
    let quiet = args.quiet;
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
