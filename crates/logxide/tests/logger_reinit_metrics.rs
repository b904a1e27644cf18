//! `metrics()` while a re-init onto the installed logger's file drains that logger (no global
//! logger meanwhile). The global logger is the process's: one test in a binary of its own.

use std::sync::mpsc;
use std::sync::Mutex;

use logxide::logger;
use logxide::LoggerBuilder;

/// While a re-init onto the same file drained the logger it replaced, `metrics()` (no global
/// logger installed) reported the counts of the logger `shutdown` stopped last — here none,
/// so zeros: the draining logger's 3 records were missing from the counts, and came back
/// with no logger at all to show for them. It now reports the draining logger, as it does
/// for a logger `shutdown` drains.
#[test]
fn metrics_during_a_same_file_reinit_report_the_draining_logger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (gate, waiting) = mpsc::channel::<()>();
    let waiting = Mutex::new(waiting);
    let (entered, at_gate) = mpsc::channel();
    let entered = Mutex::new(entered);
    let old = LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .sink(logxide::sink::FnSink::new(
            "gate",
            move |_: &logxide::sink::Batch<'_>| {
                let _ = entered.lock().unwrap_or_else(|e| e.into_inner()).send(());
                // Returns once the gate is dropped (there is never a message).
                let _ = waiting.lock().unwrap_or_else(|e| e.into_inner()).recv();
                Ok(())
            },
        ))
        .init()
        .unwrap();
    logxide::info!("A");
    at_gate.recv().unwrap();
    logxide::info!("B");
    logxide::info!("C");
    let reinit = std::thread::spawn({
        let path = path.clone();
        move || {
            LoggerBuilder::new()
                .use_env(false)
                .target(&path)
                .set("mode", "a")
                .unwrap()
                .init()
                .unwrap()
        }
    });
    // The re-init has uninstalled the old logger and drains it (stuck at the gate).
    while logger::global().is_some() {
        std::thread::yield_now();
    }
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
