//! The doorbell: the `enqueued` counter, which also tells producers when to wake the parked
//! writer thread — without a syscall per record and without a lost wake-up.
//!
//! One atomic word holds the count of enqueued records and, in its top bit, `SLEEPING`.
//! Everything that decides a wake-up is a read-modify-write of that one word, so the
//! argument needs only the atomicity of read-modify-writes (a single modification order),
//! not sequential consistency across locations:
//!
//! - The writer reads the count (`seen`) *before* it looks at the queue. Every record counted
//!   by then is visible in the queue (the count is incremented after the push, with release,
//!   and read with acquire).
//! - To sleep, it stores the count at which it wants to be woken in `wake_at`, then
//!   compare-exchanges the word from `seen` to `seen | SLEEPING`. The exchange fails if any
//!   record was counted since `seen` — the writer then looks again instead of parking.
//! - A producer pushes, then counts with `fetch_add`. If the previous word had `SLEEPING` and
//!   its count reached `wake_at`, it clears the bit with `fetch_and`; the one producer that
//!   actually cleared it unparks the writer.
//!
//! If the exchange succeeded, every later `fetch_add` comes after it in the word's
//! modification order and so sees `SLEEPING` (and, synchronizing with the exchange's release,
//! the `wake_at` stored before it): the producer whose count reaches `wake_at` wakes the
//! writer. An unpark that lands before `park` makes `park` return at once. While the writer is
//! busy the bit is clear and producers pay nothing beyond the `fetch_add` they make anyway.
//!
//! `loom` checks this protocol: `RUSTFLAGS="--cfg logxide_loom" cargo test -p logxide --release --lib
//! doorbell`.

#[cfg(logxide_loom)]
use loom::sync::atomic::AtomicU64;
#[cfg(not(logxide_loom))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};

use crossbeam_utils::CachePadded;

/// The writer is parked (or about to park) until the count reaches `wake_at`.
const SLEEPING: u64 = 1 << 63;

pub(crate) struct Doorbell {
    word: CachePadded<AtomicU64>,
    wake_at: AtomicU64,
}

impl Default for Doorbell {
    fn default() -> Self {
        Doorbell::new()
    }
}

impl Doorbell {
    pub(crate) fn new() -> Self {
        Doorbell {
            word: CachePadded::new(AtomicU64::new(0)),
            wake_at: AtomicU64::new(0),
        }
    }

    /// Producer side: counts one record already pushed onto the queue. True if the caller
    /// must unpark the writer (it claimed the wake-up).
    #[inline]
    pub(crate) fn count_pushed(&self) -> bool {
        let prev = self.word.fetch_add(1, SeqCst);
        prev & SLEEPING != 0 && self.wake_due(prev)
    }

    #[cold]
    fn wake_due(&self, prev: u64) -> bool {
        let n = (prev & !SLEEPING) + 1;
        n >= self.wake_at.load(Acquire) && self.word.fetch_and(!SLEEPING, SeqCst) & SLEEPING != 0
    }

    /// Counts a record that never entered the queue (dropped, or written synchronously).
    #[inline]
    pub(crate) fn count_other(&self) {
        self.word.fetch_add(1, SeqCst);
    }

    /// The number of records counted so far.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.word.load(SeqCst) & !SLEEPING
    }

    /// Writer side: sleep until the count reaches `at`, unless it moved since `seen` (read
    /// before the writer last looked at the queue). True if the writer may park.
    pub(crate) fn try_sleep(&self, seen: u64, at: u64) -> bool {
        self.wake_at.store(at, Relaxed);
        self.word
            .compare_exchange(seen, seen | SLEEPING, SeqCst, Relaxed)
            .is_ok()
    }

    /// Writer side, after `park` returned (woken or timed out).
    pub(crate) fn woke(&self) {
        self.word.fetch_and(!SLEEPING, SeqCst);
    }
}

#[cfg(all(test, logxide_loom))]
mod tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;
    use loom::thread;

    /// Two producers push one record each; the writer parks whenever it sees nothing new.
    /// A lost wake-up would leave the writer parked forever, which loom reports as a deadlock.
    ///
    /// The queue is modelled by one flag per producer rather than a loom `Mutex`: loom lets an
    /// `unpark` that arrives while a thread waits for a mutex end *that* wait and forgets the
    /// token, which `std` does not do.
    fn model(batch: u64) {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(move || {
            let slots = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
            let bell = Arc::new(Doorbell::new());

            let writer = {
                let (slots, bell) = (slots.clone(), bell.clone());
                thread::spawn(move || {
                    let mut taken = [false, false];
                    while taken != [true, true] {
                        let seen = bell.get();
                        let mut popped = 0;
                        for (i, slot) in slots.iter().enumerate() {
                            if !taken[i] && slot.load(Acquire) {
                                taken[i] = true;
                                popped += 1;
                            }
                        }
                        if popped > 0 {
                            continue;
                        }
                        // Wait for one record, or for a "batch" of two.
                        let missing = 2 - taken.iter().filter(|t| **t).count() as u64;
                        if bell.try_sleep(seen, seen + batch.min(missing)) {
                            thread::park();
                            bell.woke();
                        }
                    }
                })
            };
            let writer_thread = writer.thread().clone();
            let producers: Vec<_> = (0..2)
                .map(|i| {
                    let (slots, bell) = (slots.clone(), bell.clone());
                    let writer_thread = writer_thread.clone();
                    thread::spawn(move || {
                        slots[i].store(true, std::sync::atomic::Ordering::Release);
                        if bell.count_pushed() {
                            writer_thread.unpark();
                        }
                    })
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            writer.join().unwrap();
            assert_eq!(bell.get(), 2);
        });
    }

    #[test]
    fn no_lost_wakeup_idle() {
        model(1);
    }

    #[test]
    fn no_lost_wakeup_batch() {
        model(2);
    }
}
