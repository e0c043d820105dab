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
