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
//! happens in the child: no lock of the writer (`core`, `done_lock`, a lane's) is taken and
//! no lane is read there again — its records are the parent's, which the parent writes.
//!
//! # Waking the writer thread
//!
//! Producers wake it through the [`Doorbell`]; its module documents why no wake-up is lost.
//!
//! # Closing (no record stranded in a lane)
//!
//! A producer that read `RUNNING` just before the state changed may publish after the
//! writer's last look at the lanes. So whoever changes the state sets the doorbell's
//! `ATTENTION` first ([`Shared::leave_running`]), and whoever drains for the last time (the
//! writer thread at `CLOSED`, the supervisor at `FALLBACK`) runs the doorbell's heavy fence
//! after it saw the new state and before it looks at the lanes. Every producer, after
//! publishing, loads the doorbell: if it sees `ATTENTION` and the state is no longer
//! `RUNNING`, it drains the lanes itself under the `core` lock ([`Shared::help_drain`]):
//! records it takes are written if the sinks are still open, otherwise counted as dropped
//! (`shutdown`). By the doorbell's argument, a producer that did not see `ATTENTION` had
//! its record visible to that last look. Either way every record is taken by someone.

use std::any::Any;
use std::cell::Cell;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::config::{BoxedSink, Mode, Settings};
use super::doorbell::Doorbell;
use super::lane::{Lane, CAPTURED};
use super::metrics::{Counters, DropReason, FailuresSeen, WriterState};
use super::queue::{Collect, Cursor, Queue};
use super::worker::WarnState;
use crate::encode::capture::{self, ProducerTime};
use crate::encode::guard::{text, Checked};
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
    /// How producers wake the writer and learn of state changes.
    pub(crate) bell: Doorbell,
    pub(crate) state: CachePadded<AtomicU8>,
    /// The fork generation of the process that built the writer (see `logger::fork`).
    pub(crate) generation: u64,
    pub(crate) writer_thread: OnceLock<Thread>,
    /// Set by `flush()` / `trigger()` / a blocked producer: "write now".
    pub(crate) write_now: AtomicBool,
    /// `flush()` tickets: the last issued and the last completed. A ticket is complete once
    /// everything the lanes had published when the writer saw it is written and the sinks
    /// flushed.
    pub(crate) next_ticket: AtomicU64,
    pub(crate) barrier_done: AtomicU64,
    pub(crate) done_lock: Mutex<()>,
    pub(crate) done_cv: Condvar,
    /// The writer thread has exited.
    pub(crate) worker_exited: AtomicBool,
    pub(crate) core: Mutex<Core>,
    pub(crate) last_error: Mutex<Option<String>>,
    /// What the `warn` policy reported so far (see [`report_drops`](super::worker::report_drops)).
    pub(crate) warn: Mutex<WarnState>,
    /// The failures `flush_checked` (or a shutdown's report) reported so far; shared with
    /// the [`ShutdownReport`](super::ShutdownReport)s, which report after the writer.
    pub(crate) checked: Arc<Mutex<FailuresSeen>>,
}

/// What only the delivering thread touches: the sinks and the batch being delivered. It lives
/// here, outside the writer thread's stack, so a panic loses none of it.
pub(crate) struct Core {
    sinks: Vec<BoxedSink>,
    batch: Gathered,
    /// The sink the current batch goes to next (a restart resumes here).
    next_sink: usize,
    /// A delivery is under way: still set after a panic interrupted it.
    delivering: bool,
    /// How many leading records of the current batch each sink wrote (those served so far).
    wrote: Vec<usize>,
    /// The smallest batch (bytes) any sink wants gathered before delivery.
    pub(crate) coalesce: usize,
    /// The highest `flush()` ticket whose records are in the batch; completed after its
    /// delivery and a flush of the sinks.
    pending_barrier: u64,
    pub(crate) closed: bool,
    /// How many sinks' `close` was called, in order (see [`close`](Core::close)).
    next_close: usize,
    /// Catch sink panics and count them as failed writes (fallback mode and callers'
    /// threads). The writer thread leaves this off so that a panic restarts it.
    pub(crate) catch_panics: bool,
    /// Reads the lanes.
    cursor: Cursor,
    /// The sink call under way, and the panics in a row that interrupted one.
    panics: Panics,
    /// A sink whose flush is skipped once (it panicked [`POISON_PANICS`] times in a row).
    skip_flush: Option<usize>,
}

/// The sink call under way on the delivering thread — what a panic interrupted — and the
/// sink call that panics interrupted, with how many in a row (see
/// [`after_panic`](Core::after_panic)).
#[derive(Default)]
struct Panics {
    call: Option<SinkCallAt>,
    strikes: Option<(SinkCallAt, u32)>,
}

impl Panics {
    #[inline]
    fn enter(&mut self, at: SinkCallAt) {
        self.call = Some(at);
    }

    /// The sink call `at` returned (with or without an error): the panics in a row there, if
    /// any, are over.
    #[inline]
    fn returned(&mut self, at: SinkCallAt) {
        self.call = None;
        if self.strikes.is_some_and(|(s, _)| s == at) {
            self.strikes = None;
        }
    }
}

/// A call of one sink's (by its index) that a panic may interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SinkCallAt {
    /// `write_batch` with the batch in hand.
    Write(usize),
    /// `flush`.
    Flush(usize),
}

/// Panics in a row in the same sink call — the same batch to the same sink, or the same
/// sink's flush — after which the writer gives up that call: the batch is counted failed for
/// that sink, the flush skipped. One retry (a restart) survives a passing panic; a batch that
/// makes the sink panic each time is not retried at every restart until none is left.
pub(crate) const POISON_PANICS: u32 = 2;

/// The batch being gathered: the records' text one after the other, where each ends, and
/// each one's severity.
struct Gathered {
    buf: Vec<u8>,
    ends: Vec<usize>,
    levels: Vec<u8>,
    /// Formats captured records as they join the batch.
    expander: capture::Expander,
    /// Catch a panic formatting a captured record: the record is left out and counted in
    /// `unformatted` (see [`Core::take`]).
    careful: bool,
    /// Captured records left out because formatting them panicked, and the last panic's text.
    unformatted: u64,
    unformatted_error: Option<String>,
}

/// How much a [`Gathered`] held: what it goes back to when a take is undone.
#[derive(Clone, Copy)]
struct Mark {
    bytes: usize,
    records: usize,
}

impl Gathered {
    fn mark(&self) -> Mark {
        Mark {
            bytes: self.buf.len(),
            records: self.ends.len(),
        }
    }

    /// Forgets what was gathered since `mark` (and the records left out since).
    fn undo(&mut self, mark: Mark) {
        self.buf.truncate(mark.bytes);
        self.ends.truncate(mark.records);
        self.levels.truncate(mark.records);
        self.unformatted = 0;
        self.unformatted_error = None;
    }

    /// Formats a captured record, catching a panic; false (nothing appended, the record
    /// counted in `unformatted`) if it panicked.
    #[cold]
    fn expand_caught(&mut self, body: &[u8], time: &mut ProducerTime) -> bool {
        let start = self.buf.len();
        let (expander, buf) = (&mut self.expander, &mut self.buf);
        match catch_unwind(AssertUnwindSafe(|| expander.expand_from(body, buf, time))) {
            Ok(()) => true,
            Err(payload) => {
                self.buf.truncate(start);
                self.unformatted += 1;
                self.unformatted_error = Some(panic_message(&*payload));
                false
            }
        }
    }
}

impl Collect for Gathered {
    #[inline(always)]
    fn record(&mut self, body: &[u8], level: u8, flags: u8, time: &mut ProducerTime) {
        if flags & CAPTURED == 0 {
            self.buf.extend_from_slice(body);
        } else if !self.careful {
            self.expander.expand_from(body, &mut self.buf, time);
        } else if !self.expand_caught(body, time) {
            return;
        }
        self.ends.push(self.buf.len());
        self.levels.push(level);
    }

    #[inline]
    fn room(&self) -> bool {
        self.buf.len() < MAX_BATCH_BYTES
    }
}

impl Shared {
    pub(crate) fn new(settings: Settings, sinks: Vec<BoxedSink>) -> Self {
        let names = sinks.iter().map(|s| s.name().to_owned()).collect();
        let coalesce = sinks.iter().map(|s| s.coalesce_bytes()).min().unwrap_or(0);
        let wrote = vec![0; sinks.len()];
        Shared {
            queue: Queue::new(settings.capacity, settings.max_bytes),
            settings,
            counters: Counters::with_sinks(names),
            bell: Doorbell::new(),
            state: CachePadded::new(AtomicU8::new(RUNNING)),
            // Also registers the fork handler, before the writer thread exists.
            generation: crate::logger::fork::generation(),
            writer_thread: OnceLock::new(),
            write_now: AtomicBool::new(false),
            next_ticket: AtomicU64::new(0),
            barrier_done: AtomicU64::new(0),
            done_lock: Mutex::new(()),
            done_cv: Condvar::new(),
            worker_exited: AtomicBool::new(false),
            core: Mutex::new(Core {
                sinks,
                batch: Gathered {
                    buf: Vec::with_capacity(64 << 10),
                    ends: Vec::new(),
                    levels: Vec::new(),
                    expander: capture::Expander::default(),
                    careful: false,
                    unformatted: 0,
                    unformatted_error: None,
                },
                next_sink: 0,
                delivering: false,
                wrote,
                coalesce: coalesce.min(MAX_BATCH_BYTES),
                pending_barrier: 0,
                closed: false,
                next_close: 0,
                catch_panics: false,
                cursor: Cursor::default(),
                panics: Panics::default(),
                skip_flush: None,
            }),
            last_error: Mutex::new(None),
            warn: Mutex::new(WarnState::default()),
            checked: Arc::default(),
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
        let in_flight = self.counters.pending(|| self.queue.published());
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

    /// Tests: makes the writer date captured records `ahead` nanoseconds after the OS clock
    /// (an anchor that far off: the error a calibrated tick clock can have), for the next
    /// tenth of a second (the anchor's lifetime).
    #[cfg(test)]
    pub(crate) fn skew_clock(&self, ahead: u64) {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let ticks = capture::clock().raw();
        self.lock_core()
            .batch
            .expander
            .set_anchor(ticks, wall + ahead);
    }

    pub(crate) fn lock_core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The core lock, waited for until `deadline` (for ever without one); `None` if another
    /// thread still holds it then. (A `Mutex` cannot be waited for with a timeout: this
    /// looks again every millisecond at most.)
    pub(crate) fn lock_core_until(
        &self,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'_, Core>> {
        if deadline.is_none() {
            return Some(self.lock_core());
        }
        let mut pause = Duration::from_micros(20);
        loop {
            match self.core.try_lock() {
                Ok(core) => return Some(core),
                Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
            std::thread::sleep(wait_time(deadline, pause)?);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }

    pub(crate) fn unpark_writer(&self) {
        if let Some(t) = self.writer_thread.get() {
            t.unpark();
        }
    }

    /// True on this writer's own thread — also outside sink calls, where it runs the `warn`
    /// hook: what runs there must not wait for the writer (see [`in_sink_call`]).
    pub(crate) fn on_writer_thread(&self) -> bool {
        self.writer_thread
            .get()
            .is_some_and(|t| t.id() == std::thread::current().id())
    }

    /// Asks the writer to write everything queued now.
    pub(crate) fn request_write(&self) {
        self.write_now.store(true, SeqCst);
        self.unpark_writer();
    }

    /// A producer found the queue full and does not wait for space (`drop_newest`, `warn`,
    /// `drop_oldest`). In trigger mode the writer writes at once: the queue may be full by
    /// its byte bound (or by the credits idle threads hold) with fewer than `batch_size`
    /// records, a batch that never fills — the writer would sleep until the flush interval,
    /// while every record is refused or evicts an older one. Once per pass of the writer
    /// (which clears the request), not once per refused record. Loop mode writes at its next
    /// tick; manual mode waits for its trigger, as documented.
    pub(crate) fn write_when_full(&self) {
        if self.settings.mode == Mode::Trigger && !self.write_now.load(Relaxed) {
            self.request_write();
        }
    }

    pub(crate) fn record_error(&self, msg: String) {
        self.counters.errors.fetch_add(1, Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    }

    /// Counts `n` captured records that could not be formatted (`why`: the panic's text) as
    /// failed, and says so in the last error.
    pub(crate) fn count_unformatted(&self, n: u64, why: &str) {
        self.counters.failed.fetch_add(n, SeqCst);
        let which = if n == 1 {
            "a captured record".to_owned()
        } else {
            format!("{n} captured records")
        };
        self.record_error(format!(
            "writer: {which} could not be formatted ({why}): counted failed"
        ));
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
            let Some(wait) = wait_time(deadline, Duration::from_millis(10)) else {
                return false;
            };
            guard = self
                .done_cv
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Leaves `RUNNING` for `to` (`FALLBACK` or `CLOSED`), telling producers to look at the
    /// state after each record (see "Closing"). False if the state was not `RUNNING`
    /// (`CLOSED` is still stored over `FALLBACK`).
    pub(crate) fn leave_running(&self, to: u8) -> bool {
        self.bell.attention();
        match self.state.compare_exchange(RUNNING, to, SeqCst, SeqCst) {
            Ok(_) => true,
            Err(FALLBACK) if to == CLOSED => {
                self.state.store(CLOSED, SeqCst);
                false
            }
            Err(_) => false,
        }
    }

    /// A snapshot of the counters; `enqueued` is read last (see the `metrics` module).
    pub(crate) fn metrics(&self, state: WriterState, may_block: bool) -> super::MetricsSnapshot {
        self.counters
            .snapshot(state, may_block, || self.queue.published())
    }

    /// Drains the lanes from a caller's thread (fallback mode, or a record that raced with
    /// a state change): everything published before is written if the sinks are still
    /// open, otherwise counted as dropped.
    pub(crate) fn help_drain(&self) {
        let mut core = self.lock_core();
        core.catch_panics = true;
        core.drain(self);
        core.finish_barriers(self);
    }

    /// The writer thread's last drain and the close of the sinks, once the state is
    /// `CLOSED`; sink panics are caught if `catch_panics` (else they restart the writer,
    /// whose next run resumes the close).
    pub(crate) fn drain_and_close(&self, catch_panics: bool) {
        // Records published by producers that still saw the state before (see the module docs).
        self.bell.heavy();
        let mut core = self.lock_core();
        core.catch_panics |= catch_panics;
        core.drain_all(self);
        core.close(self);
    }
}

/// `d` after `t`, or a time about 136 years on where that is past the clock's range (a
/// duration such as `Duration::MAX`, meaning "never"): adding it would panic.
pub(crate) fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(t)
}

/// The deadline of a wait of `timeout` from now: `None` (no deadline) for no timeout, or
/// for one past the clock's range (which never expires).
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// How long to wait next: `at_most`, or less if `deadline` comes sooner; `None` once it
/// has passed.
pub(crate) fn wait_time(deadline: Option<Instant>, at_most: Duration) -> Option<Duration> {
    match deadline {
        None => Some(at_most),
        Some(d) => {
            let now = Instant::now();
            (now < d).then(|| at_most.min(d - now))
        }
    }
}

/// Runs `op` on sink `i` (catching a panic if `catch`) and records its error as `what`
/// failed: the sink's error (its `errors` and last error) and the writer's.
fn call_sink(
    shared: &Shared,
    catch: bool,
    (i, sink): (usize, &mut BoxedSink),
    what: &str,
    op: impl Fn(&mut BoxedSink) -> io::Result<()>,
) {
    if let Err(e) = guarded(catch, || op(sink)).unwrap_or_else(Err) {
        // `e` is a sink's, maybe wrapping an error whose `Display` fails on its own: `format!`
        // would panic (on the writer thread: a restart, and the text lost).
        let error = text(format_args!("{what}: {}", Checked(&e)));
        shared.record_error(text(format_args!("{}: {error}", sink.name())));
        shared.counters.count_sink(i, 0, 0, Some(error));
    }
}

/// The records of `batch` written in all, and their bytes, once every sink was served (sink
/// `i` wrote its first `wrote[i]`): a record is written if a sink that takes it
/// ([`Sink::accepts`](crate::sink::Sink::accepts)) wrote it, or if no sink takes it (every
/// filter left it out: nothing was to be done). A record a filter left out does not count
/// as written by that filter — so one every other sink failed is failed.
fn written_in_all(sinks: &[BoxedSink], wrote: &[usize], batch: &Batch<'_>) -> (usize, usize) {
    let n = batch.len();
    if wrote.iter().all(|&w| w == n) {
        // Every sink wrote (or left out) every record: no need to ask which it takes.
        return (n, batch.prefix_bytes(n));
    }
    // A failure: the slow way, record by record. A panicking `accepts` (a bug of the sink's)
    // counts as taking the record: the writer's count must not fail.
    let takes = |sink: &BoxedSink, level| {
        catch_unwind(AssertUnwindSafe(|| sink.accepts(level))).unwrap_or(true)
    };
    let (mut written, mut bytes) = (0, 0);
    for (r, (record, level)) in batch.records().zip(batch.levels()).enumerate() {
        let mut taken = false;
        let mut done = false;
        for (sink, &w) in sinks.iter().zip(wrote) {
            if takes(sink, level) {
                taken = true;
                if r < w {
                    done = true;
                    break;
                }
            }
        }
        if done || !taken {
            written += 1;
            bytes += record.len();
        }
    }
    (written, bytes)
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
    /// This thread is a writer's thread (it runs the sinks and the `warn` hook).
    static WRITER_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as a writer's thread, for [`on_a_writer_thread`].
pub(crate) fn mark_writer_thread() {
    let _ = WRITER_THREAD.try_with(|c| c.set(true));
}

/// True on the thread of any writer (also outside sink calls: the `warn` hook runs there).
/// What runs there must not wait for a writer to drain: it may be this one.
pub(crate) fn on_a_writer_thread() -> bool {
    WRITER_THREAD.try_with(Cell::get).unwrap_or(false)
}

/// True while this thread runs a sink's method for the writer. Whatever a sink (or the panic
/// hook running inside one) does then must not wait for the writer — the writer is this very
/// call — so enqueues never block, and `flush` and `write_sync` do not wait.
pub(crate) fn in_sink_call() -> bool {
    // `try_with` (here and below): a thread's locals being destroyed must not panic.
    IN_SINK.try_with(Cell::get).unwrap_or(false)
}

/// Clears [`IN_SINK`] when the sink call ends, also by unwinding.
struct SinkCall(bool);

impl Drop for SinkCall {
    fn drop(&mut self) {
        let _ = IN_SINK.try_with(|c| c.set(self.0));
    }
}

/// Runs a sink call `f`; with `catch`, a panic becomes `Err` with the panic's message
/// (without it, the panic propagates so that the writer thread restarts).
fn guarded<T>(catch: bool, f: impl FnOnce() -> T) -> Result<T, io::Error> {
    let _call = SinkCall(IN_SINK.try_with(|c| c.replace(true)).unwrap_or(false));
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
        let b = &mut self.batch;
        b.buf.extend_from_slice(body);
        b.buf.push(b'\n');
        b.ends.push(b.buf.len());
        b.levels.push(level);
    }

    /// Adds a captured record (`body`, without its `\n`) that a caller writes itself — a
    /// synchronous write, or any in fallback mode — formatted here as the writer thread
    /// formats a queued one: by the same expander, against the time given to the last record
    /// of the caller's `lane` (updated), so that a thread's times never go back across its
    /// queued and its synchronous records (see "Time" in `encode::capture`); with no lane (a
    /// closing writer), against no time before. A panic formatting it (a record the capturing
    /// encoder did not make) fails this record, with its reason, not the caller.
    pub(crate) fn push_captured(
        &mut self,
        shared: &Shared,
        body: &[u8],
        level: u8,
        lane: Option<&Lane>,
    ) {
        self.resume(shared);
        // The lane's lock, under the core lock, as the writer thread takes them.
        let mut reader = lane.map(Lane::lock);
        let mut time = reader.as_ref().map(|r| r.time()).unwrap_or_default();
        let b = &mut self.batch;
        if b.expand_caught(body, &mut time) {
            if let Some(reader) = &mut reader {
                reader.set_time(time);
            }
            b.buf.push(b'\n');
            b.ends.push(b.buf.len());
            b.levels.push(level);
        } else {
            b.unformatted = 0;
            let why = b.unformatted_error.take().unwrap_or_default();
            shared.count_unformatted(1, &why);
        }
    }

    pub(crate) fn buffered_records(&self) -> usize {
        self.batch.ends.len()
    }

    /// Records published and not yet taken from the lanes.
    pub(crate) fn queued(&self, shared: &Shared) -> u64 {
        self.cursor.pending(&shared.queue)
    }

    /// Takes what the lanes hold, delivering in batches of up to [`MAX_BATCH_BYTES`]; stops
    /// early (without delivering the rest) only when `force` is false and the batch is below
    /// the sinks' coalescing size. Returns the number of records taken.
    ///
    /// Takes at most `capacity` records — about what was queued when it started — so that
    /// the writer returns to its loop (timers, warnings, barriers) even while producers keep
    /// the queue full. A record may be left for the next pass to keep the order of calls
    /// across lanes (see the `queue` module): use [`drain`](Self::drain) to take everything
    /// published before.
    pub(crate) fn pop_and_deliver(&mut self, shared: &Shared, force: bool) -> usize {
        self.resume(shared);
        shared
            .counters
            .raise_high_water(self.queued(shared) + self.batch.ends.len() as u64);
        let limit = shared.queue.capacity();
        let mut taken = 0;
        loop {
            let n = self.take(shared, limit - taken);
            taken += n;
            let len = self.batch.buf.len();
            if n == 0 || taken >= limit {
                if taken >= limit && len >= self.coalesce.max(1) {
                    self.deliver(shared);
                }
                break;
            }
            if len >= MAX_BATCH_BYTES || len >= self.coalesce.max(1) {
                self.deliver(shared);
            }
        }
        if force {
            self.deliver(shared);
        }
        taken
    }

    /// Takes up to `limit` records from the lanes into the batch.
    ///
    /// A captured record whose formatting panics (its text was not made by the capturing
    /// encoder: a bug) would panic again at every attempt, and the take it interrupted has
    /// committed nothing — the records before it in the batch would be taken twice, after
    /// a stray part of its text. So the take is undone and made again with each captured
    /// record's formatting caught: such a record is left out and counted failed, its panic
    /// the writer's last error, and the writer goes on (no restart). A panic elsewhere in
    /// the take (a bug of the queue's) undoes it too and restarts the writer.
    fn take(&mut self, shared: &Shared, limit: usize) -> usize {
        let mark = self.batch.mark();
        let (cursor, batch, queue) = (&mut self.cursor, &mut self.batch, &shared.queue);
        if let Ok(n) = catch_unwind(AssertUnwindSafe(|| cursor.take(queue, batch, limit))) {
            return n;
        }
        self.batch.undo(mark);
        self.batch.careful = true;
        let (cursor, batch) = (&mut self.cursor, &mut self.batch);
        let again = catch_unwind(AssertUnwindSafe(|| cursor.take(queue, batch, limit)));
        self.batch.careful = false;
        let n = match again {
            Ok(n) => n,
            Err(payload) => {
                self.batch.undo(mark);
                std::panic::resume_unwind(payload);
            }
        };
        let failed = std::mem::take(&mut self.batch.unformatted);
        if failed > 0 {
            let why = self.batch.unformatted_error.take().unwrap_or_default();
            shared.count_unformatted(failed, &why);
        }
        n
    }

    /// Takes and delivers everything the lanes had published when it was called (a record
    /// on its way into a lane then is waited for: its producer is between two stores).
    pub(crate) fn drain(&mut self, shared: &Shared) {
        let targets = self.cursor.targets(&shared.queue);
        loop {
            self.pop_and_deliver(shared, true);
            if Cursor::reached(&targets) {
                break;
            }
            std::thread::yield_now();
        }
    }

    /// Takes and delivers until no lane holds a record (the last drain at close).
    pub(crate) fn drain_all(&mut self, shared: &Shared) {
        loop {
            self.pop_and_deliver(shared, true);
            if self.queued(shared) == 0 {
                break;
            }
            std::thread::yield_now();
        }
    }

    /// A `flush()` barrier: everything published when the writer saw `ticket` reaches the
    /// sinks, the sinks are flushed, and the tickets up to `ticket` complete.
    ///
    /// The ticket is noted only once its records are taken: a panic before that (a sink's)
    /// restarts the writer, which sees the ticket again; a panic after it (flushing) is
    /// finished by [`resume`](Self::resume).
    pub(crate) fn barrier(&mut self, shared: &Shared, ticket: u64) {
        self.drain(shared);
        self.pending_barrier = self.pending_barrier.max(ticket);
        self.finish_barriers(shared);
    }

    /// Retires lanes whose threads exited and were read to the end.
    pub(crate) fn sweep(&mut self, shared: &Shared) {
        self.cursor.sweep(&shared.queue);
    }

    /// Finishes a batch whose delivery was interrupted (by a panic) before anything is added
    /// to it — sinks already served must not see its records twice nor miss new ones — and
    /// completes the flush barriers it carried.
    pub(crate) fn resume(&mut self, shared: &Shared) {
        if self.delivering || self.pending_barrier > 0 {
            self.deliver(shared);
            self.finish_barriers(shared);
        }
    }

    /// Hands the gathered batch to every sink not yet served. With `catch`, a panicking sink
    /// counts as a failed write; without it, the panic propagates (the writer thread restarts
    /// and resumes at the same sink).
    pub(crate) fn deliver(&mut self, shared: &Shared) {
        let catch = self.catch_panics;
        let n = self.batch.ends.len();
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
        let batch = Batch::with_levels(&self.batch.buf, &self.batch.ends, &self.batch.levels);
        while self.next_sink < self.sinks.len() {
            let i = self.next_sink;
            let sink = &mut self.sinks[i];
            self.panics.enter(SinkCallAt::Write(i));
            let result = guarded(catch, || sink.write_batch(&batch))
                .unwrap_or_else(|e| Err(SinkError::new(e)));
            self.panics.returned(SinkCallAt::Write(i));
            let written = match &result {
                Ok(()) => n,
                Err(e) => e.written.min(n),
            };
            // Not `to_string`: a failing `Display` in a user's error must not panic.
            let error = result.as_ref().err().map(|e| text(format_args!("{e}")));
            shared
                .counters
                .count_sink(i, written as u64, (n - written) as u64, error);
            if let Err(e) = result {
                shared.record_error(text(format_args!("{}: {e}", self.sinks[i].name())));
            }
            self.wrote[i] = written;
            self.next_sink += 1;
        }
        let (written, bytes) = written_in_all(&self.sinks, &self.wrote, &batch);
        let c = &shared.counters;
        c.written.fetch_add(written as u64, SeqCst);
        c.failed.fetch_add((n - written) as u64, SeqCst);
        c.batches.fetch_add(1, Relaxed);
        c.bytes.fetch_add(bytes as u64, Relaxed);
        self.clear_batch();
    }

    fn clear_batch(&mut self) {
        // Panics in a row on a batch's delivery end with that batch.
        if matches!(self.panics.strikes, Some((SinkCallAt::Write(_), _))) {
            self.panics.strikes = None;
        }
        let b = &mut self.batch;
        b.buf.clear();
        b.ends.clear();
        b.levels.clear();
        self.next_sink = 0;
        self.delivering = false;
        self.wrote.fill(0);
        if b.buf.capacity() > 4 * MAX_BATCH_BYTES {
            b.buf.shrink_to(MAX_BATCH_BYTES);
        }
    }

    /// Flushes every sink (errors are counted, not fatal) — but one whose flush panicked
    /// [`POISON_PANICS`] times in a row, skipped this once.
    pub(crate) fn flush_sinks(&mut self, shared: &Shared) {
        if self.closed {
            return;
        }
        let catch = self.catch_panics;
        let skip = self.skip_flush.take();
        for i in 0..self.sinks.len() {
            if skip == Some(i) {
                continue;
            }
            self.panics.enter(SinkCallAt::Flush(i));
            call_sink(shared, catch, (i, &mut self.sinks[i]), "flush", |sink| {
                sink.flush()
            });
            self.panics.returned(SinkCallAt::Flush(i));
        }
    }

    /// After a panic on the writer thread (`message`, its text): counts it against the sink
    /// call it interrupted, and gives that call up at the [`POISON_PANICS`]th in a row. A batch
    /// is then counted failed for that sink (failed in all unless another sink writes it) and
    /// its delivery goes on with the next sink; a flush is skipped for that sink, once. The
    /// sink's error and the writer's last error say why.
    ///
    /// The batch in hand does not change between two such panics: a restart finishes it
    /// (see [`resume`](Self::resume)) before it takes any record.
    pub(crate) fn after_panic(&mut self, shared: &Shared, message: &str) {
        let p = &mut self.panics;
        let Some(at) = p.call.take() else {
            p.strikes = None;
            return;
        };
        let n = match p.strikes {
            Some((s, n)) if s == at => n + 1,
            _ => 1,
        };
        if n < POISON_PANICS {
            p.strikes = Some((at, n));
            return;
        }
        p.strikes = None;
        match at {
            SinkCallAt::Write(i) => {
                let records = self.batch.ends.len();
                let error = text(format_args!(
                    "{}: write panicked twice in a row on the same batch ({message}): its \
                     {records} records are counted failed for this sink",
                    self.sinks[i].name()
                ));
                shared
                    .counters
                    .count_sink(i, 0, records as u64, Some(error.clone()));
                shared.record_error(error);
                self.next_sink = i + 1;
            }
            SinkCallAt::Flush(i) => {
                let error = text(format_args!(
                    "flush panicked twice in a row ({message}): skipped once"
                ));
                shared.record_error(text(format_args!("{}: {error}", self.sinks[i].name())));
                shared.counters.count_sink(i, 0, 0, Some(error));
                self.skip_flush = Some(i);
            }
        }
    }

    /// Completes the barrier whose records have been taken: delivers them, flushes the
    /// sinks, then wakes the `flush()` callers.
    pub(crate) fn finish_barriers(&mut self, shared: &Shared) {
        let t = self.pending_barrier;
        if t > 0 {
            self.deliver(shared);
            self.flush_sinks(shared);
            self.pending_barrier = 0;
            shared.complete_barriers(t);
        }
    }

    /// Delivers what is left, closes each sink once; later records are dropped.
    ///
    /// A `close` that panics on the writer thread (which does not catch panics) restarts the
    /// writer, as a panic in `write_batch` does, and the restarted writer calls this again: it
    /// goes on with the next sink. `next_close` counts the sinks whose `close` was called,
    /// before each call, so that neither the sinks closed before nor the one that panicked
    /// are closed again. Records taken once closing began are dropped (`shutdown`): some
    /// sinks may be closed already.
    pub(crate) fn close(&mut self, shared: &Shared) {
        if !self.closed {
            self.deliver(shared);
            self.closed = true;
        }
        let catch = self.catch_panics;
        while self.next_close < self.sinks.len() {
            let i = self.next_close;
            self.next_close += 1;
            call_sink(shared, catch, (i, &mut self.sinks[i]), "close", |sink| {
                sink.close()
            });
        }
        shared.queue.retire_all();
        self.finish_barriers(shared);
    }

    /// Every sink's `close` was called (a [`close`](Self::close) interrupted by a panic is
    /// not finished).
    pub(crate) fn close_finished(&self) -> bool {
        self.closed && self.next_close == self.sinks.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::sink::{Batch, FnSink, MemorySink, SinkError};
    use crate::writer::{Mode, Queued, Writer, WriterState};

    /// A captured record whose one segment has a tag the writer does not know: formatting
    /// it panics (as a record that was not written by the capturing encoder would).
    fn unformattable() -> Vec<u8> {
        let mut line = br#"{"x":"#.to_vec();
        line.extend_from_slice(&[crate::encode::capture::MARK, b'Z', 0, 0, 0, 0]);
        line.extend_from_slice(&[0; 8]);
        line.extend_from_slice(b"}\n");
        line
    }

    const UNFORMATTABLE: &str = "writer: a captured record could not be formatted (internal \
        error: entered unreachable code: unknown capture segment tag 0x5a): counted failed";

    /// On the writer thread: the record is counted failed (with the reason), the records
    /// around it are written once each, and the writer goes on — no restart, no duplicate,
    /// no stray bytes of the failed record in the next one.
    #[test]
    fn a_record_that_cannot_be_formatted_is_failed_and_skipped() {
        let mem = MemorySink::new();
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .max_restarts(2)
            .restart_backoff(Duration::from_millis(1), Duration::from_millis(1))
            .sink(mem.clone())
            .build()
            .unwrap();
        let h = writer.handle();
        h.enqueue(b"a").unwrap();
        assert_eq!(
            h.enqueue_encoded(&unformattable(), 20, true, 0),
            Ok(Queued::Queued)
        );
        h.enqueue(b"b").unwrap();
        // A bound, not an expectation: under Miri the two panics (with their backtraces)
        // alone take longer than 10 s.
        let bound = Duration::from_secs(if cfg!(miri) { 600 } else { 10 });
        assert_eq!(writer.flush(Some(bound)), Ok(()));
        assert_eq!(mem.lines(), ["a", "b"]);
        let m = writer.metrics();
        assert_eq!((m.state, m.restarts), (WriterState::Running, 0));
        assert_eq!((m.enqueued, m.written, m.failed, m.pending), (3, 2, 1, 0));
        assert_eq!(m.errors, 1);
        assert_eq!(h.last_error().as_deref(), Some(UNFORMATTABLE));
        h.enqueue(b"c").unwrap();
        let m = writer.shutdown(None).metrics;
        assert_eq!(mem.lines(), ["a", "b", "c"]);
        assert_eq!((m.enqueued, m.written, m.failed, m.pending), (4, 3, 1, 0));
    }

    /// Waits (up to 10 s) until the writer of `h`, its sink having panicked with no restart
    /// left, is in fallback mode.
    fn wait_for_fallback(h: &crate::writer::WriterHandle) {
        for _ in 0..10_000 {
            if h.metrics().state == WriterState::Fallback {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(h.metrics().state, WriterState::Fallback);
    }

    /// In fallback mode, where the caller formats its own record: the caller does not panic,
    /// the record is counted failed (nothing is left pending), the writer goes on.
    #[test]
    fn in_fallback_a_record_that_cannot_be_formatted_is_failed_on_the_callers_thread() {
        let mem = MemorySink::new();
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .max_restarts(0)
            .sink(FnSink::new(
                "panics",
                |_: &Batch<'_>| -> Result<(), SinkError> { panic!("sink panic") },
            ))
            .sink(mem.clone())
            .build()
            .unwrap();
        let h = writer.handle();
        h.enqueue(b"a").unwrap();
        writer.trigger();
        wait_for_fallback(&h);
        assert_eq!(
            h.enqueue_encoded(&unformattable(), 20, true, 0),
            Ok(Queued::WrittenSync)
        );
        assert_eq!(h.last_error().as_deref(), Some(UNFORMATTABLE));
        assert_eq!(h.enqueue(b"b"), Ok(Queued::WrittenSync));
        let m = writer.shutdown(None).metrics;
        assert_eq!(mem.lines(), ["a", "b"]);
        assert_eq!((m.enqueued, m.written, m.failed, m.pending), (3, 2, 1, 0));
    }

    /// A captured record (the logger's), captured now: its text and its ticks.
    fn captured_now(msg: &str) -> (Vec<u8>, u64) {
        use crate::encode::record::Time;
        use crate::encode::{Format, RecordEncoder};
        let ticks = crate::encode::capture::clock().raw();
        let mut line = Vec::new();
        let mut rec = RecordEncoder::begin_plain_id(
            &mut line,
            Format::Compact,
            Time::Ticks(ticks),
            "t",
            &[1],
        );
        rec.field("msg", msg);
        rec.finish();
        (line, ticks)
    }

    /// The `ts` of a record: (seconds, microseconds).
    fn ts(line: &str) -> (u64, u32) {
        let rest = line.strip_prefix(r#"{"ts":"#).expect("ts first");
        let (secs, rest) = rest.split_once('.').expect("a fraction");
        let micros = &rest[..rest.find(',').expect("more fields")];
        (secs.parse().unwrap(), micros.parse().unwrap())
    }

    /// In fallback mode the caller formats its own captured records: their times never go
    /// back from those of its records the writer formatted before. With the tick clock
    /// 0.4 ms ahead of the OS clock, such a record was dated from a fresh anchor of its own,
    /// 0.4 ms before a record its thread had put in its lane just before (as a producer that
    /// saw the writer running as it fell back), which the same write drained first.
    #[test]
    fn in_fallback_a_threads_times_never_go_back() {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let mem = MemorySink::new();
        let panicked = AtomicBool::new(false);
        let writer = Writer::builder()
            .mode(Mode::Manual)
            .max_restarts(0)
            .sink(FnSink::new(
                "panics once",
                move |_: &Batch<'_>| -> Result<(), SinkError> {
                    assert!(panicked.swap(true, SeqCst), "sink panic");
                    Ok(())
                },
            ))
            .sink(mem.clone())
            .build()
            .unwrap();
        let h = writer.handle();
        h.enqueue(b"a").unwrap();
        writer.trigger();
        wait_for_fallback(&h);
        h.skew_clock(400_000);
        let (line, _) = captured_now("raced");
        let body = &line[..line.len() - 1];
        assert!(crate::writer::with_rec(body, 20, true, |rec| h.try_push(rec)));
        for msg in ["fallback 1", "fallback 2"] {
            let (line, ticks) = captured_now(msg);
            assert_eq!(
                h.enqueue_encoded(&line, 20, true, ticks),
                Ok(Queued::WrittenSync)
            );
        }
        let m = writer.shutdown(None).metrics;
        let lines = mem.lines();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!((m.enqueued, m.written, m.failed, m.pending), (4, 4, 0, 0));
        for pair in lines[1..].windows(2) {
            assert!(ts(&pair[0]) <= ts(&pair[1]), "{}\n{}", pair[0], pair[1]);
        }
    }
}
