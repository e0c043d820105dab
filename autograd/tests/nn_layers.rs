//! Linear and Conv2d layers: gradients against finite differences and the layer API.

use autograd::nn::{init, Conv2d, Linear, Module, Params};
use autograd::{GradCheck, Padding, Tape, Tensor};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The computation `Linear::forward` records: `x · W + b` with `b` broadcast over rows.
    #[test]
    fn linear_gradients_match_finite_differences(
        batch in 1usize..4,
        inputs in 1usize..5,
        outputs in 1usize..4,
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = Tensor::uniform([batch, inputs], -1.0, 1.0, &mut rng).unwrap();
        let w = Tensor::uniform([inputs, outputs], -1.0, 1.0, &mut rng).unwrap();
        let b = Tensor::uniform([outputs], -1.0, 1.0, &mut rng).unwrap();
        let result = GradCheck::default().check("linear", &[x, w, b], |_, v| {
            v[0].matmul(v[1])?.add(v[2])
        });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

#[test]
fn linear_forward_records_matmul_plus_bias() {
    let layer = Linear::from_parts(
        Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]).unwrap(),
        Some(Tensor::from_vec(vec![0.5, -0.5], [2]).unwrap()),
    )
    .unwrap();
    let tape = Tape::<f64>::new();
    let params = Params::new(&tape, &layer);
    let x = tape.constant(Tensor::from_vec(vec![1.0, 0.0, -1.0], [1, 3]).unwrap());
    let y = layer.forward(&params, x).unwrap();
    // [1, 0, −1] · W = [1 − 5, 2 − 6] = [−4, −4], plus the bias.
    assert_eq!(y.value().to_vec(), vec![-3.5, -4.5]);
    let grads = params.backward(y.sum().unwrap()).unwrap();
    // ∂/∂W = xᵀ · 1 and ∂/∂b = 1.
    assert_eq!(
        grads.get("weight").unwrap().to_vec(),
        vec![1.0, 1.0, 0.0, 0.0, -1.0, -1.0]
    );
    assert_eq!(grads.get("bias").unwrap().to_vec(), vec![1.0, 1.0]);
}

#[test]
fn layers_reject_non_finite_parameters() {
    let nan_weight = Tensor::from_vec(vec![0.0, f32::NAN, 0.0, 0.0], [2, 2]).unwrap();
    let message = Linear::from_parts(nan_weight, None)
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("Linear::from_parts"), "{message}");
    assert!(message.contains("weight"), "{message}");
    assert!(message.contains("NaN at flat index 1"), "{message}");

    let infinite_bias = Tensor::from_vec(vec![f32::INFINITY], [1]).unwrap();
    let message = Conv2d::from_parts(
        Tensor::zeros([1, 1, 3, 3]),
        Some(infinite_bias),
        1,
        Padding::Same,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(message.contains("Conv2d::from_parts"), "{message}");
    assert!(message.contains("bias"), "{message}");
    assert!(message.contains("inf at flat index 0"), "{message}");
}

#[test]
fn layers_validate_their_parts() {
    assert!(Linear::<f32>::from_parts(Tensor::zeros([3]), None).is_err());
    assert!(Linear::<f32>::from_parts(Tensor::zeros([3, 2]), Some(Tensor::zeros([3]))).is_err());
    assert!(Linear::<f32>::new(0, 2, true, &mut StdRng::seed_from_u64(0)).is_err());
    assert!(Conv2d::<f32>::from_parts(Tensor::zeros([2, 1, 3]), None, 1, Padding::Same).is_err());
    assert!(Conv2d::<f32>::from_parts(
        Tensor::zeros([2, 1, 3, 3]),
        Some(Tensor::zeros([1])),
        1,
        Padding::Same
    )
    .is_err());
    assert!(Conv2d::<f32>::new(
        1,
        2,
        3,
        0,
        Padding::Same,
        true,
        &mut StdRng::seed_from_u64(0)
    )
    .is_err());
}

#[test]
fn layers_reject_empty_axes() {
    for dims in [[0, 0], [0, 3], [3, 0]] {
        let err = Linear::<f32>::from_parts(Tensor::zeros(dims), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("Linear::from_parts: ") && text.contains("empty axis"),
            "{text}"
        );
    }
    for dims in [[1, 1, 0, 0], [0, 1, 3, 3], [1, 0, 3, 3], [1, 1, 3, 0]] {
        let err =
            Conv2d::<f32>::from_parts(Tensor::zeros(dims), None, 1, Padding::Valid).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("Conv2d::from_parts: ") && text.contains("empty axis"),
            "{text}"
        );
    }
}

#[test]
fn conv_rejects_padding_beyond_kernel() {
    let kernel = || Tensor::<f32>::zeros([1, 1, 3, 2]);
    for padding in [
        Padding::uniform(usize::MAX),
        Padding::uniform(2),
        Padding::Explicit {
            height: 3,
            width: 0,
        },
        Padding::Same,
    ] {
        let err = Conv2d::from_parts(kernel(), None, 1, padding).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("Conv2d::from_parts: invalid padding"),
            "{padding:?}: {text}"
        );
    }
    let ok = Padding::Explicit {
        height: 2,
        width: 1,
    };
    assert!(Conv2d::from_parts(kernel(), None, 1, ok).is_ok());

    let mut rng = StdRng::seed_from_u64(0);
    let err = Conv2d::<f32>::new(1, 1, 3, 1, Padding::uniform(3), false, &mut rng).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Conv2d::new: invalid padding = 3×3"),
        "{err}"
    );
    let err = Conv2d::<f32>::new(1, 1, 2, 1, Padding::Same, false, &mut rng).unwrap_err();
    assert!(
        err.to_string().starts_with("Conv2d::new: invalid padding"),
        "{err}"
    );
    assert!(Conv2d::<f32>::new(1, 1, 3, 1, Padding::uniform(2), false, &mut rng).is_ok());
}

#[test]
fn conv_layer_lists_and_uses_parameters() {
    let mut rng = StdRng::seed_from_u64(5);
    let weight = init::truncated_normal([4, 2, 3, 3], 0.1, &mut rng).unwrap();
    let layer =
        Conv2d::from_parts(weight, Some(init::constant([4], 0.1)), 1, Padding::Same).unwrap();
    let names: Vec<String> = layer
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["weight", "bias"]);
    assert_eq!(layer.num_parameters(), 4 * 2 * 9 + 4);

    let tape = Tape::<f64>::new();
    let params = Params::new(&tape, &layer);
    let x = tape.constant(Tensor::zeros([1, 2, 5, 5]));
    let y = layer.forward(&params, x).unwrap();
    assert_eq!(y.shape().dims(), &[1, 4, 5, 5]);
    // A zero image leaves only the bias.
    assert!(y.value().data().iter().all(|&v| (v - 0.1).abs() < 1e-15));
}

#[test]
fn missing_parameter_is_named() {
    let layer = Linear::<f64>::new(2, 2, false, &mut StdRng::seed_from_u64(0)).unwrap();
    let tape = Tape::new();
    let params = Params::new(&tape, &layer);
    let err = params
        .scope("encoder")
        .get("weight")
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"encoder.weight\""), "{err}");
    assert!(err.contains("\"weight\""), "{err}");
}
