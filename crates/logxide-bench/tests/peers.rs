//! Runs the built binary's `peers` command on a small workload and checks every contender
//! wrote exactly the expected lines.

use std::process::Command;

const CONTENDERS: [&str; 7] = [
    "logxide",
    "tracing",
    "slog",
    "spdlog",
    "ftlog",
    "fast_log",
    "sync_baseline",
];

fn run(args: &[&str]) -> (std::process::ExitStatus, serde_json::Value, String) {
    let dir = tempdir();
    let out = Command::new(env!("CARGO_BIN_EXE_logxide-bench"))
        .arg("peers")
        .args(args)
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("run logxide-bench");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    // Without --keep the log files are removed.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir(&dir).unwrap();
    (out.status, json, stderr)
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "logxide-bench-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_contender_writes_every_record() {
    let (status, json, stderr) = run(&["--records", "2000", "--threads", "2", "--json"]);
    assert!(status.success(), "{status}: {json:#}\n{stderr}");
    assert_eq!(json["workload"]["records"], 2000);
    assert_eq!(json["workload"]["threads"], 2);
    assert_eq!(json["workload"]["message"], "request handled");
    let contenders = json["contenders"].as_array().unwrap();
    let names: Vec<&str> = contenders
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CONTENDERS);
    for c in contenders {
        assert!(c["error"].is_null(), "{c:#}");
        assert_eq!(c["lines_ok"], true, "{c:#}");
        assert_eq!(c["lines"], 2000, "{c:#}");
        assert!(c["records_per_sec"].as_f64().unwrap() > 0.0, "{c:#}");
        assert!(c["bytes_per_line"].as_f64().unwrap() > 50.0, "{c:#}");
        let ns = &c["caller_ns"];
        let (p50, p99, max) = (
            ns["p50"].as_u64().unwrap(),
            ns["p99"].as_u64().unwrap(),
            ns["max"].as_u64().unwrap(),
        );
        assert!(p50 <= p99 && p99 <= max, "{c:#}");
        // 1000 records per thread, one call in 8 timed.
        assert_eq!(ns["samples"], 2 * 125, "{c:#}");
    }
}

#[test]
fn only_selects_and_odd_splits_are_exact() {
    let (status, json, stderr) = run(&[
        "--records",
        "1001",
        "--threads",
        "3",
        "--json",
        "--only",
        "sync_baseline,logxide",
    ]);
    assert!(status.success(), "{status}: {json:#}\n{stderr}");
    let contenders = json["contenders"].as_array().unwrap();
    let names: Vec<&str> = contenders
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sync_baseline", "logxide"]);
    for c in contenders {
        assert_eq!(c["lines_ok"], true, "{c:#}");
        assert_eq!(c["lines"], 1001, "{c:#}");
    }
}

#[test]
fn unknown_contender_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_logxide-bench"))
        .args(["peers", "--records", "10", "--only", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown contender \"nope\""));
}

#[test]
fn a_failed_child_is_reported_and_the_run_goes_on() {
    let dir = tempdir();
    // The child cannot replace a directory with its log file, so it fails.
    std::fs::create_dir(dir.join("tracing.log")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logxide-bench"))
        .args([
            "peers",
            "--records",
            "100",
            "--json",
            "--only",
            "tracing,logxide",
        ])
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &json["contenders"];
    assert_eq!(c[0]["name"], "tracing");
    assert!(
        c[0]["error"].as_str().unwrap().contains("run-one tracing"),
        "{c:#}"
    );
    assert_eq!(c[0]["lines_ok"], false);
    assert_eq!(c[1]["name"], "logxide");
    assert!(c[1]["error"].is_null(), "{c:#}");
    assert_eq!(c[1]["lines_ok"], true);
}

#[test]
fn repeat_reports_the_median_run_and_every_run() {
    let (status, json, stderr) = run(&[
        "--records",
        "3000",
        "--only",
        "logxide,sync_baseline",
        "--repeat",
        "3",
        "--json",
    ]);
    assert!(status.success(), "{status}: {json:#}\n{stderr}");
    assert_eq!(json["workload"]["repeat"], 3);
    for c in json["contenders"].as_array().unwrap() {
        let mut runs: Vec<f64> = c["runs_records_per_sec"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_f64().unwrap())
            .collect();
        assert_eq!(runs.len(), 3, "{c:#}");
        runs.sort_by(f64::total_cmp);
        assert_eq!(c["records_per_sec"].as_f64().unwrap(), runs[1], "{c:#}");
        assert_eq!(c["lines_ok"], true);
    }
}
