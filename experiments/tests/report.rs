//! The `report` binary on folders without results.

use std::process::Command;

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
