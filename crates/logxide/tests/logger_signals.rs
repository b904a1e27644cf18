//! `flush_on_signals`: SIGTERM drains the queue before the process dies. The test binary runs
//! itself as the child (selected by an environment variable), so the child is a real process
//! killed by a real signal.

use std::process::Command;
use std::time::Duration;

const CHILD: &str = "LOGXIDE_TEST_SIGNAL_CHILD";
const RECORDS: usize = 5000;

fn init(path: &str, flush_on_signals: bool) -> logxide::logger::LoggerGuard {
    logxide::LoggerBuilder::new()
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
        .unwrap()
}

/// `scenario`: the `flush_on_signals` of each `init` in turn, the last one onto `path` (the
/// earlier ones onto a file beside it), then 5000 records and a SIGTERM; with `ignored_sigint`
/// first, SIGINT is ignored before the first `init` and sent instead, and the child exits 0
/// (after a shutdown) if it survives.
///
/// With `handled_sigterm` first, the application installs its own SIGTERM handler before the
/// first `init`; the child then checks that its handler ran and that the 5000 records were
/// written (flushed) while the process lives on, and exits 0.
fn child(path: &str, scenario: &str) -> ! {
    let (signal, inits) = if let Some(inits) = scenario.strip_prefix("ignored_sigint,") {
        // SAFETY: setting a signal's disposition to ignored, before any thread of ours.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
        }
        (libc::SIGINT, inits)
    } else if let Some(inits) = scenario.strip_prefix("handled_sigterm,") {
        // SAFETY: the handler is async-signal-safe (one atomic store), installed before any
        // thread of ours.
        unsafe {
            libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t);
        }
        (libc::SIGTERM, inits)
    } else {
        (libc::SIGTERM, scenario)
    };
    let inits: Vec<bool> = inits.split(',').map(|on| on == "true").collect();
    let mut guard = None;
    for (i, &on) in inits.iter().enumerate() {
        let file = if i + 1 == inits.len() {
            path.to_owned()
        } else {
            format!("{path}.{i}")
        };
        guard = Some(init(&file, on));
    }
    for i in 0..RECORDS {
        logxide::info!("queued", i);
    }
    // SAFETY: sending a signal to our own process.
    unsafe {
        libc::kill(libc::getpid(), signal);
    }
    let handled = scenario.starts_with("handled_sigterm,");
    std::thread::sleep(Duration::from_secs(if signal == libc::SIGINT || handled {
        1
    } else {
        30
    }));
    if handled {
        let written = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count();
        if !SIGTERM_SEEN.load(std::sync::atomic::Ordering::SeqCst) || written != RECORDS {
            eprintln!("handler ran: {SIGTERM_SEEN:?}; lines written after the signal: {written}");
            std::process::exit(4);
        }
    }
    if signal == libc::SIGINT || handled {
        logxide::info!("survived");
        drop(guard);
        std::process::exit(0);
    }
    eprintln!("still alive after SIGTERM");
    std::process::exit(3);
}

static SIGTERM_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    SIGTERM_SEEN.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn run_child(flush: bool) -> (std::process::ExitStatus, String) {
    run_scenario(&flush.to_string())
}

fn run_scenario(scenario: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signal.log");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{}|{}", path.display(), scenario))
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (status, text)
}

#[test]
fn child_entry() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (path, scenario) = spec.rsplit_once('|').unwrap();
        child(path, scenario);
    }
}

/// Every record, in order, each line ending with its `i`.
fn assert_all_queued(text: &str) {
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
fn sigterm_with_flush_on_signals_writes_everything_then_dies_by_the_signal() {
    use std::os::unix::process::ExitStatusExt;
    let (status, text) = run_child(true);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert_all_queued(&text);
}

#[test]
fn sigterm_without_it_loses_the_queue_as_documented() {
    use std::os::unix::process::ExitStatusExt;
    let (status, text) = run_child(false);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(text.lines().count() < RECORDS);
}

/// `flush_on_signals(false)` in a re-init undoes an earlier `init`'s `true`: SIGTERM kills at
/// once, by the signal, as if logxide had never handled it (before: the handler still drained
/// all 5000 records first).
#[test]
fn a_reinit_with_flush_on_signals_off_undoes_an_earlier_on() {
    use std::os::unix::process::ExitStatusExt;
    let (status, text) = run_scenario("true,false");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    // Nothing drained: the queue is lost, as without the option (no 5000-line dump on failure).
    assert_eq!(text.lines().count(), 0, "records drained");
    assert_eq!(text, "");
}

/// On, off, on again: the last `init` decides, and it drains again.
#[test]
fn flush_on_signals_turned_on_again_drains_again() {
    use std::os::unix::process::ExitStatusExt;
    let (status, text) = run_scenario("true,false,true");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert_all_queued(&text);
}

/// Off after on chains to the disposition before logxide's handler: SIGINT ignored before
/// stays ignored (before: the handler drained and killed the process by SIGINT).
#[test]
fn off_after_on_keeps_an_ignored_signal_ignored() {
    let (status, text) = run_scenario("ignored_sigint,true,false");
    assert_eq!(status.code(), Some(0), "{status:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), RECORDS + 1);
    assert_all_queued(&text[..text.rfind("{").unwrap()]);
    assert!(
        lines[RECORDS].ends_with("\"msg\":\"survived\"}"),
        "{}",
        lines[RECORDS]
    );
}

/// The same file: everything queued, then `survived` (the process lived on past the signal).
fn assert_all_queued_then_survived(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), RECORDS + 1, "{}", lines.len());
    assert_all_queued(&text[..text.rfind("{").unwrap()]);
    assert!(
        lines[RECORDS].ends_with("\"msg\":\"survived\"}"),
        "{}",
        lines[RECORDS]
    );
}

/// On with SIGINT ignored before: it stays ignored — the drain does not end a process the
/// signal would not have ended (before: it drained, then killed the process by SIGINT).
#[test]
fn flush_on_signals_keeps_an_ignored_signal_ignored() {
    let (status, text) = run_scenario("ignored_sigint,true");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_all_queued_then_survived(&text);
}

/// On with a SIGTERM handler of the application's: its handler runs, the records are
/// flushed, and the process lives on to end as the application decides (before: drained, then
/// killed by SIGTERM under the application's feet).
#[test]
fn flush_on_signals_flushes_and_leaves_an_applications_handler_in_charge() {
    let (status, text) = run_scenario("handled_sigterm,true");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_all_queued_then_survived(&text);
}
