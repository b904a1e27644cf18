//! Runs the built `logxide` binary with small record counts and checks its JSON result.

use std::process::{Command, Output};

use serde_json::Value;

const RECORDS: u64 = 20_000;

fn logxide(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(args)
        .output()
        .expect("run logxide")
}

/// Runs `logxide bench writer --json` with `args`; expects exit 0 and returns the JSON.
fn bench(args: &[&str]) -> Value {
    let mut all = vec!["bench", "writer", "--json", "--idle-secs", "0.05"];
    all.extend_from_slice(args);
    let out = logxide(&all);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{all:?}: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert_eq!(stdout.lines().count(), 1, "exactly one JSON line: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

const FIELDS: &[&str] = &[
    "records",
    "threads",
    "line_bytes",
    "io",
    "mode",
    "policy",
    "capacity",
    "batch",
    "seconds",
    "records_per_sec",
    "physical_seconds",
    "physical_records_per_sec",
    "ratio_to_physical",
    "caller_ns",
    "peak_rss_delta_mb",
    "verified",
    "metrics",
];

fn check_lossless(r: &Value, records: u64) {
    for f in FIELDS {
        assert!(r.get(f).is_some(), "missing field {f}: {r}");
    }
    for q in ["p50", "p99", "p999", "max"] {
        assert!(r["caller_ns"][q].is_u64(), "caller_ns.{q}: {r}");
    }
    let c = &r["caller_ns"];
    assert!(c["p50"].as_u64() <= c["p99"].as_u64());
    assert!(c["p99"].as_u64() <= c["p999"].as_u64());
    assert!(c["p999"].as_u64() <= c["max"].as_u64());
    assert_eq!(r["verified"], true, "{r}");
    assert_eq!(r["records"], records);
    let m = &r["metrics"];
    assert_eq!(m["enqueued"], records, "{r}");
    assert_eq!(m["written"], records, "{r}");
    assert_eq!(m["dropped"], 0, "{r}");
    assert_eq!(m["pending"], 0, "{r}");
    assert_eq!(m["failed"], 0, "{r}");
    assert!(r["seconds"].as_f64().unwrap() > 0.0);
    assert!(r["records_per_sec"].as_f64().unwrap() > 0.0);
    assert!(r["physical_records_per_sec"].as_f64().unwrap() > 0.0);
    assert!(r["ratio_to_physical"].as_f64().unwrap() > 0.0);
}

fn run_matrix(threads: &str) {
    let n = RECORDS.to_string();
    for io in ["line", "block", "mmap"] {
        for mode in ["trigger", "loop", "manual"] {
            let r = bench(&[
                "--records",
                &n,
                "--threads",
                threads,
                "--io",
                io,
                "--mode",
                mode,
            ]);
            check_lossless(&r, RECORDS);
            assert_eq!(r["io"], io);
            assert_eq!(r["mode"], mode);
            assert_eq!(r["policy"], "block");
            assert_eq!(r["threads"], threads.parse::<u64>().unwrap());
            assert_eq!(r["line_bytes"], 100);
            assert_eq!(r["metrics"]["bytes"], RECORDS * 100);
        }
    }
}

#[test]
fn every_strategy_and_mode_one_thread() {
    run_matrix("1");
}

#[test]
fn every_strategy_and_mode_three_threads() {
    run_matrix("3");
}

#[test]
fn uneven_split_short_lines_small_queue() {
    // 20 001 records over 3 threads (6 667 each); 20-byte lines; a queue of 8 that keeps
    // producers blocked.
    let r = bench(&[
        "--records",
        "20001",
        "--threads",
        "3",
        "--line-bytes",
        "20",
        "--capacity",
        "8",
        "--batch",
        "4",
    ]);
    check_lossless(&r, 20_001);
    assert_eq!(r["line_bytes"], 20);
    assert_eq!(r["capacity"], 8);
    assert_eq!(r["batch"], 4);
}

#[test]
fn manual_mode_with_a_tiny_queue() {
    let r = bench(&[
        "--records",
        "5000",
        "--threads",
        "2",
        "--mode",
        "manual",
        "--capacity",
        "2",
        "--batch",
        "1",
    ]);
    check_lossless(&r, 5000);
}

#[test]
fn drop_policies_lose_records_but_stay_verified() {
    for policy in ["drop_newest", "drop_oldest", "warn"] {
        let r = bench(&[
            "--records",
            "20000",
            "--threads",
            "3",
            "--policy",
            policy,
            "--capacity",
            "4",
            "--batch",
            "2",
            "--mode",
            "loop",
        ]);
        assert_eq!(r["verified"], true, "{r}");
        assert_eq!(r["policy"], policy);
        let m = &r["metrics"];
        let (written, dropped) = (
            m["written"].as_u64().unwrap(),
            m["dropped"].as_u64().unwrap(),
        );
        assert_eq!(written + dropped, 20_000, "{r}");
        assert_eq!(r["lines"], written, "{r}");
        assert_eq!(m["enqueued"], 20_000);
        assert_eq!(m["pending"], 0);
        assert!(
            dropped > 0,
            "a 4-record queue written every 10 ms drops: {r}"
        );
    }
}

#[test]
fn keep_and_dir_leave_the_files() {
    let dir = std::env::temp_dir().join(format!("logxide-cli-test-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let r = bench(&["--records", "1000", "--dir", d, "--keep"]);
    check_lossless(&r, 1000);
    let engine = dir.join("engine.log");
    assert_eq!(r["engine_log"], engine.to_str().unwrap());
    assert_eq!(std::fs::metadata(&engine).unwrap().len(), 100_000);
    assert_eq!(
        std::fs::metadata(dir.join("physical.log")).unwrap().len(),
        100_000
    );
    // Without --keep the files are removed, the given directory is not.
    let r = bench(&["--records", "1000", "--dir", d]);
    check_lossless(&r, 1000);
    assert_eq!(r["engine_log"], Value::Null);
    assert!(!engine.exists());
    assert!(dir.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn human_summary() {
    let out = logxide(&["bench", "writer", "--records", "2000", "--threads", "2"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "records/s",
        "ratio to physical",
        "p99",
        "peak RSS",
        "verified: yes",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

fn fails_naming(args: &[&str], needle: &str) {
    let out = logxide(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    assert!(
        stderr.contains(needle),
        "{args:?}: {needle:?} not in {stderr}"
    );
}

#[test]
fn bad_options_are_refused_with_the_option_named() {
    let w = ["bench", "writer"];
    let with = |extra: &[&'static str]| [&w[..], extra].concat();
    fails_naming(&with(&["--io", "foo"]), "--io");
    fails_naming(&with(&["--io", "foo"]), "line, block, mmap");
    fails_naming(&with(&["--records", "0"]), "--records");
    fails_naming(&with(&["--threads", "0"]), "--threads");
    fails_naming(&with(&["--line-bytes", "19"]), "--line-bytes");
    fails_naming(&with(&["--policy", "sometimes"]), "--policy");
    fails_naming(&with(&["--mode", "often"]), "--mode");
    fails_naming(&with(&["--capacity", "0"]), "--capacity");
    fails_naming(&with(&["--records", "x"]), "--records");
    fails_naming(&with(&["--batch", "200", "--capacity", "100"]), "--batch");
    fails_naming(&with(&["--records", "2", "--threads", "3"]), "--threads");
    fails_naming(
        &with(&["--records", "100000000", "--line-bytes", "20"]),
        "--line-bytes",
    );
    fails_naming(&with(&["--bogus"]), "--bogus");
    // Not a number of seconds to wait: NaN was taken as 0, an infinite or huge one panicked
    // (Duration::from_secs_f64) after the whole benchmark had run.
    for bad in ["nan", "inf", "1e300", "3601", "x"] {
        fails_naming(&with(&["--idle-secs", bad]), "--idle-secs");
        fails_naming(&with(&["--idle-secs", bad]), "from 0 to 3600");
    }
}

/// `--dir` that cannot be made a directory (a file is there) is an error naming it, exit 3.
#[test]
fn a_dir_that_cannot_be_created_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = logxide(&[
        "bench",
        "writer",
        "--records",
        "10",
        "--idle-secs",
        "0",
        "--dir",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot create --dir {}: ", file.display())),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn help_and_version() {
    let out = logxide(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("bench"));
    let out = logxide(&["bench", "--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("writer"));
    let out = logxide(&["bench", "writer", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success());
    for needle in [
        "--records",
        "--io",
        "--mode",
        "--policy",
        "--keep",
        "--json",
        "trigger()",
    ] {
        assert!(text.contains(needle), "{needle:?} not in help:\n{text}");
    }
    let out = logxide(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("logxide "));
}

/// A stdout nobody reads (`logxide bench writer | head -0`, head gone) is no failure to
/// report, as for view and check: the exit status is the verification's, stderr says
/// nothing (it was 'cannot print the result: Broken pipe', exit 3).
#[cfg(unix)]
#[test]
fn a_closed_stdout_is_no_error() {
    use std::os::fd::OwnedFd;
    use std::process::Stdio;
    // The write end of a pipe whose reader is gone: the stdin of a process that exited.
    let mut reader = Command::new(env!("CARGO_BIN_EXE_logxide"))
        .arg("--version")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let dead_end = OwnedFd::from(reader.stdin.take().unwrap());
    assert!(reader.wait().unwrap().success());
    for json in [false, true] {
        let mut args = vec!["bench", "writer", "--records", "1000", "--idle-secs", "0"];
        if json {
            args.push("--json");
        }
        let dead_end = Stdio::from(dead_end.try_clone().unwrap());
        let out = Command::new(env!("CARGO_BIN_EXE_logxide"))
            .args(&args)
            .stdout(dead_end)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned()
            ),
            (Some(0), String::new()),
            "{args:?}"
        );
    }
}
