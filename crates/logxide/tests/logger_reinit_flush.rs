//! `flush()` while a re-init onto the installed logger's file drains that logger (no global
//! logger meanwhile). The global logger is the process's: one test in a binary of its own.

use std::time::Duration;

use logxide::logger;

mod common;

/// A record logged, then `flush()` while a re-init onto the same file drained the logger
/// that took it (no global logger installed meanwhile): `flush` returned `Ok` at once, before
/// the record reached the sinks. It now waits for that drain (here stuck at a gate: its
/// timeout expires, with the records still pending), and returns once the drain is over.
#[test]
fn a_flush_during_a_same_file_reinit_waits_for_the_drain() {
    let common::StuckReinit {
        dir: _dir,
        path,
        gate,
        old,
        reinit,
    } = common::stuck_reinit(&["B"]);
    let err = logger::flush(Some(Duration::from_millis(20))).unwrap_err();
    assert_eq!(err.pending, 2, "{err}");
    drop(gate);
    logger::flush(None).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let new = reinit.join().unwrap();
    drop((old, new));
}
