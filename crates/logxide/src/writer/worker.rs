//! The writer thread: when to write, how to sleep, and how to survive a panic.
//!
//! ```text
//!            ┌──────────── write_now / batch full / timer ───────────┐
//!            v                                                       │
//!   Idle ──(record)──> Gathering ──(batch_size, age ≥ max wait)──> Writing
//!    ^                                                               │
//!    └──────────────────────── queue empty ──────────────────────────┘
//!   any state ──(CLOSED)──> Draining ──> Closed (thread exits)
//!   any state ──(panic)──> Backoff ──> restart (same queue, same batch), or Fallback
//! ```
//!
//! A restart retries the sink call the panic interrupted; at the second panic in a row there
//! the call is given up (the batch counted failed for that sink, or its flush skipped): see
//! `Core::after_panic`.
//!
//! The thread never spins: it parks with no timeout when idle (trigger mode), until the
//! oldest record's flush time (gathering), or until the next tick (loop mode).
//!
//! In trigger mode, for [`ACTIVE`] after a pass that wrote records, the writer polls instead
//! of asking producers to wake it: it parks for [`POLL`] at a time and looks again. A wake-up
//! costs the producer that rings it a `futex` call, and the woken thread is often scheduled
//! on that producer's core for a while: under a steady stream of records these were the
//! callers' slowest calls (the p99.9). Polling costs the writer at most one wake-up per
//! `POLL` while records flow, delays a batch by at most `POLL`, and ends `ACTIVE` after the
//! last write, so an idle writer still sleeps until a record comes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use super::config::{DropWarning, Mode, Policy};
use super::metrics::DropReason;
use super::shared::{later, panic_message, Shared, CLOSED, FALLBACK};

/// Runs the writer until shutdown, restarting it after panics (with exponential backoff) up
/// to `max_restarts` times; past that the writer falls back to synchronous writes by callers.
pub(crate) fn supervise(shared: &Shared) {
    let mut backoff = shared.settings.backoff_initial;
    loop {
        let delivered = shared.counters.batches.load(Relaxed);
        let run = catch_unwind(AssertUnwindSafe(|| Worker::new(shared).run()));
        let Err(payload) = run else { break };
        // A run that delivered a batch before it panicked had recovered: the backoff starts
        // over, or panics days apart would each stop the writer for `backoff_max` (records
        // meanwhile waiting, and `block` callers with them).
        if shared.counters.batches.load(Relaxed) > delivered {
            backoff = shared.settings.backoff_initial;
        }
        let message = panic_message(&*payload);
        shared.record_error(format!("writer thread panicked: {message}"));
        // A batch (or a flush) that made a sink panic again is given up here (see
        // `Core::after_panic`), before the restart or the fallback resumes the delivery.
        shared.lock_core().after_panic(shared, &message);
        if shared.counters.restarts.load(Relaxed) >= u64::from(shared.settings.max_restarts) {
            // Give up on the thread: callers write synchronously from now on. Nothing queued
            // is lost: drain it here, with sink panics caught and counted as failures.
            // Drain before announcing the state, so that once `Fallback` shows, everything
            // enqueued before it has been handled; drain again after, for records pushed in
            // between (their producers see `FALLBACK` and drain too, as at shutdown).
            let mut core = shared.lock_core();
            core.catch_panics = true;
            core.drain(shared);
            shared.leave_running(FALLBACK);
            // Records published by producers that still saw `RUNNING` (see `shared`).
            shared.bell.heavy();
            core.drain_all(shared);
            core.finish_barriers(shared);
            drop(core);
            shared.queue.budget().wake_all_waiters();
            break;
        }
        shared.counters.restarts.fetch_add(1, Relaxed);
        // A backoff past the clock's range waits for the shutdown (which unparks this thread).
        let until = Instant::now().checked_add(backoff);
        while shared.state.load(SeqCst) != CLOSED {
            let Some(until) = until else {
                thread::park();
                continue;
            };
            let now = Instant::now();
            if now >= until {
                break;
            }
            thread::park_timeout(until - now);
        }
        backoff = backoff.saturating_mul(2).min(shared.settings.backoff_max);
    }
    let mut core = shared.lock_core();
    if shared.state.load(SeqCst) == CLOSED && !core.close_finished() {
        core.close(shared);
    }
    drop(core);
    report_drops(shared, true);
    // The hook may have shut the writer down from this thread (in the report made at a
    // fallback), which cannot wait for itself: the last drain and the close are left here.
    if shared.state.load(SeqCst) == CLOSED && !shared.lock_core().close_finished() {
        shared.drain_and_close(true);
    }
}

/// What the `warn` policy has reported so far. It lives in [`Shared`] (behind a lock held
/// only to decide on a report, never while the hook runs): the writer thread reports while
/// it runs, and after a fallback to synchronous writes — no thread left — the callers that
/// write do (see [`report_drops`]).
/// The writer thread is ending by a panic that escaped [`supervise`] (`message`, its text):
/// a bug, or a sink's method panicking where the writer does not catch it (its `name` while
/// a batch is given up). Left `RUNNING`, the queue would have nobody to write it — a `flush`
/// would wait for ever, and so would `block` producers once it is full — so the writer falls
/// back to synchronous writes, as when no restart is left: callers drain the queue (with
/// sink panics caught) at their next write, flush or the shutdown.
pub(crate) fn abandon(shared: &Shared, message: &str) {
    shared.record_error(format!(
        "writer thread ended by a panic outside its restart loop ({message}): callers write \
         synchronously from now on"
    ));
    if shared.leave_running(FALLBACK) {
        shared.queue.budget().wake_all_waiters();
        let _g = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
        shared.done_cv.notify_all();
    }
}

#[derive(Default)]
pub(crate) struct WarnState {
    last: Option<Instant>,
    reported: u64,
}

impl WarnState {
    /// The report due now of records refused under `warn` since the last one, at most one
    /// per second (`final_report`: whatever is left), marked made.
    fn due(&mut self, shared: &Shared, final_report: bool) -> Option<DropWarning> {
        if shared.settings.policy != Policy::Warn {
            return None;
        }
        let total = shared.counters.dropped_by(DropReason::QueueFull);
        if total <= self.reported {
            return None;
        }
        let now = Instant::now();
        if !final_report && self.last.is_some_and(|t| now - t < Duration::from_secs(1)) {
            return None;
        }
        let warning = DropWarning {
            dropped: total - self.reported,
            total,
        };
        self.reported = total;
        self.last = Some(now);
        shared.counters.warnings.fetch_add(1, Relaxed);
        Some(warning)
    }

    /// When the next report may be due, if records wait to be reported.
    fn next_due(&self, shared: &Shared) -> Option<Instant> {
        if shared.settings.policy != Policy::Warn
            || shared.counters.dropped_by(DropReason::QueueFull) <= self.reported
        {
            return None;
        }
        Some(
            self.last
                .map_or_else(Instant::now, |t| t + Duration::from_secs(1)),
        )
    }
}

/// Reports records refused under `warn` since the last report to the hook, at most once
/// per second (`final_report` reports whatever is left). The writer thread calls it between
/// two passes and when it ends; after a fallback, the callers that wrote synchronously call
/// it once their write is done (holding no lock of the writer's), and the shutdown makes the
/// final report: no drop goes unreported for want of a writer thread.
pub(crate) fn report_drops(shared: &Shared, final_report: bool) {
    if shared.settings.policy != Policy::Warn {
        return;
    }
    // The lock is released before the hook runs: the hook may log (a synchronous write,
    // after a fallback, which reports in turn) or shut the writer down (a final report).
    let due = shared
        .warn
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .due(shared, final_report);
    let Some(warning) = due else { return };
    // The hook is the application's code, not the writer's: a panic in it is caught and
    // counted as an error (as a sink's panic is in fallback mode), never a restart — nor,
    // in the final report, the end of the thread before it marks itself exited.
    let run = catch_unwind(AssertUnwindSafe(|| match &shared.settings.warn_hook {
        Some(hook) => hook(&warning),
        // Best effort: `eprintln!` would panic with stderr closed (a "hook panicked" error
        // for a report nobody could read anyway).
        None => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{warning}");
        }
    }));
    if let Err(payload) = run {
        shared.record_error(format!(
            "drop warning hook panicked: {}",
            panic_message(&*payload)
        ));
    }
}

/// Makes a `write_now` request (`trigger()`, say: "write everything queued") again if the
/// pass that took it is interrupted by a panic, so that the restarted writer makes it: it
/// delivers the interrupted batch first, and in manual mode nothing else would ask for the
/// rest.
struct Rerequest<'a>(&'a AtomicBool);

impl Drop for Rerequest<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, SeqCst);
        }
    }
}

enum Action {
    /// Take records from the queue; `force` delivers even a batch below the coalescing size.
    Write { force: bool },
    /// Park until `until` (or forever), asking producers to wake the writer after
    /// `wake_after` more records.
    Sleep {
        until: Option<Instant>,
        wake_after: Option<u64>,
    },
}

/// How long after its last write the writer polls (trigger mode; see the module docs).
const ACTIVE: Duration = Duration::from_millis(1);
/// How long the writer parks between two looks at the queue while it polls.
const POLL: Duration = Duration::from_micros(100);
/// How often the writer retires the lanes of threads that exited.
const SWEEP: Duration = Duration::from_secs(1);

struct Worker<'a> {
    shared: &'a Shared,
    /// When the writer first saw the oldest record still pending.
    oldest: Option<Instant>,
    next_tick: Instant,
    /// When the writer last delivered records.
    last_write: Option<Instant>,
    next_sweep: Instant,
}

impl<'a> Worker<'a> {
    fn new(shared: &'a Shared) -> Self {
        Worker {
            shared,
            oldest: None,
            next_tick: later(Instant::now(), shared.settings.tick),
            last_write: None,
            next_sweep: Instant::now() + SWEEP,
        }
    }

    fn run(&mut self) {
        let shared = self.shared;
        // A batch interrupted by a panic is delivered first, to the sinks it had not reached,
        // and the flush barriers it was carrying complete.
        shared.lock_core().resume(shared);
        loop {
            if shared.state.load(SeqCst) == CLOSED {
                shared.drain_and_close(false);
                return;
            }
            let write_now = shared.write_now.swap(false, SeqCst);
            let _again = write_now.then(|| Rerequest(&shared.write_now));
            let now = Instant::now();
            // Read before the lanes are looked at: see `sleep`.
            let published = shared.queue.published();
            let mut core = shared.lock_core();
            let ticket = shared.next_ticket.load(SeqCst);
            if ticket > shared.barrier_done.load(SeqCst) {
                core.barrier(shared, ticket);
                self.last_write = Some(now);
            }
            if now >= self.next_sweep {
                core.sweep(shared);
                self.next_sweep = now + SWEEP;
            }
            let queued = core.queued(shared) as usize;
            let pending = queued + core.buffered_records();
            if pending == 0 {
                self.oldest = None;
            } else if self.oldest.is_none() {
                self.oldest = Some(now);
            }
            match self.decide(now, write_now, queued, pending) {
                Action::Write { force } => {
                    let start = now;
                    if core.pop_and_deliver(shared, force) > 0 {
                        self.last_write = Some(now);
                    }
                    core.finish_barriers(shared);
                    if core.buffered_records() == 0 {
                        self.oldest = (core.queued(shared) > 0).then_some(start);
                    }
                    drop(core);
                    report_drops(shared, false);
                }
                Action::Sleep { until, wake_after } => {
                    drop(core);
                    report_drops(shared, false);
                    let next_due = shared
                        .warn
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .next_due(shared);
                    let until = match (until, next_due) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    self.sleep(until, wake_after, published);
                }
            }
        }
    }

    fn decide(&mut self, now: Instant, write_now: bool, queued: usize, pending: usize) -> Action {
        let s = &self.shared.settings;
        if write_now {
            return Action::Write { force: true };
        }
        let age = self.oldest.map_or(Duration::ZERO, |t| now - t);
        let deadline_at = |d: Duration| self.oldest.map(|t| later(t, d));
        // Ask to be woken by the first record when nothing is pending.
        let on_first = (pending == 0).then_some(1);
        match s.mode {
            Mode::Trigger => {
                let max_wait = s.max_wait();
                let polling = self.last_write.is_some_and(|t| now - t < ACTIVE);
                if pending == 0 && polling {
                    Action::Sleep {
                        until: Some(now + POLL),
                        wake_after: None,
                    }
                } else if pending == 0 {
                    // Idle: the first record starts the flush-interval clock.
                    Action::Sleep {
                        until: None,
                        wake_after: on_first,
                    }
                } else if age >= max_wait {
                    Action::Write { force: true }
                } else if queued >= s.batch_size {
                    Action::Write { force: false }
                } else if polling {
                    Action::Sleep {
                        until: deadline_at(max_wait).map(|d| d.min(now + POLL)),
                        wake_after: None,
                    }
                } else {
                    Action::Sleep {
                        until: deadline_at(max_wait),
                        wake_after: Some((s.batch_size - queued) as u64),
                    }
                }
            }
            Mode::Loop => {
                let deadline_due = s.deadline.is_some_and(|d| pending > 0 && age >= d);
                if now >= self.next_tick {
                    self.next_tick = later(now, s.tick);
                    Action::Write { force: true }
                } else if deadline_due {
                    Action::Write { force: true }
                } else {
                    let until = match s.deadline.and_then(deadline_at) {
                        Some(d) => d.min(self.next_tick),
                        None => self.next_tick,
                    };
                    Action::Sleep {
                        until: Some(until),
                        wake_after: s.deadline.and(on_first),
                    }
                }
            }
            Mode::Manual => match s.deadline {
                Some(d) if pending > 0 && age >= d => Action::Write { force: true },
                Some(d) => Action::Sleep {
                    until: deadline_at(d),
                    wake_after: on_first,
                },
                None => Action::Sleep {
                    until: None,
                    wake_after: None,
                },
            },
        }
    }

    /// Parks until `until` (or an unpark). With `wake_after`, producers unpark the writer
    /// after that many more records — unless a record was published since `seen` (the
    /// lanes' count read before the writer last looked at them): then it does not park.
    fn sleep(&self, until: Option<Instant>, wake_after: Option<u64>, seen: u64) {
        let bell = &self.shared.bell;
        if let Some(n) = wake_after {
            // Arm, fence, look again: the doorbell's protocol.
            bell.arm(n);
            if self.shared.queue.published() != seen {
                bell.disarm();
                return;
            }
        }
        // Flags are set before the unpark that announces them, and an unpark that comes
        // before `park` makes it return at once: nothing else to check here.
        match until {
            Some(t) => {
                let now = Instant::now();
                if t > now {
                    thread::park_timeout(t - now);
                }
            }
            None => thread::park(),
        }
        if wake_after.is_some() {
            bell.disarm();
        }
    }
}
