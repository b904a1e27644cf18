//! The queue's bounds: at most `capacity` records and `max_bytes` bytes queued, over all
//! producers together, without a shared read-modify-write per record.
//!
//! # Credits
//!
//! The budget holds *credits*: one record credit and `n` byte credits let a producer queue
//! one record of `n` bytes (its `\n` included). Producers take credits in *grants* and keep
//! them in their lane's [`Claim`], spending them with plain loads and stores; whoever consumes
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
//! # Reclaiming the credits of idle lanes
//!
//! Half of the byte bound is enough for every record up to half of it, but not for a larger
//! one: with a thread idle on a chunk, a record of `max_bytes` found no room in an empty queue
//! and waited (or spun, or was refused) forever. So a producer whose grant fails, when the
//! credits parked in lanes are what stands in the way ([`reclaim_may_help`]), takes them
//! back from the lanes whose producers are not pushing ([`reclaim`]), then tries once more.
//!
//! Lanes spend without a read-modify-write, so the reclaimer and a lane's producer must never
//! both move the lane's credits. The protocol, an asymmetric Dekker like the doorbell's (and
//! with its fences: [`light_fence`] for the producer, [`heavy_fence`] for the reclaimer):
//!
//! - The producer, at each push, stores `busy`, runs the light fence and loads `revoked`
//!   ([`Claim::begin`]); if it is clear it spends (or refills) the lane's credits and clears
//!   `busy` with a `Release` store ([`Claim::end`]). If `revoked` is set, it first takes the
//!   `reclaim` lock and clears `revoked` under it ([`Budget::acknowledge`]).
//! - The reclaimer, holding the `reclaim` lock, sets `revoked` in the lanes that hold
//!   credits, runs the heavy fence, then takes the credits of each such lane whose `busy` it
//!   loads (`Acquire`) clear, and leaves the others alone.
//!
//! Why no credit is spent twice nor lost:
//!
//! 1. For one push, the fences order `busy` before `revoked` on the producer's side and
//!    `revoked` before `busy` on the reclaimer's: at least one side sees the other's store.
//!    If the reclaimer sees `busy` set, it does not touch the lane. If it sees `busy` clear,
//!    either that is the clearing of an earlier push — whose credits it then reads as they
//!    were left, by the `Release`/`Acquire` pair — or the producer has not stored `busy` yet;
//!    in both cases the producer's next load of `revoked` sees it set (the fence argument
//!    applied to that push), so it spends nothing before it has taken the `reclaim` lock,
//!    which the reclaimer holds until it is done: what the producer then reads is what the
//!    reclaimer left (nothing).
//! 2. Only the producer clears `revoked`, and only under the lock: a reclaim never overlaps
//!    an acknowledgement, and a lane the reclaimer took from stays `revoked` until its
//!    producer has seen it. A lane whose thread exits gives back under the lock too.
//! 3. What is taken goes back to the free counters exactly as a lane gives back (`parked`
//!    included), so credits out of the budget are still the records queued plus the credits
//!    lanes hold: the bounds hold exactly.
//! 4. Progress: a record of `len ≤ max_bytes` waits only while the queue holds records (the
//!    writer frees their credits) or lanes hold credits. Lanes hold at most `parked` bytes,
//!    so once the queue is empty `free ≥ max_bytes − parked`; if `len + parked ≤ max_bytes`
//!    it fits, else [`reclaim_may_help`] holds (`free + parked ≥ max_bytes ≥ len`) and the
//!    reclaim empties every idle lane: with the other producers idle, the next try finds
//!    all of `max_bytes` free. Reclaims never wait for a producer, and a producer waits for a
//!    reclaim only in the rare case its push raced with one (the lock is held for one
//!    fence and a pass over the lanes).
//!
//! The common path of a push gains two plain stores and a load on the lane's own cache line
//! (and, where `membarrier` is missing, a second `SeqCst` fence): no lock, no
//! read-modify-write. A reclaim costs a `membarrier` call; it happens only when a grant
//! fails for a record larger than what the parked credits leave, and only if reclaiming
//! could let it in, so not under an ordinary overload of small records.
//!
//! `loom` checks the protocol on the real code, with the two fences modelled as the
//! doorbell models them (read-modify-writes of one word): a producer pushing through its lane
//! while a reclaimer takes the lane's credits, every interleaving within a preemption bound,
//! the bounds exact at the end: `RUSTFLAGS="--cfg logxide_loom" cargo test -p logxide
//! --release --lib budget`.
//!
//! [`reclaim_may_help`]: Budget::reclaim_may_help
//! [`reclaim`]: Budget::reclaim
//!
//! # Waiting for space (`block` policy)
//!
//! A producer that finds no credits spins briefly, then sleeps on `space_cv`. The protocol
//! that prevents a lost wake-up: the producer holds `space` while it increments
//! `space_waiters`, retries, and calls `wait` (which releases `space`); whoever gives credits
//! back then issues a `SeqCst` fence and, if `space_waiters > 0`, takes `space` before
//! `notify_all`. If the giver saw `space_waiters == 0`, its return of credits precedes the
//! producer's increment in the `SeqCst` order, so the producer's retry sees them; otherwise
//! the giver's `notify_all` cannot run until the producer is inside `wait`. A reclaim also
//! wakes the waiters, without taking `space` (see [`reclaim`]). Waits also carry a short
//! timeout as a second line of defence.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

// Under loom the budget's own synchronization is checked (see `tests::loom_model`), with the
// asymmetric fences modelled as the doorbell models them.
#[cfg(logxide_loom)]
use loom::sync::{
    atomic::{fence, AtomicBool, AtomicI64, AtomicU64, AtomicUsize},
    Condvar, Mutex,
};
#[cfg(not(logxide_loom))]
use std::sync::{
    atomic::{fence, AtomicBool, AtomicI64, AtomicUsize},
    Condvar, Mutex,
};

use crossbeam_utils::{Backoff, CachePadded};

#[cfg(not(logxide_loom))]
use super::doorbell::{heavy_fence, light_fence};
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
    /// How often a waiting producer looks again without being woken (the second line of
    /// defence; tests lengthen it to show that a wake-up came).
    recheck: Duration,
    /// Held by a reclaim, and by a producer acknowledging one or giving back at exit (see
    /// "Reclaiming"). Taken after `space` when both are (never the other way round).
    reclaim: Mutex<()>,
    /// The fork generation of the process that made the budget (see `logger::fork`).
    generation: u64,
    /// The fences of the loom model: read-modify-writes of this word, which order the two
    /// sides as `light_fence` and `heavy_fence` do (see the doorbell's model).
    #[cfg(logxide_loom)]
    sync: AtomicU64,
}

impl Budget {
    /// The producer's half of the reclaim protocol's fence.
    #[inline(always)]
    fn light_fence(&self) {
        #[cfg(logxide_loom)]
        self.sync.fetch_add(0, std::sync::atomic::Ordering::AcqRel);
        #[cfg(not(logxide_loom))]
        light_fence();
    }

    /// The reclaimer's half.
    fn heavy_fence(&self) {
        #[cfg(logxide_loom)]
        self.sync.fetch_add(0, std::sync::atomic::Ordering::AcqRel);
        #[cfg(not(logxide_loom))]
        heavy_fence();
    }
}

/// Credits moved as a whole: a grant, what a lane gives back.
#[derive(Debug, Default, Clone, Copy)]
struct Credits {
    records: i64,
    bytes: i64,
    /// What of the above is counted in the budget's `parked` counters.
    parked_records: i64,
    parked_bytes: i64,
}

impl Credits {
    fn any(&self) -> bool {
        self.records > 0 || self.bytes > 0 || self.parked_records > 0 || self.parked_bytes > 0
    }
}

/// The credits one lane holds, and the flags of the protocol that lets a reclaimer take them
/// back (see "Reclaiming"). Its producer moves the credits with plain loads and stores,
/// between [`begin`](Self::begin) and [`end`](Self::end); a reclaimer only while it knows the
/// producer is outside them.
#[derive(Debug, Default)]
pub(crate) struct Claim {
    /// The producer is between `begin` and `end`.
    busy: AtomicBool,
    /// A reclaimer may have taken the credits: the producer must take the `reclaim` lock
    /// before it touches them. Set by reclaimers, cleared by the producer, both under it.
    revoked: AtomicBool,
    records: AtomicI64,
    bytes: AtomicI64,
    parked_records: AtomicI64,
    parked_bytes: AtomicI64,
}

impl Claim {
    /// Producer: from here to [`end`](Self::end) the credits are this thread's to spend.
    #[inline(always)]
    pub(crate) fn begin(&self, budget: &Budget) {
        self.busy.store(true, Relaxed);
        budget.light_fence();
        if self.revoked.load(Relaxed) {
            budget.acknowledge(self);
        }
    }

    /// Producer: done with the credits for this push.
    #[inline(always)]
    pub(crate) fn end(&self) {
        self.busy.store(false, Release);
    }

    /// Producer (between `begin` and `end`): spends the credits for one record of `len`
    /// bytes, if this lane holds them.
    #[inline(always)]
    pub(crate) fn spend(&self, len: usize) -> bool {
        let len = len as i64;
        let records = self.records.load(Relaxed);
        let bytes = self.bytes.load(Relaxed);
        if records >= 1 && bytes >= len {
            self.records.store(records - 1, Relaxed);
            self.bytes.store(bytes - len, Relaxed);
            true
        } else {
            false
        }
    }

    /// Empties the claim: what it held.
    fn take(&self) -> Credits {
        let c = Credits {
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            parked_records: self.parked_records.load(Relaxed),
            parked_bytes: self.parked_bytes.load(Relaxed),
        };
        self.put(Credits::default());
        c
    }

    fn put(&self, c: Credits) {
        self.records.store(c.records, Relaxed);
        self.bytes.store(c.bytes, Relaxed);
        self.parked_records.store(c.parked_records, Relaxed);
        self.parked_bytes.store(c.parked_bytes, Relaxed);
    }

    /// A hint, read without the protocol: the lane may hold credits.
    fn may_hold(&self) -> bool {
        self.records.load(Relaxed) > 0 || self.bytes.load(Relaxed) > 0
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
            recheck: Duration::from_millis(50),
            reclaim: Mutex::new(()),
            generation: crate::logger::fork::generation(),
            #[cfg(logxide_loom)]
            sync: AtomicU64::new(0),
        }
    }

    /// True in a process forked from the one that made the budget (one relaxed load): a lock
    /// of the budget's may be held there for ever, by a thread the child does not have.
    pub(crate) fn forked(&self) -> bool {
        crate::logger::fork::current() != self.generation
    }

    /// Tests: holds the `reclaim` lock, as a reclaim under way does.
    #[cfg(all(test, not(logxide_loom)))]
    pub(crate) fn lock_reclaim(&self) -> std::sync::MutexGuard<'_, ()> {
        self.reclaim.lock().unwrap()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Gives `claim` what one record of `len` bytes needs, plus a chunk when credits are
    /// plentiful; everything it held before goes back first. False if the budget has too
    /// little free (the queue is full); `claim` then holds nothing. Its producer calls this
    /// between [`Claim::begin`] and [`Claim::end`].
    pub(crate) fn grant(&self, claim: &Claim, len: usize) -> bool {
        self.give_back(claim.take());
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
        claim.put(Credits {
            records: got_records,
            bytes: got_bytes,
            parked_records: got_records - 1,
            parked_bytes: got_bytes - len,
        });
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

    /// Takes back credits a lane held (refilling, or going away), and wakes waiters.
    fn give_back(&self, c: Credits) {
        self.unpark(c.parked_records, c.parked_bytes);
        if c.records > 0 || c.bytes > 0 {
            self.release(c.records, c.bytes);
        }
    }

    /// A lane goes away (its thread exits): what it holds comes back. Under the `reclaim`
    /// lock, so that no reclaim takes the same credits; waiters are woken after it.
    pub(crate) fn retire(&self, claim: &Claim) {
        let c = {
            let _serial = self.reclaim.lock().unwrap_or_else(|e| e.into_inner());
            claim.take()
        };
        self.give_back(c);
    }

    /// Producer, in [`Claim::begin`], having seen `revoked`: waits for the reclaim that set
    /// it to finish (the credits are then as it left them), and clears it.
    #[cold]
    #[inline(never)]
    fn acknowledge(&self, claim: &Claim) {
        let _serial = self.reclaim.lock().unwrap_or_else(|e| e.into_inner());
        claim.revoked.store(false, Relaxed);
    }

    /// True if a grant for a record of `len` bytes that just failed could succeed once the
    /// credits parked in lanes are taken back, and would not for sure once the queue is
    /// empty without that: the credits lanes hold (at most `parked`) leave too little of the
    /// byte bound for it, and what is free with them is enough (see "Reclaiming").
    pub(crate) fn reclaim_may_help(&self, len: usize) -> bool {
        let len = len as i64;
        let parked = self.parked_bytes.load(SeqCst);
        parked > 0
            && len + parked > self.max_bytes as i64
            && self.free_bytes.load(SeqCst) + parked >= len
    }

    /// Takes back the credits of the lanes (`claims`) whose producers are not pushing (see
    /// "Reclaiming"). True if it took any.
    ///
    /// Wakes the producers waiting for space without taking `space`, which its caller may
    /// hold (a `block` waiter's retry reclaims): a waiter asleep in `wait` wakes at once. One
    /// between its retry and its `wait` holds `space`, so it exists only when the caller
    /// does not; it sees the credits at its next look (the wait's timeout).
    #[cold]
    pub(crate) fn reclaim<'a>(&self, claims: impl Iterator<Item = &'a Claim> + Clone) -> bool {
        let _serial = self.reclaim.lock().unwrap_or_else(|e| e.into_inner());
        let mut asked = false;
        for claim in claims.clone() {
            if claim.may_hold() {
                claim.revoked.store(true, Relaxed);
                asked = true;
            }
        }
        if !asked {
            return false;
        }
        self.heavy_fence();
        let mut took = false;
        for claim in claims {
            // (`revoked` changes only under the lock: these are the lanes asked above, or
            // asked by an earlier reclaim and not yet acknowledged.)
            if claim.revoked.load(Relaxed) && !claim.busy.load(Acquire) {
                let c = claim.take();
                took |= c.any();
                self.unpark(c.parked_records, c.parked_bytes);
                self.free(c.records, c.bytes);
            }
        }
        if took {
            fence(SeqCst);
            if self.space_waiters.load(SeqCst) > 0 {
                self.space_cv.notify_all();
            }
        }
        took
    }

    /// Returns the credits of consumed records (or a lane's unspent ones) and wakes
    /// producers waiting for space.
    pub(crate) fn release(&self, records: i64, bytes: i64) {
        self.free(records, bytes);
        self.notify_space();
    }

    fn free(&self, records: i64, bytes: i64) {
        if records > 0 {
            self.free_records.fetch_add(records, SeqCst);
        }
        if bytes > 0 {
            self.free_bytes.fetch_add(bytes, SeqCst);
        }
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
            let Some(wait) = wait_time(deadline, self.recheck) else {
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

    /// Queues one record of `len` bytes through `c` as a lane does; false if it is full.
    fn push(b: &Budget, c: &Claim, len: usize) -> bool {
        c.begin(b);
        let ok = c.spend(len) || (b.grant(c, len) && c.spend(len));
        c.end();
        ok
    }

    fn held(c: &Claim) -> (i64, i64) {
        (c.records.load(SeqCst), c.bytes.load(SeqCst))
    }

    #[test]
    fn a_single_lane_fills_the_bounds_exactly() {
        // Chunks of 39 records; 10 000 records of 100 bytes fit, the next does not.
        let b = Budget::new(10_000, 64 << 20);
        let c = Claim::default();
        let mut queued = 0;
        while push(&b, &c, 100) {
            queued += 1;
        }
        assert_eq!(queued, 10_000);
        assert_eq!(b.records_out(), 10_000);
        // Consuming 3 makes room for exactly 3 more.
        b.release(3, 300);
        let mut more = 0;
        while push(&b, &c, 100) {
            more += 1;
        }
        assert_eq!(more, 3);
    }

    #[test]
    fn the_byte_bound_holds_and_a_record_as_large_as_it_fits() {
        let b = Budget::new(100, 1000);
        let c = Claim::default();
        assert!(push(&b, &c, 1000));
        assert!(!push(&b, &c, 1));
        b.release(1, 1000);
        assert!(push(&b, &c, 400));
        assert!(push(&b, &c, 600));
        assert!(!push(&b, &c, 1));
    }

    #[test]
    fn idle_lanes_never_hold_more_than_half_the_capacity() {
        // 1 000 lanes log one record each and fall idle: the credits they keep are bounded.
        let b = Budget::new(10_000, 64 << 20);
        let lanes: Vec<Claim> = (0..1000).map(|_| Claim::default()).collect();
        for c in &lanes {
            assert!(push(&b, c, 100));
        }
        let held: i64 = lanes.iter().map(|c| held(c).0).sum();
        assert!(held <= 5_000, "idle lanes hold {held} credits");
        // Another lane can still queue what is left.
        let other = Claim::default();
        let mut queued = 0;
        while push(&b, &other, 100) {
            queued += 1;
        }
        assert_eq!(queued, 10_000 - 1000 - held);
        // Lanes giving back (threads exiting) return everything.
        for c in &lanes {
            b.retire(c);
        }
        b.retire(&other);
        b.release(1000 + queued, (1000 + queued) * 100);
        assert_eq!(b.records_out(), 0);
        assert_eq!(b.free_bytes.load(SeqCst), 64 << 20);
        assert_eq!(b.parked_records.load(SeqCst), 0);
        assert_eq!(b.parked_bytes.load(SeqCst), 0);
    }

    /// A producer asleep waiting for space wakes when a reclaim frees credits, not at its
    /// next look: here that look is 30 s away, and the wake-up must come long before.
    #[test]
    fn a_reclaim_wakes_the_producers_waiting_for_space() {
        let (cap, max) = (1000, 64 << 10);
        let mut b = Budget::new(cap, max);
        b.recheck = Duration::from_secs(30);
        let idle: Vec<Claim> = (0..4).map(|_| Claim::default()).collect();
        for c in &idle {
            assert!(push(&b, c, 20));
        }
        b.release(4, 80);
        // The waiter's record needs the whole byte bound, which the idle lanes' chunks keep
        // it from; its own retries do not reclaim.
        let waiter = Claim::default();
        std::thread::scope(|s| {
            let started = Instant::now();
            let h = s.spawn(|| b.wait_for_space(None, || push(&b, &waiter, max), || false, || {}));
            while b.space_waiters.load(SeqCst) == 0 {
                std::thread::yield_now();
            }
            // The waiter holds `space` from its count to its `wait`: once this thread gets
            // the lock, the waiter is asleep.
            drop(b.space.lock().unwrap());
            assert!(!h.is_finished());
            assert!(b.reclaim(idle.iter()));
            assert!(h.join().unwrap());
            let waited = started.elapsed();
            assert!(
                waited < Duration::from_secs(15),
                "woken only by the timeout: {waited:?}"
            );
        });
        assert_eq!(held(&waiter).1, 0, "spent on the record");
    }

    #[test]
    fn the_credits_of_idle_lanes_are_reclaimed_for_a_record_as_large_as_the_bound() {
        let (cap, max) = (1000, 64 << 10);
        let b = Budget::new(cap, max);
        let idle: Vec<Claim> = (0..4).map(|_| Claim::default()).collect();
        for c in &idle {
            assert!(push(&b, c, 20));
        }
        b.release(4, 80);
        assert!(idle.iter().all(|c| held(c).1 > 0), "each holds a chunk");
        // Small records never need it; the large one does.
        let big = Claim::default();
        assert!(!b.reclaim_may_help(100));
        assert!(!push(&b, &big, max));
        assert!(b.reclaim_may_help(max));
        // A lane in the middle of a push is left alone.
        idle[3].busy.store(true, SeqCst);
        assert!(b.reclaim(idle.iter().chain([&big])));
        assert!(idle[..3].iter().all(|c| held(c) == (0, 0)));
        assert!(held(&idle[3]).1 > 0);
        idle[3].busy.store(false, SeqCst);
        assert!(b.reclaim(idle.iter()));
        assert!(push(&b, &big, max), "the whole byte bound is free");
        // The idle lanes see their credits gone and are granted again once there is room.
        assert!(idle[1..].iter().all(|c| c.revoked.load(SeqCst)));
        assert!(!push(&b, &idle[0], 20));
        b.release(1, max as i64);
        for c in &idle {
            assert!(push(&b, c, 20));
            assert!(!c.revoked.load(SeqCst), "acknowledged");
        }
        b.release(4, 80);
        for c in idle.iter().chain([&big]) {
            b.retire(c);
        }
        assert_eq!(b.free_records.load(SeqCst), cap as i64);
        assert_eq!(b.free_bytes.load(SeqCst), max as i64);
        assert_eq!(b.parked_records.load(SeqCst), 0);
        assert_eq!(b.parked_bytes.load(SeqCst), 0);
    }

    /// Producers push (and consume at once) while another thread reclaims over and over: no
    /// credit is spent twice or lost — each push's credits were held by one side only, and
    /// at the end the budget holds exactly its bounds again. The producers go on past their
    /// rounds until the reclaimer has taken credits from them a few times, so the race is
    /// really run however the threads are scheduled.
    #[test]
    fn reclaims_racing_with_pushes_neither_duplicate_nor_lose_credits() {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        use std::sync::Arc;
        let (cap, max) = (1024, 64 << 10);
        let b = Arc::new(Budget::new(cap, max));
        let claims: Arc<Vec<Claim>> = Arc::new((0..3).map(|_| Claim::default()).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let took = Arc::new(AtomicU64::new(0));
        let rounds = if cfg!(miri) { 200 } else { 20_000 };
        let wanted = if cfg!(miri) { 1 } else { 10 };
        let reclaimer = {
            let (b, claims, stop, took) = (
                Arc::clone(&b),
                Arc::clone(&claims),
                Arc::clone(&stop),
                Arc::clone(&took),
            );
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    if b.reclaim(claims.iter()) {
                        took.fetch_add(1, SeqCst);
                    }
                    std::thread::yield_now();
                }
            })
        };
        let producers: Vec<_> = (0..3)
            .map(|i| {
                let (b, claims, took) = (Arc::clone(&b), Arc::clone(&claims), Arc::clone(&took));
                std::thread::spawn(move || {
                    let c = &claims[i];
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                    let mut n = 0;
                    while n < rounds || took.load(SeqCst) < wanted {
                        assert!(std::time::Instant::now() < deadline, "no reclaim in 60 s");
                        let len = 10 + n % 90;
                        assert!(push(&b, c, len), "an empty queue refused a record");
                        b.release(1, len as i64);
                        // Never more out than the bounds.
                        assert!(b.free_records.load(SeqCst) >= 0);
                        assert!(b.free_bytes.load(SeqCst) >= 0);
                        n += 1;
                        if n >= rounds {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        stop.store(true, SeqCst);
        reclaimer.join().unwrap();
        let took = took.load(SeqCst);
        for c in claims.iter() {
            b.retire(c);
        }
        assert!(took >= wanted, "{took} reclaims during the pushes");
        assert_eq!(b.free_records.load(SeqCst), cap as i64, "{took} reclaims");
        assert_eq!(b.free_bytes.load(SeqCst), max as i64);
        assert_eq!(b.parked_records.load(SeqCst), 0);
        assert_eq!(b.parked_bytes.load(SeqCst), 0);
    }
}

/// The reclaim protocol under loom: every interleaving (within the preemption bound) of a
/// producer pushing through its lane, and of a reclaimer taking the lane's credits back.
/// A credit spent by both sides (the producer queues a record with credits the reclaimer
/// gave back) or lost would leave the free counters off their bounds at the end, once the
/// records are consumed and the lane retired: the model checks them exactly. (Both sides
/// are spawned threads: with the reclaimer on the model's own thread loom explored one
/// interleaving only. Checked against two broken protocols — a reclaimer ignoring `busy`, a
/// producer without its fence — which both fail the model.)
/// `RUSTFLAGS="--cfg logxide_loom" cargo test -p logxide --release --lib budget`.
#[cfg(all(test, logxide_loom))]
mod loom_model {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Queues one record of `len` bytes through `c` as a lane does, and consumes it.
    fn push_and_consume(b: &Budget, c: &Claim, len: usize) {
        c.begin(b);
        let ok = c.spend(len) || (b.grant(c, len) && c.spend(len));
        c.end();
        assert!(ok, "an empty queue refused a record");
        b.release(1, len as i64);
    }

    fn model(pushes: usize, reclaims: usize) {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(move || {
            // Chunks of 4 records and 40 bytes: a push leaves credits in the lane.
            let (cap, max) = (1024, 10240);
            let b = Arc::new(Budget::new(cap, max));
            let claim = Arc::new(Claim::default());
            let producer = {
                let (b, claim) = (b.clone(), claim.clone());
                thread::spawn(move || {
                    for _ in 0..pushes {
                        push_and_consume(&b, &claim, 4);
                    }
                })
            };
            let reclaimer = {
                let (b, claim) = (b.clone(), claim.clone());
                thread::spawn(move || {
                    for _ in 0..reclaims {
                        b.reclaim(std::iter::once(&*claim));
                    }
                })
            };
            producer.join().unwrap();
            reclaimer.join().unwrap();
            b.retire(&claim);
            assert_eq!(b.free_records.load(SeqCst), cap as i64);
            assert_eq!(b.free_bytes.load(SeqCst), max as i64);
            assert_eq!(b.parked_records.load(SeqCst), 0);
            assert_eq!(b.parked_bytes.load(SeqCst), 0);
        });
    }

    #[test]
    fn budget_reclaim_during_pushes() {
        model(2, 1);
    }

    #[test]
    fn budget_reclaims_between_pushes() {
        model(3, 2);
    }
}
