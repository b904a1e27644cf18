//! `flush()` while a re-init onto the installed logger's file drains that logger (no global
//! logger meanwhile). The global logger is the process's: one test in a binary of its own.

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use logxide::logger;
use logxide::LoggerBuilder;

/// A record logged, then `flush()` while a re-init onto the same file drained the logger
/// that took it (no global logger installed meanwhile): `flush` returned `Ok` at once, before
/// the record reached the sinks. It now waits for that drain (here stuck at a gate: its
/// timeout expires, with the records still pending), and returns once the drain is over.
#[test]
fn a_flush_during_a_same_file_reinit_waits_for_the_drain() {
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
    let err = logger::flush(Some(Duration::from_millis(20))).unwrap_err();
    assert_eq!(err.pending, 2, "{err}");
    drop(gate);
    logger::flush(None).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let new = reinit.join().unwrap();
    drop((old, new));
}
