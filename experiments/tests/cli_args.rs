//! Command-line parsing shared by the training binaries.

use std::process::Command;

/// Runs `binary` with `args`, asserts that it fails with `expected` in its standard error, and
/// returns that error for further checks.
fn assert_rejects(binary: &str, args: &[&str], expected: &str) -> String {
    let output = Command::new(binary).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{binary} {args:?}: {stderr}");
    assert!(stderr.contains(expected), "{binary} {args:?}: {stderr}");
    stderr
}

/// Returns `args` followed by `--steps 1`, so that an accepted run would stay short.
fn one_step<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--steps", "1"]);
    all
}

#[test]
fn negative_tau_reaches_validation() {
    let binaries = [
        env!("CARGO_BIN_EXE_sort-mnist"),
        env!("CARGO_BIN_EXE_quantile-mnist"),
        env!("CARGO_BIN_EXE_knn"),
    ];
    for binary in binaries {
        assert_rejects(binary, &["--tau", "-1", "--steps", "1"], "invalid tau = -1");
    }
}

#[test]
fn oversized_sort_runs_fail_before_allocating() {
    let cases: [(&[&str], &str); 4] = [
        (&["-n", "1000000"], "batch-size × n"),
        (&["--batch-size", "18446744073709551615"], "batch-size × n"),
        (
            &[
                "-n",
                "50",
                "--method",
                "stoch-softsort",
                "--samples",
                "3000",
            ],
            "samples × batch-size × n × n",
        ),
        (&["-n", "50", "--test-size", "10000000"], "test-size × n"),
    ];
    for (args, expected) in cases {
        assert_rejects(env!("CARGO_BIN_EXE_sort-mnist"), &one_step(args), expected);
    }
}

#[test]
fn oversized_quantile_and_knn_runs_fail_before_allocating() {
    let cases: [(&str, &[&str], &str); 4] = [
        (
            env!("CARGO_BIN_EXE_quantile-mnist"),
            &["-n", "15", "--batch-size", "300"],
            "batch-size × n",
        ),
        (
            env!("CARGO_BIN_EXE_quantile-mnist"),
            &["--eval-size", "99999999999"],
            "eval-size × n",
        ),
        (
            env!("CARGO_BIN_EXE_knn"),
            &["--queries", "18446744073709551615"],
            "queries + neighbours",
        ),
        (
            env!("CARGO_BIN_EXE_knn"),
            &["--queries", "1000", "--neighbours", "1000"],
            "queries × neighbours × neighbours",
        ),
    ];
    for (binary, args, expected) in cases {
        assert_rejects(binary, &one_step(args), expected);
    }
}

/// Runs `binary` with `args` and returns (success, stdout, stderr). A run that does not end
/// within a minute fails the test instead of hanging it.
fn run_with_timeout(binary: &str, args: &[&str]) -> (bool, String, String) {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let mut child = Command::new(binary)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{binary} {args:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.success(), stdout, stderr)
}

#[test]
fn oversized_speed_runs_fail_before_allocating() {
    let out = std::env::temp_dir().join("cli-args-speed");
    let out = out.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "--fast-n-max",
                "18446744073709551615",
                "--n-max",
                "200",
                "--operators",
                "fast_softsort_abs",
            ],
            "invalid fast-n-max = 18446744073709551615",
        ),
        (&["--n", "18446744073709551615"], "batch × n × n"),
        (&["--n", "1000000000"], "batch × n × n = 20 × 1000000000"),
        (
            &["--operators", "sinkhorn", "--n", "100000"],
            "sinkhorn forms a [20, n, n] matrix",
        ),
        (
            &[
                "--n-max",
                "18446744073709551615",
                "--operators",
                "fast_softsort_abs",
            ],
            "invalid n-max = 18446744073709551615",
        ),
        (
            &["--operators", "fused_neuralsort", "--n", "100000000"],
            "invalid n = 100000000",
        ),
    ];
    for (args, expected) in cases {
        let mut full = args.to_vec();
        full.extend(["--steps", "1", "--quiet", "--out", out]);
        let (success, _, stderr) = run_with_timeout(env!("CARGO_BIN_EXE_speed"), &full);
        assert!(!success, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn speed_allows_the_papers_largest_dense_size() {
    let config = experiments::speed::SweepConfig {
        operators: vec![experiments::speed::Operator::Sinkhorn],
        sizes: vec![4000],
        fast_sizes: vec![],
        warmup: 0,
        steps: 1,
        skip_after: None,
        seed: 0,
    };
    config.validate().unwrap();
    assert!(experiments::speed::max_dense_n() >= 4000);
}

#[test]
fn grid_stops_quietly_when_stdout_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_grid"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closing the read end before the first line makes every write fail with a broken pipe.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn grid_rejects_zero_steps_and_repetitions() {
    for (flag, expected) in [
        ("--steps", "invalid steps = 0"),
        ("--repetitions", "invalid repetitions = 0"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_grid"))
            .args([flag, "0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag}: {stderr}");
        assert!(output.stdout.is_empty(), "{flag}");
        assert!(stderr.contains(expected), "{flag}: {stderr}");
    }
}

#[test]
fn negative_numbers_reach_validation_or_name_the_flag() {
    let cases: [(&str, &[&str], &str); 5] = [
        (
            env!("CARGO_BIN_EXE_sort-mnist"),
            &["--lr", "-1"],
            "invalid lr = -1",
        ),
        (
            env!("CARGO_BIN_EXE_quantile-mnist"),
            &["--lr", "-1"],
            "invalid lr = -1",
        ),
        (
            env!("CARGO_BIN_EXE_knn"),
            &["--lr", "-1"],
            "invalid lr = -1",
        ),
        (
            env!("CARGO_BIN_EXE_sort-mnist"),
            &["-n", "-3"],
            "invalid value '-3' for '--n <N>'",
        ),
        (
            env!("CARGO_BIN_EXE_knn"),
            &["--queries", "-3"],
            "invalid value '-3' for '--queries <QUERIES>'",
        ),
    ];
    for (binary, args, expected) in cases {
        assert_rejects(binary, &one_step(args), expected);
    }
}

#[test]
fn knn_names_each_bad_setting() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--neighbours", "0"],
            "invalid neighbours = 0: give --neighbours",
        ),
        (&["--queries", "0"], "invalid queries = 0: give --queries"),
        (&["--steps", "0"], "invalid steps = 0: give --steps"),
        (
            &["--eval-every", "0"],
            "invalid eval-every = 0: give --eval-every",
        ),
        (&["--lr", "nan"], "invalid lr = NaN"),
        (&["--lr", "0"], "invalid lr = 0"),
    ];
    for (args, expected) in cases {
        assert_rejects(env!("CARGO_BIN_EXE_knn"), args, expected);
    }
}

#[test]
fn quantile_lengths_without_a_default_tau_say_why() {
    for (n, expected) in [
        (
            "1",
            "invalid n = 1: the median of a single number needs no sorting",
        ),
        ("7", "invalid n = 7: the paper gives default temperatures"),
    ] {
        let stderr = assert_rejects(
            env!("CARGO_BIN_EXE_quantile-mnist"),
            &["-n", n, "--steps", "1"],
            expected,
        );
        assert!(!stderr.contains("none"), "{n}: {stderr}");
    }
}

#[test]
fn help_text_is_per_binary() {
    let binaries = [
        env!("CARGO_BIN_EXE_sort-mnist"),
        env!("CARGO_BIN_EXE_quantile-mnist"),
        env!("CARGO_BIN_EXE_knn"),
        env!("CARGO_BIN_EXE_speed"),
        env!("CARGO_BIN_EXE_grid"),
        env!("CARGO_BIN_EXE_report"),
    ];
    for binary in binaries {
        let output = Command::new(binary).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{binary}");
        assert!(
            !help.starts_with("Binaries that reproduce"),
            "{binary}: {help}"
        );
        assert!(!help.contains("[`"), "{binary}: {help}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_speed"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(!help.contains("--data"), "{help}");
    assert!(!help.contains("checkpoint"), "{help}");
}

/// Writes an IDX data folder `<dir>/mnist` with `count` training and test images of
/// `side` × `side` pixels whose labels cycle through `digits`.
fn write_idx_folder(dir: &std::path::Path, side: usize, count: usize, digits: u8) {
    use experiments::dataset::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
    use experiments::idx::{encode_images, encode_labels, IdxImages};
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let pixels = (0..count * side * side).map(|i| (i % 251) as u8).collect();
    let images = IdxImages::new(count, side, side, pixels).unwrap();
    let labels: Vec<u8> = (0..count)
        .map(|i| (i % usize::from(digits)) as u8)
        .collect();
    for (image_file, label_file) in [(TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)] {
        std::fs::write(mnist.join(image_file), encode_images(&images)).unwrap();
        std::fs::write(mnist.join(label_file), encode_labels(&labels)).unwrap();
    }
}

#[test]
fn non_28_pixel_images_are_rejected() {
    let dir = std::env::temp_dir().join(format!("cli-args-32px-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_idx_folder(&dir, 32, 240, 10);
    let dir_arg = dir.to_string_lossy().into_owned();
    let out_arg = dir.join("out").to_string_lossy().into_owned();
    for binary in [
        env!("CARGO_BIN_EXE_sort-mnist"),
        env!("CARGO_BIN_EXE_quantile-mnist"),
        env!("CARGO_BIN_EXE_knn"),
    ] {
        let args = [
            "--data", &dir_arg, "--out", &out_arg, "--steps", "1", "--quiet",
        ];
        let stderr = assert_rejects(binary, &args, "images of the folder");
        assert!(stderr.contains("are 32 × 32 pixels"), "{binary}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_digits_name_the_split_and_folder() {
    let dir = std::env::temp_dir().join(format!("cli-args-digits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_idx_folder(&dir, 28, 120, 5);
    let dir_arg = dir.to_string_lossy().into_owned();
    let out_arg = dir.join("out").to_string_lossy().into_owned();
    for binary in [
        env!("CARGO_BIN_EXE_sort-mnist"),
        env!("CARGO_BIN_EXE_quantile-mnist"),
    ] {
        let args = [
            "--data", &dir_arg, "--out", &out_arg, "--steps", "1", "--quiet",
        ];
        let stderr = assert_rejects(binary, &args, "the training split of the folder");
        assert!(
            stderr.contains("has no image of digit 5"),
            "{binary}: {stderr}"
        );
        assert!(stderr.contains("every digit 0–9"), "{binary}: {stderr}");
        assert!(
            !stderr.contains("LargeMnistGenerator"),
            "{binary}: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn edge_flags_name_their_cause() {
    let missing = std::env::temp_dir().join(format!("no-results-{}", std::process::id()));
    let missing = missing.to_string_lossy().into_owned();
    let out = std::env::temp_dir().join(format!("diverged-{}", std::process::id()));
    let out = out.to_string_lossy().into_owned();
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            env!("CARGO_BIN_EXE_speed"),
            vec!["--n", "200000", "--operators", "fast_softsort_abs"],
            "--fast-n-max",
        ),
        (
            env!("CARGO_BIN_EXE_sort-mnist"),
            vec!["--lr", "1e39", "--steps", "1"],
            "invalid lr = 1000000000000000000000000000000000000000",
        ),
        (
            env!("CARGO_BIN_EXE_report"),
            vec![missing.as_str()],
            "no such folder",
        ),
        (
            env!("CARGO_BIN_EXE_sort-mnist"),
            vec![
                "--lr",
                "1e38",
                "--steps",
                "2",
                "--eval-size",
                "10",
                "--test-size",
                "10",
                "--quiet",
                "--out",
                out.as_str(),
            ],
            "invalid parameter conv1.weight after step 1",
        ),
    ];
    for (binary, args, expected) in cases {
        assert_rejects(binary, &args, expected);
    }
    std::fs::remove_dir_all(&out).ok();
}
