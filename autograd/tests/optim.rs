//! Optimisers against values worked out by hand from PyTorch's published update rules, for
//! one parameter starting at 1.0.

use autograd::nn::{Adam, AdamConfig, Module, NamedGradients, Optimizer, Sgd, SgdConfig};
use autograd::Tensor;

struct Scalar {
    w: Tensor<f64>,
}

impl Module<f64> for Scalar {
    fn named_parameters(&self) -> Vec<(String, &Tensor<f64>)> {
        vec![("w".into(), &self.w)]
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<f64>)> {
        vec![("w".into(), &mut self.w)]
    }
}

fn scalar(value: f64) -> Scalar {
    Scalar {
        w: Tensor::from_vec(vec![value], [1]).unwrap(),
    }
}

fn grad(value: f64) -> NamedGradients<f64> {
    NamedGradients::new(vec![(
        "w".into(),
        Tensor::from_vec(vec![value], [1]).unwrap(),
    )])
}

/// Runs `optimizer` on the two gradients `grads` and returns the parameter after each step.
fn two_steps(optimizer: &mut dyn Optimizer<f64>, grads: [f64; 2]) -> [f64; 2] {
    let mut model = scalar(1.0);
    let mut after = [0.0; 2];
    for (k, g) in grads.into_iter().enumerate() {
        optimizer.step(&mut model, &grad(g)).unwrap();
        after[k] = model.w.data()[0];
    }
    after
}

fn assert_close(actual: [f64; 2], expected: [f64; 2]) {
    for (a, e) in actual.iter().zip(&expected) {
        assert!(
            (a - e).abs() < 1e-12,
            "got {actual:?}, expected {expected:?}"
        );
    }
}

#[test]
fn sgd_momentum_with_weight_decay() {
    // Step 1: d = 1 + 0.1·1 = 1.1, b = 1.1, p = 1 − 0.1·1.1 = 0.89.
    // Step 2: d = −0.5 + 0.1·0.89 = −0.411, b = 0.9·1.1 − 0.411 = 0.579, p = 0.89 − 0.0579.
    let config = SgdConfig {
        momentum: 0.9,
        weight_decay: 0.1,
        ..SgdConfig::new(0.1)
    };
    let mut sgd = Sgd::new(config).unwrap();
    assert_close(two_steps(&mut sgd, [1.0, -0.5]), [0.89, 0.8321]);
}

#[test]
fn sgd_nesterov_with_weight_decay() {
    // Step 1: d = 1.1, b = 1.1, update = d + 0.9·b = 2.09, p = 1 − 0.209 = 0.791.
    // Step 2: d = −0.5 + 0.0791 = −0.4209, b = 0.99 − 0.4209 = 0.5691,
    //         update = −0.4209 + 0.9·0.5691 = 0.09129, p = 0.791 − 0.009129 = 0.781871.
    let config = SgdConfig {
        momentum: 0.9,
        weight_decay: 0.1,
        nesterov: true,
        ..SgdConfig::new(0.1)
    };
    let mut sgd = Sgd::new(config).unwrap();
    assert_close(two_steps(&mut sgd, [1.0, -0.5]), [0.791, 0.781871]);
}

#[test]
fn sgd_dampening_skips_first_step() {
    // Step 1: b = g = 1 (no dampening on the first step), p = 0.9.
    // Step 2: b = 0.9·1 + (1 − 0.5)·1 = 1.4, p = 0.9 − 0.14 = 0.76.
    let config = SgdConfig {
        momentum: 0.9,
        dampening: 0.5,
        ..SgdConfig::new(0.1)
    };
    let mut sgd = Sgd::new(config).unwrap();
    assert_close(two_steps(&mut sgd, [1.0, 1.0]), [0.9, 0.76]);
}

#[test]
fn plain_sgd_and_learning_rate_change() {
    let mut sgd = Sgd::new(SgdConfig::new(0.1)).unwrap();
    let mut model = scalar(1.0);
    sgd.step(&mut model, &grad(2.0)).unwrap(); // 1 − 0.2
    sgd.set_learning_rate(0.01).unwrap();
    sgd.step(&mut model, &grad(2.0)).unwrap(); // 0.8 − 0.02
    assert!((model.w.data()[0] - 0.78).abs() < 1e-12);
    assert_eq!(sgd.learning_rate(), 0.01);
    assert!(sgd.set_learning_rate(-1.0).is_err());
}

#[test]
fn adam_bias_correction() {
    // Step 1: m = 0.2, v = 0.004, m̂ = 2, v̂ = 4, p = 1 − 0.1·2/(2 + 1e−8).
    // Step 2: m = 0.18 − 0.1 = 0.08, v = 0.003996 + 0.001 = 0.004996,
    //         m̂ = 0.08/0.19, v̂ = 0.004996/0.001999, p = p1 − 0.1·m̂/(sqrt(v̂) + 1e−8).
    let mut adam = Adam::new(AdamConfig {
        lr: 0.1,
        ..AdamConfig::default()
    })
    .unwrap();
    assert_close(
        two_steps(&mut adam, [2.0, -1.0]),
        [0.9000000005, 0.8733662967024315],
    );
}

#[test]
fn adam_weight_decay_is_added_to_gradient() {
    // Step 1: g = 2 + 0.5·1 = 2.5; step 2: g = −1 + 0.5·p1 = −0.5499999998.
    let mut adam = Adam::new(AdamConfig {
        lr: 0.1,
        weight_decay: 0.5,
        ..AdamConfig::default()
    })
    .unwrap();
    assert_close(
        two_steps(&mut adam, [2.0, -1.0]),
        [0.9000000004, 0.8505569312282295],
    );
}

#[test]
fn adamw_decouples_weight_decay() {
    // Step 1: p = 1·(1 − 0.1·0.5) = 0.95, then − 0.1·2/(2 + 1e−8).
    // Step 2: p = 0.85·0.95 = 0.8075, then the Adam step of the plain gradient −1.
    let mut adamw = Adam::new(AdamConfig {
        lr: 0.1,
        weight_decay: 0.5,
        ..AdamConfig::adamw()
    })
    .unwrap();
    assert_close(
        two_steps(&mut adamw, [2.0, -1.0]),
        [0.8500000005, 0.7808662966774315],
    );
}

#[test]
fn restored_state_continues_identically() {
    let config = AdamConfig {
        lr: 0.1,
        ..AdamConfig::default()
    };
    let mut first = Adam::new(config).unwrap();
    let mut model = scalar(1.0);
    first.step(&mut model, &grad(2.0)).unwrap();

    let mut second = Adam::new(config).unwrap();
    second.load_state(first.state()).unwrap();
    let mut copy = scalar(model.w.data()[0]);
    first.step(&mut model, &grad(-1.0)).unwrap();
    second.step(&mut copy, &grad(-1.0)).unwrap();
    assert!(model.w.bit_eq(&copy.w));

    let mut sgd = Sgd::new(SgdConfig::new(0.1)).unwrap();
    let err = sgd.load_state(first.state()).unwrap_err();
    assert!(err.to_string().contains("\"adam\""), "{err}");
}

#[test]
fn bad_gradients_leave_parameters_unchanged() {
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let mut model = scalar(1.0);
    let cases = [
        (
            NamedGradients::new(vec![]),
            "no gradient for parameter \"w\"",
        ),
        (
            NamedGradients::new(vec![("w".into(), Tensor::zeros([2]))]),
            "gradient has shape [2]",
        ),
        (grad(f64::NAN), "must be finite"),
    ];
    for (grads, expected) in cases {
        let message = adam.step(&mut model, &grads).unwrap_err().to_string();
        assert!(message.contains(expected), "{message} lacks {expected:?}");
        assert_eq!(model.w.data()[0], 1.0);
    }
    assert_eq!(adam.state().steps, 0);
}

#[test]
fn invalid_settings_are_rejected() {
    let bad_adam = [
        AdamConfig {
            beta1: 1.0,
            ..AdamConfig::default()
        },
        AdamConfig {
            beta2: -0.1,
            ..AdamConfig::default()
        },
        AdamConfig {
            eps: 0.0,
            ..AdamConfig::default()
        },
        AdamConfig {
            lr: f64::NAN,
            ..AdamConfig::default()
        },
        AdamConfig {
            weight_decay: -1.0,
            ..AdamConfig::default()
        },
    ];
    for config in bad_adam {
        assert!(Adam::<f32>::new(config).is_err(), "{config:?}");
    }
    let bad_sgd = [
        SgdConfig {
            nesterov: true,
            ..SgdConfig::new(0.1)
        },
        SgdConfig {
            momentum: -0.5,
            ..SgdConfig::new(0.1)
        },
        SgdConfig {
            nesterov: true,
            momentum: 0.9,
            dampening: 0.1,
            ..SgdConfig::new(0.1)
        },
    ];
    for config in bad_sgd {
        assert!(Sgd::<f32>::new(config).is_err(), "{config:?}");
    }
}
