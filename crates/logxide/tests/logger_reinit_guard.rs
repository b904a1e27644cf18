//! A `LoggerGuard` dropped while a re-init onto the installed logger's file drains that logger (no global
//! logger meanwhile). The global logger is the process's: one test in a binary of its own.

use std::sync::mpsc;
use std::time::Duration;

mod common;

/// The guard of a logger that a re-init onto its file (on another thread) was draining did
/// nothing when dropped, and returned before that drain ended: `main` returning then could
/// end the process with the records still on their way. Its drop now waits for the drain.
#[test]
fn a_guard_dropped_during_a_same_file_reinit_returns_after_the_drain() {
    let common::StuckReinit {
        dir: _dir,
        path,
        gate,
        old,
        reinit,
    } = common::stuck_reinit(&["B"]);
    let (done, returned) = mpsc::channel();
    let dropping = std::thread::spawn({
        let path = path.clone();
        move || {
            drop(old);
            // What the file holds when it returned.
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            let _ = done.send(lines);
        }
    });
    // It returns only once the drain ends, after the gate opens (a bound, not expected).
    let early = returned.recv_timeout(Duration::from_millis(200)).ok();
    drop(gate);
    let lines = early.unwrap_or_else(|| returned.recv().unwrap());
    assert_eq!(lines, 2);
    dropping.join().unwrap();
    drop(reinit.join().unwrap());
}
