//! The accounting identity `enqueued = written + dropped + failed + pending`, checked exactly
//! at the end of every mode × policy, with two sinks that fail intermittently — errors
//! part-way through a batch and panics (restarts, then the fallback to synchronous writes
//! once none is left) — producers that trigger and flush, and racing with each of the
//! three ends: `shutdown` without a timeout, `shutdown` with one that expires, and dropping
//! the `Writer`. The counters are checked against what the producers were told and what the
//! sinks hold: `written` is the records at least one sink holds, each sink's `written` its
//! own lines, every `Err` a producer got is a drop of its reason.

mod common;

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use logxide::sink::{Batch, Sink, SinkError};
use logxide::writer::{
    DropReason, DroppedBy, FlushError, MetricsSnapshot, Mode, Policy, Queued, Writer, WriterState,
};

const PRODUCERS: usize = 3;
const PER: usize = 1500;

/// Fails some of its calls, chosen by their number (so that a retried batch is a new call):
/// every `error_every`th writes the first half of the batch and returns an error, every
/// `panic_every`th panics before writing anything. Keeps what it wrote.
#[derive(Clone)]
struct Intermittent {
    name: &'static str,
    calls: Arc<AtomicUsize>,
    error_every: usize,
    panic_every: usize,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Intermittent {
    fn new(name: &'static str, error_every: usize, panic_every: usize) -> Self {
        Intermittent {
            name,
            calls: Arc::default(),
            error_every,
            panic_every,
            out: Arc::default(),
        }
    }

    fn lines(&self) -> Vec<(usize, usize)> {
        let out = self.out.lock().unwrap();
        split_lines(&out).into_iter().map(parse).collect()
    }
}

impl Sink for Intermittent {
    fn name(&self) -> &str {
        self.name
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        let call = self.calls.fetch_add(1, SeqCst) + 1;
        if call % self.panic_every == 0 {
            panic!("injected intermittent panic");
        }
        let written = if call % self.error_every == 0 {
            batch.len() / 2
        } else {
            batch.len()
        };
        let mut out = self.out.lock().unwrap();
        for record in batch.records().take(written) {
            out.extend_from_slice(record);
        }
        if written < batch.len() {
            return Err(SinkError {
                written,
                error: io::Error::other("injected intermittent error"),
            });
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum End {
    Shutdown,
    ShutdownTimeout,
    Drop,
}

/// What each producer was told.
#[derive(Default)]
struct Told {
    accepted: u64,
    sync: u64,
    evicting: u64,
    refused: DroppedBy,
    /// What its `flush_checked` calls reported.
    reported: Reported,
}

/// Failures reported by `flush_checked` calls (or a shutdown's report): records no sink
/// wrote, and each sink's failed records and failed calls.
#[derive(Default)]
struct Reported {
    failed: u64,
    sinks: [(u64, u64); 2],
}

impl Reported {
    fn merge(&mut self, other: &Reported) {
        self.failed += other.failed;
        for (mine, theirs) in self.sinks.iter_mut().zip(&other.sinks) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    fn add(&mut self, result: Result<(), FlushError>) {
        match result {
            Ok(()) => {}
            Err(FlushError::Failed { failed, sinks }) => {
                self.failed += failed;
                for s in sinks {
                    self.sinks[s.index].0 += s.failed;
                    self.sinks[s.index].1 += s.errors;
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn produce(h: &logxide::writer::WriterHandle, p: usize) -> Told {
    let mut told = Told::default();
    for i in 0..PER {
        match h.enqueue(line(p, i).as_bytes()) {
            Ok(Queued::Queued) => told.accepted += 1,
            Ok(Queued::EvictedOldest) => told.evicting += 1,
            Ok(Queued::WrittenSync) => told.sync += 1,
            Err(d) => match d.reason {
                DropReason::QueueFull => told.refused.queue_full += 1,
                DropReason::Timeout => told.refused.timeout += 1,
                DropReason::Shutdown => told.refused.shutdown += 1,
                other => panic!("producer {p}: unexpected drop {other:?}"),
            },
        }
        if i % 4 == 3 {
            // Paced, so that the writer keeps up part of the time under every policy.
            thread::sleep(Duration::from_micros(100));
        }
        if p == 0 && i % 64 == 63 {
            h.trigger();
        }
        if p == 1 && i % 500 == 499 {
            // A timeout only on the writer's own thread, which this is not.
            told.reported
                .add(h.flush_checked(Some(Duration::from_secs(30))));
        }
    }
    told
}

fn run(mode: Mode, policy: Policy, block_timeout: Option<Duration>, end: End) {
    quiet_injected_panics();
    let a = Intermittent::new("a", 7, 13);
    let b = Intermittent::new("b", 5, 17);
    let mut builder = Writer::builder()
        .capacity(32)
        .batch_size(8)
        .mode(mode)
        .policy(policy)
        .tick(Duration::from_millis(1))
        .max_restarts(4)
        .restart_backoff(Duration::from_millis(1), Duration::from_millis(2))
        .sink(a.clone())
        .sink(b.clone());
    if policy == Policy::Warn {
        builder = builder.on_drop_warning(|_| {});
    }
    if let Some(t) = block_timeout {
        builder = builder.block_timeout(t);
    }
    let writer = builder.build().unwrap();
    let h = writer.handle();
    let started = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let h = writer.handle();
            let started = Arc::clone(&started);
            thread::spawn(move || {
                started.fetch_add(1, SeqCst);
                produce(&h, p)
            })
        })
        .collect();
    // End while the producers run (some of their records find the writer shut down).
    assert!(wait_for(Duration::from_secs(30), || {
        started.load(SeqCst) == PRODUCERS && h.metrics().enqueued >= (PRODUCERS * PER / 2) as u64
    }));
    let what = format!(
        "{mode:?} {policy:?} {block_timeout:?} {end:?} {:?}",
        h.metrics().state
    );
    // What the shutdown's report checks: the failures the producers' checks had not
    // reported by then.
    let mut at_end = Reported::default();
    match end {
        End::Shutdown => {
            let report = writer.shutdown(None);
            assert!(!report.timed_out, "{what}");
            at_end.add(report.check());
        }
        End::ShutdownTimeout => {
            let report = writer.shutdown(Some(Duration::from_micros(1)));
            assert_eq!(report.metrics.state, WriterState::Stopped, "{what}");
            match report.check() {
                // The failures are left for the next check.
                Err(FlushError::Timeout(t)) => {
                    assert!(report.timed_out, "{what}");
                    assert_eq!(t.pending, report.metrics.pending, "{what}");
                    assert!(!t.on_writer_thread, "{what}");
                }
                other => {
                    assert!(!report.timed_out, "{what}");
                    at_end.add(other);
                }
            }
        }
        End::Drop => drop(writer),
    }
    let mut told: Vec<Told> = producers.into_iter().map(|t| t.join().unwrap()).collect();
    told[0].reported.merge(&at_end);
    // A shutdown that timed out goes on in the background: wait for its end.
    assert!(
        wait_for(Duration::from_secs(30), || {
            let m = h.metrics();
            m.state == WriterState::Stopped && m.pending == 0
        }),
        "{what}: never settled: {:?}",
        h.metrics()
    );
    // The last check reports what the producers' checks and the shutdown did not.
    told[0].reported.add(h.flush_checked(None));
    check(&h.metrics(), &told, &a, &b, policy, &what);
}

fn check(
    m: &MetricsSnapshot,
    told: &[Told],
    a: &Intermittent,
    b: &Intermittent,
    policy: Policy,
    what: &str,
) {
    assert_settled(m);
    assert_eq!(m.enqueued, (PRODUCERS * PER) as u64, "{what}: {m:?}");
    let sum = |f: fn(&Told) -> u64| told.iter().map(f).sum::<u64>();
    let refused = |f: fn(&DroppedBy) -> u64| told.iter().map(|t| f(&t.refused)).sum::<u64>();
    // Every `Err` is a drop of its reason. The drops no producer was told of: evictions,
    // and records queued by a producer racing with the close, taken once the sinks were
    // closed (`shutdown`, see the `shared` module).
    assert_eq!(m.dropped_by.queue_full, refused(|d| d.queue_full), "{what}");
    assert_eq!(m.dropped_by.timeout, refused(|d| d.timeout), "{what}");
    assert!(m.dropped_by.shutdown >= refused(|d| d.shutdown), "{what}");
    let closed_out = m.dropped_by.shutdown - refused(|d| d.shutdown);
    assert_eq!(
        (m.dropped_by.invalid, m.dropped_by.forked),
        (0, 0),
        "{what}"
    );
    if policy != Policy::DropOldest {
        assert_eq!(m.dropped_by.evicted, 0, "{what}");
    }
    let accepted = sum(|t| t.accepted) + sum(|t| t.evicting) + sum(|t| t.sync);
    assert_eq!(
        accepted,
        m.written + m.failed + m.dropped_by.evicted + closed_out,
        "{what}: accepted records are written, failed, evicted or closed out: {m:?}"
    );
    // `written`: the records at least one sink holds; each sink's own count, its lines.
    let (la, lb) = (a.lines(), b.lines());
    let union: HashSet<(usize, usize)> = la.iter().chain(&lb).copied().collect();
    for lines in [&la, &lb] {
        let unique: HashSet<_> = lines.iter().collect();
        assert_eq!(
            unique.len(),
            lines.len(),
            "{what}: a sink got a record twice"
        );
    }
    assert_eq!(m.written, union.len() as u64, "{what}: {m:?}");
    assert_eq!(m.sinks[0].written, la.len() as u64, "{what}");
    assert_eq!(m.sinks[1].written, lb.len() as u64, "{what}");
    // A record a sink does not hold was failed there.
    let handed = m.written + m.failed;
    for s in &m.sinks {
        assert_eq!(
            s.written + s.failed,
            handed,
            "{what}: sink {}: {m:?}",
            s.name
        );
    }
    // Every failure was reported by exactly one `flush_checked`.
    let reported = |f: fn(&Reported) -> u64| told.iter().map(|t| f(&t.reported)).sum::<u64>();
    assert_eq!(reported(|r| r.failed), m.failed, "{what}");
    assert_eq!(reported(|r| r.sinks[0].0), m.sinks[0].failed, "{what}");
    assert_eq!(reported(|r| r.sinks[1].0), m.sinks[1].failed, "{what}");
    assert_eq!(reported(|r| r.sinks[0].1), m.sinks[0].errors, "{what}");
    assert_eq!(reported(|r| r.sinks[1].1), m.sinks[1].errors, "{what}");
}

/// The `block` policy's timeout of the `*_block_timeout` tests: short, so that some
/// producers give up (`timeout`).
const SHORT: Option<Duration> = Some(Duration::from_micros(200));

macro_rules! matrix {
    ($($name:ident: $mode:ident, $policy:ident, $timeout:expr;)*) => {
        $(
            #[test]
            fn $name() {
                for end in [End::Shutdown, End::ShutdownTimeout, End::Drop] {
                    within(Duration::from_secs(120), move || {
                        run(Mode::$mode, Policy::$policy, $timeout, end)
                    });
                }
            }
        )*
    };
}

matrix! {
    trigger_block: Trigger, Block, None;
    trigger_block_timeout: Trigger, Block, SHORT;
    trigger_drop_oldest: Trigger, DropOldest, None;
    trigger_drop_newest: Trigger, DropNewest, None;
    trigger_warn: Trigger, Warn, None;
    loop_block: Loop, Block, None;
    loop_block_timeout: Loop, Block, SHORT;
    loop_drop_oldest: Loop, DropOldest, None;
    loop_drop_newest: Loop, DropNewest, None;
    loop_warn: Loop, Warn, None;
    manual_block: Manual, Block, None;
    manual_block_timeout: Manual, Block, SHORT;
    manual_drop_oldest: Manual, DropOldest, None;
    manual_drop_newest: Manual, DropNewest, None;
    manual_warn: Manual, Warn, None;
}
