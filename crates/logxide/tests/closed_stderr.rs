//! Logging never panics when standard error is closed (a daemon whose stderr pipe's reader
//! went away): the messages logxide itself prints there — the warning about records before
//! `init`, the default `warn`-policy drop report — are best effort, never a panic in the
//! caller or a "hook panicked" error on the writer thread.
//!
//! The test runs itself again as a child whose stderr is a pipe with no reader: every write
//! to it fails with EPIPE (Rust ignores SIGPIPE), which makes `eprintln!` panic.

use std::process::{Command, Stdio};

use logxide::sink::MemorySink;
use logxide::writer::{Mode, Policy, Writer};

const CHILD: &str = "LOGXIDE_CLOSED_STDERR_CHILD";

#[test]
fn logging_with_stderr_closed_never_panics() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "logging_with_stderr_closed_never_panics",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

fn child() {
    // Before any `init`: discarded, counted, and the one-time warning goes to stderr.
    logxide::info!("before init");
    assert_eq!(logxide::logger::metrics().dropped, 1);

    // `warn` with the default report (stderr), from the writer thread.
    let writer = Writer::builder()
        .policy(Policy::Warn)
        .capacity(1)
        .mode(Mode::Manual)
        .sink(MemorySink::new())
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue(b"a").unwrap();
    assert!(h.enqueue(b"b").is_err());
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.written, m.dropped, m.warnings), (1, 1, 1));
    assert_eq!(m.errors, 0, "{:?}", writer_error(&m));
}

fn writer_error(m: &logxide::writer::MetricsSnapshot) -> String {
    format!("{m:?}")
}
