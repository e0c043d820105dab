//! The `report` binary on folders without results.

use std::path::PathBuf;
use std::process::Command;

use experiments::report::collect_results;
use experiments::run::write_json;
use experiments::sort_mnist::{Config, Evaluation, SortMnistResult, EXPERIMENT};

#[test]
fn empty_folder_is_an_error() {
    let dir = std::env::temp_dir().join(format!("report-test-empty-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a result").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_report"))
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "stderr: {stderr}");
    assert!(
        stderr.contains("no sort-mnist or quantile-mnist result files"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no table without results");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Builds a sort-mnist result with the given step count and test all-correct accuracy.
fn result_file(steps: usize, test_all_correct: f64) -> SortMnistResult {
    let config = Config {
        steps,
        ..Config::default()
    };
    SortMnistResult {
        experiment: EXPERIMENT.to_string(),
        config,
        tau: 1024.0,
        data: "hand-made".to_string(),
        data_is_sample: false,
        parameters: 1,
        evaluations: vec![Evaluation {
            step: steps,
            train_loss: 0.5,
            validation_all_correct: 0.5,
            validation_any_correct: 0.75,
        }],
        best_step: steps,
        best_validation_all_correct: 0.5,
        test_sequences: 10,
        test_all_correct,
        test_any_correct: 0.75,
        seconds_per_step: 0.1,
        total_seconds: 1.0,
        checkpoint: PathBuf::from("unused.safetensors"),
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("report-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn accuracy_out_of_range_skipped() {
    let dir = fresh_dir("range");
    write_json(&dir.join("good.json"), &result_file(1, 0.5)).unwrap();
    write_json(&dir.join("huge.json"), &result_file(1, 1e308)).unwrap();
    let collected = collect_results(&dir).unwrap();
    assert_eq!(collected.results.len(), 1);
    assert_eq!(collected.skipped.len(), 1);
    let (path, reason) = &collected.skipped[0];
    assert!(path.ends_with("huge.json"));
    assert!(
        reason.contains("invalid test_all_correct = 1e308"),
        "{reason}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_report"))
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("huge.json: invalid test_all_correct"),
        "{stderr}"
    );
    assert!(!stdout.contains("1e308"), "{stdout}");
    assert!(!stdout.contains("10000000000"), "{stdout}");
    assert!(stdout.contains(", 1 step |"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn results_file_instead_of_folder_fails() {
    let dir = fresh_dir("file");
    let file = dir.join("some.json");
    write_json(&file, &result_file(1, 0.5)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_report"))
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("RESULTS must be a folder"), "{stderr}");
    assert!(stderr.contains("some.json"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
