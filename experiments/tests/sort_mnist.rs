//! The sort-mnist experiment: loss, predictions, a smoke run on the embedded sample, the report
//! and the grid.

use std::path::{Path, PathBuf};
use std::time::Instant;

use autograd::{Tape, Tensor};
use experiments::grid::{grid_lines, GridOptions};
use experiments::report::{aggregate, collect_results, table1_markdown, MeanStd};
use experiments::run::{read_json, write_json, CommonArgs};
use experiments::sort_mnist::{
    fast_softsort_loss, log_alpha, loss, predict, relax, run_with_data, Config, Evaluation, Method,
    SortMnistResult, EXPERIMENT,
};
use experiments::Dataset;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// A fresh folder under Cargo's temporary folder.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sort-mnist-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[test]
fn loss_of_hand_built_matrices() {
    let tape = Tape::<f32>::new();
    // Two 2 × 2 matrices; the true permutations are [1, 0] and [0, 1].
    #[rustfmt::skip]
    let p = tape.constant(Tensor::from_vec(vec![
        0.25, 0.75,
        0.5, 0.5,

        0.9, 0.1,
        0.0, 1.0,
    ], [2, 2, 2]).unwrap());
    let value = loss(p, &[1, 0, 0, 1]).unwrap().value().item().unwrap();
    let expected = -(0.75f64.ln() + 0.5f64.ln() + 0.9f64.ln() + 1.0f64.ln()) / 4.0;
    assert!(
        close(f64::from(value), expected, 1e-6),
        "{value} vs {expected}"
    );
}

#[test]
fn loss_repeats_targets_over_samples() {
    let tape = Tape::<f32>::new();
    // Two samples of one 2 × 2 matrix with the true permutation [0, 1].
    let p = tape.constant(
        Tensor::from_vec(vec![0.5, 0.5, 0.2, 0.8, 1.0, 0.0, 0.0, 1.0], [2, 1, 2, 2]).unwrap(),
    );
    let value = loss(p, &[0, 1]).unwrap().value().item().unwrap();
    let expected = -(0.5f64.ln() + 0.8f64.ln()) / 4.0;
    assert!(
        close(f64::from(value), expected, 1e-6),
        "{value} vs {expected}"
    );
}

#[test]
fn loss_rejects_mismatched_targets() {
    let tape = Tape::<f32>::new();
    let p = tape.constant(Tensor::full([2, 3, 3], 1.0 / 3.0));
    let message = loss(p, &[0, 1]).unwrap_err().to_string();
    assert!(message.contains("2 indices"), "{message}");
    assert!(loss(p, &[]).is_err());
}

#[test]
fn softsort_loss_by_hand() {
    // Scores [1, 3, 2] with tau = 1: sorted descending [3, 2, 1], true permutation [1, 2, 0].
    // Row i of P is softmax_j(−|ŝ_i − s_j|), so each row's picked entry is 1 / Σ_j e^{−|ŝ_i − s_j|}.
    let tape = Tape::<f32>::new();
    let scores = tape.constant(Tensor::from_vec(vec![1.0, 3.0, 2.0], [1, 3]).unwrap());
    let relaxed = relax(Method::DetSoftsort, scores, 1.0, 20, None).unwrap();
    let value = loss(relaxed.p, &[1, 2, 0]).unwrap().value().item().unwrap();
    let e = |x: f64| (-x).exp();
    let normalisers = [
        e(2.0) + 1.0 + e(1.0), // ŝ = 3
        e(1.0) + e(1.0) + 1.0, // ŝ = 2
        1.0 + e(2.0) + e(1.0), // ŝ = 1
    ];
    let expected = normalisers.iter().map(|z| z.ln()).sum::<f64>() / 3.0;
    assert!(
        close(f64::from(value), expected, 1e-6),
        "{value} vs {expected}"
    );
}

#[test]
fn fast_loss_equals_dense_loss() {
    let scores = Tensor::<f32>::normal([6, 5], 0.0, 3.0, &mut StdRng::seed_from_u64(7)).unwrap();
    let permutations: Vec<usize> = [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],
        [2, 0, 4, 1, 3],
        [1, 2, 3, 4, 0],
        [3, 4, 0, 2, 1],
        [0, 2, 1, 4, 3],
    ]
    .concat();
    let tau = 2.0;

    let dense_tape = Tape::<f32>::new();
    let dense_scores = dense_tape.param(scores.clone());
    let relaxed = relax(Method::DetSoftsort, dense_scores, tau, 20, None).unwrap();
    let dense = loss(relaxed.p, &permutations).unwrap();
    let dense_grad = dense_tape
        .backward(dense)
        .unwrap()
        .take(dense_scores)
        .unwrap();

    let fast_tape = Tape::<f32>::new();
    let fast_scores = fast_tape.param(scores);
    let fast = fast_softsort_loss(fast_scores, &permutations, tau).unwrap();
    let fast_grad = fast_tape.backward(fast).unwrap().take(fast_scores).unwrap();

    let (dense, fast) = (dense.value().item().unwrap(), fast.value().item().unwrap());
    assert!(
        close(f64::from(dense), f64::from(fast), 1e-5),
        "{dense} vs {fast}"
    );
    for (index, (a, b)) in dense_grad.data().iter().zip(fast_grad.data()).enumerate() {
        assert!(
            close(f64::from(*a), f64::from(*b), 1e-5),
            "gradient {index}: {a} vs {b}"
        );
    }
}

#[test]
fn log_alpha_is_anchor_outer_product() {
    let tape = Tape::<f32>::new();
    let scores = tape.constant(Tensor::from_vec(vec![1.0, -2.0, 4.0], [1, 3]).unwrap());
    let x = log_alpha(scores).unwrap().value();
    assert_eq!(x.dims(), &[1, 3, 3]);
    // Anchors [1, 0, −1].
    assert_eq!(
        x.to_vec(),
        vec![1.0, -2.0, 4.0, 0.0, 0.0, 0.0, -1.0, 2.0, -4.0]
    );
}

#[test]
fn predictions_sort_separated_scores() {
    // Two sequences; the scores grow with the numbers, so every method must sort them.
    let scores = Tensor::from_vec(vec![10.0, 30.0, 20.0, 5.0, -5.0, 0.0], [2, 3]).unwrap();
    let truth = vec![1, 2, 0, 0, 2, 1];
    for method in Method::ALL {
        let predicted = predict(method, &scores, 1.0, 20).unwrap();
        assert_eq!(predicted, truth, "{method}");
    }
}

#[test]
fn stochastic_relaxation_has_sample_axis() {
    let tape = Tape::<f32>::new();
    let scores = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2]).unwrap());
    for method in [
        Method::StochSoftsort,
        Method::StochNeuralsort,
        Method::GumbelSinkhorn,
    ] {
        let gumbel = softsort_ops::Gumbel::new(5, 3);
        let relaxed = relax(method, scores, 1.0, 10, Some(gumbel)).unwrap();
        assert_eq!(relaxed.samples, 5, "{method}");
        assert_eq!(relaxed.p.shape().dims(), &[5, 2, 2, 2], "{method}");
    }
}

fn tiny_config(method: Method, out: &Path) -> Config {
    Config {
        method,
        n: 3,
        steps: 3,
        batch_size: 2,
        samples: 2,
        sinkhorn_iterations: 5,
        eval_every: 2,
        eval_size: 3,
        test_size: 4,
        common: CommonArgs {
            data: None,
            out: out.to_path_buf(),
            seed: 11,
            quiet: true,
        },
        ..Config::default()
    }
}

#[test]
fn smoke_run_on_embedded_sample() {
    let data = Dataset::embedded_mnist_sample().unwrap();
    let out = temp_dir("smoke");
    for method in Method::ALL {
        let config = tiny_config(method, &out);
        let result = run_with_data(&config, &data, Instant::now()).unwrap();

        let json = out.join(format!("{}.json", config.file_stem()));
        let written: SortMnistResult = read_json(&json).unwrap();
        assert_eq!(written, result, "{method}");
        assert!(result.checkpoint.is_file(), "{method}");
        assert!(result.data_is_sample, "{method}");
        assert_eq!(result.config.method, method);
        // Evaluations at steps 2 and 3 (the last step).
        let steps: Vec<usize> = result.evaluations.iter().map(|e| e.step).collect();
        assert_eq!(steps, vec![2, 3], "{method}");
        for value in [result.test_all_correct, result.test_any_correct] {
            assert!((0.0..=1.0).contains(&value), "{method}: {value}");
        }
        for evaluation in &result.evaluations {
            assert!(evaluation.train_loss.is_finite(), "{method}");
            assert!((0.0..=1.0).contains(&evaluation.validation_all_correct));
            assert!((0.0..=1.0).contains(&evaluation.validation_any_correct));
        }
        assert!(result.seconds_per_step > 0.0);
        assert!(
            result.summary().contains("on the embedded sample"),
            "{}",
            result.summary()
        );
    }
}

#[test]
fn smoke_run_with_fast_loss() {
    let data = Dataset::embedded_mnist_sample().unwrap();
    let out = temp_dir("fast");
    let config = Config {
        fast_loss: true,
        ..tiny_config(Method::DetSoftsort, &out)
    };
    let result = run_with_data(&config, &data, Instant::now()).unwrap();
    assert!((0.0..=1.0).contains(&result.test_all_correct));
    assert!(result.config.fast_loss);
}

#[test]
fn bad_settings_are_rejected() {
    let data = Dataset::embedded_mnist_sample().unwrap();
    let out = temp_dir("bad");
    let cases = [
        (
            Config {
                n: 0,
                ..tiny_config(Method::DetSoftsort, &out)
            },
            "--n",
        ),
        (
            Config {
                tau: Some(-1.0),
                ..tiny_config(Method::DetSoftsort, &out)
            },
            "--tau",
        ),
        (
            Config {
                lr: f64::NAN,
                ..tiny_config(Method::DetSoftsort, &out)
            },
            "--lr",
        ),
        (
            Config {
                fast_loss: true,
                ..tiny_config(Method::Sinkhorn, &out)
            },
            "--fast-loss",
        ),
    ];
    for (config, flag) in cases {
        let message = run_with_data(&config, &data, Instant::now())
            .unwrap_err()
            .to_string();
        assert!(message.contains(flag), "{message}");
    }
}

/// A hand-made result of `method` and `n` with the given test accuracies.
fn hand_made(method: Method, n: usize, seed: u64, all: f64, any: f64) -> SortMnistResult {
    let mut config = tiny_config(method, Path::new("unused"));
    config.n = n;
    config.steps = 100;
    config.common.seed = seed;
    SortMnistResult {
        experiment: EXPERIMENT.to_string(),
        config,
        tau: 1024.0,
        data: "hand-made".to_string(),
        data_is_sample: false,
        parameters: 1,
        evaluations: vec![Evaluation {
            step: 100,
            train_loss: 0.5,
            validation_all_correct: all,
            validation_any_correct: any,
        }],
        best_step: 100,
        best_validation_all_correct: all,
        test_sequences: 10,
        test_all_correct: all,
        test_any_correct: any,
        seconds_per_step: 0.1,
        total_seconds: 10.0,
        checkpoint: PathBuf::from("unused.safetensors"),
    }
}

#[test]
fn report_aggregates_result_files() {
    let dir = temp_dir("report");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    let results = [
        hand_made(Method::DetSoftsort, 3, 0, 0.7, 0.8),
        hand_made(Method::DetSoftsort, 3, 1, 0.8, 0.9),
        hand_made(Method::DetSoftsort, 3, 2, 0.9, 1.0),
        hand_made(Method::DetNeuralsort, 5, 0, 0.5, 0.75),
    ];
    for (index, result) in results.iter().enumerate() {
        let folder = if index == 3 {
            dir.join("nested")
        } else {
            dir.clone()
        };
        write_json(&folder.join(format!("result-{index}.json")), result).unwrap();
    }
    write_json(
        &dir.join("other.json"),
        &serde_json::json!({"experiment": "quantile"}),
    )
    .unwrap();
    std::fs::write(dir.join("broken.json"), "{").unwrap();
    std::fs::write(dir.join("notes.txt"), "not json").unwrap();

    let collected = collect_results(&dir).unwrap();
    assert_eq!(collected.results.len(), 4);
    assert_eq!(collected.skipped.len(), 2, "{:?}", collected.skipped);

    let cells = aggregate(&collected.results);
    assert_eq!(cells.len(), 2);
    let softsort = &cells[0];
    assert_eq!(
        (softsort.method, softsort.n, softsort.runs),
        (Method::DetSoftsort, 3, 3)
    );
    assert!(close(softsort.all_correct.mean, 0.8, 1e-12));
    assert!(close(softsort.all_correct.std, 0.1, 1e-12));
    assert!(close(softsort.any_correct.mean, 0.9, 1e-12));
    let neuralsort = &cells[1];
    assert_eq!(
        (neuralsort.method, neuralsort.n, neuralsort.runs),
        (Method::DetNeuralsort, 5, 1)
    );
    assert_eq!(
        neuralsort.all_correct,
        MeanStd {
            mean: 0.5,
            std: 0.0
        }
    );

    let table = table1_markdown(&cells);
    assert!(
        table.contains("| det-softsort, 100 steps | 0.800 ± 0.100 (0.900 ± 0.100), 3 runs |"),
        "{table}"
    );
    assert!(
        table.contains("| det-neuralsort, 100 steps | | 0.500 (0.750), 1 run |"),
        "{table}"
    );
    assert!(
        table.contains("| NeuralSort (published) | 0.930 (0.951) | 0.837 (0.927) |"),
        "{table}"
    );
    assert!(!table.contains('*'), "{table}");
}

#[test]
fn report_marks_sample_runs() {
    let mut result = hand_made(Method::StochSoftsort, 3, 0, 0.5, 0.5);
    result.data_is_sample = true;
    let table = table1_markdown(&aggregate(&[result]));
    assert!(table.contains("1 run\\* |"), "{table}");
    assert!(table.contains("embedded MNIST sample"), "{table}");
}

#[test]
fn grid_covers_table_one() {
    let options = GridOptions::default();
    let lines = grid_lines(&options, Some("sort-mnist")).unwrap();
    assert_eq!(lines.len(), 5 * 6 * 10);
    let all = grid_lines(&options, None).unwrap();
    assert_eq!(all[..lines.len()], lines[..], "sort-mnist comes first");
    let knn = grid_lines(&options, Some("knn")).unwrap();
    assert_eq!(knn.len(), 2 * 2 * 4 * 10);
    assert!(
        knn[0].contains("--dataset mnist --sorter softsort --k 1"),
        "{}",
        knn[0]
    );
    assert_eq!(grid_lines(&options, Some("speed")).unwrap().len(), 1);

    let mut unique = lines.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "every line is a distinct run");
    assert!(lines
        .iter()
        .any(|l| l.contains("--method gumbel-sinkhorn -n 15 --tau 128")));
    assert!(lines
        .iter()
        .any(|l| l.contains("--method stoch-neuralsort -n 7 --tau 1024")));
    assert!(lines.iter().any(|l| l.contains("--seed 9 --quiet")));
}

#[test]
fn grid_options_reach_lines() {
    let options = GridOptions {
        repetitions: 2,
        bin_dir: PathBuf::from("/opt/bin"),
        data: Some(PathBuf::from("/data")),
        out: PathBuf::from("/results"),
        steps: Some(500),
    };
    let lines = grid_lines(&options, Some("sort-mnist")).unwrap();
    assert_eq!(lines.len(), 5 * 6 * 2);
    assert_eq!(
        lines[1],
        "/opt/bin/sort-mnist --method det-softsort -n 3 --tau 1024 --steps 500 --data /data \
         --out /results/sort-mnist --seed 1 --quiet"
    );
    let message = grid_lines(&options, Some("nope")).unwrap_err().to_string();
    assert!(message.contains("sort-mnist"), "{message}");
}

#[derive(clap::Parser)]
struct FlagParser {
    #[command(flatten)]
    config: Config,
}

#[test]
fn flags_parse_into_config() {
    use clap::Parser;

    let parsed = FlagParser::parse_from([
        "sort-mnist",
        "--method",
        "stoch-neuralsort",
        "-n",
        "9",
        "--steps",
        "40",
        "--seed",
        "3",
        "--data",
        "/data",
        "--fast-loss",
    ])
    .config;
    assert_eq!(parsed.method, Method::StochNeuralsort);
    assert_eq!(parsed.n, 9);
    assert_eq!(parsed.temperature(), 128.0);
    assert_eq!(parsed.steps, 40);
    assert_eq!(parsed.common.seed, 3);
    assert_eq!(parsed.common.data, Some(PathBuf::from("/data")));
    assert!(parsed.fast_loss);
    assert_eq!(parsed.file_stem(), "sort-mnist_stoch-neuralsort_n9_seed3");

    let defaults = FlagParser::parse_from(["sort-mnist"]).config;
    assert_eq!(defaults, Config::default());
    assert_eq!(defaults.temperature(), 1024.0);
}
