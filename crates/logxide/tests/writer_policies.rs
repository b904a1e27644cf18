//! Policies with a stalled writer (a sink held on a gate, so the queue fills
//! deterministically): exact drop counts and results for `drop_newest`, `warn`,
//! `drop_oldest`; the `warn` hook's rate; `block` loses nothing; `block_timeout`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use logxide::sink::{Batch, FnSink, MemorySink, Sink, SinkError};
use logxide::writer::{
    DropReason, DropWarning, Dropped, FlushTimeout, Mode, Policy, Queued, Writer, WriterHandle,
    WriterState,
};

const CAP: usize = 10;

/// The `warn` reports received, with when they came.
type Reports = Arc<Mutex<Vec<(Instant, DropWarning)>>>;

/// Builds a writer with a gated sink, gets record 0 stuck inside the sink, and returns.
fn stalled(policy: Policy) -> (Writer, Gate, MemorySink, Reports) {
    let (sink, gate, mem) = gated();
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let w = Arc::clone(&warnings);
    let mut builder = Writer::builder().capacity(CAP).batch_size(1).policy(policy);
    // (Refused with another policy, which never reports.)
    if policy == Policy::Warn {
        builder =
            builder.on_drop_warning(move |d| w.lock().unwrap().push((Instant::now(), d.clone())));
    }
    let writer = builder.sink(sink).build().unwrap();
    writer.handle().enqueue(line(0, 0).as_bytes()).unwrap();
    assert_eq!(gate.wait_entered(), 1);
    (writer, gate, mem, warnings)
}

fn refusing(policy: Policy) {
    let (writer, mut gate, mem, _) = stalled(policy);
    let h = writer.handle();
    let mut errs = 0;
    for i in 1..=100 {
        match h.enqueue(line(0, i).as_bytes()) {
            Ok(q) => {
                assert_eq!(q, Queued::Queued);
                assert!(i <= CAP, "record {i} accepted beyond capacity");
            }
            Err(e) => {
                assert_eq!(
                    e,
                    Dropped {
                        reason: DropReason::QueueFull
                    }
                );
                assert!(i > CAP, "record {i} refused with room in the queue");
                errs += 1;
            }
        }
    }
    assert_eq!(errs, 90);
    let m = writer.metrics();
    assert_eq!(m.dropped_by.queue_full, 90);
    assert_eq!(m.dropped, 90);
    assert_eq!(m.pending, 11);
    assert!(m.high_water >= CAP as u64);
    gate.open();
    gate.allow_one();
    let m = writer.shutdown(None).metrics;
    assert_eq!(mem.contents(), expected_bytes(0, 0..=CAP));
    assert_settled(&m);
    assert_eq!(
        (m.written, m.dropped, m.dropped_by.queue_full),
        (11, 90, 90)
    );
}

#[test]
fn drop_newest_refuses_exactly_the_overflow() {
    refusing(Policy::DropNewest);
}

#[test]
fn warn_refuses_exactly_the_overflow() {
    refusing(Policy::Warn);
}

#[test]
fn drop_oldest_keeps_the_newest() {
    let (writer, mut gate, mem, _) = stalled(Policy::DropOldest);
    let h = writer.handle();
    for i in 1..=100 {
        let q = h.enqueue(line(0, i).as_bytes()).unwrap();
        let want = if i <= CAP {
            Queued::Queued
        } else {
            Queued::EvictedOldest
        };
        assert_eq!(q, want, "record {i}");
    }
    let m = writer.metrics();
    assert_eq!(m.dropped_by.evicted, 90);
    assert_eq!(m.pending, 11);
    gate.open();
    gate.allow_one();
    let m = writer.shutdown(None).metrics;
    let mut want = expected_bytes(0, 0..1);
    want.extend(expected_bytes(0, 91..=100));
    assert_eq!(mem.contents(), want);
    assert_settled(&m);
    assert_eq!((m.written, m.dropped, m.dropped_by.evicted), (11, 90, 90));
    assert_eq!(m.dropped_by.queue_full, 0);
}

#[test]
fn drop_oldest_flush_barrier_evicted_still_completes() {
    // A flush barrier pushed out of the queue by newer records must not leave flush() hanging.
    let (writer, mut gate, mem, _) = stalled(Policy::DropOldest);
    let h = writer.handle();
    for i in 1..CAP {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    let flusher = {
        let h = h.clone();
        // A bound, not an expectation (the interpreter's pace under Miri needs more).
        let bound = Duration::from_secs(if cfg!(miri) { 600 } else { 5 });
        thread::spawn(move || h.flush(Some(bound)))
    };
    // Wait until the barrier is in the queue (it fills the last slot).
    thread::sleep(Duration::from_millis(50));
    for i in CAP..CAP + 20 {
        h.enqueue(line(0, i).as_bytes()).unwrap();
    }
    gate.open();
    gate.allow_one();
    assert_eq!(flusher.join().unwrap(), Ok(()));
    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!(m.written + m.dropped_by.evicted, (CAP + 20) as u64);
    assert_eq!(
        assert_strictly_increasing(&mem.contents(), 1, CAP + 20) as u64,
        m.written
    );
}

#[test]
fn warn_first_report_comes_without_shutdown() {
    let (writer, mut gate, _mem, warnings) = stalled(Policy::Warn);
    let h = writer.handle();
    for i in 1..=50 {
        let _ = h.enqueue(line(0, i).as_bytes());
    }
    gate.open();
    assert!(
        wait_for(Duration::from_secs(2), || !warnings
            .lock()
            .unwrap()
            .is_empty()),
        "no report within 2 s"
    );
    assert_eq!(
        warnings.lock().unwrap()[0].1,
        DropWarning {
            dropped: 40,
            total: 40
        }
    );
    assert_eq!(writer.metrics().warnings, 1);
    drop(writer);
}

#[test]
fn warn_hook_is_rate_limited_and_sums_to_the_total() {
    // Bursts of overflow with pauses in which the writer catches up.
    warn_rate(Some(Duration::from_millis(20)));
}

#[test]
fn warn_hook_reports_during_sustained_overload() {
    warn_rate(None);
}

/// Overflows a 2-record queue in front of a slow sink for 1.5 s, pausing `pause` after
/// every 50 records (or never), and checks the `warn` reports.
fn warn_rate(pause: Option<Duration>) {
    let warnings: Reports = Arc::default();
    let w = Arc::clone(&warnings);
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(2)
        .batch_size(1)
        .policy(Policy::Warn)
        .on_drop_warning(move |d| w.lock().unwrap().push((Instant::now(), d.clone())))
        .sink(slow(mem.clone()))
        .build()
        .unwrap();
    let h = writer.handle();
    let start = Instant::now();
    let mut refused = 0u64;
    let mut i = 0;
    // Overflow for 1.5 s.
    while start.elapsed() < Duration::from_millis(1500) {
        match h.enqueue(line(0, i).as_bytes()) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.reason, DropReason::QueueFull);
                refused += 1;
            }
        }
        i += 1;
        if i % 50 == 0 {
            match pause {
                Some(p) => thread::sleep(p),
                None => thread::yield_now(),
            }
        }
    }
    // One report at once, one a second later, while the load lasts (not only at shutdown).
    let before_shutdown = warnings.lock().unwrap().len();
    let m = writer.shutdown(None).metrics;
    let elapsed = start.elapsed();
    let calls = warnings.lock().unwrap().clone();
    assert!(refused > 0);
    assert!(
        before_shutdown >= 2,
        "only {before_shutdown} reports during 1.5 s of overflow: {:?}",
        calls
            .iter()
            .map(|c| (c.0 - start, c.1.dropped))
            .collect::<Vec<_>>()
    );
    assert_eq!(m.dropped_by.queue_full, refused);
    assert_eq!(m.warnings, calls.len() as u64);
    assert!(
        calls.len() >= 2,
        "expected a report at once and one later: {calls:?}"
    );
    assert_eq!(calls.iter().map(|c| c.1.dropped).sum::<u64>(), refused);
    let mut running = 0;
    for (_, w) in &calls {
        running += w.dropped;
        assert_eq!(w.total, running, "totals must be cumulative: {calls:?}");
        assert!(w.dropped > 0);
    }
    // At most once per second (the final report at shutdown excepted).
    for pair in calls[..calls.len() - 1].windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(990), "reports {gap:?} apart");
    }
    assert!(
        calls.len() as u64 <= 2 + elapsed.as_secs(),
        "{} reports in {elapsed:?}",
        calls.len()
    );
    assert_strictly_increasing(&mem.contents(), 1, i);
    assert_settled(&m);
}

#[test]
fn warn_final_report_at_shutdown() {
    let (writer, mut gate, _mem, warnings) = stalled(Policy::Warn);
    let h = writer.handle();
    for i in 1..=25 {
        let _ = h.enqueue(line(0, i).as_bytes());
    }
    assert!(
        warnings.lock().unwrap().is_empty(),
        "reported while stalled"
    );
    gate.open();
    gate.allow_one();
    let m = writer.shutdown(None).metrics;
    let calls = warnings.lock().unwrap().clone();
    assert_eq!(calls.iter().map(|c| c.1.dropped).sum::<u64>(), 15);
    assert_eq!(m.dropped_by.queue_full, 15);
    assert_eq!(m.warnings, calls.len() as u64);
}

/// The `warn` hook runs on the writer thread: a `flush` from it cannot wait for the writer
/// (itself). It returns `Err` at once, from a report made while the writer runs and from the
/// final report at shutdown, and the writer goes on.
#[test]
fn a_warn_hook_that_flushes_gets_an_error_instead_of_waiting_for_itself() {
    let (results, m, mem) = within(Duration::from_secs(20), || {
        let handle: Arc<OnceLock<WriterHandle>> = Arc::default();
        let results: Arc<Mutex<Vec<Result<(), FlushTimeout>>>> = Arc::default();
        let (sink, mut gate, mem) = gated();
        let (hook_handle, hook_results) = (Arc::clone(&handle), Arc::clone(&results));
        let writer = Writer::builder()
            .capacity(CAP)
            .batch_size(1)
            .policy(Policy::Warn)
            .on_drop_warning(move |_| {
                let h = hook_handle.get().expect("set after build");
                hook_results.lock().unwrap().push(h.flush(None));
            })
            .sink(sink)
            .build()
            .unwrap();
        assert!(handle.set(writer.handle()).is_ok());
        let h = writer.handle();
        let mut next = 0;
        let mut burst = |n: usize| {
            for _ in 0..n {
                let _ = h.enqueue(line(0, next).as_bytes());
                next += 1;
            }
        };
        // One record in the sink, 10 queued, 10 refused.
        burst(1);
        assert_eq!(gate.wait_entered(), 1);
        burst(CAP + 10);
        gate.allow_one();
        // The same pass takes 9 more (a pass takes at most `capacity` records); the report
        // comes once it ends.
        assert_eq!(gate.wait_entered(), CAP - 1);
        gate.allow_one();
        assert!(
            wait_for(Duration::from_secs(10), || results.lock().unwrap().len()
                == 1),
            "no report while running"
        );
        // The writer still writes: the next pass takes the last one. 10 more refused within
        // the second: reported by the final report at shutdown.
        assert_eq!(gate.wait_entered(), 1);
        burst(CAP + 10);
        gate.open();
        let m = writer.shutdown(None).metrics;
        let results = results.lock().unwrap().clone();
        (results, m, mem)
    });
    assert_eq!(
        results.len(),
        2,
        "one report while running, one at shutdown"
    );
    for r in &results {
        assert!(matches!(r, Err(FlushTimeout { .. })), "{results:?}");
    }
    assert_eq!(m.warnings, 2);
    assert_eq!(m.dropped_by.queue_full, 20);
    assert_eq!(m.written, 2 * CAP as u64 + 1);
    assert_settled(&m);
    assert_eq!(split_lines(&mem.contents()).len(), 2 * CAP + 1);
}

/// Builds a `manual` writer under `warn` whose hook panics at every report, and fills its
/// queue: `CAP` records queued, 5 refused.
fn panicking_hook() -> (Writer, WriterHandle, MemorySink, Arc<Mutex<Vec<u64>>>) {
    quiet_injected_panics();
    let mem = MemorySink::new();
    let calls: Arc<Mutex<Vec<u64>>> = Arc::default();
    let c = Arc::clone(&calls);
    let writer = Writer::builder()
        .capacity(CAP)
        .mode(Mode::Manual)
        .policy(Policy::Warn)
        .on_drop_warning(move |d| {
            c.lock().unwrap().push(d.dropped);
            panic!("injected warn hook panic");
        })
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    // The writer is parked: it cannot report part of the drops below.
    writer_idle(&h);
    overfill(&h);
    (writer, h, mem, calls)
}

/// A `warn` hook that panics in the final report, made once the writer closed the sinks:
/// the panic is caught and counted as an error (as a sink's panic is) and the writer thread
/// still exits, so that `shutdown` returns.
#[test]
fn a_warn_hook_panicking_in_the_final_report_does_not_hang_shutdown() {
    let (m, calls, mem) = within(Duration::from_secs(20), || {
        let (writer, _h, mem, calls) = panicking_hook();
        let report = writer.shutdown(None);
        assert!(!report.timed_out);
        let calls = calls.lock().unwrap().clone();
        (report.metrics, calls, mem)
    });
    assert_eq!(calls, [5], "one final report of the 5 refused");
    assert_eq!(mem.contents(), expected_bytes(0, 0..CAP));
    assert_settled(&m);
    assert_eq!(
        (m.written, m.dropped, m.dropped_by.queue_full, m.failed),
        (CAP as u64, 5, 5, 0)
    );
    assert_eq!((m.warnings, m.errors, m.restarts), (1, 1, 0));
    assert_eq!(m.state, WriterState::Stopped);
}

/// A `warn` hook that panics in a report made while the writer runs: caught and counted as
/// an error, not a writer crash (no restart, no backoff); the writer goes on writing, and a
/// panic in the final report is caught as well.
#[test]
fn a_warn_hook_panicking_while_running_is_counted_not_a_restart() {
    let (m, calls, mem, last_error) = within(Duration::from_secs(20), || {
        let (writer, h, mem, calls) = panicking_hook();
        writer.trigger();
        assert!(
            wait_for(Duration::from_secs(10), || {
                let m = writer.metrics();
                m.warnings == 1 && m.errors == 1 && m.pending == 0
            }),
            "no report while running: {:?}",
            writer.metrics()
        );
        assert_eq!(writer.metrics().state, WriterState::Running);
        // The writer is still there: 10 more queued and written, 5 more refused.
        for i in CAP + 5..2 * (CAP + 5) {
            let _ = h.enqueue(line(0, i).as_bytes());
        }
        writer.trigger();
        writer.flush(None).unwrap();
        let last_error = writer.handle().last_error();
        let report = writer.shutdown(None);
        assert!(!report.timed_out);
        let calls = calls.lock().unwrap().clone();
        (report.metrics, calls, mem, last_error)
    });
    assert_eq!(calls, [5, 5], "one report while running, one at shutdown");
    let last_error = last_error.expect("the hook's panic is the last error");
    assert!(
        last_error.contains("injected warn hook panic"),
        "{last_error}"
    );
    let lines = split_lines(&mem.contents()).len();
    assert_eq!(lines, 2 * CAP);
    assert_settled(&m);
    assert_eq!(
        (m.written, m.dropped, m.dropped_by.queue_full, m.failed),
        (2 * CAP as u64, 10, 10, 0)
    );
    assert_eq!((m.warnings, m.errors, m.restarts), (2, 2, 0));
}

/// Lets a manual-mode writer finish its passes and park until it is triggered: a flush
/// (its thread has started and made a pass), then time for the rest of that pass. Only the
/// rest of a pass is waited for, not anything the test checks.
fn writer_idle(h: &WriterHandle) {
    h.flush(None).unwrap();
    thread::sleep(Duration::from_millis(100));
}

/// Offers `CAP + 5` lines of producer 0 (the last 5 find the queue full in manual mode).
fn overfill(h: &WriterHandle) {
    for i in 0..CAP + 5 {
        let _ = h.enqueue(line(0, i).as_bytes());
    }
}

/// Waits until the writer is `Stopped` (`what` if it never is), then for its thread's exit.
fn wait_stopped(h: &WriterHandle, what: &str) {
    assert!(
        wait_for(Duration::from_secs(10), || h.metrics().state
            == WriterState::Stopped),
        "{what}"
    );
    h.flush(None).unwrap();
}

/// What the hook of [`hook_ends_the_writer`] saw: the report of its `shutdown` (timed out,
/// pending), and what became of a record it enqueued after it.
type Ended = Arc<Mutex<Vec<(Option<(bool, u64)>, Result<Queued, Dropped>)>>>;

/// The `warn` hook runs on the writer thread: ending the writer from it — `shutdown`, or
/// dropping the `Writer` — cannot wait for the thread (itself) nor join it. It returns at
/// once (`timed_out`, with the records still pending) and the thread drains, closes the
/// sinks and exits once the hook returns; records given after it are dropped (`shutdown`).
#[test]
fn a_warn_hook_that_shuts_the_writer_down_does_not_wait_for_itself() {
    for by_drop in [false, true] {
        within(Duration::from_secs(20), move || {
            hook_ends_the_writer(by_drop)
        });
    }
}

fn hook_ends_the_writer(by_drop: bool) {
    let mem = MemorySink::new();
    let slot: Arc<Mutex<Option<(Writer, WriterHandle)>>> = Arc::default();
    let ended: Ended = Arc::default();
    let (s, e) = (Arc::clone(&slot), Arc::clone(&ended));
    let writer = Writer::builder()
        .capacity(CAP)
        .mode(Mode::Manual)
        .policy(Policy::Warn)
        .on_drop_warning(move |_| {
            let Some((writer, h)) = s.lock().unwrap().take() else {
                return;
            };
            // The pass before the report emptied the queue: these 3 wait for the writer.
            for i in 0..3 {
                h.enqueue(line(1, i).as_bytes()).unwrap();
            }
            let report = if by_drop {
                drop(writer);
                None
            } else {
                let r = writer.shutdown(None);
                Some((r.timed_out, r.metrics.pending))
            };
            e.lock().unwrap().push((report, h.enqueue(b"late")));
        })
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    // The writer is parked (else it could report the drops below before the trigger, the
    // queue still full for the hook's records).
    writer_idle(&h);
    overfill(&h);
    *slot.lock().unwrap() = Some((writer, h.clone()));
    h.trigger();
    wait_stopped(&h, "the hook never shut the writer down");
    let ended = ended.lock().unwrap().clone();
    let report = (!by_drop).then_some((true, 3));
    let late = Err(Dropped {
        reason: DropReason::Shutdown,
    });
    assert_eq!(ended, [(report, late)], "by_drop {by_drop}");
    let mut expected = expected_bytes(0, 0..CAP);
    expected.extend(expected_bytes(1, 0..3));
    assert_eq!(mem.contents(), expected, "by_drop {by_drop}");
    let m = h.metrics();
    assert_settled(&m);
    assert_eq!(
        (m.written, m.dropped, m.failed),
        (CAP as u64 + 3, 6, 0),
        "by_drop {by_drop}"
    );
    assert_eq!((m.dropped_by.queue_full, m.dropped_by.shutdown), (5, 1));
    assert_eq!((m.warnings, m.errors, m.restarts), (1, 0, 0));
    assert_eq!(m.state, WriterState::Stopped);
}

/// A [`PanickySink`] that counts its `close` calls.
struct Closes(PanickySink, Arc<AtomicUsize>);

impl Sink for Closes {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.0.write_batch(batch)
    }
    fn close(&mut self) -> std::io::Result<()> {
        self.1.fetch_add(1, SeqCst);
        Ok(())
    }
}

/// The same from the final report a writer makes when it falls back to synchronous writes
/// (no restart left): dropping the `Writer` there leaves the close to the exiting thread,
/// which closes the sink once.
#[test]
fn a_warn_hook_that_drops_the_writer_after_a_fallback_does_not_wait_for_itself() {
    quiet_injected_panics();
    let closes: Arc<AtomicUsize> = Arc::default();
    let c = Arc::clone(&closes);
    let m = within(Duration::from_secs(20), move || {
        let slot: Arc<Mutex<Option<Writer>>> = Arc::default();
        let s = Arc::clone(&slot);
        let writer = Writer::builder()
            .capacity(CAP)
            .mode(Mode::Manual)
            .policy(Policy::Warn)
            .max_restarts(0)
            .on_drop_warning(move |_| drop(s.lock().unwrap().take()))
            .sink(Closes(PanickySink::always(), c))
            .build()
            .unwrap();
        let h = writer.handle();
        writer_idle(&h);
        overfill(&h);
        *slot.lock().unwrap() = Some(writer);
        h.trigger();
        wait_stopped(&h, "the hook never dropped the writer");
        assert!(slot.lock().unwrap().is_none());
        h.metrics()
    });
    assert_settled(&m);
    assert_eq!(closes.load(SeqCst), 1);
    assert_eq!((m.written, m.dropped, m.failed), (0, 5, CAP as u64));
    assert_eq!(m.dropped_by.queue_full, 5);
    assert_eq!((m.warnings, m.restarts), (1, 0));
    assert_eq!(m.state, WriterState::Stopped);
}

#[test]
fn no_warning_for_other_policies() {
    for policy in [Policy::DropNewest, Policy::DropOldest] {
        let (writer, mut gate, _mem, warnings) = stalled(policy);
        let h = writer.handle();
        for i in 1..=25 {
            let _ = h.enqueue(line(0, i).as_bytes());
        }
        gate.open();
        gate.allow_one();
        let m = writer.shutdown(None).metrics;
        // No hook can be set for them (`build` refuses it): no report made, to stderr either.
        assert!(warnings.lock().unwrap().is_empty(), "{policy}");
        assert_eq!(m.warnings, 0, "{policy}");
    }
}

/// A sink that sleeps 1 ms per batch.
fn slow(mem: MemorySink) -> impl Sink {
    let mut mem = mem;
    FnSink::new("slow", move |b: &Batch<'_>| -> Result<(), SinkError> {
        thread::sleep(Duration::from_millis(1));
        mem.write_batch(b)
    })
}

#[test]
fn block_loses_nothing_with_a_small_queue_and_a_slow_sink() {
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(8)
        .batch_size(4)
        .policy(Policy::Block)
        .sink(slow(mem.clone()))
        .build()
        .unwrap();
    thread::scope(|s| {
        for p in 0..4 {
            let h = writer.handle();
            s.spawn(move || {
                for i in 0..500 {
                    assert_eq!(h.enqueue(line(p, i).as_bytes()), Ok(Queued::Queued));
                }
            });
        }
    });
    let m = writer.shutdown(None).metrics;
    assert_all_in_order(&mem.contents(), 4, 500);
    assert_settled(&m);
    assert_eq!((m.written, m.dropped), (2000, 0));
    assert!(m.high_water >= 8, "the queue never filled: {m:?}");
}

#[test]
fn block_bounds_bytes_too() {
    // max_bytes bounds the queue: 4 records of 100 bytes fit in 450 bytes, not 5.
    let (sink, mut gate, mem) = gated();
    let writer = Writer::builder()
        .capacity(100)
        .batch_size(1)
        .max_bytes(450)
        .block_timeout(Duration::from_millis(50))
        .sink(sink)
        .build()
        .unwrap();
    let rec = |i: usize| format!("{i:0>99}");
    let h = writer.handle();
    h.enqueue(rec(0).as_bytes()).unwrap();
    gate.wait_entered();
    for i in 1..=4 {
        assert_eq!(h.enqueue(rec(i).as_bytes()), Ok(Queued::Queued), "{i}");
    }
    assert_eq!(
        h.enqueue(rec(5).as_bytes()).unwrap_err().reason,
        DropReason::Timeout
    );
    gate.open();
    gate.allow_one();
    let m = writer.shutdown(None).metrics;
    let want: String = (0..=4).map(|i| rec(i) + "\n").collect();
    assert_eq!(mem.contents(), want.as_bytes());
    assert_eq!(m.dropped_by.timeout, 1);
    assert_settled(&m);
}

/// A queue full by its byte bound long before its record bound: `high_water` is the most
/// records seen waiting (4 queued, 1 in the sink), not the record capacity.
#[test]
fn high_water_is_the_records_seen_when_the_byte_bound_fills_the_queue() {
    for policy in [Policy::DropNewest, Policy::Block] {
        within(Duration::from_secs(20), move || high_water_bytes(policy));
    }
}

fn high_water_bytes(policy: Policy) {
    let (sink, mut gate, mem) = gated();
    let mut builder = Writer::builder()
        .capacity(100)
        .batch_size(1)
        .max_bytes(450)
        .policy(policy);
    if policy == Policy::Block {
        builder = builder.block_timeout(Duration::from_millis(10));
    }
    let writer = builder.sink(sink).build().unwrap();
    let rec = |i: usize| format!("{i:0>99}");
    let h = writer.handle();
    h.enqueue(rec(0).as_bytes()).unwrap();
    gate.wait_entered();
    for i in 1..=4 {
        assert_eq!(h.enqueue(rec(i).as_bytes()), Ok(Queued::Queued), "{i}");
    }
    for i in 5..10 {
        assert!(h.enqueue(rec(i).as_bytes()).is_err(), "{policy}: {i}");
    }
    let m = writer.metrics();
    assert!(
        (4..=5).contains(&m.high_water),
        "{policy}: high_water {} with 4 records queued and 1 in the sink",
        m.high_water
    );
    gate.open();
    gate.allow_one();
    let m = writer.shutdown(None).metrics;
    assert!(m.high_water <= 5, "{policy}: {m:?}");
    assert_eq!(split_lines(&mem.contents()).len(), 5);
    assert_settled(&m);
}

#[test]
fn block_timeout_drops_and_counts() {
    let (sink, mut gate, mem) = gated();
    let writer = Writer::builder()
        .capacity(2)
        .batch_size(1)
        .policy(Policy::Block)
        .block_timeout(Duration::from_millis(50))
        .sink(sink)
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue(line(0, 0).as_bytes()).unwrap();
    gate.wait_entered();
    assert_eq!(h.enqueue(line(0, 1).as_bytes()), Ok(Queued::Queued));
    assert_eq!(h.enqueue(line(0, 2).as_bytes()), Ok(Queued::Queued));
    for i in 3..6 {
        let start = Instant::now();
        let err = h.enqueue(line(0, i).as_bytes()).unwrap_err();
        let waited = start.elapsed();
        assert_eq!(err.reason, DropReason::Timeout);
        assert!(
            waited >= Duration::from_millis(50),
            "gave up after {waited:?}"
        );
        assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    }
    let m = writer.metrics();
    assert_eq!((m.dropped_by.timeout, m.dropped, m.pending), (3, 3, 3));
    gate.open();
    gate.allow_one();
    let m = writer.shutdown(None).metrics;
    assert_eq!(mem.contents(), expected_bytes(0, 0..3));
    assert_settled(&m);
    assert_eq!((m.written, m.dropped_by.timeout), (3, 3));
}

#[test]
fn block_waits_for_space_when_the_sink_is_released() {
    let (sink, mut gate, mem) = gated();
    let writer = Writer::builder()
        .capacity(2)
        .batch_size(1)
        .sink(sink)
        .build()
        .unwrap();
    let h = writer.handle();
    h.enqueue(line(0, 0).as_bytes()).unwrap();
    gate.wait_entered();
    let producer = thread::spawn(move || {
        for i in 1..50 {
            assert_eq!(h.enqueue(line(0, i).as_bytes()), Ok(Queued::Queued));
        }
    });
    thread::sleep(Duration::from_millis(50));
    assert!(!producer.is_finished(), "the producer did not block");
    assert!(mem.contents().is_empty());
    gate.open();
    gate.allow_one();
    producer.join().unwrap();
    let m = writer.shutdown(None).metrics;
    assert_eq!(mem.contents(), expected_bytes(0, 0..50));
    assert_settled(&m);
    assert_eq!(m.dropped, 0);
}

/// Threads that logged once and idle keep credits of the byte bound unspent in their lanes (a
/// chunk each). A record as large as the byte bound, on an empty queue, must still be
/// accepted — it waited forever under `block`, spun under `drop_oldest` and was refused under
/// the others — and the idle threads log again afterwards.
#[test]
fn a_record_as_large_as_the_byte_bound_is_accepted_while_idle_threads_hold_credits() {
    for policy in [
        Policy::Block,
        Policy::DropOldest,
        Policy::DropNewest,
        Policy::Warn,
    ] {
        within(Duration::from_secs(20), move || {
            large_record_with_idle_lanes(policy)
        });
    }
}

fn large_record_with_idle_lanes(policy: Policy) {
    const MAX: usize = 64 << 10;
    const IDLE: usize = 4;
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(1000)
        .max_bytes(MAX)
        .policy(policy)
        .sink(mem.clone())
        .build()
        .unwrap();
    let logged = Arc::new(Barrier::new(IDLE + 1));
    let (go_tx, go_rx): (Vec<_>, Vec<_>) = (0..IDLE).map(|_| mpsc::channel::<()>()).unzip();
    let idle: Vec<_> = go_rx
        .into_iter()
        .enumerate()
        .map(|(p, go)| {
            let (h, logged) = (writer.handle(), Arc::clone(&logged));
            thread::spawn(move || {
                assert_eq!(h.enqueue(line(p, 0).as_bytes()), Ok(Queued::Queued));
                logged.wait();
                go.recv().unwrap();
                assert_eq!(h.enqueue(line(p, 1).as_bytes()), Ok(Queued::Queued));
                // Idle again until the end.
                let _ = go.recv();
            })
        })
        .collect();
    logged.wait();
    writer.flush(None).unwrap();
    assert_eq!(writer.metrics().pending, 0);
    let h = writer.handle();
    let big = "b".repeat(MAX - 1);
    assert_eq!(h.enqueue(big.as_bytes()), Ok(Queued::Queued), "{policy}");
    writer.flush(None).unwrap();
    // The idle threads log again (their credits were taken: they are granted new ones), and
    // idle once more: the large record needs their credits again.
    for go in &go_tx {
        go.send(()).unwrap();
    }
    assert!(wait_for(Duration::from_secs(10), || writer
        .metrics()
        .enqueued
        == 2 * IDLE as u64 + 1));
    writer.flush(None).unwrap();
    assert_eq!(h.enqueue(big.as_bytes()), Ok(Queued::Queued), "{policy}");
    drop(go_tx);
    for t in idle {
        t.join().unwrap();
    }
    let m = writer.shutdown(None).metrics;
    assert_settled(&m);
    assert_eq!(
        (m.written, m.dropped),
        (2 * IDLE as u64 + 2, 0),
        "{policy}: {m:?}"
    );
    let contents = mem.contents();
    let lines = split_lines(&contents);
    assert_eq!(lines.iter().filter(|l| **l == big).count(), 2, "{policy}");
    for p in 0..IDLE {
        for s in 0..2 {
            assert!(lines.contains(&line(p, s).as_str()), "{policy}: {p} {s}");
        }
    }
}

/// Under `warn`, drops made after the writer fell back to synchronous writes (no thread
/// left to report them) still reach the hook: counted `queue_full` and reported, the first
/// by the caller whose synchronous write followed them, the rest (within the hook's second)
/// at shutdown. Here a sink logs `CAP + 3` records from inside each synchronous write of a
/// record `go`: the queue takes `CAP`, 3 are dropped each time.
#[test]
fn warn_drops_after_a_fallback_are_counted_and_reported() {
    quiet_injected_panics();
    let reports: Arc<Mutex<Vec<DropWarning>>> = Arc::default();
    let r = Arc::clone(&reports);
    let me: Arc<OnceLock<WriterHandle>> = Arc::default();
    let me2 = Arc::clone(&me);
    let chatty = FnSink::new("chatty", move |b: &Batch<'_>| -> Result<(), SinkError> {
        if let Some(h) = me2.get() {
            if b.records().any(|r| r == b"go\n") {
                for i in 0..CAP + 3 {
                    let _ = h.enqueue(line(1, i).as_bytes());
                }
            }
        }
        Ok(())
    });
    let mem = MemorySink::new();
    let writer = Writer::builder()
        .capacity(CAP)
        .mode(Mode::Manual)
        .policy(Policy::Warn)
        .max_restarts(0)
        .on_drop_warning(move |d| r.lock().unwrap().push(d.clone()))
        .sink(PanickySink::always())
        .sink(chatty)
        .sink(mem.clone())
        .build()
        .unwrap();
    let h = writer.handle();
    assert_eq!(h.enqueue(b"first"), Ok(Queued::Queued));
    writer.trigger();
    // A bound, not an expectation: under Miri a panic (with its backtrace) alone is slow.
    let bound = Duration::from_secs(if cfg!(miri) { 600 } else { 10 });
    assert!(
        wait_for(bound, || h.metrics().state == WriterState::Fallback),
        "no fallback: {:?}",
        h.metrics()
    );
    me.set(h.clone()).unwrap();
    assert_eq!(h.enqueue(b"go"), Ok(Queued::WrittenSync));
    assert_eq!(h.metrics().dropped_by.queue_full, 3);
    assert_eq!(h.enqueue(b"go"), Ok(Queued::WrittenSync));
    let m = writer.shutdown(None).metrics;
    assert_eq!(m.dropped_by.queue_full, 6);
    assert_eq!((m.written, m.dropped, m.failed), (2 * CAP as u64 + 3, 6, 0));
    assert_settled(&m);
    let reports = reports.lock().unwrap().clone();
    assert_eq!(
        reports,
        [
            DropWarning {
                dropped: 3,
                total: 3
            },
            DropWarning {
                dropped: 3,
                total: 6
            }
        ]
    );
    assert_eq!(m.warnings, 2);
    let mut expected = b"first\ngo\n".to_vec();
    expected.extend(expected_bytes(1, 0..CAP));
    expected.extend_from_slice(b"go\n");
    expected.extend(expected_bytes(1, 0..CAP));
    assert_eq!(mem.contents(), expected);
}
