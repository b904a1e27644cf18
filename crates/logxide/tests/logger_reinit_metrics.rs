//! `metrics()` while a re-init onto the installed logger's file drains that logger (no global
//! logger meanwhile). The global logger is the process's: one test in a binary of its own.

use logxide::logger;

mod common;

/// While a re-init onto the same file drained the logger it replaced, `metrics()` (no global
/// logger installed) reported the counts of the logger `shutdown` stopped last — here none,
/// so zeros: the draining logger's 3 records were missing from the counts, and came back
/// with no logger at all to show for them. It now reports the draining logger, as it does
/// for a logger `shutdown` drains.
#[test]
fn metrics_during_a_same_file_reinit_report_the_draining_logger() {
    let common::StuckReinit {
        dir: _dir,
        path: _,
        gate,
        old,
        reinit,
    } = common::stuck_reinit(&["B", "C"]);
    let m = logger::metrics();
    assert_eq!((m.enqueued, m.dropped, m.sinks.len()), (3, 0, 2), "{m:?}");
    drop(gate);
    let new = reinit.join().unwrap();
    logxide::info!("new");
    logger::flush(None).unwrap();
    let m = logger::metrics();
    assert_eq!((m.enqueued, m.written, m.dropped), (1, 1, 0), "{m:?}");
    drop((old, new));
}
