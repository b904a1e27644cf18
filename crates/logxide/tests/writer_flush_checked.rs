//! `flush_checked`: a flush that fails when a sink failed to write or flush since the last
//! check, naming the sink and its counts — where `flush` returns `Ok` and leaves the failure
//! to the metrics.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use common::*;
use logxide::sink::{Batch, MemorySink, Sink, SinkError};
use logxide::writer::{FlushError, Mode, SinkFailure, Writer};

/// Writes nothing: refuses every batch after its first record while `fail_writes` is set,
/// fails its flush (an `fsync`, say) while `fail_flush` is set, and its close while
/// `fail_close` is.
#[derive(Clone, Default)]
struct Flaky {
    fail_writes: Arc<AtomicBool>,
    fail_flush: Arc<AtomicBool>,
    fail_close: Arc<AtomicBool>,
}

impl Sink for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        if self.fail_writes.load(SeqCst) && batch.len() > 1 {
            return Err(SinkError {
                written: 1,
                error: io::Error::other("disk full"),
            });
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.fail_flush.load(SeqCst) {
            return Err(io::Error::other("fsync failed"));
        }
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        if self.fail_close.load(SeqCst) {
            return Err(io::Error::other("final fsync failed"));
        }
        Ok(())
    }
}

fn manual(flaky: &Flaky, mem: &MemorySink) -> Writer {
    Writer::builder()
        .mode(Mode::Manual)
        .sink(mem.clone())
        .sink(flaky.clone())
        .build()
        .unwrap()
}

#[test]
fn a_sink_that_failed_records_fails_the_checked_flush_once() {
    let (flaky, mem) = (Flaky::default(), MemorySink::new());
    let writer = manual(&flaky, &mem);
    let h = writer.handle();
    h.enqueue(b"a").unwrap();
    assert_eq!(writer.flush_checked(None), Ok(()));
    flaky.fail_writes.store(true, SeqCst);
    for r in [b"b", b"c", b"d"] {
        h.enqueue(r).unwrap();
    }
    let err = writer.flush_checked(None).unwrap_err();
    assert_eq!(
        err,
        FlushError::Failed {
            failed: 0,
            sinks: vec![SinkFailure {
                index: 1,
                name: "flaky".into(),
                failed: 2,
                errors: 1,
                last_error: Some("disk full (after 1 complete record of the batch)".into()),
            }],
        }
    );
    assert_eq!(
        err.to_string(),
        "flush: sink 1 (flaky) failed 2 records in 1 failed call since the last check \
         (last: disk full (after 1 complete record of the batch))"
    );
    // The memory sink wrote them all: nothing is failed in all.
    assert_eq!(mem.lines(), ["a", "b", "c", "d"]);
    // Reported once: nothing failed since.
    assert_eq!(writer.flush_checked(None), Ok(()));
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.written, m.failed), (4, 0));
    assert_settled(&m);
}

#[test]
fn records_no_sink_wrote_and_a_failed_fsync_are_reported() {
    let flaky = Flaky::default();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(flaky.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    flaky.fail_writes.store(true, SeqCst);
    flaky.fail_flush.store(true, SeqCst);
    for r in [b"a", b"b", b"c"] {
        h.enqueue(r).unwrap();
    }
    // `flush` itself says nothing of it.
    assert_eq!(writer.flush(None), Ok(()));
    let err = writer.flush_checked(None).unwrap_err();
    assert_eq!(
        err,
        FlushError::Failed {
            failed: 2,
            sinks: vec![SinkFailure {
                index: 0,
                name: "flaky".into(),
                failed: 2,
                errors: 3,
                last_error: Some("flush: fsync failed".into()),
            }],
        }
    );
    assert_eq!(
        err.to_string(),
        "flush: 2 records written by no sink; sink 0 (flaky) failed 2 records in 3 failed \
         calls since the last check (last: flush: fsync failed)"
    );
    // A flush that fails again fails the next check, with no record lost.
    flaky.fail_writes.store(false, SeqCst);
    let err = writer.flush_checked(None).unwrap_err();
    assert_eq!(
        err,
        FlushError::Failed {
            failed: 0,
            sinks: vec![SinkFailure {
                index: 0,
                name: "flaky".into(),
                failed: 0,
                errors: 1,
                last_error: Some("flush: fsync failed".into()),
            }],
        }
    );
    flaky.fail_flush.store(false, SeqCst);
    assert_eq!(writer.flush_checked(None), Ok(()));
    let m = writer.shutdown(None).metrics;
    assert_eq!((m.written, m.failed), (1, 2));
    assert_settled(&m);
}

/// A timeout is reported as `flush` reports it, and leaves the failures for the next check.
#[test]
fn a_checked_flush_refused_on_the_writer_thread_is_a_timeout() {
    let result = Arc::new(std::sync::Mutex::new(None));
    let (r, slot) = (Arc::clone(&result), Arc::new(std::sync::OnceLock::new()));
    let s: Arc<std::sync::OnceLock<logxide::writer::WriterHandle>> = Arc::clone(&slot);
    let sink = logxide::sink::FnSink::new("asks", move |_: &Batch<'_>| -> Result<(), SinkError> {
        if let Some(h) = s.get() {
            *r.lock().unwrap() = Some(h.flush_checked(None));
        }
        Ok(())
    });
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(sink)
        .build()
        .unwrap();
    slot.set(writer.handle()).unwrap();
    writer.handle().enqueue(b"a").unwrap();
    assert_eq!(writer.flush_checked(None), Ok(()));
    let inside = result.lock().unwrap().take();
    match inside {
        Some(Err(FlushError::Timeout(t))) => assert!(t.on_writer_thread, "{t:?}"),
        other => panic!("{other:?}"),
    }
}

/// The shutdown's report checks what failed since the last check as `flush_checked` does —
/// records its final drain could not write, a failed close — once: a check after it finds
/// nothing.
#[test]
fn the_shutdown_reports_the_failures_since_the_last_check() {
    let (flaky, mem) = (Flaky::default(), MemorySink::new());
    let writer = manual(&flaky, &mem);
    let h = writer.handle();
    h.enqueue(b"a").unwrap();
    flaky.fail_flush.store(true, SeqCst);
    assert!(matches!(
        writer.flush_checked(None),
        Err(FlushError::Failed { failed: 0, .. })
    ));
    flaky.fail_flush.store(false, SeqCst);
    flaky.fail_writes.store(true, SeqCst);
    flaky.fail_close.store(true, SeqCst);
    // Written by the shutdown's drain only (manual mode).
    for r in [b"b", b"c", b"d"] {
        h.enqueue(r).unwrap();
    }
    let report = writer.shutdown(None);
    assert!(!report.timed_out);
    assert_eq!(
        report.check(),
        Err(FlushError::Failed {
            failed: 0,
            sinks: vec![SinkFailure {
                index: 1,
                name: "flaky".into(),
                failed: 2,
                errors: 2,
                last_error: Some("close: final fsync failed".into()),
            }],
        })
    );
    assert_eq!(mem.lines(), ["a", "b", "c", "d"]);
    assert_settled(&report.metrics);
    // Reported once: by the report's first check alone.
    assert_eq!(report.check(), Ok(()));
    assert_eq!(report.clone().check(), Ok(()));
    assert_eq!(h.flush_checked(None), Ok(()));
}

/// Records no sink wrote in the final drain are the report's `failed`; a shutdown with
/// nothing failed since the last check checks `Ok`.
#[test]
fn the_shutdown_reports_records_no_sink_wrote() {
    let flaky = Flaky::default();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(flaky.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    flaky.fail_writes.store(true, SeqCst);
    for r in [b"a", b"b", b"c"] {
        h.enqueue(r).unwrap();
    }
    let report = writer.shutdown(None);
    assert_eq!(
        report.check(),
        Err(FlushError::Failed {
            failed: 2,
            sinks: vec![SinkFailure {
                index: 0,
                name: "flaky".into(),
                failed: 2,
                errors: 1,
                last_error: Some("disk full (after 1 complete record of the batch)".into()),
            }],
        })
    );
    assert_eq!((report.metrics.written, report.metrics.failed), (1, 2));
    let writer = manual(&Flaky::default(), &MemorySink::new());
    writer.handle().enqueue(b"a").unwrap();
    assert_eq!(writer.shutdown(None).check(), Ok(()));
}

/// A shutdown whose timeout expires reports it as `flush_checked` reports a timeout, with
/// the records still pending, and leaves the failures for the next check.
#[test]
fn a_shutdown_that_times_out_reports_a_timeout_and_leaves_the_failures() {
    let (sink, mut gate, mem) = gated();
    let flaky = Flaky::default();
    flaky.fail_close.store(true, SeqCst);
    let writer = Writer::builder()
        .batch_size(1)
        .sink(sink)
        .sink(flaky)
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue(b"a").unwrap();
    assert_eq!(gate.wait_entered(), 1);
    h.enqueue(b"b").unwrap();
    // The writer is held inside the first sink: the drain cannot end before the gate opens.
    let report = writer.shutdown(Some(std::time::Duration::from_millis(1)));
    assert!(report.timed_out);
    let timeout = Err(FlushError::Timeout(logxide::writer::FlushTimeout {
        pending: 2,
        on_writer_thread: false,
    }));
    assert_eq!(report.check(), timeout);
    gate.open();
    gate.allow_one();
    let err = h.flush_checked(None).unwrap_err();
    assert_eq!(
        err,
        FlushError::Failed {
            failed: 0,
            sinks: vec![SinkFailure {
                index: 1,
                name: "flaky".into(),
                failed: 0,
                errors: 1,
                last_error: Some("close: final fsync failed".into()),
            }],
        }
    );
    assert_eq!(mem.lines(), ["a", "b"]);
}

/// Dropping the `Writer`, or its report unread, leaves what failed in its drain for the next
/// check.
#[test]
fn an_unchecked_shutdown_leaves_the_failures_for_the_next_check() {
    let flaky = Flaky::default();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(flaky.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    flaky.fail_writes.store(true, SeqCst);
    for r in [b"a", b"b", b"c"] {
        h.enqueue(r).unwrap();
    }
    drop(writer);
    assert!(matches!(
        h.flush_checked(None),
        Err(FlushError::Failed { failed: 2, .. })
    ));
    let writer = manual(&flaky, &MemorySink::new());
    let h = writer.handle();
    for r in [b"a", b"b", b"c"] {
        h.enqueue(r).unwrap();
    }
    let _ = writer.shutdown(None);
    assert!(matches!(
        h.flush_checked(None),
        Err(FlushError::Failed { failed: 0, .. })
    ));
}
