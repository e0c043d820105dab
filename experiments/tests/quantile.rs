//! The quantile-regression experiment: median weights, both losses, the model and a short
//! run on the embedded MNIST sample.

use autograd::nn::{Module, NamedGradients};
use autograd::{GradCheck, Tape, Tensor};
use experiments::cnn::CnnInit;
use experiments::quantile::{
    default_tau, deterministic_loss, evaluate, hard_median_index, median_row, median_weights,
    published_mse_e4, run_on, split_gradients, stochastic_loss, summarize_table2, table2_markdown,
    Method, QuantileConfig, QuantileModel, QuantileResult,
};
use experiments::run::read_json;
use experiments::Dataset;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use softsort_ops::{Gumbel, NeuralSort, SoftSort};

/// Builds two sequences of five scores and values. The scores rank the values in the same
/// order, so the element ranked in the middle carries the median value.
fn two_sequences() -> (Tensor<f64>, Tensor<f64>, [f64; 2]) {
    let scores = vec![0.9, 0.1, 0.5, 0.7, 0.3, 2.0, -1.0, 0.0, 1.0, -2.0];
    let values = vec![0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.4, 0.6, 0.05];
    let medians = [0.5, 0.4];
    (
        Tensor::from_vec(scores, [2, 5]).unwrap(),
        Tensor::from_vec(values, [2, 5]).unwrap(),
        medians,
    )
}

#[test]
fn median_row_takes_middle_row() {
    let tape = Tape::<f64>::new();
    let p = tape.constant(Tensor::from_vec((0..18).map(f64::from).collect(), [2, 3, 3]).unwrap());
    let row = median_row(p).unwrap().value();
    assert_eq!(row.dims(), &[2, 3]);
    assert_eq!(row.to_vec(), vec![3.0, 4.0, 5.0, 12.0, 13.0, 14.0]);
}

#[test]
fn median_weights_renormalise_row() {
    let tape = Tape::<f64>::new();
    // Middle rows sum to 4 and 0.5.
    let p = tape.constant(
        Tensor::from_vec(
            vec![
                1.0, 0.0, 0.0, 1.0, 1.0, 2.0, 0.0, 0.0, 1.0, //
                0.0, 1.0, 0.0, 0.25, 0.25, 0.0, 1.0, 0.0, 0.0,
            ],
            [2, 3, 3],
        )
        .unwrap(),
    );
    let weights = median_weights(p).unwrap().value().to_vec();
    assert_eq!(weights, vec![0.25, 0.25, 0.5, 0.5, 0.5, 0.0]);
}

#[test]
fn median_weights_of_operators_sum_to_one() {
    let (scores, _, _) = two_sequences();
    let tape = Tape::<f64>::new();
    let s = tape.constant(scores);
    for p in [
        SoftSort::new(0.7).apply(s).unwrap(),
        NeuralSort::new(0.7).apply(s).unwrap(),
    ] {
        let weights = median_weights(p).unwrap().value();
        for row in weights.data().chunks(5) {
            let total: f64 = row.iter().sum();
            assert!((total - 1.0).abs() < 1e-12, "row sums to {total}");
        }
    }
}

#[test]
fn median_weights_reject_zero_row() {
    let tape = Tape::<f64>::new();
    let p = tape.constant(Tensor::zeros([3, 3]));
    let message = median_weights(p).unwrap_err().to_string();
    assert!(message.contains("median_weights"), "{message}");
}

#[test]
fn deterministic_loss_small_tau_picks_median_value() {
    let (scores, values, medians) = two_sequences();
    let tape = Tape::<f64>::new();
    let s = tape.constant(scores);
    let v = tape.constant(values);
    // Targets off the median by 0.1 and 0.2: the loss is (0.1² + 0.2²) / 2.
    let y = tape.constant(Tensor::from_vec(vec![medians[0] + 0.1, medians[1] - 0.2], [2]).unwrap());
    for p in [
        SoftSort::new(1e-4).apply(s).unwrap(),
        NeuralSort::new(1e-4).apply(s).unwrap(),
    ] {
        let loss = deterministic_loss(p, v, y).unwrap().value().item().unwrap();
        assert!((loss - 0.025).abs() < 1e-12, "loss {loss}");
    }
    let exact = tape.constant(Tensor::from_vec(medians.to_vec(), [2]).unwrap());
    let loss = deterministic_loss(SoftSort::new(1e-4).apply(s).unwrap(), v, exact)
        .unwrap()
        .value()
        .item()
        .unwrap();
    assert!(loss.abs() < 1e-20, "loss {loss}");
}

#[test]
fn deterministic_loss_hand_built_weights() {
    let tape = Tape::<f64>::new();
    // Middle row (0.2, 0.6, 0.2): prediction 0.2·1 + 0.6·2 + 0.2·4 = 2.2, target 3.
    let p = tape.constant(
        Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.2, 0.6, 0.2, 0.0, 0.0, 1.0], [1, 3, 3]).unwrap(),
    );
    let v = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 4.0], [1, 3]).unwrap());
    let y = tape.constant(Tensor::from_vec(vec![3.0], [1]).unwrap());
    let loss = deterministic_loss(p, v, y).unwrap().value().item().unwrap();
    assert!((loss - 0.64).abs() < 1e-12, "loss {loss}");
}

#[test]
fn stochastic_loss_hand_built_weights() {
    let tape = Tape::<f64>::new();
    // Two noise samples of one sequence with middle rows (0.5, 0.5, 0) and (0, 0, 1).
    let p = tape.constant(
        Tensor::from_vec(
            vec![
                0.0, 0.0, 1.0, 0.5, 0.5, 0.0, 0.5, 0.5, 0.0, //
                1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0,
            ],
            [2, 1, 3, 3],
        )
        .unwrap(),
    );
    let v = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 4.0], [1, 3]).unwrap());
    let y = tape.constant(Tensor::from_vec(vec![3.0], [1]).unwrap());
    // Sample 1: 0.5·4 + 0.5·1 = 2.5; sample 2: 1·1 = 1; mean 1.75.
    let loss = stochastic_loss(p, v, y).unwrap().value().item().unwrap();
    assert!((loss - 1.75).abs() < 1e-12, "loss {loss}");
}

#[test]
fn stochastic_loss_small_tau_picks_median_value() {
    let (scores, values, medians) = two_sequences();
    let tape = Tape::<f64>::new();
    let s = tape.constant(scores);
    let v = tape.constant(values);
    let y = tape.constant(Tensor::from_vec(vec![medians[0] + 0.1, medians[1] - 0.2], [2]).unwrap());
    for p in [
        SoftSort::new(1e-4).apply(s).unwrap(),
        NeuralSort::new(1e-4).apply(s).unwrap(),
    ] {
        let loss = stochastic_loss(p, v, y).unwrap().value().item().unwrap();
        assert!((loss - 0.025).abs() < 1e-12, "loss {loss}");
    }
}

#[test]
fn stochastic_loss_accepts_gumbel_samples() {
    let (scores, values, medians) = two_sequences();
    let tape = Tape::<f64>::new();
    let s = tape.param(scores);
    let v = tape.param(values);
    let y = tape.constant(Tensor::from_vec(medians.to_vec(), [2]).unwrap());
    let p = SoftSort::new(0.5)
        .apply_gumbel(s, &Gumbel::new(4, 11))
        .unwrap();
    assert_eq!(p.shape().dims(), &[4, 2, 5, 5]);
    let loss = stochastic_loss(p, v, y).unwrap();
    let value = loss.value().item().unwrap();
    assert!(value.is_finite(), "loss {value}");
    assert!(value > 0.0, "loss {value}");
    let grads = tape.backward(loss).unwrap();
    assert!(grads.get(s).unwrap().data().iter().any(|g| *g != 0.0));
    assert!(grads.get(v).unwrap().data().iter().any(|g| *g != 0.0));
}

#[test]
fn losses_reject_mismatched_shapes() {
    let tape = Tape::<f64>::new();
    let p = tape.constant(Tensor::full([2, 3, 3], 1.0 / 3.0));
    let v = tape.constant(Tensor::zeros([2, 4]));
    let y = tape.constant(Tensor::zeros([2]));
    let message = deterministic_loss(p, v, y).unwrap_err().to_string();
    assert!(message.contains("deterministic_loss"), "{message}");
    let message = stochastic_loss(p, v, y).unwrap_err().to_string();
    assert!(message.contains("stochastic_loss"), "{message}");
    let v = tape.constant(Tensor::zeros([2, 3]));
    let y = tape.constant(Tensor::zeros([3]));
    assert!(deterministic_loss(p, v, y).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn deterministic_loss_gradient_matches_differences(
        data in prop::collection::vec(-1.0f64..1.0, 18),
        tau in 0.3f64..2.0,
    ) {
        let scores = Tensor::from_vec(data[..6].to_vec(), [2, 3]).unwrap();
        let values = Tensor::from_vec(data[6..12].to_vec(), [2, 3]).unwrap();
        let targets = Tensor::from_vec(data[12..14].to_vec(), [2]).unwrap();
        let report = GradCheck::default().check(
            "quantile deterministic loss",
            &[scores, values, targets],
            |_, vars| {
                let p = NeuralSort::new(tau).apply(vars[0])?;
                Ok(deterministic_loss(p, vars[1], vars[2]).expect("shapes fit"))
            },
        );
        prop_assert!(report.is_ok(), "{:?}", report.err());
    }

    #[test]
    fn stochastic_loss_gradient_matches_differences(
        data in prop::collection::vec(-1.0f64..1.0, 14),
        tau in 0.3f64..2.0,
    ) {
        let scores = Tensor::from_vec(data[..6].to_vec(), [2, 3]).unwrap();
        let values = Tensor::from_vec(data[6..12].to_vec(), [2, 3]).unwrap();
        let targets = Tensor::from_vec(data[12..14].to_vec(), [2]).unwrap();
        let report = GradCheck::default().check(
            "quantile stochastic loss",
            &[scores, values, targets],
            |_, vars| {
                let p = SoftSort::new(tau).apply_gumbel(vars[0], &Gumbel::new(2, 5))?;
                Ok(stochastic_loss(p, vars[1], vars[2]).expect("shapes fit"))
            },
        );
        prop_assert!(report.is_ok(), "{:?}", report.err());
    }
}

#[test]
fn hard_median_index_breaks_ties_by_index() {
    assert_eq!(hard_median_index(&[5.0f32, 1.0, 3.0]).unwrap(), 2);
    // Descending order with ties by index: 0 (1.0), 1 (1.0), 2 (1.0).
    assert_eq!(hard_median_index(&[1.0f32, 1.0, 1.0]).unwrap(), 1);
    assert_eq!(hard_median_index(&[7.0f64]).unwrap(), 0);
    assert!(hard_median_index::<f32>(&[]).is_err());
    assert!(hard_median_index(&[1.0f32, f32::NAN, 0.0]).is_err());
}

#[test]
fn published_temperatures_and_mse() {
    assert_eq!(default_tau(Method::DetNeuralsort, 5), Some(1024.0));
    assert_eq!(default_tau(Method::StochSoftsort, 5), Some(4096.0));
    assert_eq!(default_tau(Method::StochNeuralsort, 9), Some(512.0));
    assert_eq!(default_tau(Method::StochNeuralsort, 15), Some(4096.0));
    assert_eq!(default_tau(Method::DetSoftsort, 15), Some(256.0));
    assert_eq!(published_mse_e4(Method::DetNeuralsort, 9), Some(34.98));
    assert_eq!(published_mse_e4(Method::DetSoftsort, 9), None);
}

#[test]
fn config_rejects_even_length_and_missing_tau() {
    let mut config = QuantileConfig::new(4, Method::DetSoftsort, "unused".into());
    assert!(config.validate().unwrap_err().to_string().contains("odd"));
    config.n = 7;
    assert!(config.validate().unwrap_err().to_string().contains("--tau"));
    config.tau = Some(16.0);
    assert!(config.validate().is_ok());
    config.tau = Some(-1.0);
    assert!(config.validate().is_err());
}

#[test]
fn split_gradients_strip_prefixes() {
    let model = QuantileModel::new(
        8,
        4,
        CnnInit::TruncatedNormal,
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap();
    let grads = NamedGradients::new(
        model
            .named_parameters()
            .into_iter()
            .map(|(name, t)| (name, Tensor::zeros(t.shape().clone())))
            .collect(),
    );
    let (score, value) = split_gradients(&grads).unwrap();
    let score_names: Vec<&str> = score.iter().map(|(name, _)| name).collect();
    let expected: Vec<String> = model
        .scorer
        .named_parameters()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(score_names, expected);
    assert_eq!(value.iter().count(), expected.len());
    let stray = NamedGradients::new(vec![("other.weight".into(), Tensor::zeros([1]))]);
    assert!(split_gradients(&stray).is_err());
}

#[test]
fn run_on_sample_writes_result() {
    let data = Dataset::embedded_mnist_sample().unwrap();
    let out = std::env::temp_dir().join(format!("quantile-smoke-{}", std::process::id()));
    let mut config = QuantileConfig::new(3, Method::StochSoftsort, out.clone());
    config.tau = Some(64.0);
    config.steps = 3;
    config.batch_size = 2;
    config.samples = 2;
    config.eval_size = 4;
    config.test_size = 4;
    config.eval_every = 2;
    config.eval_chunk = 3;

    let result = run_on(&config, &data).unwrap();
    assert!(result.embedded_sample);
    let steps: Vec<usize> = result.curve.iter().map(|point| point.step).collect();
    assert_eq!(steps, vec![2, 3]);
    assert!(result.checkpoint.exists());
    for metrics in [result.test.hard, result.test.soft] {
        assert!(metrics.mse_e4.is_finite());
        assert!(metrics.mse_e4 >= 0.0);
        assert!(metrics.r_squared.is_finite());
        assert!(metrics.spearman.is_finite());
    }
    assert!(result.seconds_per_step > 0.0);

    let path = out.join("quantile-mnist-stoch-softsort-n3-seed0.json");
    let saved: QuantileResult = read_json(&path).unwrap();
    assert_eq!(saved.test, result.test);
    assert_eq!(saved.curve, result.curve);
    assert_eq!(saved.best_step, result.best_step);
    assert_eq!(saved.config.method, Method::StochSoftsort);
    let rows = summarize_table2(&[saved]);
    assert_eq!(rows.len(), 1);
    assert!(table2_markdown(&rows).contains("(embedded sample)"));

    // The checkpoint contains the best model: evaluating it reproduces the best validation.
    let mut restored = QuantileModel::new(
        112,
        28,
        CnnInit::TruncatedNormal,
        &mut StdRng::seed_from_u64(9),
    )
    .unwrap();
    autograd::nn::load_checkpoint(&result.checkpoint, &mut restored, None).unwrap();
    let validation = evaluate(
        &restored,
        &data.validation,
        3,
        Method::StochSoftsort,
        64.0,
        4,
        3,
        // The validation sequences come from the stream seed + 2.
        config.common.seed + 2,
    )
    .unwrap();
    let again = evaluate(
        &restored,
        &data.validation,
        3,
        Method::StochSoftsort,
        64.0,
        4,
        3,
        config.common.seed + 2,
    )
    .unwrap();
    assert_eq!(validation, again, "repeat");
    assert_eq!(validation, result.best_validation);
    std::fs::remove_dir_all(&out).unwrap();
}
