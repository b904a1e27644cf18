//! `flush_on_signals`: SIGTERM drains the queue before the process dies. The test binary runs
//! itself as the child (selected by an environment variable), so the child is a real process
//! killed by a real signal.

use std::process::Command;
use std::time::Duration;

const CHILD: &str = "LOGXIDE_TEST_SIGNAL_CHILD";
const RECORDS: usize = 5000;

fn child(path: &str, flush_on_signals: bool) -> ! {
    let _guard = logxide::LoggerBuilder::new()
        .use_env(false)
        .target(path)
        // Records would sit in the queue for an hour: only the signal flush writes them.
        .set("flush", "1h")
        .unwrap()
        .set("size", "10000")
        .unwrap()
        .set("queue", "10000")
        .unwrap()
        .flush_on_signals(flush_on_signals)
        .init()
        .unwrap();
    for i in 0..RECORDS {
        logxide::info!("queued", i);
    }
    // SAFETY: sending a signal to our own process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_secs(30));
    eprintln!("still alive after SIGTERM");
    std::process::exit(3);
}

fn run_child(flush: bool) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signal.log");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{}|{}", path.display(), flush))
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (status, text)
}

#[test]
fn child_entry() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (path, flush) = spec.rsplit_once('|').unwrap();
        child(path, flush == "true");
    }
}

#[test]
fn sigterm_with_flush_on_signals_writes_everything_then_dies_by_the_signal() {
    use std::os::unix::process::ExitStatusExt;
    let (status, text) = run_child(true);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), RECORDS);
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.ends_with(&format!("\"msg\":\"queued\",\"i\":{i}}}")),
            "{line}"
        );
    }
}

#[test]
fn sigterm_without_it_loses_the_queue_as_documented() {
    use std::os::unix::process::ExitStatusExt;
    let (status, text) = run_child(false);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(text.lines().count() < RECORDS);
}
