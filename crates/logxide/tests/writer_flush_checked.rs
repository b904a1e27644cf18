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
/// and fails its flush (an `fsync`, say) while `fail_flush` is set.
#[derive(Clone, Default)]
struct Flaky {
    fail_writes: Arc<AtomicBool>,
    fail_flush: Arc<AtomicBool>,
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
