//! Command-line parsing shared by the training binaries.

use std::process::Command;

#[test]
fn negative_tau_reaches_validation() {
    let binaries = [
        env!("CARGO_BIN_EXE_sort-mnist"),
        env!("CARGO_BIN_EXE_quantile-mnist"),
        env!("CARGO_BIN_EXE_knn"),
    ];
    for binary in binaries {
        let output = Command::new(binary)
            .args(["--tau", "-1", "--steps", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{binary}: {stderr}");
        assert!(stderr.contains("invalid tau = -1"), "{binary}: {stderr}");
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
                "100",
                "--method",
                "stoch-softsort",
                "--samples",
                "1000",
            ],
            "samples × batch-size × n × n",
        ),
        (&["-n", "100", "--test-size", "1000000"], "test-size × n"),
    ];
    for (args, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_sort-mnist"))
            .args(args)
            .args(["--steps", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
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
        let output = Command::new(binary)
            .args(args)
            .args(["--steps", "1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
