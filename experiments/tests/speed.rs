//! Tests of the speed task: the loss against a hand computation from the dense `P`, training
//! progress for every operator, the sweep's sizes and time budget, and a smoke run of the
//! `speed` binary.

use std::path::PathBuf;
use std::process::Command;

use autograd::{Tape, Tensor};
use experiments::speed::{
    fast_sizes, min_max_normalize, run_sweep, size_range, Operator, SweepConfig, TrainingRun,
    NEURALSORT_TAU, SINKHORN_ITERATIONS, SINKHORN_TAU, SOFTSORT_TAU,
};

/// Two rows of raw scores with distinct values, in no particular order.
const RAW_SCORES: [[f64; 5]; 2] = [[0.3, -0.8, 0.9, 0.1, -0.2], [-0.5, 0.4, 0.6, -0.9, 0.0]];

/// Min–max normalises one row by hand.
fn normalize_row(row: &[f64]) -> Vec<f64> {
    let low = row.iter().copied().fold(f64::INFINITY, f64::min);
    let high = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    row.iter().map(|v| (v - low) / (high - low)).collect()
}

/// Replaces every row of `logits` by its softmax.
fn softmax_rows(logits: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    logits
        .into_iter()
        .map(|row| {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
            let total: f64 = exps.iter().sum();
            exps.iter().map(|e| e / total).collect()
        })
        .collect()
}

fn sorted_descending(s: &[f64]) -> Vec<f64> {
    let mut sorted = s.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    sorted
}

/// Returns the SoftSort logits `−d(ŝ_i − s_j)` before the temperature.
fn softsort_distances(s: &[f64], squared: bool) -> Vec<Vec<f64>> {
    sorted_descending(s)
        .iter()
        .map(|&t| {
            s.iter()
                .map(|&v| {
                    if squared {
                        -(t - v) * (t - v)
                    } else {
                        -(t - v).abs()
                    }
                })
                .collect()
        })
        .collect()
}

fn scale(matrix: Vec<Vec<f64>>, factor: f64) -> Vec<Vec<f64>> {
    matrix
        .into_iter()
        .map(|row| row.into_iter().map(|v| v * factor).collect())
        .collect()
}

fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Builds the dense `P` of one row of normalised scores, straight from each definition.
fn dense_p(operator: Operator, s: &[f64]) -> Vec<Vec<f64>> {
    let n = s.len();
    match operator {
        Operator::SoftsortSq | Operator::FusedSoftsortSq => {
            softmax_rows(scale(softsort_distances(s, true), 1.0 / SOFTSORT_TAU))
        }
        Operator::SoftsortAbs | Operator::FastSoftsortAbs => {
            softmax_rows(scale(softsort_distances(s, false), 1.0 / SOFTSORT_TAU))
        }
        Operator::Neuralsort | Operator::FusedNeuralsort => {
            let row_sums: Vec<f64> = s
                .iter()
                .map(|&a| s.iter().map(|&b| (a - b).abs()).sum())
                .collect();
            let logits = (1..=n)
                .map(|k| {
                    let c = (n + 1) as f64 - 2.0 * k as f64;
                    (0..n)
                        .map(|i| (c * s[i] - row_sums[i]) / NEURALSORT_TAU)
                        .collect()
                })
                .collect();
            softmax_rows(logits)
        }
        Operator::Sinkhorn => {
            let mut l = scale(softsort_distances(s, true), 1.0 / SINKHORN_TAU);
            for _ in 0..SINKHORN_ITERATIONS {
                for row in l.iter_mut() {
                    let lse = log_sum_exp(row.iter().copied());
                    row.iter_mut().for_each(|v| *v -= lse);
                }
                for j in 0..n {
                    let lse = log_sum_exp(l.iter().map(|row| row[j]));
                    l.iter_mut().for_each(|row| row[j] -= lse);
                }
            }
            l.into_iter()
                .map(|row| row.into_iter().map(f64::exp).collect())
                .collect()
        }
    }
}

#[test]
fn loss_equals_dense_diagonal_formula() {
    let n = RAW_SCORES[0].len();
    let raw: Vec<f64> = RAW_SCORES.iter().flatten().copied().collect();
    for operator in Operator::ALL {
        let tape = Tape::<f64>::new();
        let scores = tape.param(Tensor::from_vec(raw.clone(), [2, n]).unwrap());
        let loss = operator.loss(min_max_normalize(scores).unwrap()).unwrap();
        let actual = loss.value().item().unwrap();

        let mut terms = Vec::new();
        for row in RAW_SCORES {
            let p = dense_p(operator, &normalize_row(&row));
            terms.extend((0..n).map(|i| 1.0 - p[i][i].ln()));
        }
        let expected = terms.iter().sum::<f64>() / terms.len() as f64;
        assert!(
            (actual - expected).abs() < 1e-9 * expected.abs(),
            "{operator}: loss {actual}, expected {expected}"
        );
    }
}

#[test]
fn loss_of_sorted_scores_is_lower() {
    // Descending scores already follow the identity target, so every operator's diagonal is
    // larger than for the reversed scores.
    for operator in Operator::ALL {
        let loss_of = |values: Vec<f64>| {
            let tape = Tape::<f64>::new();
            let s = tape.constant(Tensor::from_vec(values, [1, 4]).unwrap());
            operator.loss(s).unwrap().value().item().unwrap()
        };
        let sorted = loss_of(vec![1.0, 0.7, 0.3, 0.0]);
        let reversed = loss_of(vec![0.0, 0.3, 0.7, 1.0]);
        assert!(
            sorted < reversed,
            "{operator}: sorted {sorted}, reversed {reversed}"
        );
        assert!(
            sorted >= 1.0,
            "{operator}: 1 − log P_ii is at least 1, got {sorted}"
        );
    }
}

#[test]
fn training_lowers_loss_for_every_operator() {
    for operator in Operator::ALL {
        let mut run = TrainingRun::<f32>::new(operator, 16, 3).unwrap();
        let losses: Vec<f64> = (0..20).map(|_| run.step().unwrap()).collect();
        assert!(
            losses.iter().all(|l| l.is_finite()),
            "{operator}: {losses:?}"
        );
        assert!(
            losses[19] < losses[0],
            "{operator}: loss went from {} to {}",
            losses[0],
            losses[19]
        );
    }
}

#[test]
fn training_run_rejects_single_score() {
    let error = TrainingRun::<f32>::new(Operator::SoftsortAbs, 1, 0)
        .err()
        .unwrap();
    assert!(error.to_string().contains("at least 2"), "{error}");
}

#[test]
fn size_range_is_inclusive() {
    assert_eq!(size_range(100, 400, 100).unwrap(), vec![100, 200, 300, 400]);
    assert_eq!(size_range(100, 350, 100).unwrap(), vec![100, 200, 300]);
    assert!(size_range(100, 400, 0).is_err());
    assert!(size_range(500, 400, 100).is_err());
}

#[test]
fn fast_sizes_extend_dense_range() {
    let dense = size_range(100, 2000, 100).unwrap();
    let fast = fast_sizes(&dense, 100_000);
    assert_eq!(&fast[..20], &dense[..]);
    assert_eq!(&fast[20..], &[5000, 10_000, 20_000, 50_000, 100_000]);
    assert_eq!(
        fast_sizes(&dense, 30_000)[20..],
        [5000, 10_000, 20_000, 30_000]
    );
}

#[test]
fn fast_sizes_end_at_the_largest_usize() {
    let sizes = fast_sizes(&[100, 200], usize::MAX);
    assert_eq!(sizes.last(), Some(&usize::MAX));
    assert!(sizes.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(sizes[2], 500);
}

fn tiny_config(operators: Vec<Operator>) -> SweepConfig {
    SweepConfig {
        operators,
        sizes: vec![8, 16],
        fast_sizes: vec![8, 16, 64],
        warmup: 1,
        steps: 2,
        skip_after: None,
        seed: 1,
    }
}

#[test]
fn sweep_measures_every_size() {
    let result = run_sweep(&tiny_config(Operator::ALL.to_vec()), |_| {}).unwrap();
    assert_eq!(result.measurements.len(), 6 * 2 + 3);
    assert!(result.skipped.is_empty());
    for m in &result.measurements {
        assert!(m.seconds_per_step > 0.0, "{m:?}");
        assert!(
            m.final_loss.is_finite() && m.first_loss.is_finite(),
            "{m:?}"
        );
    }
}

#[test]
fn sweep_skips_sizes_over_budget() {
    let mut config = tiny_config(vec![Operator::SoftsortSq, Operator::FastSoftsortAbs]);
    config.skip_after = Some(1e-12);
    let mut steps = 0;
    let result = run_sweep(&config, |progress| {
        if let experiments::speed::Progress::Step { .. } = progress {
            steps += 1;
        }
    })
    .unwrap();
    let sizes: Vec<(Operator, usize)> = result
        .measurements
        .iter()
        .map(|m| (m.operator, m.n))
        .collect();
    assert_eq!(
        sizes,
        vec![(Operator::SoftsortSq, 8), (Operator::FastSoftsortAbs, 8)]
    );
    assert_eq!(result.skipped.len(), 2);
    assert_eq!(result.skipped[0].skipped_sizes, vec![16]);
    assert_eq!(result.skipped[1].skipped_sizes, vec![16, 64]);
    assert_eq!(steps, 2 * 3);
}

#[test]
fn sweep_rejects_bad_config() {
    let mut config = tiny_config(vec![Operator::SoftsortAbs]);
    config.sizes = vec![1, 8];
    assert!(run_sweep(&config, |_| {})
        .unwrap_err()
        .to_string()
        .contains("n = 1"));

    let mut config = tiny_config(vec![Operator::SoftsortAbs]);
    config.steps = 0;
    assert!(run_sweep(&config, |_| {})
        .unwrap_err()
        .to_string()
        .contains("steps"));

    let mut config = tiny_config(vec![Operator::SoftsortAbs]);
    config.skip_after = Some(-1.0);
    assert!(run_sweep(&config, |_| {})
        .unwrap_err()
        .to_string()
        .contains("skip-after"));
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speed-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn binary_writes_csv_svg_and_json() {
    let out = temp_dir("binary");
    let output = Command::new(env!("CARGO_BIN_EXE_speed"))
        .args([
            "--n",
            "8,16",
            "--steps",
            "2",
            "--fast-n-max",
            "64",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("speed: softsort_sq"), "{stdout}");

    let csv = std::fs::read_to_string(out.join("speed.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines[0], "operator,n,seconds_per_step");
    assert_eq!(lines.len(), 1 + 6 * 2 + 5, "{csv}");
    assert!(
        lines.iter().any(|l| l.starts_with("fast_softsort_abs,64,")),
        "{csv}"
    );

    let svg = std::fs::read_to_string(out.join("speed.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    for operator in Operator::ALL {
        assert!(
            svg.contains(operator.name()),
            "no legend entry for {operator}"
        );
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("speed.json")).unwrap()).unwrap();
    assert_eq!(json["experiment"], "speed");
    assert_eq!(
        json["result"]["measurements"].as_array().unwrap().len(),
        6 * 2 + 5
    );
    assert_eq!(json["summary"].as_str().unwrap(), stdout.trim_end());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn binary_rejects_single_score() {
    let out = temp_dir("reject");
    let output = Command::new(env!("CARGO_BIN_EXE_speed"))
        .args(["--n", "1", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("n = 1"), "{stderr}");
    let _ = std::fs::remove_dir_all(&out);
}
