//! Checkpoints: round trips of weights and optimiser state, and clear errors on bad files.

use std::path::PathBuf;

use autograd::nn::{
    self, load_checkpoint, save_checkpoint, Adam, AdamConfig, Conv2d, Linear, Module,
    NamedGradients, Optimizer, OptimizerState, Sgd, SgdConfig,
};
use autograd::{Error, Float, Padding, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

struct Net<T: Float> {
    conv: Conv2d<T>,
    fc: Linear<T>,
}

impl<T: Float> Net<T> {
    fn new(seed: u64, fc_outputs: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Net {
            conv: Conv2d::new(1, 3, 3, 1, Padding::Same, true, &mut rng).unwrap(),
            fc: Linear::new(12, fc_outputs, true, &mut rng).unwrap(),
        }
    }
}

impl<T: Float> Module<T> for Net<T> {
    fn named_parameters(&self) -> Vec<(String, &Tensor<T>)> {
        let mut all = nn::scoped("conv", self.conv.named_parameters());
        all.extend(nn::scoped("fc", self.fc.named_parameters()));
        all
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        let mut all = nn::scoped("conv", self.conv.named_parameters_mut());
        all.extend(nn::scoped("fc", self.fc.named_parameters_mut()));
        all
    }
}

/// A path in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        TempFile(std::env::temp_dir().join(format!(
            "autograd-{}-{name}.safetensors",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Gradients of ones for every parameter of `model`.
fn ones_like<T: Float>(model: &dyn Module<T>) -> NamedGradients<T> {
    NamedGradients::new(
        model
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (n, Tensor::ones(t.shape().clone())))
            .collect(),
    )
}

fn message(err: Error) -> String {
    assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn weights_and_adam_state_round_trip() {
    let file = TempFile::new("round-trip");
    let mut model = Net::<f32>::new(1, 2);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let grads = ones_like(&model);
    adam.step(&mut model, &grads).unwrap();
    save_checkpoint(&file.0, &model, Some(&adam)).unwrap();

    let mut restored = Net::<f32>::new(2, 2);
    let mut restored_adam = Adam::new(AdamConfig::default()).unwrap();
    load_checkpoint(&file.0, &mut restored, Some(&mut restored_adam)).unwrap();
    for ((name, a), (_, b)) in model
        .named_parameters()
        .into_iter()
        .zip(restored.named_parameters())
    {
        assert!(a.bit_eq(b), "{name} differs");
    }
    assert_eq!(restored_adam.state(), adam.state());

    // Both continue identically.
    adam.step(&mut model, &grads).unwrap();
    restored_adam.step(&mut restored, &grads).unwrap();
    assert!(model.fc.weight.bit_eq(&restored.fc.weight));
}

#[test]
fn sgd_state_and_f64_round_trip() {
    let file = TempFile::new("sgd");
    let mut model = Net::<f64>::new(3, 2);
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::new(0.1)
    })
    .unwrap();
    let grads = ones_like(&model);
    sgd.step(&mut model, &grads).unwrap();
    save_checkpoint(&file.0, &model, Some(&sgd)).unwrap();
    let mut restored = Net::<f64>::new(4, 2);
    let mut restored_sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::new(0.1)
    })
    .unwrap();
    load_checkpoint(&file.0, &mut restored, Some(&mut restored_sgd)).unwrap();
    assert!(restored.conv.weight.bit_eq(&model.conv.weight));
    assert_eq!(restored_sgd.state(), sgd.state());
}

#[test]
fn unwritable_path_is_reported_plainly() {
    let folder = std::env::temp_dir().join(format!("no-such-folder-{}", std::process::id()));
    let model = Linear::<f32>::new(2, 2, false, &mut StdRng::seed_from_u64(0)).unwrap();
    let text =
        message(save_checkpoint(folder.join("model.safetensors"), &model, None).unwrap_err());
    assert!(
        text.contains("writing failed: No such file or directory"),
        "{text}"
    );
    assert!(!text.contains("IoError"), "{text}");
}

#[test]
fn missing_tensor_is_reported() {
    let file = TempFile::new("missing");
    let without_bias = Linear::<f32>::new(12, 2, false, &mut StdRng::seed_from_u64(0)).unwrap();
    save_checkpoint(&file.0, &without_bias, None).unwrap();
    let mut with_bias = Linear::<f32>::new(12, 2, true, &mut StdRng::seed_from_u64(0)).unwrap();
    let text = message(load_checkpoint(&file.0, &mut with_bias, None).unwrap_err());
    assert!(text.contains("parameter \"bias\" is missing"), "{text}");
}

#[test]
fn mismatched_shape_is_reported_and_nothing_changes() {
    let file = TempFile::new("shape");
    save_checkpoint(&file.0, &Net::<f32>::new(1, 3), None).unwrap();
    let mut model = Net::<f32>::new(2, 2);
    let before = model.conv.weight.clone();
    let text = message(load_checkpoint(&file.0, &mut model, None).unwrap_err());
    assert!(
        text.contains("\"fc.weight\" has shape [12, 3] in the file but [12, 2]"),
        "{text}"
    );
    assert!(
        model.conv.weight.bit_eq(&before),
        "a failed load changed the model"
    );
}

#[test]
fn f32_file_into_f64_model_is_rejected() {
    let file = TempFile::new("dtype");
    save_checkpoint(&file.0, &Net::<f32>::new(1, 2), None).unwrap();
    let mut model = Net::<f64>::new(1, 2);
    let text = message(load_checkpoint(&file.0, &mut model, None).unwrap_err());
    assert!(
        text.contains("stored as F32 but the model uses F64"),
        "{text}"
    );
}

#[test]
fn truncated_and_corrupt_files_are_rejected() {
    let file = TempFile::new("corrupt");
    save_checkpoint(&file.0, &Net::<f32>::new(1, 2), None).unwrap();
    let bytes = std::fs::read(&file.0).unwrap();
    let mut model = Net::<f32>::new(1, 2);

    std::fs::write(&file.0, &bytes[..bytes.len() - 10]).unwrap();
    let text = message(load_checkpoint(&file.0, &mut model, None).unwrap_err());
    assert!(text.contains("not a valid safetensors file"), "{text}");

    let mut garbled = bytes.clone();
    garbled[8..20].copy_from_slice(b"not a header");
    std::fs::write(&file.0, &garbled).unwrap();
    let text = message(load_checkpoint(&file.0, &mut model, None).unwrap_err());
    assert!(text.contains("not a valid safetensors file"), "{text}");

    std::fs::write(&file.0, b"abc").unwrap();
    assert!(
        message(load_checkpoint(&file.0, &mut model, None).unwrap_err()).contains("not a valid")
    );

    let absent = TempFile::new("absent");
    let text = message(load_checkpoint(&absent.0, &mut model, None).unwrap_err());
    assert!(text.contains("reading failed"), "{text}");
}

#[test]
fn unexpected_tensor_is_rejected() {
    let file = TempFile::new("unexpected");
    let with_bias = Linear::<f32>::new(4, 2, true, &mut StdRng::seed_from_u64(0)).unwrap();
    save_checkpoint(&file.0, &with_bias, None).unwrap();
    let mut without_bias = Linear::<f32>::new(4, 2, false, &mut StdRng::seed_from_u64(0)).unwrap();
    let text = message(load_checkpoint(&file.0, &mut without_bias, None).unwrap_err());
    assert!(
        text.contains("contains \"bias\", which the model does not have"),
        "{text}"
    );
}

#[test]
fn optimizer_state_mismatches_are_rejected() {
    let file = TempFile::new("optimizer");
    let mut model = Net::<f32>::new(1, 2);
    save_checkpoint(&file.0, &model, None).unwrap();
    let mut adam = Adam::<f32>::new(AdamConfig::default()).unwrap();
    let text = message(load_checkpoint(&file.0, &mut model, Some(&mut adam)).unwrap_err());
    assert!(text.contains("contains no optimiser state"), "{text}");

    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.5,
        ..SgdConfig::new(0.1)
    })
    .unwrap();
    let grads = ones_like(&model);
    sgd.step(&mut model, &grads).unwrap();
    save_checkpoint(&file.0, &model, Some(&sgd)).unwrap();
    let text = message(load_checkpoint(&file.0, &mut model, Some(&mut adam)).unwrap_err());
    assert!(text.contains("\"sgd\""), "{text}");
}

/// An optimiser whose saved state is given, to write files that no real optimiser produces.
struct FixedState(OptimizerState<f32>);

impl Optimizer<f32> for FixedState {
    fn step(&mut self, _: &mut dyn Module<f32>, _: &NamedGradients<f32>) -> autograd::Result<()> {
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        0.0
    }

    fn set_learning_rate(&mut self, _: f64) -> autograd::Result<()> {
        Ok(())
    }

    fn state(&self) -> OptimizerState<f32> {
        self.0.clone()
    }

    fn load_state(&mut self, state: OptimizerState<f32>) -> autograd::Result<()> {
        self.0 = state;
        Ok(())
    }
}

#[test]
fn non_finite_parameters_are_rejected_and_nothing_changes() {
    let file = TempFile::new("non-finite");
    for (bad, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let mut saved = Net::<f32>::new(1, 2);
        saved.fc.weight.data_mut()[5] = bad;
        save_checkpoint(&file.0, &saved, None).unwrap();
        let mut model = Net::<f32>::new(2, 2);
        let before = model.fc.weight.clone();
        let text = message(load_checkpoint(&file.0, &mut model, None).unwrap_err());
        assert!(
            text.contains(&format!(
                "tensor \"fc.weight\" contains {shown} at flat index 5"
            )),
            "{text}"
        );
        assert!(model.fc.weight.bit_eq(&before));
    }
}

#[test]
fn non_finite_optimizer_state_is_rejected() {
    let file = TempFile::new("non-finite-state");
    let mut model = Net::<f32>::new(1, 2);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let grads = ones_like(&model);
    adam.step(&mut model, &grads).unwrap();
    let mut state = adam.state();
    let (name, buffer) = &mut state.tensors[0];
    let name = name.clone();
    buffer.data_mut()[1] = f32::NAN;
    save_checkpoint(&file.0, &model, Some(&FixedState(state))).unwrap();

    let mut restored = Adam::new(AdamConfig::default()).unwrap();
    let text = message(load_checkpoint(&file.0, &mut model, Some(&mut restored)).unwrap_err());
    assert!(
        text.contains(&format!(
            "tensor \"optimizer.{name}\" contains NaN at flat index 1"
        )),
        "{text}"
    );
    assert_eq!(restored.state().steps, 0);
}
