//! The score CNN: output shape, initialisation, gradients and shape errors.

use autograd::nn::{Module, Params};
use autograd::{Tape, Tensor};
use experiments::cnn::{CnnInit, ScoreCnn};
use experiments::run::BestCheckpoint;
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn large_mnist_images_give_one_score_each() {
    let model = ScoreCnn::new(
        112,
        28,
        CnnInit::TruncatedNormal,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    let images = Tensor::uniform([3, 1, 112, 28], 0.0, 1.0, &mut StdRng::seed_from_u64(1)).unwrap();
    let scores = model.scores(&images).unwrap();
    assert_eq!(scores.dims(), &[3]);
    assert!(scores.data().iter().all(|s| s.is_finite()));
    // 5·5·32 + 32, 5·5·32·64 + 64, 7·28·64·64 + 64, 64 + 1.
    let expected = 832 + 51_264 + 802_880 + 65;
    assert_eq!(model.num_parameters(), expected);
}

#[test]
fn truncated_normal_init_matches_paper() {
    let model = ScoreCnn::new(
        8,
        4,
        CnnInit::TruncatedNormal,
        &mut StdRng::seed_from_u64(2),
    )
    .unwrap();
    for (name, tensor) in model.named_parameters() {
        if name.ends_with("bias") {
            assert!(tensor.data().iter().all(|&b| b == 0.1), "{name}");
        } else {
            assert!(tensor.data().iter().all(|w| w.abs() <= 0.2), "{name}");
        }
    }
    let default =
        ScoreCnn::new(8, 4, CnnInit::PyTorchDefault, &mut StdRng::seed_from_u64(2)).unwrap();
    let bias = default.conv1.bias.as_ref().unwrap();
    assert!(bias.data().iter().any(|&b| b != 0.1));
}

#[test]
fn every_parameter_gets_a_gradient() {
    let model = ScoreCnn::new(
        8,
        4,
        CnnInit::TruncatedNormal,
        &mut StdRng::seed_from_u64(3),
    )
    .unwrap();
    let images = Tensor::uniform([2, 1, 8, 4], 0.0, 1.0, &mut StdRng::seed_from_u64(4)).unwrap();
    let tape = Tape::new();
    let params = Params::new(&tape, &model);
    let scores = model.forward(&params, tape.constant(images)).unwrap();
    let grads = params.backward(scores.sum().unwrap()).unwrap();
    for (name, tensor) in model.named_parameters() {
        let grad = grads.get(&name).unwrap();
        assert_eq!(grad.dims(), tensor.dims(), "{name}");
        assert!(
            grad.data().iter().any(|&g| g != 0.0),
            "{name} has a zero gradient"
        );
    }
}

#[test]
fn wrong_image_shapes_are_rejected() {
    assert!(ScoreCnn::new(10, 4, CnnInit::default(), &mut StdRng::seed_from_u64(0)).is_err());
    let model = ScoreCnn::new(8, 4, CnnInit::default(), &mut StdRng::seed_from_u64(0)).unwrap();
    let message = model
        .scores(&Tensor::zeros([2, 1, 4, 8]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("[2, 1, 4, 8]"), "{message}");
    assert!(message.contains("[B, 1, 8, 4]"), "{message}");
}

#[test]
fn best_checkpoint_keeps_best_model() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cnn-best-checkpoint");
    std::fs::create_dir_all(&dir).unwrap();
    let mut best = BestCheckpoint::new(dir.join("best.safetensors"));
    let first = ScoreCnn::new(8, 4, CnnInit::default(), &mut StdRng::seed_from_u64(5)).unwrap();
    let second = ScoreCnn::new(8, 4, CnnInit::default(), &mut StdRng::seed_from_u64(6)).unwrap();
    assert!(best.offer(0.5, &first).unwrap());
    assert!(!best.offer(0.5, &second).unwrap());
    assert!(!best.offer(0.4, &second).unwrap());
    assert_eq!(best.best_score(), Some(0.5));

    let mut restored = second.clone();
    best.restore(&mut restored).unwrap();
    assert!(restored.fc1.weight.bit_eq(&first.fc1.weight));
    assert!(restored.conv2.weight.bit_eq(&first.conv2.weight));
}
