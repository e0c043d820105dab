//! The differentiable kNN loss, exact kNN classification and a smoke run of the `knn` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use autograd::{GradCheck, Tape, Tensor};
use experiments::knn::{
    knn_classify, knn_loss, majority_vote, nearest_neighbours, negative_squared_distances,
    KnnConfig, Neighbour, Sorter,
};

/// A fresh folder under the system's temporary folder. It lies outside the repository, so
/// the data search upwards from it finds no data folder.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("softsort-knn-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two 1-D queries and six 1-D neighbours with no tied distances.
///
/// Query 0.0 (label 0) has neighbours by distance: 1 (0), 2 (1), 5 (0), 9 (1), 11 (1), 30 (0).
/// Query 10.2 (label 1) has: 11 (1), 9 (1), 5 (0), 2 (1), 1 (0), 30 (0).
fn one_dimensional_case() -> (Tensor<f64>, Vec<u8>, Tensor<f64>, Vec<u8>) {
    let queries = Tensor::from_vec(vec![0.0, 10.2], [2, 1]).unwrap();
    let neighbours = Tensor::from_vec(vec![1.0, 2.0, 5.0, 9.0, 11.0, 30.0], [6, 1]).unwrap();
    (queries, vec![0, 1], neighbours, vec![0, 1, 0, 1, 1, 0])
}

#[test]
fn loss_at_low_temperature_counts_same_label() {
    let (queries, query_labels, neighbours, neighbour_labels) = one_dimensional_case();
    // Same-label neighbours among the true top k, per query: k = 1: 1 and 1; k = 3: 2 and 2;
    // k = 5: 2 and 3; k = 6: 3 and 3.
    let cases = [(1, -1.0), (3, -2.0), (5, -2.5), (6, -3.0)];
    for sorter in [Sorter::SoftSort, Sorter::NeuralSort] {
        for (k, expected) in cases {
            let tape = Tape::new();
            let q = tape.constant(queries.clone());
            let x = tape.constant(neighbours.clone());
            let loss = knn_loss(q, &query_labels, x, &neighbour_labels, k, sorter, 1e-3).unwrap();
            let value = loss.value().item().unwrap();
            assert!(
                (value - expected).abs() < 1e-9,
                "{sorter}, k = {k}: loss {value}, expected {expected}"
            );
        }
    }
}

#[test]
fn loss_at_high_temperature_is_uniform() {
    // As τ → ∞ every row of P tends to uniform, so the mask is k/N on every neighbour and
    // the loss is −(k/N) · (same-label neighbours), averaged: −(3/6) · 3 = −1.5.
    let (queries, query_labels, neighbours, neighbour_labels) = one_dimensional_case();
    let tape = Tape::new();
    let loss = knn_loss(
        tape.constant(queries),
        &query_labels,
        tape.constant(neighbours),
        &neighbour_labels,
        3,
        Sorter::SoftSort,
        1e9,
    )
    .unwrap();
    assert!((loss.value().item().unwrap() + 1.5).abs() < 1e-6);
}

#[test]
fn distances_match_direct_formula() {
    let queries = Tensor::<f64>::from_vec(vec![0.5, -1.0, 2.0, 0.0, 1.5, 3.0], [2, 3]).unwrap();
    let neighbours = Tensor::from_vec(vec![1.0, 1.0, 1.0, -2.0, 0.5, 0.25], [2, 3]).unwrap();
    let tape = Tape::new();
    let scores = negative_squared_distances(
        tape.constant(queries.clone()),
        tape.constant(neighbours.clone()),
    )
    .unwrap()
    .value();
    for i in 0..2 {
        for j in 0..2 {
            let direct: f64 = (0..3)
                .map(|d| (queries.data()[i * 3 + d] - neighbours.data()[j * 3 + d]).powi(2))
                .sum();
            let got = scores.get(&[i, j]).unwrap();
            assert!(
                (got + direct).abs() < 1e-12,
                "[{i}, {j}]: {got} vs −{direct}"
            );
        }
    }
}

#[test]
fn loss_gradient_matches_finite_differences() {
    let queries = Tensor::from_vec(vec![0.3, -0.2, 0.9, 0.1, -0.5, 0.4], [3, 2]).unwrap();
    let neighbours =
        Tensor::from_vec(vec![0.0, 0.5, 1.1, -0.3, -0.7, 0.2, 0.4, 0.8], [4, 2]).unwrap();
    for sorter in [Sorter::SoftSort, Sorter::NeuralSort] {
        GradCheck::default()
            .check(
                "knn_loss",
                &[queries.clone(), neighbours.clone()],
                |_, v| knn_loss(v[0], &[0, 1, 0], v[1], &[1, 0, 0, 1], 2, sorter, 0.5),
            )
            .unwrap_or_else(|e| panic!("{sorter}: {e}"));
    }
}

#[test]
fn loss_rejects_bad_arguments() {
    let (queries, query_labels, neighbours, neighbour_labels) = one_dimensional_case();
    let tape = Tape::new();
    let q = tape.constant(queries);
    let x = tape.constant(neighbours);
    let too_large_k = knn_loss(
        q,
        &query_labels,
        x,
        &neighbour_labels,
        7,
        Sorter::SoftSort,
        1.0,
    );
    assert!(too_large_k.unwrap_err().to_string().contains("k"));
    let bad_tau = knn_loss(
        q,
        &query_labels,
        x,
        &neighbour_labels,
        3,
        Sorter::SoftSort,
        -1.0,
    );
    assert!(bad_tau.unwrap_err().to_string().contains("temperature"));
    let short_labels = knn_loss(q, &[0], x, &neighbour_labels, 3, Sorter::SoftSort, 1.0);
    assert!(short_labels
        .unwrap_err()
        .to_string()
        .contains("query labels"));
}

/// A query at the origin and five 2-D reference points at squared distances 1, 1, 1, 4, 0.25.
fn tied_reference() -> (Tensor<f32>, Tensor<f32>) {
    let query = Tensor::from_vec(vec![0.0, 0.0], [1, 2]).unwrap();
    let reference = Tensor::from_vec(
        vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 2.0, 0.0, 0.0, 0.5],
        [5, 2],
    )
    .unwrap();
    (query, reference)
}

#[test]
fn nearest_neighbours_break_ties_by_index() {
    let (query, reference) = tied_reference();
    let found = nearest_neighbours(&query, &reference, 3).unwrap();
    let indices: Vec<usize> = found.iter().map(|n| n.index).collect();
    assert_eq!(indices, vec![4, 0, 1]);
    let distances: Vec<f32> = found.iter().map(|n| n.distance).collect();
    assert_eq!(distances, vec![0.25, 1.0, 1.0]);
}

#[test]
fn nearest_neighbours_reject_bad_input() {
    let (query, reference) = tied_reference();
    assert!(nearest_neighbours(&query, &reference, 0).is_err());
    assert!(nearest_neighbours(&query, &reference, 6).is_err());
    let nan = Tensor::from_vec(vec![f32::NAN, 0.0], [1, 2]).unwrap();
    let message = nearest_neighbours(&nan, &reference, 1)
        .unwrap_err()
        .to_string();
    assert!(message.contains("finite"), "{message}");
    let wide = Tensor::from_vec(vec![0.0; 3], [1, 3]).unwrap();
    assert!(nearest_neighbours(&wide, &reference, 1).is_err());
}

fn neighbour(distance: f32, index: usize) -> Neighbour {
    Neighbour { distance, index }
}

#[test]
fn majority_vote_prefers_most_votes() {
    // Label 7 has the nearest neighbour but label 2 has more votes.
    let labels = [7, 2, 2];
    let neighbours = [neighbour(0.1, 0), neighbour(5.0, 1), neighbour(6.0, 2)];
    assert_eq!(majority_vote(&neighbours, &labels), 2);
}

#[test]
fn majority_vote_tie_goes_to_smaller_distance_sum() {
    // Labels 5 and 3 have two votes each; label 3's distances sum to 1.0 + 2.0 = 3.0 and
    // label 5's to 0.5 + 3.0 = 3.5.
    let labels = [5, 3, 3, 5];
    let neighbours = [
        neighbour(0.5, 0),
        neighbour(1.0, 1),
        neighbour(2.0, 2),
        neighbour(3.0, 3),
    ];
    assert_eq!(majority_vote(&neighbours, &labels), 3);
}

#[test]
fn majority_vote_full_tie_goes_to_smaller_label() {
    // Labels 8 and 4 have one vote each at the same distance.
    let labels = [8, 4, 1];
    let neighbours = [neighbour(2.0, 0), neighbour(2.0, 1)];
    assert_eq!(majority_vote(&neighbours, &labels), 4);
}

#[test]
fn knn_classify_votes_over_nearest() {
    let (query, reference) = tied_reference();
    // The 3 nearest are indices 4 (label 6), 0 (label 1) and 1 (label 1).
    let labels = [1, 1, 6, 6, 6];
    assert_eq!(
        knn_classify(&query, &reference, &labels, 3).unwrap(),
        vec![1]
    );
    // With k = 1 only index 4 votes.
    assert_eq!(
        knn_classify(&query, &reference, &labels, 1).unwrap(),
        vec![6]
    );
    // With k = 4 the votes tie 2 : 2; label 1's distances sum to 2.0, label 6's to 1.25.
    assert_eq!(
        knn_classify(&query, &reference, &labels, 4).unwrap(),
        vec![6]
    );
    assert!(knn_classify(&query, &reference, &labels[..4], 3).is_err());
}

#[test]
fn config_rejects_bad_settings() {
    let valid = KnnConfig::default();
    assert!(valid.validate().is_ok());
    let cases = [
        KnnConfig {
            k: 0,
            ..valid.clone()
        },
        KnnConfig {
            k: 101,
            ..valid.clone()
        },
        KnnConfig {
            tau: 0.0,
            ..valid.clone()
        },
        KnnConfig {
            tau: f64::NAN,
            ..valid.clone()
        },
        KnnConfig {
            steps: 0,
            ..valid.clone()
        },
        KnnConfig {
            test_size: Some(0),
            ..valid.clone()
        },
    ];
    for config in cases {
        assert!(config.validate().is_err(), "{config:?}");
    }
}

/// Runs the `knn` binary in `dir` with no data folder set, so that MNIST comes from the
/// embedded sample.
fn run_knn(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_knn"))
        .current_dir(dir)
        .env_remove("SOFTSORT_DATA")
        .args(args)
        .output()
        .expect("the knn binary starts")
}

#[test]
fn binary_smoke_run_writes_result() {
    let dir = temp_dir("smoke");
    let output = run_knn(
        &dir,
        &[
            "--steps",
            "3",
            "--eval-every",
            "2",
            "--queries",
            "20",
            "--neighbours",
            "20",
            "--k",
            "3",
            "--validation-size",
            "40",
            "--reference-size",
            "200",
            "--test-size",
            "40",
            "--out",
            "out",
            "--quiet",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "knn failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one summary line expected: {stdout}"
    );
    assert!(stdout.contains("test accuracy"), "{stdout}");

    let json_path = dir.join("out/knn-mnist-softsort-k3.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let outcome = &json["outcome"];
    let test_accuracy = outcome["test_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&test_accuracy), "{test_accuracy}");
    assert_eq!(outcome["test_images"], 40);
    assert_eq!(outcome["reference_images"], 200);
    let steps: Vec<u64> = outcome["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![2, 3]);
    assert_eq!(json["config"]["k"], 3);
    assert!(json["data"].as_str().unwrap().contains("embedded sample"));
    assert!(dir.join("out/knn-mnist-softsort-k3.safetensors").is_file());
}

#[test]
fn binary_explains_missing_fashion_mnist() {
    let dir = temp_dir("fashion");
    let output = run_knn(
        &dir,
        &["--dataset", "fashion-mnist", "--steps", "1", "--quiet"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Fashion-MNIST not found"), "{stderr}");
    assert!(
        stderr.contains("scripts/fetch-data.sh --fashion-only"),
        "{stderr}"
    );
}

#[test]
fn capped_sizes_list_oversized_sets() {
    let data = experiments::Dataset::embedded_mnist_sample().unwrap();
    let config = KnnConfig {
        validation_size: Some(data.validation.len() + 1),
        reference_size: Some(10),
        test_size: Some(1_000_000),
        ..KnnConfig::default()
    };
    let caps = config.capped_sizes(&data);
    assert_eq!(
        caps,
        vec![
            experiments::knn::SizeCap {
                flag: "--validation-size",
                requested: data.validation.len() + 1,
                available: data.validation.len(),
            },
            experiments::knn::SizeCap {
                flag: "--test-size",
                requested: 1_000_000,
                available: data.test.len(),
            },
        ]
    );
}

#[test]
fn binary_logs_a_capped_size() {
    let dir = temp_dir("capped");
    let output = Command::new(env!("CARGO_BIN_EXE_knn"))
        .current_dir(&dir)
        .arg("--out")
        .arg(dir.join("out"))
        .args([
            "--steps",
            "1",
            "--queries",
            "10",
            "--neighbours",
            "10",
            "--k",
            "3",
        ])
        .args(["--reference-size", "200", "--validation-size", "20"])
        .args(["--test-size", "999999"])
        .env_remove("SOFTSORT_DATA")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--test-size 999999 exceeds the 500 images available; capped to 500"),
        "{stderr}"
    );
    assert!(!stderr.contains("--validation-size"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn uncreatable_checkpoint_names_its_path() {
    use experiments::run::BestCheckpoint;
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model = experiments::knn_cnn::EmbeddingCnn::new(&mut rng).unwrap();
    let path = temp_dir("checkpoint").join("missing-folder/best.safetensors");
    let mut best = BestCheckpoint::new(path.clone());
    let message = best.offer(0.5, &model).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("writing {} failed: ", path.display())),
        "{message}"
    );
    assert!(!message.contains("Os {"), "{message}");
    assert_eq!(best.best_score(), None);
}
