//! Training does not accumulate memory: parameters are updated in place once the tape is
//! gone, and the resident set stays flat over many steps.

use autograd::nn::{Adam, AdamConfig, Conv2d, Module, Optimizer, Params};
use autograd::{Padding, Tape, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The resident set size in bytes, from `/proc/self/statm` (Linux only).
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn training_memory_stays_flat() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut model = Conv2d::<f32>::new(2, 8, 3, 1, Padding::Same, true, &mut rng).unwrap();
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let images = Tensor::<f32>::uniform([16, 2, 16, 16], -1.0, 1.0, &mut rng).unwrap();
    let buffers: Vec<*const f32> = model
        .named_parameters()
        .iter()
        .map(|(_, t)| t.data().as_ptr())
        .collect();

    let mut baseline = None;
    for step in 0..200 {
        let grads = {
            let tape = Tape::new();
            let params = Params::new(&tape, &model);
            let y = model
                .forward(&params, tape.constant(images.clone()))
                .unwrap();
            let loss = y.relu().unwrap().mean().unwrap();
            params.backward(loss).unwrap()
        };
        adam.step(&mut model, &grads).unwrap();
        if step == 20 {
            baseline = resident_bytes();
        }
    }

    // An update through a buffer still shared with a tape would have copied it first.
    for ((name, t), before) in model.named_parameters().iter().zip(&buffers) {
        assert_eq!(t.data().as_ptr(), *before, "{name} was reallocated");
    }
    if let (Some(start), Some(end)) = (baseline, resident_bytes()) {
        let growth = end.saturating_sub(start);
        assert!(
            growth < 8 << 20,
            "resident set grew by {growth} bytes over 180 steps"
        );
    }
}
