//! The examples, run with the reading end of their output closed early (as in
//! `cargo run --example NAME | head -1`): each ends quietly, with success, instead of
//! panicking on the broken pipe. (`demo` does the same; it is left out here for its run time
//! in debug builds.)

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The directory of the examples built for this test's profile (built here, once).
fn examples() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-q", "-p", "logxide", "--examples"]);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
            None => panic!("no profile directory above {}", exe.display()),
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "the examples build");
        profile_dir.join("examples")
    })
}

/// Runs example `name` in a temporary directory (also its `TMPDIR`) with its standard
/// output (or error, if `stderr`) a pipe closed before it writes; its exit status and the
/// other stream's text.
fn run_closed(name: &str, stderr: bool) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(examples().join(name));
    cmd.current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // The reader goes away first.
    if stderr {
        drop(child.stderr.take());
    } else {
        drop(child.stdout.take());
    }
    let out = child.wait_with_output().unwrap();
    let other = if stderr { out.stdout } else { out.stderr };
    (out.status, String::from_utf8_lossy(&other).into_owned())
}

#[test]
fn examples_end_quietly_when_their_output_is_closed() {
    for name in [
        "actions",
        "context",
        "formats",
        "log_bridge",
        "rotation",
        "runtime",
        "tracing",
        "writer",
    ] {
        let (status, stderr) = run_closed(name, false);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(status.success(), "{name}: {status}: {stderr}");
    }
    // The console example writes its lines to standard error.
    let (status, stdout) = run_closed("console", true);
    assert!(status.success(), "console: {status}: {stdout}");
}
