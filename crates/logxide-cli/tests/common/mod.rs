//! What the CLI's integration tests share: running the `logxide` binary.
// Each test binary uses some of these.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `logxide args…` in `dir`, with NO_COLOR unset.
pub fn logxide_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("run logxide")
}

/// Runs `logxide args…` with `input` on its stdin (a reader that stops early is fine).
pub fn logxide_with_stdin(args: &[&str], input: &[u8]) -> Output {
    logxide_with_stdin_in(Path::new("."), args, input)
}

/// [`logxide_with_stdin`] in `dir`.
pub fn logxide_with_stdin_in(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = spawn_piped(dir, args);
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// `logxide ARGS…` started in `dir` with stdin, stdout and stderr pipes (`NO_COLOR` unset).
pub fn spawn_piped(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_logxide"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Output bytes as text (they must be UTF-8).
pub fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}
