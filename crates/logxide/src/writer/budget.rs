//! The queue's bounds: at most `capacity` records and `max_bytes` bytes queued, over all
//! producers together, without a shared read-modify-write per record.
//!
//! # Credits
//!
//! The budget holds *credits*: one record credit and `n` byte credits let a producer queue
//! one record of `n` bytes (its `\n` included). Producers take credits in *grants* and keep
//! them in their lane ([`Credits`]), spending them with plain arithmetic; whoever consumes
//! records (the writer, or a producer evicting under `drop_oldest`) gives their credits
//! back. So the credits out of the budget are exactly the records queued plus the credits
//! lanes hold unspent, and the queue never exceeds its bounds.
//!
//! A grant is one record's worth when credits are scarce, else a *chunk* (about 1/256 of
//! each bound): a producer then touches the shared counters once per chunk instead of once
//! per record. The credits lanes hold unspent in chunks are counted (`parked`), and a chunk
//! is granted only while they stay under half of each bound: however many threads log and
//! then fall idle, at least half of the capacity is always there for the others. A single
//! producer can fill the queue exactly to its bounds (it spends its own credits first). A
//! lane gives back what it holds when its thread exits.
//!
//! # Waiting for space (`block` policy)
//!
//! A producer that finds no credits spins briefly, then sleeps on `space_cv`. The protocol
//! that prevents a lost wake-up: the producer holds `space` while it increments
//! `space_waiters`, retries, and calls `wait` (which releases `space`); whoever gives credits
//! back then issues a `SeqCst` fence and, if `space_waiters > 0`, takes `space` before
//! `notify_all`. If the giver saw `space_waiters == 0`, its return of credits precedes the
//! producer's increment in the `SeqCst` order, so the producer's retry sees them; otherwise
//! the giver's `notify_all` cannot run until the producer is inside `wait`. Waits also carry
//! a short timeout as a second line of defence.

use std::sync::atomic::{fence, AtomicI64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_utils::{Backoff, CachePadded};

use super::shared::wait_time;

/// The shared side of the bounds.
pub(crate) struct Budget {
    capacity: usize,
    max_bytes: usize,
    /// Credits not granted to any lane.
    free_records: CachePadded<AtomicI64>,
    free_bytes: CachePadded<AtomicI64>,
    /// Credits granted in chunks, as far as the lanes holding them may not have spent them
    /// yet (an upper bound of what they hold).
    parked_records: AtomicI64,
    parked_bytes: AtomicI64,
    chunk_records: i64,
    chunk_bytes: i64,
    space: Mutex<()>,
    space_cv: Condvar,
    space_waiters: CachePadded<AtomicUsize>,
}

/// The credits one lane holds. Only its producer touches it (the giving back on drop
/// included), so it is plain data.
#[derive(Debug, Default)]
pub(crate) struct Credits {
    records: i64,
    bytes: i64,
    /// What of the above is counted in the budget's `parked` counters.
    parked_records: i64,
    parked_bytes: i64,
}

impl Credits {
    /// Spends the credits for one record of `len` bytes, if this lane holds them.
    #[inline(always)]
    pub(crate) fn spend(&mut self, len: usize) -> bool {
        let len = len as i64;
        if self.records >= 1 && self.bytes >= len {
            self.records -= 1;
            self.bytes -= len;
            true
        } else {
            false
        }
    }
}

impl Budget {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        let capacity = capacity.max(1);
        let max_bytes = max_bytes.max(1);
        Budget {
            capacity,
            max_bytes,
            free_records: CachePadded::new(AtomicI64::new(capacity as i64)),
            free_bytes: CachePadded::new(AtomicI64::new(max_bytes as i64)),
            parked_records: AtomicI64::new(0),
            parked_bytes: AtomicI64::new(0),
            chunk_records: (capacity / 256).clamp(1, 64) as i64,
            chunk_bytes: (max_bytes / 256).clamp(1, 64 << 10) as i64,
            space: Mutex::new(()),
            space_cv: Condvar::new(),
            space_waiters: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Gives `credits` what one record of `len` bytes needs, plus a chunk when credits are
    /// plentiful; everything it held before goes back first. False if the budget has too
    /// little free (the queue is full); `credits` then holds nothing.
    pub(crate) fn grant(&self, credits: &mut Credits, len: usize) -> bool {
        self.give_back(credits);
        let len = len as i64;
        let records = self.chunked(&self.parked_records, self.chunk_records, self.capacity, 1);
        let bytes = self.chunked(&self.parked_bytes, self.chunk_bytes, self.max_bytes, len);
        let Some(got_records) = take(&self.free_records, 1, records) else {
            self.unpark(records - 1, bytes - len);
            return false;
        };
        let Some(got_bytes) = take(&self.free_bytes, len, bytes) else {
            self.free_records.fetch_add(got_records, SeqCst);
            self.unpark(records - 1, bytes - len);
            return false;
        };
        // What was reserved in `parked` but not granted (the budget had less free).
        self.unpark(records - got_records, bytes - got_bytes);
        *credits = Credits {
            records: got_records,
            bytes: got_bytes,
            parked_records: got_records - 1,
            parked_bytes: got_bytes - len,
        };
        true
    }

    /// How many credits to ask for when one record needs `need`: a chunk if the credits
    /// parked in lanes stay under half the bound with it (counted in `parked` at once),
    /// else just `need`.
    fn chunked(&self, parked: &AtomicI64, chunk: i64, bound: usize, need: i64) -> i64 {
        if chunk <= need {
            return need;
        }
        let extra = chunk - need;
        let before = parked.fetch_add(extra, SeqCst);
        if before + extra <= (bound / 2) as i64 {
            chunk
        } else {
            parked.fetch_sub(extra, SeqCst);
            need
        }
    }

    fn unpark(&self, records: i64, bytes: i64) {
        if records > 0 {
            self.parked_records.fetch_sub(records, SeqCst);
        }
        if bytes > 0 {
            self.parked_bytes.fetch_sub(bytes, SeqCst);
        }
    }

    /// Takes back everything `credits` holds (a lane refilling, or going away).
    pub(crate) fn give_back(&self, credits: &mut Credits) {
        let c = std::mem::take(credits);
        self.unpark(c.parked_records, c.parked_bytes);
        if c.records > 0 || c.bytes > 0 {
            self.release(c.records, c.bytes);
        }
    }

    /// Returns the credits of consumed records (or a lane's unspent ones) and wakes
    /// producers waiting for space.
    pub(crate) fn release(&self, records: i64, bytes: i64) {
        if records > 0 {
            self.free_records.fetch_add(records, SeqCst);
        }
        if bytes > 0 {
            self.free_bytes.fetch_add(bytes, SeqCst);
        }
        self.notify_space();
    }

    /// Records queued or held unspent by lanes (what is not free).
    #[cfg(all(test, not(logxide_loom)))]
    pub(crate) fn records_out(&self) -> usize {
        (self.capacity as i64 - self.free_records.load(SeqCst)).max(0) as usize
    }

    fn notify_space(&self) {
        fence(SeqCst);
        if self.space_waiters.load(SeqCst) > 0 {
            let _guard = self.space.lock().unwrap_or_else(|e| e.into_inner());
            self.space_cv.notify_all();
        }
    }

    /// Wakes every waiter unconditionally (state changes: shutdown, fallback).
    pub(crate) fn wake_all_waiters(&self) {
        let _guard = self.space.lock().unwrap_or_else(|e| e.into_inner());
        self.space_cv.notify_all();
    }

    /// Retries `attempt` until it succeeds, `give_up()` says stop, or `deadline` passes;
    /// false unless it succeeded. `on_wait` is called before each sleep (to wake the
    /// writer).
    pub(crate) fn wait_for_space(
        &self,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> bool,
        give_up: impl Fn() -> bool,
        on_wait: impl Fn(),
    ) -> bool {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if attempt() {
                return true;
            }
            backoff.snooze();
        }
        on_wait();
        let mut guard = self.space.lock().unwrap_or_else(|e| e.into_inner());
        self.space_waiters.fetch_add(1, SeqCst);
        let result = loop {
            fence(SeqCst);
            if attempt() {
                break true;
            }
            if give_up() {
                break false;
            }
            let Some(wait) = wait_time(deadline, Duration::from_millis(50)) else {
                break false;
            };
            on_wait();
            guard = self
                .space_cv
                .wait_timeout(guard, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        self.space_waiters.fetch_sub(1, SeqCst);
        drop(guard);
        result
    }
}

/// Takes between `min` and `want` from `free` (as much as there is), or nothing if it holds
/// less than `min`.
fn take(free: &AtomicI64, min: i64, want: i64) -> Option<i64> {
    let mut have = free.load(SeqCst);
    loop {
        if have < min {
            return None;
        }
        let got = have.min(want);
        match free.compare_exchange_weak(have, have - got, SeqCst, SeqCst) {
            Ok(_) => return Some(got),
            Err(now) => have = now,
        }
    }
}

#[cfg(all(test, not(logxide_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_single_lane_fills_the_bounds_exactly() {
        // Chunks of 39 records; 10 000 records of 100 bytes fit, the next does not.
        let b = Budget::new(10_000, 64 << 20);
        let mut c = Credits::default();
        let mut queued = 0;
        while c.spend(100) || (b.grant(&mut c, 100) && c.spend(100)) {
            queued += 1;
        }
        assert_eq!(queued, 10_000);
        assert_eq!(b.records_out(), 10_000);
        // Consuming 3 makes room for exactly 3 more.
        b.release(3, 300);
        let mut more = 0;
        while c.spend(100) || (b.grant(&mut c, 100) && c.spend(100)) {
            more += 1;
        }
        assert_eq!(more, 3);
    }

    #[test]
    fn the_byte_bound_holds_and_a_record_as_large_as_it_fits() {
        let b = Budget::new(100, 1000);
        let mut c = Credits::default();
        assert!(b.grant(&mut c, 1000) && c.spend(1000));
        assert!(!c.spend(1) && !b.grant(&mut c, 1));
        b.release(1, 1000);
        assert!(b.grant(&mut c, 400) && c.spend(400));
        assert!(c.spend(600) || (b.grant(&mut c, 600) && c.spend(600)));
        assert!(!c.spend(1) && !b.grant(&mut c, 1));
    }

    #[test]
    fn idle_lanes_never_hold_more_than_half_the_capacity() {
        // 1 000 lanes log one record each and fall idle: the credits they keep are bounded.
        let b = Budget::new(10_000, 64 << 20);
        let mut lanes: Vec<Credits> = (0..1000).map(|_| Credits::default()).collect();
        for c in &mut lanes {
            assert!(b.grant(c, 100) && c.spend(100));
        }
        let held: i64 = lanes.iter().map(|c| c.records).sum();
        assert!(held <= 5_000, "idle lanes hold {held} credits");
        // Another lane can still queue what is left.
        let mut other = Credits::default();
        let mut queued = 0;
        while other.spend(100) || (b.grant(&mut other, 100) && other.spend(100)) {
            queued += 1;
        }
        assert_eq!(queued, 10_000 - 1000 - held);
        // Lanes giving back (threads exiting) return everything.
        for c in &mut lanes {
            b.give_back(c);
        }
        b.give_back(&mut other);
        b.release(1000 + queued, (1000 + queued) * 100);
        assert_eq!(b.records_out(), 0);
        assert_eq!(b.free_bytes.load(SeqCst), 64 << 20);
        assert_eq!(b.parked_records.load(SeqCst), 0);
        assert_eq!(b.parked_bytes.load(SeqCst), 0);
    }
}
