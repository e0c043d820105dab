//! Times training steps of the paper's CNN (the model of the `training` bench) by wall clock
//! and by the CPU time of the process.
//!
//! On a machine shared with other jobs the wall time mostly measures the load, while the CPU
//! time per step stays comparable between runs, so A/B comparisons use the latter.
//!
//! ```sh
//! cargo run --release -p benches --example step_cpu_time -- 60 10   # batch, steps
//! ```
//!
//! Linux only: the CPU time comes from `/proc/self/stat`, in clock ticks of 10 ms.

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/paper_cnn/mod.rs"]
mod paper_cnn;

use std::time::Instant;

use autograd::nn::{Adam, AdamConfig};
use autograd::Tensor;
use paper_cnn::{training_step, PaperCnn};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// User plus system CPU time of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("reading /proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> f64 {
        fields[i]
            .parse()
            .expect("a clock-tick count in /proc/self/stat")
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> autograd::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments: batch size and step count"))
        .collect();
    let batch = args.first().copied().unwrap_or(60);
    let steps = args.get(1).copied().unwrap_or(10).max(1);

    let mut rng = StdRng::seed_from_u64(0);
    let mut model = PaperCnn::new(&mut rng)?;
    let mut adam = Adam::new(AdamConfig {
        lr: 1e-4,
        ..AdamConfig::default()
    })?;
    let images = Tensor::uniform([batch, 1, 112, 28], 0.0, 1.0, &mut rng)?;
    // One untimed step to warm up the allocator and the thread pool.
    training_step(&mut model, &mut adam, &images)?;

    let (cpu_start, wall_start) = (cpu_seconds(), Instant::now());
    let mut loss = 0.0;
    for _ in 0..steps {
        loss = training_step(&mut model, &mut adam, &images)?;
    }
    let wall = wall_start.elapsed().as_secs_f64() / steps as f64;
    let cpu = (cpu_seconds() - cpu_start) / steps as f64;
    println!(
        "batch {batch}, {steps} steps: wall {:.1} ms/step, cpu {:.1} ms/step, last loss {loss}",
        wall * 1e3,
        cpu * 1e3
    );
    Ok(())
}
