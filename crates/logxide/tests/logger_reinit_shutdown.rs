//! `logger::shutdown()` while a re-init onto the installed logger's file drains that logger (no global
//! logger meanwhile). The global logger is the process's: one test in a binary of its own.

use std::sync::mpsc;
use std::time::Duration;

use logxide::logger;

mod common;

/// `logger::shutdown()` while a re-init onto the same file drained the logger it replaced
/// (no global logger installed meanwhile) returned `None` at once, before the drain ended: a
/// caller shutting down before `exit` could lose the records still on their way. It now
/// returns `None` once that drain is over (or at its own timeout), as
/// `Logger::shutdown` does during another thread's shutdown.
#[test]
fn a_shutdown_during_a_same_file_reinit_returns_after_the_drain() {
    let common::StuckReinit {
        dir: _dir,
        path,
        gate,
        old,
        reinit,
    } = common::stuck_reinit(&["B"]);
    let (done, returned) = mpsc::channel();
    let shutting_down = std::thread::spawn({
        let path = path.clone();
        move || {
            let report = logger::shutdown(None);
            // What the file holds when it returned.
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            let _ = done.send((report.is_none(), lines));
        }
    });
    // It returns only once the drain ends, after the gate opens (a bound, not expected).
    let early = returned.recv_timeout(Duration::from_millis(200)).ok();
    drop(gate);
    let (none, lines) = early.unwrap_or_else(|| returned.recv().unwrap());
    assert_eq!((none, lines), (true, 2));
    shutting_down.join().unwrap();
    let new = reinit.join().unwrap();
    drop((old, new));
}
