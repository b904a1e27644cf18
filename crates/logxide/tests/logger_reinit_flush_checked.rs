//! `logger::flush_checked()` while a re-init onto the installed logger's file drains that
//! logger (no global logger meanwhile): the failures of the logger being replaced are
//! reported, as `flush()` waits for its records. The global logger is the process's: one
//! test in a binary of its own.

use std::io;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use logxide::logger;
use logxide::sink::{Batch, Sink, SinkError};
use logxide::writer::FlushError;

mod common;

/// Fails every batch, and its `close` waits at a gate: the logger stays in its drain (being
/// replaced) after its records failed.
struct FailingStuckAtClose {
    closing: mpsc::Sender<()>,
    gate: Mutex<mpsc::Receiver<()>>,
}

impl Sink for FailingStuckAtClose {
    fn name(&self) -> &str {
        "full"
    }
    fn write_batch(&mut self, _: &Batch<'_>) -> Result<(), SinkError> {
        Err(io::Error::other("no space left on device").into())
    }
    fn close(&mut self) -> io::Result<()> {
        let _ = self.closing.send(());
        // Returns once the gate is dropped (there is never a message).
        let _ = self.gate.lock().unwrap_or_else(|e| e.into_inner()).recv();
        Ok(())
    }
}

#[test]
fn a_checked_flush_during_a_same_file_reinit_reports_the_replaced_loggers_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let (gate, waiting) = mpsc::channel::<()>();
    let (closing, at_close) = mpsc::channel();
    let old = logxide::LoggerBuilder::new()
        .use_env(false)
        .target(&path)
        .sink(FailingStuckAtClose {
            closing,
            gate: Mutex::new(waiting),
        })
        .init()
        .unwrap();
    // (Declared after `old`: a failing assertion drops the gate first, not waiting forever.)
    let gate = gate;
    logxide::info!("A");
    logxide::info!("B");
    let reinit = common::reinit_onto(&path);
    // The re-init has uninstalled the old logger; its drain failed both records and is stuck
    // closing the sink.
    at_close.recv().unwrap();
    assert!(logger::global().is_none());
    // A flush waits for the drain, which the gate holds: the check runs on a thread of its
    // own, and the gate opens once it has begun waiting (the margin only orders the two
    // threads: the check takes a few microseconds to reach the replaced logger).
    let (started, begun) = mpsc::channel();
    let check = std::thread::spawn(move || {
        started.send(()).unwrap();
        logger::flush_checked(Some(Duration::from_secs(60)))
    });
    begun.recv().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(gate);
    match check.join().unwrap() {
        Err(FlushError::Failed { failed, sinks }) => {
            // The file sink wrote both records: none is lost, one sink failed them.
            assert_eq!(failed, 0);
            let full: Vec<_> = sinks.iter().map(|s| (s.name.as_str(), s.failed)).collect();
            assert_eq!(full, [("full", 2)]);
        }
        other => panic!("{other:?}"),
    }
    let new = reinit.join().unwrap();
    // Reported once; the new logger has had no failure.
    assert_eq!(logger::flush_checked(None), Ok(()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    drop((old, new));
}
