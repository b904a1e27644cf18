//! Counters of the writer, readable at any time (also after shutdown).
//!
//! `enqueued` is not one counter: it is the sum of what every lane has published (each
//! lane's own count, stored by its producer alone: see the `lane` module) and of `other`,
//! the records that never entered a lane (dropped at once, or written synchronously). The
//! drop counters are shared; everything else is written by the one thread that delivers
//! batches (the writer thread, or a caller in fallback mode, both under the core lock). All
//! counters only grow.
//!
//! **Accounting.** Every record handed to [`enqueue`](super::WriterHandle::enqueue) is counted
//! in `enqueued` *before* anything else happens to it (a lane counts a record before it
//! publishes it), and later in exactly one of `written`, `dropped` or `failed`. A snapshot
//! reads the outcome counters first and `enqueued` last, so `pending = enqueued - written -
//! dropped - failed` is never negative, and at rest (no enqueue in progress) `enqueued =
//! written + dropped + failed + pending` holds exactly.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Mutex, TryLockError};

use crossbeam_utils::CachePadded;
use serde::{Deserialize, Serialize};

/// Why a record was dropped.
///
/// ```
/// use logxide::sink::MemorySink;
/// use logxide::writer::{DropReason, Writer};
/// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
/// let h = writer.handle();
/// assert_eq!(h.enqueue(b"two\nlines").unwrap_err().reason, DropReason::Invalid);
/// writer.shutdown(None);
/// assert_eq!(h.enqueue(b"late").unwrap_err().reason, DropReason::Shutdown);
/// // In the metrics, by the names `dropped_by` uses:
/// assert_eq!(serde_json::to_string(&DropReason::QueueFull).unwrap(), r#""queue_full""#);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The queue was full and the policy (`drop_newest` or `warn`) refused the record — or
    /// the record was enqueued from inside a sink call, which never waits for space (the
    /// writer is that very call): under `block`, and under every policy in fallback mode.
    QueueFull,
    /// The record was queued but evicted by a newer one under `drop_oldest`.
    Evicted,
    /// The `block` policy's timeout expired before space was free.
    Timeout,
    /// The writer was already shut down.
    Shutdown,
    /// The record was not one line (it held a line break before its end), or was larger
    /// than the queue's byte bound (or than 4 GiB − 1 bytes, the largest record).
    Invalid,
    /// This process was forked from the one that built the writer: the writer thread does
    /// not exist here, so records given to the inherited writer are dropped (see "Fork" in the
    /// [writer's docs](super)). The records the parent had not yet written when it forked
    /// are counted here too, in the child: the child's copies are discarded, the parent
    /// writes its own.
    Forked,
    /// The record was never finished: a value's `Display`, `Debug` or `Serialize` panicked
    /// while the logger encoded it in the caller's thread, or the message of a `log` record
    /// or `tracing` event while the bridge formatted it (the panic goes on to the caller).
    Panicked,
}

impl DropReason {
    fn index(self) -> usize {
        self as usize
    }
}

/// Records dropped, by reason.
///
/// ```
/// use logxide::sink::MemorySink;
/// use logxide::writer::Writer;
/// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
/// let h = writer.handle();
/// let _ = h.enqueue(b"not\none line");
/// writer.shutdown(None);
/// let _ = h.enqueue(b"late");
/// let by = h.metrics().dropped_by;
/// assert_eq!((by.invalid, by.shutdown, by.total()), (1, 1, 2));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedBy {
    /// Refused because the queue was full (`drop_newest`, `warn`; from inside a sink call
    /// also `block`, and every policy in fallback mode).
    pub queue_full: u64,
    /// Evicted by newer records (`drop_oldest`).
    pub evicted: u64,
    /// The `block` timeout expired.
    pub timeout: u64,
    /// Enqueued after shutdown.
    pub shutdown: u64,
    /// Not a single line, or larger than the queue's byte bound.
    pub invalid: u64,
    /// Given to a writer inherited through `fork()` (in the child), or in flight in the
    /// parent when it forked.
    #[serde(default)]
    pub forked: u64,
    /// Never finished: a value's `Display`, `Debug` or `Serialize` panicked while the
    /// logger encoded the record (or a bridge formatted its message).
    #[serde(default)]
    pub panicked: u64,
}

impl DroppedBy {
    /// The sum over all reasons.
    ///
    /// ```
    /// use logxide::writer::DroppedBy;
    /// let by = DroppedBy { evicted: 2, panicked: 1, ..DroppedBy::default() };
    /// assert_eq!(by.total(), 3);
    /// ```
    pub fn total(&self) -> u64 {
        self.queue_full
            + self.evicted
            + self.timeout
            + self.shutdown
            + self.invalid
            + self.forked
            + self.panicked
    }
}

/// What state the writer is in.
///
/// ```
/// use logxide::sink::MemorySink;
/// use logxide::writer::{Writer, WriterState};
/// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
/// let h = writer.handle();
/// assert_eq!(h.metrics().state, WriterState::Running);
/// writer.shutdown(None);
/// assert_eq!(h.metrics().state, WriterState::Stopped);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterState {
    /// The writer thread takes records from the queue.
    Running,
    /// The writer thread died more than `max_restarts` times; callers write synchronously.
    Fallback,
    /// Shut down: new records are dropped with reason `shutdown`.
    Stopped,
    /// Inherited through `fork()`: this process has a copy of a writer whose thread lives
    /// in the parent only; records are dropped with reason `forked`.
    Forked,
}

/// Counters of one sink.
///
/// ```
/// use std::io;
/// use logxide::sink::{Batch, FnSink, MemorySink, SinkError};
/// use logxide::writer::Writer;
/// let full = FnSink::new("full", |_: &Batch<'_>| -> Result<(), SinkError> {
///     Err(io::Error::other("disk full").into())
/// });
/// let writer = Writer::builder().sink(MemorySink::new()).sink(full).build().unwrap();
/// writer.handle().enqueue(b"a").unwrap();
/// let m = writer.shutdown(None).metrics;
/// assert_eq!((m.sinks[0].name.as_str(), m.sinks[0].written), ("memory", 1));
/// assert_eq!((m.sinks[1].failed, m.sinks[1].errors), (1, 1));
/// assert!(m.sinks[1].last_error.as_deref().unwrap().starts_with("disk full"));
/// assert_eq!((m.written, m.failed), (1, 0)); // the memory sink wrote it
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkMetrics {
    /// The sink's name.
    pub name: String,
    /// Records the sink wrote.
    pub written: u64,
    /// Records the sink failed to write.
    pub failed: u64,
    /// Failed calls of the sink: writes (errors, caught panics, and batches given up after
    /// the sink panicked on them twice in a row), flushes and closes (errors, caught panics,
    /// a flush skipped after two panics in a row) — one each.
    pub errors: u64,
    /// The most recent error, as text: a write's as the sink gave it; a flush's or a
    /// close's after `flush: ` or `close: `.
    pub last_error: Option<String>,
}

/// What one sink failed since the last [`flush_checked`](super::WriterHandle::flush_checked)
/// (see [`FlushError::Failed`](super::FlushError::Failed)).
///
/// ```
/// use std::io;
/// use logxide::sink::{Batch, FnSink, MemorySink, SinkError};
/// use logxide::writer::{FlushError, Writer};
/// let full = FnSink::new("full", |_: &Batch<'_>| -> Result<(), SinkError> {
///     Err(io::Error::other("disk full").into())
/// });
/// let writer = Writer::builder().sink(MemorySink::new()).sink(full).build().unwrap();
/// writer.handle().enqueue(b"a").unwrap();
/// let Err(FlushError::Failed { failed, sinks }) = writer.flush_checked(None) else {
///     panic!("the failure is reported")
/// };
/// assert_eq!(failed, 0); // the memory sink wrote it
/// assert_eq!((sinks[0].index, sinks[0].name.as_str(), sinks[0].failed, sinks[0].errors), (1, "full", 1, 1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkFailure {
    /// The sink's position, in the order the sinks were added.
    pub index: usize,
    /// The sink's name.
    pub name: String,
    /// Records the sink failed to write since the last check (another sink may have written
    /// them: those no sink wrote are [`FlushError::Failed`](super::FlushError::Failed)'s
    /// `failed`).
    pub failed: u64,
    /// Failed calls of the sink since the last check: writes, flushes (a failed `fsync`, say:
    /// records written but maybe not on stable storage) and closes.
    pub errors: u64,
    /// The sink's most recent error, as in [`SinkMetrics::last_error`].
    pub last_error: Option<String>,
}

/// The failure counts already reported by a `flush_checked`: records no sink wrote, and each
/// sink's failed records and failed calls.
#[derive(Default)]
pub(crate) struct FailuresSeen {
    failed: u64,
    sinks: Vec<(u64, u64)>,
}

impl FailuresSeen {
    /// What failed in `m` since the counts last reported, which become `m`'s: records no sink
    /// wrote, and the sinks that failed records or calls. `None` if nothing did.
    pub(crate) fn since(&mut self, m: &MetricsSnapshot) -> Option<(u64, Vec<SinkFailure>)> {
        self.sinks
            .resize(m.sinks.len().max(self.sinks.len()), (0, 0));
        // (The counters only grow; a snapshot read while another is stored may lag it.)
        let failed = m.failed.saturating_sub(self.failed);
        self.failed = self.failed.max(m.failed);
        let mut sinks = Vec::new();
        for (index, (s, seen)) in m.sinks.iter().zip(&mut self.sinks).enumerate() {
            let (records, calls) = (
                s.failed.saturating_sub(seen.0),
                s.errors.saturating_sub(seen.1),
            );
            *seen = (seen.0.max(s.failed), seen.1.max(s.errors));
            if records > 0 || calls > 0 {
                sinks.push(SinkFailure {
                    index,
                    name: s.name.clone(),
                    failed: records,
                    errors: calls,
                    last_error: s.last_error.clone(),
                });
            }
        }
        (failed > 0 || !sinks.is_empty()).then_some((failed, sinks))
    }
}

/// A point-in-time copy of the writer's counters.
///
/// ```
/// use logxide::writer::Writer;
/// use logxide::sink::MemorySink;
/// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
/// writer.handle().enqueue(b"{}\n").unwrap();
/// let report = writer.shutdown(None);
/// let m = report.metrics;
/// assert_eq!((m.enqueued, m.written, m.pending), (1, 1, 0));
/// assert_eq!(m.enqueued, m.written + m.dropped + m.failed + m.pending);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Records handed to the writer (every call of `enqueue`).
    pub enqueued: u64,
    /// Records written by at least one sink that takes them ([`Sink::accepts`]: a filter
    /// that left a record out did not write it), or taken by no sink.
    ///
    /// [`Sink::accepts`]: crate::sink::Sink::accepts
    pub written: u64,
    /// Records dropped, all reasons.
    pub dropped: u64,
    /// Records dropped, by reason.
    pub dropped_by: DroppedBy,
    /// Records every sink that takes them failed to write — or that the writer could not
    /// format (a captured record the capturing encoder did not make: a bug; see the last
    /// error).
    pub failed: u64,
    /// Records neither written, dropped nor failed yet: in the queue or the writer's hands.
    pub pending: u64,
    /// Failed sink calls (errors and caught panics), all sinks, the writer thread's panics,
    /// the batches and flushes it gave up after two panics in a row, the captured records it
    /// could not format, and the `warn` hook's panics (caught):
    /// [`WriterHandle::last_error`](super::WriterHandle::last_error) holds the last one's text.
    pub errors: u64,
    /// Times the writer thread was restarted after a panic.
    pub restarts: u64,
    /// Batches delivered to the sinks.
    pub batches: u64,
    /// Bytes of the records counted `written`.
    pub bytes: u64,
    /// The most records seen waiting at once (queue and writer buffer).
    pub high_water: u64,
    /// Reports made by the `warn` policy.
    pub warnings: u64,
    /// Times a producer woke the sleeping writer thread (each costs that producer a `futex`
    /// call). Low under a steady stream of records: the writer then polls (trigger mode).
    #[serde(default)]
    pub wakeups: u64,
    /// Running, fallback or stopped.
    pub state: WriterState,
    /// Per-sink counters, in the order the sinks were added.
    pub sinks: Vec<SinkMetrics>,
}

#[derive(Default)]
pub(crate) struct Counters {
    /// Records counted as enqueued that never entered a lane (dropped at once, or written
    /// synchronously).
    other: CachePadded<AtomicU64>,
    dropped: CachePadded<[AtomicU64; 7]>,
    pub(crate) written: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) high_water: AtomicU64,
    pub(crate) warnings: AtomicU64,
    pub(crate) wakeups: AtomicU64,
    pub(crate) sinks: Mutex<Vec<SinkMetrics>>,
}

impl Counters {
    /// The per-sink counts (a poisoned lock is taken over: they are plain numbers).
    pub(crate) fn sink_stats(&self) -> std::sync::MutexGuard<'_, Vec<SinkMetrics>> {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a sink call's outcome for sink `i`: records `written` and `failed`, and its
    /// error (if any) as the sink's last.
    pub(crate) fn count_sink(&self, i: usize, written: u64, failed: u64, error: Option<String>) {
        let mut stats = self.sink_stats();
        let s = &mut stats[i];
        s.written += written;
        s.failed += failed;
        if error.is_some() {
            s.errors += 1;
            s.last_error = error;
        }
    }

    pub(crate) fn with_sinks(names: Vec<String>) -> Self {
        let c = Counters::default();
        *c.sinks.lock().unwrap() = names
            .into_iter()
            .map(|name| SinkMetrics {
                name,
                written: 0,
                failed: 0,
                errors: 0,
                last_error: None,
            })
            .collect();
        c
    }

    /// Counts a record that will not enter a lane (before its outcome is counted).
    #[inline]
    pub(crate) fn count_other(&self) {
        self.other.fetch_add(1, SeqCst);
    }

    #[inline]
    pub(crate) fn count_dropped(&self, reason: DropReason, n: u64) {
        self.dropped[reason.index()].fetch_add(n, SeqCst);
    }

    pub(crate) fn dropped_by(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(SeqCst)
    }

    /// Records counted so far and not yet written, dropped or failed, where `published`
    /// reads the lanes' count (read like a snapshot: outcomes first, `enqueued` last).
    pub(crate) fn pending(&self, published: impl FnOnce() -> u64) -> u64 {
        let settled = self.written.load(SeqCst)
            + self.failed.load(SeqCst)
            + self.dropped.iter().map(|d| d.load(SeqCst)).sum::<u64>();
        (published() + self.other.load(SeqCst)).saturating_sub(settled)
    }

    pub(crate) fn raise_high_water(&self, seen: u64) {
        self.high_water.fetch_max(seen, Relaxed);
    }

    /// A snapshot; `published` reads what the lanes published. With `may_block` false (a
    /// forked child, where a lock the parent's writer thread held at the fork stays held
    /// forever) the per-sink counters are read only if their lock is free, otherwise left
    /// out.
    pub(crate) fn snapshot(
        &self,
        state: WriterState,
        may_block: bool,
        published: impl FnOnce() -> u64,
    ) -> MetricsSnapshot {
        // Outcomes first, `enqueued` last: every outcome counted here was enqueued before,
        // so `pending` cannot go negative.
        let written = self.written.load(SeqCst);
        let failed = self.failed.load(SeqCst);
        let d = |r| self.dropped_by(r);
        let dropped_by = DroppedBy {
            queue_full: d(DropReason::QueueFull),
            evicted: d(DropReason::Evicted),
            timeout: d(DropReason::Timeout),
            shutdown: d(DropReason::Shutdown),
            invalid: d(DropReason::Invalid),
            forked: d(DropReason::Forked),
            panicked: d(DropReason::Panicked),
        };
        let enqueued = published() + self.other.load(SeqCst);
        let dropped = dropped_by.total();
        MetricsSnapshot {
            enqueued,
            written,
            dropped,
            dropped_by,
            failed,
            pending: enqueued.saturating_sub(written + dropped + failed),
            errors: self.errors.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
            batches: self.batches.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            high_water: self.high_water.load(Relaxed),
            warnings: self.warnings.load(Relaxed),
            wakeups: self.wakeups.load(Relaxed),
            state,
            sinks: if may_block {
                self.sink_stats().clone()
            } else {
                match self.sinks.try_lock() {
                    Ok(sinks) => sinks.clone(),
                    Err(TryLockError::Poisoned(e)) => e.into_inner().clone(),
                    Err(TryLockError::WouldBlock) => Vec::new(),
                }
            },
        }
    }
}
