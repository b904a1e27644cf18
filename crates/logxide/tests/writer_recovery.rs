//! Recovery: a panicking sink restarts the writer (nothing lost, nothing duplicated), and
//! past `max_restarts` the writer falls back to synchronous writes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use logxide::sink::{Batch, MemorySink, Sink, SinkError};
use logxide::writer::{Mode, Queued, Writer, WriterState};

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

fn fast_backoff() -> (Duration, Duration) {
    (Duration::from_millis(1), Duration::from_millis(10))
}

/// Panics at the first delivery of each of its first `panics` batches — its retry after the
/// restart succeeds — and otherwise writes to a [`MemorySink`].
#[derive(Clone)]
struct PanicsOncePerBatch {
    mem: MemorySink,
    calls: Arc<AtomicUsize>,
    panics: usize,
}

impl PanicsOncePerBatch {
    fn new(panics: usize) -> Self {
        PanicsOncePerBatch {
            mem: MemorySink::new(),
            calls: Arc::default(),
            panics,
        }
    }
}

impl Sink for PanicsOncePerBatch {
    fn name(&self) -> &str {
        "panics-once-per-batch"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        let call = self.calls.fetch_add(1, SeqCst) + 1;
        if call % 2 == 1 && call < 2 * self.panics {
            panic!("injected sink panic");
        }
        self.mem.write_batch(batch)
    }
}

/// A sink that panics once on each of `k` batches: each is written after one restart.
#[test]
fn restart_after_panics_loses_and_duplicates_nothing() {
    quiet_injected_panics();
    for k in [1usize, 3] {
        let sink = PanicsOncePerBatch::new(k);
        let (a, b) = fast_backoff();
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .restart_backoff(a, b)
            .sink(sink.clone())
            .build()
            .unwrap();
        let h = writer.handle();
        for batch in 0..k {
            for i in batch * 100..(batch + 1) * 100 {
                h.enqueue(line(0, i).as_bytes()).unwrap();
            }
            writer.trigger();
            let want = expected_bytes(0, 0..(batch + 1) * 100).len();
            assert!(wait_for(Duration::from_secs(5), || sink
                .mem
                .contents()
                .len()
                == want));
        }
        let n = (k + 1) * 100;
        for i in k * 100..n {
            h.enqueue(line(0, i).as_bytes()).unwrap();
        }
        let m = writer.shutdown(None).metrics;
        assert_eq!(sink.mem.contents(), expected_bytes(0, 0..n), "k = {k}");
        assert_eq!(sink.calls.load(SeqCst), 2 * k + 1);
        assert_eq!(m.restarts, k as u64);
        assert_eq!(m.state, WriterState::Stopped);
        assert_eq!((m.written, m.failed), (n as u64, 0));
        assert_settled(&m);
        assert_eq!(m.errors, k as u64);
    }
}

/// The restart backoff starts over once the restarted writer has delivered a batch: twelve
/// panics, each followed by a good batch, wait the initial 20 ms each (a quarter of a second
/// in all), where a doubling backoff would wait 20 ms × (2¹² − 1), 82 s in all: a bound of
/// 30 s on the whole tells the two apart, however loaded the machine.
#[test]
fn the_restart_backoff_starts_over_after_a_delivered_batch() {
    quiet_injected_panics();
    let k = 12;
    let sink = PanicsOncePerBatch::new(k);
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .restart_backoff(Duration::from_millis(20), Duration::from_secs(3600))
        .max_restarts(k as u32)
        .sink(sink.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    for batch in 0..k {
        for i in batch * 10..(batch + 1) * 10 {
            h.enqueue(line(0, i).as_bytes()).unwrap();
        }
        writer.trigger();
        let want = expected_bytes(0, 0..(batch + 1) * 10).len();
        let left = end.saturating_duration_since(std::time::Instant::now());
        assert!(
            wait_for(left, || sink.mem.contents().len() == want),
            "batch {batch} not written within 30 s of the first"
        );
    }
    let m = writer.shutdown(None).metrics;
    assert_eq!(sink.mem.contents(), expected_bytes(0, 0..k * 10));
    assert_eq!(
        (m.restarts, m.written, m.failed),
        (k as u64, (k * 10) as u64, 0)
    );
    assert_eq!(m.state, WriterState::Stopped);
}

/// The panic happens while the writer delivers the records before a flush barrier; the
/// flush must still complete once the restarted writer has delivered them.
fn flush_after_restart(mode: Mode) {
    quiet_injected_panics();
    let sink = PanickySink::first(1);
    let (a, b) = fast_backoff();
    let writer = Writer::builder()
        .mode(mode)
        .restart_backoff(a, b)
        .sink(sink.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..10 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    assert_eq!(writer.flush(Some(Duration::from_secs(3))), Ok(()), "{mode}");
    assert_eq!(text(sink.mem.contents()), text(expected_bytes(0, 0..10)));
    assert_eq!(writer.metrics().restarts, 1);
    drop(writer);
}

#[test]
fn flush_returns_after_a_restart_manual() {
    flush_after_restart(Mode::Manual);
}

#[test]
fn flush_returns_after_a_restart_trigger() {
    flush_after_restart(Mode::Trigger);
}

#[test]
fn flush_returns_after_a_restart_loop() {
    flush_after_restart(Mode::Loop);
}

#[test]
fn restart_does_not_duplicate_into_earlier_sinks() {
    quiet_injected_panics();
    let first = MemorySink::new();
    let panicky = PanicsOncePerBatch::new(2);
    let last = MemorySink::new();
    let (a, b) = fast_backoff();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .restart_backoff(a, b)
        .sink(first.clone())
        .sink(panicky.clone())
        .sink(last.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..300 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
        if i % 100 == 99 {
            writer.trigger();
            let want = expected_bytes(0, 0..i + 1).len();
            assert!(wait_for(Duration::from_secs(5), || last.contents().len() == want));
        }
    }
    let m = writer.shutdown(None).metrics;
    let want = expected_bytes(0, 0..300);
    assert_eq!(first.contents(), want, "sink before the panicking one");
    assert_eq!(panicky.mem.contents(), want, "the panicking sink");
    assert_eq!(last.contents(), want, "sink after the panicking one");
    assert_eq!(m.restarts, 2);
    assert_eq!((m.written, m.failed), (300, 0));
    for s in &m.sinks {
        assert_eq!((s.written, s.failed), (300, 0), "{}", s.name);
    }
    assert_settled(&m);
}

/// Triggers a write (to a sink that panics) and waits until the writer fell back to
/// synchronous writes.
fn trigger_until_fallback(writer: &Writer) {
    writer.trigger();
    assert!(
        wait_for(Duration::from_secs(5), || writer.metrics().state
            == WriterState::Fallback),
        "no fallback: {:?}",
        writer.metrics()
    );
}

#[test]
fn fallback_after_max_restarts() {
    quiet_injected_panics();
    let panicky = PanickySink::always();
    let healthy = MemorySink::new();
    let (a, b) = fast_backoff();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .max_restarts(1)
        .restart_backoff(a, b)
        .sink(panicky.clone())
        .sink(healthy.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..50 {
        assert_eq!(h.enqueue(line(0, i).as_bytes()), Ok(Queued::Queued));
    }
    trigger_until_fallback(&writer);
    let m = writer.metrics();
    assert_eq!(m.restarts, 1);
    // The batch in hand reached the healthy sink when the writer gave up.
    assert_eq!(healthy.contents(), expected_bytes(0, 0..50));
    for i in 50..80 {
        assert_eq!(h.enqueue(line(0, i).as_bytes()), Ok(Queued::WrittenSync));
    }
    // Written synchronously: already in the sink when enqueue returns.
    assert_eq!(healthy.contents(), expected_bytes(0, 0..80));
    writer.flush(None).unwrap();
    let m = writer.shutdown(None).metrics;
    assert_eq!(healthy.contents(), expected_bytes(0, 0..80));
    assert!(panicky.mem.contents().is_empty());
    assert_eq!(m.restarts, 1);
    assert_eq!((m.written, m.failed), (80, 0));
    assert_eq!(m.sinks[0].written, 0);
    assert_eq!(m.sinks[0].failed, 80);
    assert_eq!((m.sinks[1].written, m.sinks[1].failed), (80, 0));
    assert!(m.sinks[0].errors >= 1);
    assert_settled(&m);
}

#[test]
fn fallback_healthy_sink_first_gets_records_queued_during_restarts() {
    // The healthy sink comes first: it already has the interrupted batch. Records queued
    // while the writer was backing off must still reach it, exactly once.
    quiet_injected_panics();
    let healthy = MemorySink::new();
    let panicky = PanickySink::always();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .max_restarts(1)
        .restart_backoff(Duration::from_millis(200), Duration::from_millis(200))
        .sink(healthy.clone())
        .sink(panicky.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..20 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    writer.trigger();
    assert!(wait_for(Duration::from_secs(5), || panicky
        .calls
        .load(SeqCst)
        >= 1));
    // The writer is backing off now (200 ms): these wait in the queue.
    for i in 20..40 {
        assert_eq!(h.enqueue(line(0, i).as_bytes()), Ok(Queued::Queued));
    }
    assert!(wait_for(Duration::from_secs(5), || writer.metrics().state
        == WriterState::Fallback));
    for i in 40..50 {
        assert_eq!(h.enqueue(line(0, i).as_bytes()), Ok(Queued::WrittenSync));
    }
    let m = writer.shutdown(None).metrics;
    assert_eq!(text(healthy.contents()), text(expected_bytes(0, 0..50)));
    assert_eq!((m.written, m.failed), (50, 0));
    assert_eq!(m.sinks[0].written, 50);
    assert_settled(&m);
}

#[test]
fn poison_record_fails_only_where_every_sink_failed() {
    quiet_injected_panics();
    // Only the poisoned sink: the batch holding the poison fails, the rest is written.
    let sink = PanickySink::poisoned("POISON");
    let (a, b) = fast_backoff();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .max_restarts(1)
        .restart_backoff(a, b)
        .sink(sink.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue(b"ok 1").unwrap();
    writer.flush(None).unwrap();
    h.enqueue(b"ok 2").unwrap();
    h.enqueue(br#"{"msg":"POISON"}"#).unwrap();
    h.enqueue(b"ok 3").unwrap();
    writer.trigger();
    assert!(wait_for(Duration::from_secs(5), || writer.metrics().state
        == WriterState::Fallback));
    assert_eq!(h.enqueue(b"ok 4"), Ok(Queued::WrittenSync));
    let m = writer.shutdown(None).metrics;
    assert_eq!(sink.mem.contents(), b"ok 1\nok 4\n");
    assert_eq!(m.restarts, 1);
    // The batch [ok 2, POISON, ok 3] failed in the only sink: at its second panic it was
    // given up (and no restart was left).
    assert_eq!((m.written, m.failed), (2, 3));
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (2, 3));
    assert!(m.sinks[0]
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("poison"));
    assert_settled(&m);

    // With a healthy second sink, the poison batch is written (by that sink), not failed.
    let sink = PanickySink::poisoned("POISON");
    let healthy = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .max_restarts(1)
        .restart_backoff(a, b)
        .sink(sink.clone())
        .sink(healthy.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    for l in [&b"ok 1"[..], br#"{"msg":"POISON"}"#, b"ok 2"] {
        h.enqueue(l).unwrap();
    }
    writer.trigger();
    assert!(wait_for(Duration::from_secs(5), || writer.metrics().state
        == WriterState::Fallback));
    let m = writer.shutdown(None).metrics;
    assert_eq!(healthy.contents(), b"ok 1\n{\"msg\":\"POISON\"}\nok 2\n");
    assert_eq!((m.written, m.failed), (3, 0));
    assert_eq!(m.sinks[0].failed, 3);
    assert_settled(&m);
}

/// Captured records (numbers and time formatted by the writer) written by the caller's thread
/// once the writer has fallen back: formatted there, the same text.
#[test]
fn logger_records_in_fallback_are_formatted_by_the_caller() {
    quiet_injected_panics();
    let panicky = PanickySink::always();
    let healthy = MemorySink::new();
    let log = logxide::Logger::builder()
        .use_env(false)
        .set("max_restarts", "1")
        .unwrap()
        .sink(panicky.clone())
        .sink(healthy.clone())
        .build()
        .unwrap();
    for i in 0..10u64 {
        logxide::info!(logger: log, "queued", i, half = i as f64 / 2.0);
    }
    let _ = log.flush(Some(Duration::from_secs(5)));
    assert!(
        wait_for(Duration::from_secs(10), || log.metrics().state
            == WriterState::Fallback),
        "no fallback: {:?}",
        log.metrics()
    );
    for i in 10..20u64 {
        logxide::info!(logger: log, "in fallback", i, half = i as f64 / 2.0);
    }
    log.flush(None).unwrap();
    let lines = healthy.lines();
    assert_eq!(lines.len(), 20, "{lines:#?}");
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["i"], i as u64, "{line}");
        assert_eq!(v["half"], i as f64 / 2.0, "{line}");
        assert!(v["ts"].as_f64().unwrap() > 1.7e9, "{line}");
        assert!(!line.bytes().any(|b| b < 0x20), "{line:?}");
    }
    log.shutdown(None);
}

#[test]
fn a_sink_that_logs_in_fallback_mode_queues_its_record_instead_of_deadlocking() {
    use logxide::sink::{Batch, FnSink, SinkError};
    use logxide::writer::WriterHandle;
    use std::sync::{Arc, OnceLock};
    quiet_injected_panics();
    let panicky = PanickySink::always();
    let healthy = MemorySink::new();
    let me: Arc<OnceLock<WriterHandle>> = Arc::new(OnceLock::new());
    let me2 = Arc::clone(&me);
    // Logs one record of its own per batch through the writer it belongs to.
    let chatty = FnSink::new("chatty", move |b: &Batch<'_>| -> Result<(), SinkError> {
        if let Some(h) = me2.get() {
            if b.records().all(|r| !r.starts_with(b"sink")) {
                let _ = h.enqueue(format!("sink saw {}", b.len()).as_bytes());
            }
        }
        Ok(())
    });
    let (a, b) = fast_backoff();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .max_restarts(0)
        .restart_backoff(a, b)
        .sink(panicky)
        .sink(chatty)
        .sink(healthy.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    assert_eq!(h.enqueue(b"first"), Ok(Queued::Queued));
    trigger_until_fallback(&writer);
    me.set(h.clone()).unwrap();
    // Written synchronously by this thread, which holds the writer's state while the sinks
    // run: the sink's own record is queued, and written before the next record.
    let (tx, rx) = std::sync::mpsc::channel();
    let h2 = h.clone();
    std::thread::spawn(move || {
        let _ = tx.send((h2.enqueue(b"second"), h2.enqueue(b"third")));
    });
    let Ok((second, third)) = rx.recv_timeout(Duration::from_secs(10)) else {
        // Dropping the writer would wait for the deadlocked thread too.
        std::mem::forget(writer);
        panic!("deadlock: a sink logging in fallback mode");
    };
    assert_eq!(
        (second, third),
        (Ok(Queued::WrittenSync), Ok(Queued::WrittenSync))
    );
    let m = writer.shutdown(None).metrics;
    assert_eq!(
        text(healthy.contents()),
        "first\nsecond\nsink saw 1\nthird\nsink saw 1\n"
    );
    assert_eq!(m.enqueued, 5);
    assert_settled(&m);
}

/// Counts its `close` calls; panics in `close` if `panics`.
struct Closing {
    mem: MemorySink,
    closes: Arc<AtomicUsize>,
    panics: bool,
}

impl Sink for Closing {
    fn name(&self) -> &str {
        if self.panics {
            "closing-panicky"
        } else {
            "closing"
        }
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.mem.write_batch(batch)
    }
    fn close(&mut self) -> std::io::Result<()> {
        self.closes.fetch_add(1, SeqCst);
        if self.panics {
            panic!("injected close panic");
        }
        Ok(())
    }
}

/// A sink whose `close` panics, between two others: each sink is closed exactly once (the
/// others were closed again at each restart that followed the panic), and the panic is
/// reported as a sink panic on the writer thread is (a restart, the error) — also when no
/// restart is left and the writer finishes closing with panics caught.
#[test]
fn a_panic_in_one_sinks_close_closes_every_sink_once() {
    quiet_injected_panics();
    for max_restarts in [10, 0] {
        closing_with_a_panic(max_restarts);
    }
}

fn closing_with_a_panic(max_restarts: u32) {
    let (closes, mems, m, last_error) = within(Duration::from_secs(20), move || {
        let closes: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::default()).collect();
        let mems: Vec<MemorySink> = (0..3).map(|_| MemorySink::new()).collect();
        let (a, b) = fast_backoff();
        let mut builder = Writer::builder()
            .mode(Mode::Manual)
            .restart_backoff(a, b)
            .max_restarts(max_restarts);
        for i in 0..3 {
            builder = builder.sink(Closing {
                mem: mems[i].clone(),
                closes: Arc::clone(&closes[i]),
                panics: i == 1,
            });
        }
        let writer = builder.build().unwrap();
        let h = writer.handle();
        for i in 0..50 {
            h.enqueue(line(0, i).as_bytes()).unwrap();
        }
        let m = writer.shutdown(None).metrics;
        let closes: Vec<usize> = closes.iter().map(|c| c.load(SeqCst)).collect();
        (closes, mems, m, h.last_error())
    });
    assert_eq!(
        closes,
        [1, 1, 1],
        "close calls per sink ({max_restarts} restarts)"
    );
    for mem in &mems {
        assert_eq!(mem.contents(), expected_bytes(0, 0..50));
    }
    assert_eq!(m.restarts, u64::from(max_restarts.min(1)));
    assert!(m.errors >= 1);
    let err = last_error.expect("the panic is reported");
    assert!(err.contains("injected close panic"), "{err}");
    assert_eq!(m.state, WriterState::Stopped);
    assert_eq!((m.written, m.failed), (50, 0));
    assert_settled(&m);
}

/// An error whose `Display` writes part of its text, then fails on its own (returns
/// `fmt::Error`): `format!` or `to_string` on it, or on an `io::Error` wrapping it, panics.
#[derive(Debug)]
struct FailingDisplayError;

impl std::fmt::Display for FailingDisplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk on fire, then")?;
        Err(std::fmt::Error)
    }
}

impl std::error::Error for FailingDisplayError {}

fn failing_display_io_error() -> std::io::Error {
    std::io::Error::other(FailingDisplayError)
}

/// Fails its first batch after one record, its first flush and every close, each time with
/// an `io::Error` wrapping a [`FailingDisplayError`].
struct FailingDisplaySink {
    mem: MemorySink,
    batches: usize,
    flushes: usize,
}

impl Sink for FailingDisplaySink {
    fn name(&self) -> &str {
        "failing"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.batches += 1;
        if self.batches > 1 {
            return self.mem.write_batch(batch);
        }
        self.mem.write_batch(&Batch::new(
            &batch.bytes()[..batch.prefix_bytes(1)],
            &[batch.prefix_bytes(1)],
        ))?;
        Err(SinkError {
            written: 1,
            error: failing_display_io_error(),
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.flushes += 1;
        if self.flushes == 1 {
            return Err(failing_display_io_error());
        }
        Ok(())
    }
    fn close(&mut self) -> std::io::Result<()> {
        Err(failing_display_io_error())
    }
}

/// A sink's error (of a write, a flush, a close) wrapping an error whose `Display` fails on
/// its own is, in the metrics and `last_error`, the text that could be written — no panic on
/// the writer thread (no restart), the records counted written or failed exactly, the writer
/// still writing.
#[test]
fn a_sink_error_whose_display_fails_is_what_it_wrote() {
    // The error's own text: what it wrote, then the rest.
    assert_eq!(
        SinkError::new(failing_display_io_error()).to_string(),
        "disk on fire, then (before any record of the batch was written)"
    );
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .sink(FailingDisplaySink {
            mem: mem.clone(),
            batches: 0,
            flushes: 0,
        })
        .build()
        .unwrap();
    let h = writer.handle();
    for i in 0..3 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    writer.flush(Some(Duration::from_secs(10))).unwrap();
    let m = writer.metrics();
    assert_eq!(m.restarts, 0);
    assert_eq!(m.state, WriterState::Running);
    assert_eq!((m.written, m.failed), (1, 2));
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (1, 2));
    // The write's error, then the flush's (the sink's own too).
    assert_eq!(m.sinks[0].errors, 2);
    assert_eq!(
        m.sinks[0].last_error.as_deref(),
        Some("flush: disk on fire, then")
    );
    assert_eq!(m.errors, 2);
    assert_eq!(
        h.last_error().as_deref(),
        Some("failing: flush: disk on fire, then")
    );

    // Still writing.
    for i in 3..5 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    writer.flush(Some(Duration::from_secs(10))).unwrap();
    let m = writer.shutdown(None).metrics;
    let mut expected = expected_bytes(0, 0..1);
    expected.extend(expected_bytes(0, 3..5));
    assert_eq!(mem.contents(), expected);
    assert_eq!(m.restarts, 0);
    assert_eq!(m.state, WriterState::Stopped);
    assert_eq!((m.written, m.failed), (3, 2));
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (3, 2));
    // And the close's.
    assert_eq!(m.errors, 3);
    assert_eq!(m.sinks[0].errors, 3);
    assert_eq!(
        m.sinks[0].last_error.as_deref(),
        Some("close: disk on fire, then")
    );
    assert_eq!(
        h.last_error().as_deref(),
        Some("failing: close: disk on fire, then")
    );
    assert_settled(&m);
}

#[test]
fn in_fallback_a_record_racing_with_shutdown_is_written_sync_only_if_written() {
    use logxide::writer::DropReason;
    quiet_injected_panics();
    within(Duration::from_secs(60), || {
        for round in 0..20 {
            let panicky = PanickySink::always();
            let healthy = MemorySink::new();
            let writer = Writer::builder()
                .mode(Mode::Manual)
                .max_restarts(0)
                .sink(panicky)
                .sink(healthy.clone())
                .build()
                .unwrap();
            let h = writer.handle();
            h.enqueue(line(4, 0).as_bytes()).unwrap();
            trigger_until_fallback(&writer);
            let go = Arc::new(AtomicUsize::new(0));
            let producers: Vec<_> = (0..4)
                .map(|p| {
                    let h = writer.handle();
                    let go = Arc::clone(&go);
                    std::thread::spawn(move || {
                        go.fetch_add(1, SeqCst);
                        let (mut sync, mut refused) = (0u64, 0u64);
                        for i in 0..5000 {
                            match h.enqueue(line(p, i).as_bytes()) {
                                Ok(Queued::WrittenSync) => sync += 1,
                                Err(e) if e.reason == DropReason::Shutdown => refused += 1,
                                other => panic!("round {round}: {other:?}"),
                            }
                        }
                        (sync, refused)
                    })
                })
                .collect();
            while go.load(SeqCst) < 4 {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(2));
            let report = writer.shutdown(Some(Duration::from_secs(10)));
            assert!(!report.timed_out);
            let (mut sync, mut refused) = (0, 0);
            for t in producers {
                let (s, r) = t.join().unwrap();
                sync += s;
                refused += r;
            }
            let m = h.metrics();
            assert_eq!(healthy.lines().len() as u64, m.written, "{m:?}");
            // `WrittenSync` means written by that call: the record is in the healthy sink.
            assert_eq!(m.written, sync + 1, "round {round}: {m:?}");
            assert_eq!(m.dropped_by.shutdown, refused, "round {round}: {m:?}");
            assert_eq!(m.enqueued, 4 * 5000 + 1, "round {round}");
            assert_settled(&m);
        }
    });
}

/// A sink that writes to a [`MemorySink`], counts its `close` calls, and ends the writer in
/// its slot (shut down, or dropped) when it meets a record `stop`.
struct Stopper {
    mem: MemorySink,
    slot: Arc<std::sync::Mutex<Option<Writer>>>,
    by_drop: bool,
    report: Arc<std::sync::Mutex<Option<(bool, u64)>>>,
    closes: Arc<AtomicUsize>,
}

impl Sink for Stopper {
    fn name(&self) -> &str {
        "stopper"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        if batch.records().any(|r| r == b"stop\n") {
            if let Some(writer) = self.slot.lock().unwrap().take() {
                if self.by_drop {
                    drop(writer);
                } else {
                    let r = writer.shutdown(None);
                    *self.report.lock().unwrap() = Some((r.timed_out, r.metrics.pending));
                }
            }
        }
        self.mem.write_batch(batch)
    }
    fn close(&mut self) -> std::io::Result<()> {
        self.closes.fetch_add(1, SeqCst);
        Ok(())
    }
}

/// A sink called on a producer's thread — by `write_sync`, or by an enqueue in fallback
/// mode — that shuts the writer down (or drops it) does not wait for the writer, which
/// waits for that very call: it returns at once (`timed_out`), and the writer drains, closes
/// the sinks once and stops once the call returns.
#[test]
fn a_sink_that_shuts_the_writer_down_from_a_callers_thread_does_not_wait_for_itself() {
    quiet_injected_panics();
    for fallback in [false, true] {
        for by_drop in [false, true] {
            within(Duration::from_secs(20), move || {
                let mem = MemorySink::new();
                let slot: Arc<std::sync::Mutex<Option<Writer>>> = Arc::default();
                let report: Arc<std::sync::Mutex<Option<(bool, u64)>>> = Arc::default();
                let closes: Arc<AtomicUsize> = Arc::default();
                let stopper = Stopper {
                    mem: mem.clone(),
                    slot: Arc::clone(&slot),
                    by_drop,
                    report: Arc::clone(&report),
                    closes: Arc::clone(&closes),
                };
                let mut b = Writer::builder().mode(Mode::Manual).max_restarts(0);
                if fallback {
                    b = b.sink(PanickySink::always());
                }
                let writer = b.sink(stopper).build().unwrap();
                let h = writer.handle();
                h.enqueue(b"first").unwrap();
                if fallback {
                    trigger_until_fallback(&writer);
                }
                *slot.lock().unwrap() = Some(writer);
                let how = if fallback {
                    h.enqueue(b"stop")
                } else {
                    h.write_sync(b"stop")
                };
                assert_eq!(how, Ok(Queued::WrittenSync));
                let what = format!("fallback {fallback}, by_drop {by_drop}");
                assert!(
                    wait_for(Duration::from_secs(10), || closes.load(SeqCst) == 1),
                    "{what}: the sinks were never closed"
                );
                assert_eq!(
                    h.enqueue(b"late").unwrap_err().reason,
                    logxide::writer::DropReason::Shutdown
                );
                assert_eq!(mem.lines(), ["first", "stop"], "{what}");
                let m = h.metrics();
                assert_eq!(m.state, WriterState::Stopped, "{what}");
                assert_eq!((m.enqueued, m.written, m.dropped), (3, 2, 1), "{what}");
                assert_settled(&m);
                let expected = (!by_drop).then_some((true, 1));
                assert_eq!(*report.lock().unwrap(), expected, "{what}");
                std::thread::sleep(Duration::from_millis(20));
                assert_eq!(closes.load(SeqCst), 1, "{what}");
            });
        }
    }
}

/// A shutdown with a timeout, in fallback mode while a producer's synchronous write is
/// stuck in a sink, returns when the timeout expires (`timed_out`, that record pending): it
/// waited for the sink to return. The drain and the close finish in the background.
#[test]
fn in_fallback_a_shutdown_timeout_expires_while_a_sync_write_is_stuck() {
    quiet_injected_panics();
    within(Duration::from_secs(30), || {
        let (gated, mut gate, mem) = gated();
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .max_restarts(0)
            .sink(PanickySink::always())
            .sink(gated)
            .build()
            .unwrap();
        let h = writer.handle();
        h.enqueue(b"queued").unwrap();
        writer.trigger();
        // The supervisor's drain at the fallback.
        assert_eq!(gate.wait_entered(), 1);
        gate.allow_one();
        assert!(wait_for(Duration::from_secs(5), || writer.metrics().state
            == WriterState::Fallback));
        let producer = {
            let h = h.clone();
            std::thread::spawn(move || h.enqueue(b"stuck"))
        };
        assert_eq!(gate.wait_entered(), 1);
        let start = std::time::Instant::now();
        let report = writer.shutdown(Some(Duration::from_millis(200)));
        let took = start.elapsed();
        assert!(report.timed_out, "{report:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert_eq!(report.metrics.pending, 1, "{report:?}");
        gate.open();
        gate.allow_one();
        assert_eq!(producer.join().unwrap(), Ok(Queued::WrittenSync));
        assert!(wait_for(Duration::from_secs(5), || {
            let m = h.metrics();
            m.state == WriterState::Stopped && m.pending == 0
        }));
        assert_eq!(mem.lines(), ["queued", "stuck"]);
        let m = h.metrics();
        assert_eq!((m.enqueued, m.written, m.dropped, m.failed), (2, 2, 0, 0));
        assert_settled(&m);
    });
}

/// A sink that panics on every batch holding one record: the batch is retried once (one
/// restart), and when it panics the sink again it is counted failed for that sink (failed
/// in all: no other sink wrote it) and skipped — with the reason in the metrics and the last
/// error. The writer goes on writing (no fallback), however many restarts it may have left.
#[test]
fn a_batch_that_panics_a_sink_twice_in_a_row_is_failed_and_skipped() {
    quiet_injected_panics();
    let m = within(Duration::from_secs(30), || {
        let sink = PanickySink::poisoned("POISON");
        let (a, b) = fast_backoff();
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .max_restarts(u32::MAX)
            .restart_backoff(a, b)
            .sink(sink.clone())
            .build()
            .unwrap();
        let h = writer.handle();
        h.enqueue(b"ok 1").unwrap();
        writer.flush(Some(Duration::from_secs(10))).unwrap();
        for l in [&b"ok 2"[..], br#"{"msg":"POISON"}"#, b"ok 3"] {
            assert_eq!(h.enqueue(l), Ok(Queued::Queued));
        }
        assert_eq!(writer.flush(Some(Duration::from_secs(10))), Ok(()));
        let m = writer.metrics();
        assert_eq!(m.state, WriterState::Running);
        assert_eq!(m.restarts, 2);
        assert_eq!((m.written, m.failed, m.pending), (1, 3, 0));
        let err = h.last_error().unwrap();
        assert_eq!(
            err,
            "panicky: write panicked twice in a row on the same batch (poison record in batch): \
             its 3 records are counted failed for this sink"
        );
        assert_eq!(m.sinks[0].last_error.as_deref(), Some(err.as_str()));
        assert_eq!((m.sinks[0].written, m.sinks[0].failed), (1, 3));
        // Still writing from its thread.
        assert_eq!(h.enqueue(b"ok 4"), Ok(Queued::Queued));
        writer.flush(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(sink.mem.lines(), ["ok 1", "ok 4"]);
        assert_eq!(sink.calls.load(SeqCst), 4);
        writer.shutdown(None).metrics
    });
    assert_eq!((m.enqueued, m.written, m.failed), (5, 2, 3));
    assert_eq!(m.restarts, 2);
    assert_settled(&m);
}

/// The same at shutdown, where restarts follow each other without a backoff: the final
/// drain skips the poisoned batch after its second panic, writes the rest, and the
/// shutdown ends (it retried the batch for ever before).
#[test]
fn a_poisoned_batch_in_the_final_drain_does_not_hang_the_shutdown() {
    quiet_injected_panics();
    let (m, lines) = within(Duration::from_secs(30), || {
        let sink = PanickySink::poisoned("POISON");
        let healthy = MemorySink::new();
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .max_restarts(u32::MAX)
            .sink(sink.clone())
            .sink(healthy.clone())
            .build()
            .unwrap();
        let h = writer.handle();
        for l in [&b"ok 1"[..], br#"{"msg":"POISON"}"#, b"ok 2"] {
            h.enqueue(l).unwrap();
        }
        let m = writer.shutdown(None).metrics;
        assert!(sink.mem.lines().is_empty());
        (m, healthy.lines())
    });
    // Written by the healthy sink: not failed.
    assert_eq!(lines, ["ok 1", r#"{"msg":"POISON"}"#, "ok 2"]);
    assert_eq!(m.state, WriterState::Stopped);
    assert_eq!((m.written, m.failed, m.restarts), (3, 0, 2));
    assert_eq!((m.sinks[0].written, m.sinks[0].failed), (0, 3));
    assert_settled(&m);
}

/// Writes to a [`MemorySink`]; every `flush` panics.
struct FlushPanics(MemorySink);

impl Sink for FlushPanics {
    fn name(&self) -> &str {
        "flush-panics"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.0.write_batch(batch)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        panic!("injected flush panic");
    }
}

/// A sink whose flush always panics: a `flush()` barrier gives that sink's flush up at its
/// second panic in a row (it was retried at every restart before) and completes; the writer
/// goes on from its thread.
#[test]
fn a_flush_that_panics_twice_in_a_row_is_skipped_and_the_barrier_completes() {
    quiet_injected_panics();
    let m = within(Duration::from_secs(30), || {
        let mem = MemorySink::new();
        let (a, b) = fast_backoff();
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .max_restarts(u32::MAX)
            .restart_backoff(a, b)
            .sink(FlushPanics(mem.clone()))
            .build()
            .unwrap();
        let h = writer.handle();
        for round in 1..=2u64 {
            h.enqueue(line(0, round as usize).as_bytes()).unwrap();
            assert_eq!(writer.flush(Some(Duration::from_secs(10))), Ok(()));
            let m = writer.metrics();
            assert_eq!((m.state, m.restarts), (WriterState::Running, 2 * round));
            assert_eq!(
                h.last_error().as_deref(),
                Some("flush-panics: flush panicked twice in a row (injected flush panic): skipped once")
            );
        }
        assert_eq!(mem.contents(), expected_bytes(0, 1..3));
        writer.shutdown(None).metrics
    });
    assert_eq!((m.written, m.failed), (2, 0));
    assert_settled(&m);
}

/// In fallback mode, while a producer's synchronous write is stuck in a sink, a flush with a
/// timeout returns when it expires — `FlushTimeout` with that record pending — instead of
/// waiting for the sink; once the sink returns, a flush succeeds.
#[test]
fn in_fallback_a_flush_timeout_expires_while_a_sync_write_is_stuck() {
    quiet_injected_panics();
    within(Duration::from_secs(30), || {
        let (gated, mut gate, mem) = gated();
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .max_restarts(0)
            .sink(PanickySink::always())
            .sink(gated)
            .build()
            .unwrap();
        let h = writer.handle();
        h.enqueue(b"queued").unwrap();
        writer.trigger();
        assert_eq!(gate.wait_entered(), 1);
        gate.allow_one();
        assert!(wait_for(Duration::from_secs(5), || writer.metrics().state
            == WriterState::Fallback));
        let producer = {
            let h = h.clone();
            std::thread::spawn(move || h.enqueue(b"stuck"))
        };
        assert_eq!(gate.wait_entered(), 1);
        assert_eq!(
            writer.flush(Some(Duration::from_millis(100))),
            Err(logxide::writer::FlushTimeout {
                pending: 1,
                on_writer_thread: false
            })
        );
        gate.open();
        gate.allow_one();
        assert_eq!(producer.join().unwrap(), Ok(Queued::WrittenSync));
        assert_eq!(writer.flush(Some(Duration::from_secs(10))), Ok(()));
        assert_eq!(mem.lines(), ["queued", "stuck"]);
        let m = writer.shutdown(None).metrics;
        assert_eq!((m.enqueued, m.written, m.dropped, m.failed), (2, 2, 0, 0));
        assert_settled(&m);
    });
}

/// A sink that panics once in the final drain of a shutdown: with a restart left, the
/// restarted writer (no backoff while closing) writes the batch; with none left, the drain
/// goes on with panics caught — either way every record is written once, the sinks are
/// closed, the shutdown returns and the writer is stopped (not left in fallback).
#[test]
fn a_panic_in_the_final_drain_leaves_nothing_uncounted() {
    quiet_injected_panics();
    for max_restarts in [0u32, 1] {
        let (m, lines) = within(Duration::from_secs(30), move || {
            let sink = PanickySink::first(1);
            let writer = Writer::builder()
                .mode(Mode::Manual)
                .max_restarts(max_restarts)
                .sink(sink.clone())
                .build()
                .unwrap();
            let h = writer.handle();
            for i in 0..50 {
                h.enqueue(line(0, i).as_bytes()).unwrap();
            }
            let report = writer.shutdown(None);
            assert!(!report.timed_out);
            (report.metrics, sink.mem.contents())
        });
        assert_eq!(lines, expected_bytes(0, 0..50), "{max_restarts}");
        assert_eq!(m.state, WriterState::Stopped);
        assert_eq!(m.restarts, u64::from(max_restarts));
        assert_eq!((m.enqueued, m.written, m.failed), (50, 50, 0));
        assert_settled(&m);
    }
}

/// A `trigger()` asks for everything queued: when the sink panics on the first of the
/// batches it makes (each at most 1 MiB), the restarted writer writes the interrupted batch
/// and the rest too — in manual mode nothing else would ask for it again.
#[test]
fn a_trigger_interrupted_by_a_panic_still_writes_everything_queued() {
    quiet_injected_panics();
    let sink = PanickySink::first(1);
    let (a, b) = fast_backoff();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .restart_backoff(a, b)
        .sink(sink.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    let pad = "x".repeat(1000);
    let n = 3000;
    for i in 0..n {
        h.enqueue(format!(r#"{{"i":{i},"pad":"{pad}"}}"#).as_bytes())
            .unwrap();
    }
    writer.trigger();
    let all = wait_for(Duration::from_secs(10), || sink.mem.lines().len() == n);
    let m = writer.metrics();
    assert!(all, "{} of {n} written: {m:?}", sink.mem.lines().len());
    assert_eq!((m.restarts, m.written, m.pending), (1, n as u64, 0));
    let lines = sink.mem.lines();
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!(r#"{{"i":{i},"#)), "{i}: {l}");
    }
    assert!(sink.batches.lock().unwrap().len() > 1);
    drop(writer);
}

/// Panics in its first two `write_batch` calls; its `name` panics once, when called after
/// them — as the writer gives up a batch that panicked twice, outside its restart loop.
struct PanickingName {
    writes: Arc<AtomicUsize>,
    name_panicked: Arc<std::sync::atomic::AtomicBool>,
    mem: MemorySink,
}

impl Sink for PanickingName {
    fn name(&self) -> &str {
        if self.writes.load(SeqCst) >= 2 && !self.name_panicked.swap(true, SeqCst) {
            panic!("injected name panic");
        }
        "panicking-name"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        if self.writes.fetch_add(1, SeqCst) < 2 {
            panic!("injected sink panic");
        }
        self.mem.write_batch(batch)
    }
}

/// A panic that escapes the writer thread's restart loop ends the thread: the writer falls
/// back to synchronous writes (as when no restart is left) instead of staying `Running`
/// with nobody to write — where a `flush` waited for ever and `block` producers too.
#[test]
fn a_panic_escaping_the_restart_loop_falls_back_instead_of_stranding_the_queue() {
    quiet_injected_panics();
    let mem = MemorySink::new();
    let (a, b) = fast_backoff();
    let writer = Writer::builder()
        .mode(Mode::Manual)
        .max_restarts(5)
        .restart_backoff(a, b)
        .sink(PanickingName {
            writes: Arc::default(),
            name_panicked: Arc::default(),
            mem: mem.clone(),
        })
        .build()
        .unwrap();
    let h = writer.handle();
    assert_eq!(h.enqueue(b"a"), Ok(Queued::Queued));
    // A bound for a hang, not a timing expectation.
    assert_eq!(writer.flush(Some(Duration::from_secs(20))), Ok(()));
    assert_eq!(mem.lines(), ["a"]);
    let m = writer.metrics();
    assert_eq!((m.state, m.restarts), (WriterState::Fallback, 1));
    let err = h.last_error().unwrap();
    assert_eq!(
        err,
        "writer thread ended by a panic outside its restart loop (injected name panic): \
         callers write synchronously from now on"
    );
    assert_eq!(h.enqueue(b"b"), Ok(Queued::WrittenSync));
    let m = writer.shutdown(None).metrics;
    assert_eq!(mem.lines(), ["a", "b"]);
    assert_eq!((m.enqueued, m.written, m.failed), (2, 2, 0));
    assert_settled(&m);
}
