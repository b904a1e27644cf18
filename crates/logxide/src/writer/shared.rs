//! State shared by the producers, the writer thread and the owner, and the protocols between
//! them.
//!
//! # States
//!
//! `state` moves `RUNNING → FALLBACK → CLOSED` or `RUNNING → CLOSED`, never back.
//! Producers read it (one relaxed load) on every enqueue; anything but `RUNNING` sends them to
//! the slow path.
//!
//! In a forked child (any state `→ ORPHANING → ORPHANED`, in the child only) the writer
//! thread does not exist and any lock it held at the fork stays held. Producers also compare
//! the process's fork generation (one more relaxed load) with the one the writer was built
//! in; on a mismatch [`Shared::orphan`] makes the writer stand down before anything else
//! happens in the child: no lock of the writer (`core`, `done_lock`, the queue's `space`) is
//! taken and the queue is never popped there again — its records are the parent's, which
//! the parent writes.
//!
//! # Waking the writer thread
//!
//! Producers wake it through the `enqueued` counter, a [`Doorbell`](super::doorbell); its
//! module documents why no wake-up is lost.
//!
//! # Closing (no record stranded in the queue)
//!
//! `shutdown` stores `CLOSED` and then wakes the writer, which drains the queue under the
//! `core` lock, closes the sinks and marks the core closed. A producer that passed the state
//! check just before `CLOSED` may push after the writer's last pop. So every producer, after
//! its push, counts it (the doorbell's `fetch_add`, `SeqCst`) and re-reads `state` (`SeqCst`): if it
//! is no longer `RUNNING` it drains the queue itself under the `core` lock
//! ([`Shared::help_drain`]): records it pops are written if the sinks are still open,
//! otherwise counted as dropped (`shutdown`).
//!
//! Why that suffices: after reading `CLOSED`, the writer loads `enqueued` (`SeqCst`) before
//! its last pops. If a producer's re-read of `state` saw `RUNNING`, that read — and the
//! producer's increment before it — precede the store of `CLOSED` in the `SeqCst` order, and
//! so precede the writer's load of `enqueued`, which therefore reads that increment or a later
//! one in its modification order (all read-modify-writes continue the release sequence): the
//! push, sequenced before the increment, happens before the writer's last pops, which see it.

use std::any::Any;
use std::cell::Cell;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::config::{BoxedSink, Settings};
use super::metrics::{Counters, DropReason, WriterState};
use super::queue::{Item, Queue};
use crate::encode::capture;
use crate::sink::{Batch, SinkError};

pub(crate) const RUNNING: u8 = 0;
pub(crate) const FALLBACK: u8 = 1;
pub(crate) const CLOSED: u8 = 2;
/// A forked child is making the inherited writer stand down ([`Shared::orphan`]).
pub(crate) const ORPHANING: u8 = 3;
/// Inherited through `fork()`: records are dropped (`forked`), nothing waits for the thread.
pub(crate) const ORPHANED: u8 = 4;

/// The largest batch the writer gathers before handing it to the sinks.
pub(crate) const MAX_BATCH_BYTES: usize = 1 << 20;

pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) queue: Queue,
    pub(crate) counters: Counters,
    pub(crate) state: CachePadded<AtomicU8>,
    /// The fork generation of the process that built the writer (see `logger::fork`).
    pub(crate) generation: u64,
    pub(crate) writer_thread: OnceLock<Thread>,
    /// Set by `flush()` / `trigger()` / a blocked producer: "write now".
    pub(crate) write_now: AtomicBool,
    /// Barrier tickets: the last issued and the last completed.
    pub(crate) next_ticket: AtomicU64,
    pub(crate) barrier_done: AtomicU64,
    /// Highest ticket of a barrier evicted by `drop_oldest` (completed at the next delivery).
    pub(crate) evicted_barrier: AtomicU64,
    pub(crate) done_lock: Mutex<()>,
    pub(crate) done_cv: Condvar,
    /// The writer thread has exited.
    pub(crate) worker_exited: AtomicBool,
    pub(crate) core: Mutex<Core>,
    pub(crate) last_error: Mutex<Option<String>>,
}

/// What only the delivering thread touches: the sinks and the batch being delivered. It lives
/// here, outside the writer thread's stack, so a panic loses none of it.
pub(crate) struct Core {
    sinks: Vec<BoxedSink>,
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// The severity of each record of the batch, parallel to `ends`.
    levels: Vec<u8>,
    /// The sink the current batch goes to next (a restart resumes here).
    next_sink: usize,
    /// A delivery is under way: still set after a panic interrupted it.
    delivering: bool,
    /// The most records of the current batch any sink has written so far.
    best: usize,
    /// The smallest batch (bytes) any sink wants gathered before delivery.
    pub(crate) coalesce: usize,
    /// Bytes popped from the queue but not yet released from its byte bound.
    unreleased: usize,
    /// Highest barrier ticket popped; completed after the next delivery and sink flush.
    pending_barrier: u64,
    pub(crate) closed: bool,
    /// Catch sink panics and count them as failed writes (fallback mode and callers'
    /// threads). The writer thread leaves this off so that a panic restarts it.
    pub(crate) catch_panics: bool,
    /// Formats captured records as they join the batch.
    expander: capture::Expander,
}

impl Shared {
    pub(crate) fn new(settings: Settings, sinks: Vec<BoxedSink>) -> Self {
        let names = sinks.iter().map(|s| s.name().to_owned()).collect();
        let coalesce = sinks.iter().map(|s| s.coalesce_bytes()).min().unwrap_or(0);
        Shared {
            queue: Queue::new(settings.capacity, settings.max_bytes),
            settings,
            counters: Counters::with_sinks(names),
            state: CachePadded::new(AtomicU8::new(RUNNING)),
            // Also registers the fork handler, before the writer thread exists.
            generation: crate::logger::fork::generation(),
            writer_thread: OnceLock::new(),
            write_now: AtomicBool::new(false),
            next_ticket: AtomicU64::new(0),
            barrier_done: AtomicU64::new(0),
            evicted_barrier: AtomicU64::new(0),
            done_lock: Mutex::new(()),
            done_cv: Condvar::new(),
            worker_exited: AtomicBool::new(false),
            core: Mutex::new(Core {
                sinks,
                buf: Vec::with_capacity(64 << 10),
                ends: Vec::new(),
                levels: Vec::new(),
                next_sink: 0,
                delivering: false,
                best: 0,
                coalesce: coalesce.min(MAX_BATCH_BYTES),
                unreleased: 0,
                pending_barrier: 0,
                closed: false,
                catch_panics: false,
                expander: capture::Expander::default(),
            }),
            last_error: Mutex::new(None),
        }
    }

    pub(crate) fn state(&self) -> WriterState {
        if self.forked() {
            return WriterState::Forked;
        }
        match self.state.load(SeqCst) {
            RUNNING => WriterState::Running,
            FALLBACK => WriterState::Fallback,
            _ => WriterState::Stopped,
        }
    }

    /// True in a process forked from the one that built this writer (one relaxed load).
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        crate::logger::fork::current() != self.generation
    }

    /// Makes a writer inherited through `fork()` stand down, once per child process: the
    /// records the parent had in flight are counted as dropped (`forked`) here — the child's
    /// copies are never written, the parent writes its own — and one reference is leaked so
    /// that the inherited sinks are never dropped in the child (a sink's destructor could
    /// write, or truncate the parent's mapped file). Threads that find another one doing it
    /// wait for it, so that their own records are counted after it.
    ///
    /// Takes no lock: a lock the parent's writer thread held at the fork is never released
    /// in the child.
    #[cold]
    pub(crate) fn orphan(self: &Arc<Self>) {
        loop {
            match self.state.load(SeqCst) {
                ORPHANED => return,
                ORPHANING => std::thread::yield_now(),
                s => {
                    if self
                        .state
                        .compare_exchange(s, ORPHANING, SeqCst, SeqCst)
                        .is_ok()
                    {
                        break;
                    }
                }
            }
        }
        std::mem::forget(Arc::clone(self));
        let in_flight = self.counters.pending();
        self.counters.count_dropped(DropReason::Forked, in_flight);
        self.state.store(ORPHANED, SeqCst);
    }

    /// The last error, without waiting for the lock in a forked child.
    pub(crate) fn last_error(&self) -> Option<String> {
        if self.forked() {
            return match self.last_error.try_lock() {
                Ok(e) => e.clone(),
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().clone(),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
        }
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn lock_core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn unpark_writer(&self) {
        if let Some(t) = self.writer_thread.get() {
            t.unpark();
        }
    }

    /// Asks the writer to write everything queued now.
    pub(crate) fn request_write(&self) {
        self.write_now.store(true, SeqCst);
        self.unpark_writer();
    }

    pub(crate) fn record_error(&self, msg: String) {
        self.counters.errors.fetch_add(1, Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    }

    /// Marks every barrier up to `ticket` complete and wakes `flush()` callers.
    pub(crate) fn complete_barriers(&self, ticket: u64) {
        if ticket == 0 {
            return;
        }
        self.barrier_done.fetch_max(ticket, SeqCst);
        let _g = self.done_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.done_cv.notify_all();
    }

    /// Waits (on the `done` condition) until `cond()` holds or `deadline` passes; true if it
    /// holds. Whoever changes what `cond` reads notifies `done_cv`; a 10 ms re-check guards
    /// against conditions changed without a notification (state changes).
    pub(crate) fn wait_until(&self, deadline: Option<Instant>, cond: impl Fn() -> bool) -> bool {
        let mut guard = self.done_lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if cond() {
                return true;
            }
            let mut wait = Duration::from_millis(10);
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                wait = wait.min(d - now);
            }
            guard = self
                .done_cv
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Counts an item evicted by `drop_oldest` and recycles it.
    pub(crate) fn evicted(&self, item: Item) {
        match item {
            Item::Record(buf, _) | Item::Captured(buf, _) => {
                self.queue.release(buf.len());
                self.counters.count_dropped(DropReason::Evicted, 1);
                self.queue.recycle(buf);
            }
            Item::Barrier(t) => {
                // Everything before the barrier has left the queue; what the writer still holds
                // is delivered at its next pass, which completes this barrier.
                self.evicted_barrier.fetch_max(t, SeqCst);
                self.request_write();
            }
        }
    }

    /// Drains the queue from a caller's thread (fallback mode, or a push that raced with
    /// shutdown). Records are written if the sinks are still open, otherwise dropped.
    pub(crate) fn help_drain(&self) {
        let mut core = self.lock_core();
        core.catch_panics = true;
        while core.pop_and_deliver(self, true) > 0 {}
        core.finish_barriers(self);
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

thread_local! {
    /// This thread is inside a sink call (holding the core lock).
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs a sink's method for the writer. Whatever a sink (or the panic
/// hook running inside one) does then must not wait for the writer — the writer is this very
/// call — so enqueues never block, and `flush` and `write_sync` do not wait.
pub(crate) fn in_sink_call() -> bool {
    IN_SINK.get()
}

/// Clears [`IN_SINK`] when the sink call ends, also by unwinding.
struct SinkCall(bool);

impl Drop for SinkCall {
    fn drop(&mut self) {
        IN_SINK.set(self.0);
    }
}

/// Runs a sink call `f`; with `catch`, a panic becomes `Err` with the panic's message
/// (without it, the panic propagates so that the writer thread restarts).
fn guarded<T>(catch: bool, f: impl FnOnce() -> T) -> Result<T, io::Error> {
    let _call = SinkCall(IN_SINK.replace(true));
    if !catch {
        return Ok(f());
    }
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|p| io::Error::other(format!("sink panicked: {}", panic_message(&*p))))
}

impl Core {
    /// Appends one record (without its `\n`) of severity `level` to the batch being gathered.
    pub(crate) fn push_record(&mut self, shared: &Shared, body: &[u8], level: u8) {
        self.resume(shared);
        self.buf.extend_from_slice(body);
        self.buf.push(b'\n');
        self.ends.push(self.buf.len());
        self.levels.push(level);
    }

    pub(crate) fn buffered_records(&self) -> usize {
        self.ends.len()
    }

    /// Pops everything queued, delivering in batches of up to [`MAX_BATCH_BYTES`]; stops early
    /// (without delivering the rest) only when `force` is false and the batch is below the
    /// sinks' coalescing size. Returns the number of items popped.
    ///
    /// Takes at most `capacity` items — everything queued when it started — so that the
    /// writer returns to its loop (timers, warnings) even while producers keep the queue full.
    pub(crate) fn pop_and_deliver(&mut self, shared: &Shared, force: bool) -> usize {
        self.resume(shared);
        shared
            .counters
            .raise_high_water((shared.queue.len() + self.ends.len()) as u64);
        let limit = shared.queue.capacity();
        let mut popped = 0;
        loop {
            let mut got_any = false;
            while self.buf.len() < MAX_BATCH_BYTES && popped < limit {
                let Some(item) = shared.queue.pop() else {
                    break;
                };
                got_any = true;
                popped += 1;
                match item {
                    Item::Record(rec, level) => {
                        self.buf.extend_from_slice(&rec);
                        self.ends.push(self.buf.len());
                        self.levels.push(level);
                        self.unreleased += rec.len();
                        shared.queue.recycle(rec);
                    }
                    Item::Captured(rec, level) => {
                        self.expander.expand(&rec, &mut self.buf);
                        self.ends.push(self.buf.len());
                        self.levels.push(level);
                        self.unreleased += rec.len();
                        shared.queue.recycle(rec);
                    }
                    Item::Barrier(t) => {
                        self.pending_barrier = self.pending_barrier.max(t);
                        // Records before the barrier must reach the sinks now.
                        self.release(shared);
                        self.deliver(shared);
                        self.flush_sinks(shared);
                        self.finish_barriers(shared);
                    }
                }
                if self.unreleased >= 16 << 10 {
                    self.release(shared);
                }
            }
            self.release(shared);
            if !got_any || popped >= limit {
                if popped >= limit && self.buf.len() >= self.coalesce.max(1) {
                    self.deliver(shared);
                }
                break;
            }
            if self.buf.len() >= MAX_BATCH_BYTES || self.buf.len() >= self.coalesce.max(1) {
                self.deliver(shared);
            }
        }
        if force {
            self.deliver(shared);
        }
        popped
    }

    /// Returns popped bytes to the queue's byte bound and wakes producers waiting for space.
    fn release(&mut self, shared: &Shared) {
        shared.queue.release(self.unreleased);
        self.unreleased = 0;
        shared.queue.notify_space();
    }

    /// Finishes a batch whose delivery was interrupted (by a panic) before anything is added
    /// to it — sinks already served must not see its records twice nor miss new ones — and
    /// completes the flush barriers it carried.
    pub(crate) fn resume(&mut self, shared: &Shared) {
        if self.delivering || self.pending_barrier > 0 {
            self.deliver(shared);
            if self.pending_barrier > 0 {
                self.flush_sinks(shared);
            }
            self.finish_barriers(shared);
        }
    }

    /// Hands the gathered batch to every sink not yet served. With `catch`, a panicking sink
    /// counts as a failed write; without it, the panic propagates (the writer thread restarts
    /// and resumes at the same sink).
    pub(crate) fn deliver(&mut self, shared: &Shared) {
        let catch = self.catch_panics;
        let n = self.ends.len();
        if n == 0 {
            return;
        }
        if self.closed {
            shared
                .counters
                .count_dropped(DropReason::Shutdown, n as u64);
            self.clear_batch();
            return;
        }
        self.delivering = true;
        let batch = Batch::with_levels(&self.buf, &self.ends, &self.levels);
        while self.next_sink < self.sinks.len() {
            let i = self.next_sink;
            let sink = &mut self.sinks[i];
            let result = guarded(catch, || sink.write_batch(&batch))
                .unwrap_or_else(|e| Err(SinkError::new(e)));
            let written = match &result {
                Ok(()) => n,
                Err(e) => e.written.min(n),
            };
            {
                let mut stats = shared
                    .counters
                    .sinks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let s = &mut stats[i];
                s.written += written as u64;
                s.failed += (n - written) as u64;
                if let Err(e) = &result {
                    s.errors += 1;
                    s.last_error = Some(e.to_string());
                }
            }
            if let Err(e) = result {
                shared.record_error(format!("{}: {e}", self.sinks[i].name()));
            }
            self.best = self.best.max(written);
            self.next_sink += 1;
        }
        let c = &shared.counters;
        c.written.fetch_add(self.best as u64, SeqCst);
        c.failed.fetch_add((n - self.best) as u64, SeqCst);
        c.batches.fetch_add(1, Relaxed);
        c.bytes
            .fetch_add(batch.prefix_bytes(self.best) as u64, Relaxed);
        self.clear_batch();
    }

    fn clear_batch(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.levels.clear();
        self.next_sink = 0;
        self.delivering = false;
        self.best = 0;
        if self.buf.capacity() > 4 * MAX_BATCH_BYTES {
            self.buf.shrink_to(MAX_BATCH_BYTES);
        }
    }

    /// Flushes every sink (errors are counted, not fatal).
    pub(crate) fn flush_sinks(&mut self, shared: &Shared) {
        if !self.closed {
            self.each_sink(shared, "flush", |sink| sink.flush());
        }
    }

    /// Calls `op` on every sink, counting errors (and, with `catch_panics`, panics) as sink
    /// errors named `what`.
    fn each_sink(
        &mut self,
        shared: &Shared,
        what: &str,
        op: impl Fn(&mut BoxedSink) -> io::Result<()>,
    ) {
        let catch = self.catch_panics;
        for sink in &mut self.sinks {
            let result = guarded(catch, || op(sink)).unwrap_or_else(Err);
            if let Err(e) = result {
                shared.record_error(format!("{}: {what}: {e}", sink.name()));
            }
        }
    }

    /// Completes the barriers whose records have been delivered and flushed.
    pub(crate) fn finish_barriers(&mut self, shared: &Shared) {
        let evicted = shared.evicted_barrier.load(SeqCst);
        let t = self.pending_barrier.max(evicted);
        if t > shared.barrier_done.load(SeqCst) {
            if evicted > self.pending_barrier {
                // An evicted barrier's records may still be in our buffer: deliver them first.
                self.deliver(shared);
                self.flush_sinks(shared);
            }
            shared.complete_barriers(t);
        }
        self.pending_barrier = 0;
    }

    /// Delivers what is left, closes the sinks; later records are dropped.
    pub(crate) fn close(&mut self, shared: &Shared) {
        self.deliver(shared);
        self.each_sink(shared, "close", |sink| sink.close());
        self.closed = true;
        self.finish_barriers(shared);
    }
}
