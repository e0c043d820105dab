//! Measures the CPU time per step of the fused permutation losses on the speed task (scores
//! `[20, n]` in `f32`, identity target, forward plus backward), next to the wall time.
//!
//! On a machine shared with other work, criterion's wall times include the time the process
//! waits for a core. The CPU time (user plus system, read from `/proc/self/stat` on Linux, with
//! 10 ms resolution) does not. Run with one rayon thread so that the two are comparable:
//!
//! ```sh
//! RAYON_NUM_THREADS=1 cargo run --release -p benches --example fused_cpu_time
//! ```

/// Keeps freed memory in the process, so the next step reuses it instead of faulting in
/// fresh pages (see "Memory allocator" in the `autograd` crate docs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use autograd::{Tape, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use softsort_ops::fast;

const BATCH: usize = 20;

/// Returns the CPU time (user plus system) this process has used so far, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc is available");
    // The fields after the parenthesised command name start with the state (field 3), so
    // utime (field 14) and stime (field 15) are at offsets 11 and 12.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |k: usize| -> f64 { fields[k].parse().expect("a clock-tick count") };
    // NOTE: assumes the usual 100 clock ticks per second (sysconf(_SC_CLK_TCK)).
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let mut rng = StdRng::seed_from_u64(0);
    let losses = [
        "softsort_abs_tau1",
        "softsort_squared_tau0.1",
        "neuralsort_tau100",
    ];
    println!("loss n steps wall_ms cpu_ms");
    for n in [100usize, 500, 1000, 2000, 4000] {
        let scores = Tensor::<f32>::normal([BATCH, n], 0.0, 1.0, &mut rng).expect("valid shape");
        let identity: Vec<f32> = (0..BATCH * n).map(|k| (k % n) as f32).collect();
        let identity = Tensor::from_vec(identity, [BATCH, n]).expect("valid shape");
        // About 4·10⁸ elements of P per loss and size, and at least 3 steps.
        let steps = (4e8 / (BATCH * n * n) as f64).max(3.0) as usize;
        for (which, name) in losses.iter().enumerate() {
            let wall = Instant::now();
            let cpu = cpu_seconds();
            for _ in 0..steps {
                let tape = Tape::new();
                let s = tape.param(scores.clone());
                let target = tape.constant(identity.clone());
                let loss = match which {
                    0 => fast::permutation_nll(s, target, 1.0),
                    1 => fast::squared_permutation_nll(s, target, 0.1),
                    _ => fast::neuralsort_permutation_nll(s, target, 100.0),
                }
                .expect("the loss is defined");
                let grads = tape.backward(loss).expect("the loss depends on the scores");
                std::hint::black_box(grads.get(s).expect("scores are a parameter").data()[0]);
            }
            let cpu_ms = (cpu_seconds() - cpu) / steps as f64 * 1e3;
            let wall_ms = wall.elapsed().as_secs_f64() / steps as f64 * 1e3;
            println!("{name} {n} {steps} {wall_ms:.3} {cpu_ms:.3}");
        }
    }
}
