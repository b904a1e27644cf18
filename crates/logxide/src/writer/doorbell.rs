//! The doorbell: how producers learn that the writer thread sleeps and wants waking, or that
//! the writer left the running state — with one plain load per record and no lost wake-up.
//!
//! One word holds `SLEEPING` (the writer parks, or is about to, until `COUNT` more records
//! arrive) and `ATTENTION` (the writer is closing or fell back: producers must look at its
//! state after publishing). It is zero while the writer runs and is awake, so a producer's
//! check after each record is a load of a line nobody writes, which stays in its cache.
//!
//! # The protocol: an asymmetric Dekker
//!
//! Both questions have the same shape. The producer *publishes* (stores a lane's count and
//! write index), then *loads* the word. The other side *stores* the word (arms it, or sets
//! `ATTENTION`), then *loads* what producers publish (the lanes). Neither may miss both: a
//! producer that saw no bit must have its record seen by the writer's look at the lanes.
//! That needs a full fence between each side's store and its load. The producer pays for
//! its side with only [`light`](Doorbell::light), a compiler fence, and the writer's side
//! with [`heavy`](Doorbell::heavy), Linux's `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`,
//! which runs a full memory barrier on every running thread of the process before it
//! returns (a thread not running has passed one when it was switched out). For a producer
//! that loads the word, the barrier falls either before its load — then the load sees the
//! bit, which was stored before the barrier — or after it, and then the publishing stores
//! that came before the load in program order are globally visible before `heavy`
//! returns, so the writer's look at the lanes sees them. The writer calls `heavy` only
//! when it goes to sleep and at state changes, a few microseconds each time.
//!
//! Where `membarrier` is not available (another OS, an old kernel, a seccomp filter) both
//! sides use a `SeqCst` fence: the textbook Dekker, which costs producers a fence per record.
//!
//! To wake the writer, a producer that sees `SLEEPING` counts its record down with a
//! compare-exchange; the one that takes `COUNT` to zero clears `SLEEPING` and unparks the
//! writer. An unpark that lands before the writer parks makes `park` return at once.
//!
//! `loom` checks the protocol, with `light` and `heavy` as read-modify-writes of one word
//! (which order the two sides the way the fences do): `RUSTFLAGS="--cfg logxide_loom"
//! cargo test -p logxide --release --lib doorbell`.

#[cfg(logxide_loom)]
use loom::sync::atomic::AtomicU64;
#[cfg(not(logxide_loom))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};

use crossbeam_utils::CachePadded;

/// The writer parks until `COUNT` more records arrive.
const SLEEPING: u64 = 1 << 63;
/// Producers must look at the writer's state after publishing.
pub(crate) const ATTENTION: u64 = 1 << 62;
/// Records still to come before the sleeping writer wants waking.
const COUNT: u64 = u32::MAX as u64;

pub(crate) struct Doorbell {
    word: CachePadded<AtomicU64>,
    /// The fences of the loom model (read-modify-writes of this word).
    #[cfg(logxide_loom)]
    sync: AtomicU64,
}

impl Default for Doorbell {
    fn default() -> Self {
        Doorbell::new()
    }
}

impl Doorbell {
    pub(crate) fn new() -> Self {
        fences::init();
        Doorbell {
            word: CachePadded::new(AtomicU64::new(0)),
            #[cfg(logxide_loom)]
            sync: AtomicU64::new(0),
        }
    }

    /// Producer, after publishing a record: the word (zero in the common case; otherwise
    /// see [`ring`](Self::ring) and [`ATTENTION`]).
    #[inline(always)]
    pub(crate) fn after_publish(&self) -> u64 {
        self.light();
        self.word.load(Relaxed)
    }

    /// Producer, having seen `SLEEPING`: counts its record toward the writer's wake-up.
    /// True if this caller must unpark the writer.
    #[cold]
    pub(crate) fn ring(&self) -> bool {
        let mut w = self.word.load(Relaxed);
        loop {
            if w & SLEEPING == 0 {
                return false;
            }
            let left = w & COUNT;
            let new = if left <= 1 {
                w & !(SLEEPING | COUNT)
            } else {
                w - 1
            };
            match self.word.compare_exchange_weak(w, new, Acquire, Relaxed) {
                Ok(_) => return left <= 1,
                Err(now) => w = now,
            }
        }
    }

    /// Writer: asks to be woken when `count` more records have been published, then runs
    /// [`heavy`](Self::heavy). The caller must look at the lanes again and park only if
    /// nothing was published since it last looked; then [`disarm`](Self::disarm).
    pub(crate) fn arm(&self, count: u64) {
        let count = count.clamp(1, COUNT);
        // Disarmed, `SLEEPING` and `COUNT` are clear: or-ing sets them.
        let before = self.word.fetch_or(SLEEPING | count, SeqCst);
        debug_assert_eq!(before & (SLEEPING | COUNT), 0, "armed twice");
        self.heavy();
    }

    /// Writer, awake again (or not parking after all).
    pub(crate) fn disarm(&self) {
        self.word.fetch_and(!(SLEEPING | COUNT), SeqCst);
    }

    /// Makes every producer look at the writer's state after its next record. The caller
    /// then runs [`heavy`](Self::heavy) before it looks at the lanes (see the module docs).
    pub(crate) fn attention(&self) {
        self.word.fetch_or(ATTENTION, SeqCst);
    }

    /// The producer's half of the fence: a compiler fence where `membarrier` serves the
    /// other half, else a full fence.
    #[inline(always)]
    pub(crate) fn light(&self) {
        #[cfg(logxide_loom)]
        self.sync.fetch_add(0, std::sync::atomic::Ordering::AcqRel);
        #[cfg(not(logxide_loom))]
        fences::light();
    }

    /// The writer's half of the fence: a memory barrier on every running thread of the
    /// process (or a full fence; see [`light`](Self::light)).
    pub(crate) fn heavy(&self) {
        #[cfg(logxide_loom)]
        self.sync.fetch_add(0, std::sync::atomic::Ordering::AcqRel);
        #[cfg(not(logxide_loom))]
        fences::heavy();
    }
}

/// The producer's half of the asymmetric fence, for other protocols of the same shape (the
/// budget's reclaiming of credits): a compiler fence where `membarrier` serves the other
/// half, else a full fence. Under loom the budget models it as the doorbell does.
#[cfg_attr(logxide_loom, allow(dead_code))]
#[inline(always)]
pub(crate) fn light_fence() {
    fences::light();
}

/// The other half of [`light_fence`]: a memory barrier on every running thread of the
/// process (or a full fence).
#[cfg_attr(logxide_loom, allow(dead_code))]
pub(crate) fn heavy_fence() {
    fences::heavy();
}

/// Decides the fences before anything uses them (idempotent; [`Doorbell::new`] does it too).
pub(crate) fn init_fences() {
    fences::init();
}

/// Which fences this process uses: decided once, before the first writer exists.
mod fences {
    use std::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering::Relaxed, Ordering::SeqCst};

    const UNKNOWN: u8 = 0;
    const MEMBARRIER: u8 = 1;
    const SYMMETRIC: u8 = 2;

    static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// Registers the process for `membarrier` where it can (idempotent). Runs before any
    /// writer is built, so every producer reads the final mode: it is set once and every
    /// producer of a writer starts after that writer was built.
    pub(super) fn init() {
        if MODE.load(SeqCst) != UNKNOWN {
            return;
        }
        let mode = if register() { MEMBARRIER } else { SYMMETRIC };
        let _ = MODE.compare_exchange(UNKNOWN, mode, SeqCst, SeqCst);
    }

    // (Miri has no `membarrier`: it runs the fence-per-record mode, as other systems do.)
    #[cfg(all(target_os = "linux", not(miri)))]
    fn register() -> bool {
        use rustix::thread::{membarrier, membarrier_query, MembarrierCommand, MembarrierQuery};
        membarrier_query().contains(MembarrierQuery::PRIVATE_EXPEDITED)
            && membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
    }

    #[cfg(any(not(target_os = "linux"), miri))]
    fn register() -> bool {
        false
    }

    // (Under loom the doorbell models these fences instead: unused there.)
    #[cfg_attr(logxide_loom, allow(dead_code))]
    #[inline(always)]
    pub(super) fn light() {
        if MODE.load(Relaxed) == MEMBARRIER {
            compiler_fence(SeqCst);
        } else {
            fence(SeqCst);
        }
    }

    #[cfg_attr(logxide_loom, allow(dead_code))]
    pub(super) fn heavy() {
        #[cfg(all(target_os = "linux", not(miri)))]
        if MODE.load(Relaxed) == MEMBARRIER {
            use rustix::thread::{membarrier, MembarrierCommand};
            // Registered, so it cannot fail (the registration is inherited by forked
            // children too); the fence below is all that is left if it ever did.
            if membarrier(MembarrierCommand::PrivateExpedited).is_ok() {
                return;
            }
            debug_assert!(false, "membarrier failed after registration");
        }
        fence(SeqCst);
    }

    #[cfg(all(test, not(logxide_loom)))]
    #[test]
    fn linux_here_has_membarrier() {
        init();
        if cfg!(target_os = "linux") {
            // Not a requirement, but where it fails producers pay a fence per record:
            // worth knowing when reading benchmark figures.
            eprintln!(
                "doorbell fences: membarrier = {}",
                MODE.load(SeqCst) == MEMBARRIER
            );
        }
        light();
        heavy();
    }
}

#[cfg(all(test, logxide_loom))]
mod tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;
    use loom::thread;

    /// Two producers publish one record each (a flag, then the doorbell check); the writer
    /// takes what it finds and otherwise arms the doorbell, looks again, and parks. A lost
    /// wake-up would leave the writer parked forever, which loom reports as a deadlock.
    ///
    /// The lanes are modelled by one flag per producer rather than a loom `Mutex`: loom lets
    /// an `unpark` that arrives while a thread waits for a mutex end *that* wait and forgets
    /// the token, which `std` does not do.
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
                    let look = |taken: &mut [bool; 2]| {
                        let mut found = 0;
                        for (i, slot) in slots.iter().enumerate() {
                            if !taken[i] && slot.load(Acquire) {
                                taken[i] = true;
                                found += 1;
                            }
                        }
                        found
                    };
                    while taken != [true, true] {
                        if look(&mut taken) > 0 {
                            continue;
                        }
                        // Wait for one record, or for a "batch" of two.
                        let missing = 2 - taken.iter().filter(|t| **t).count() as u64;
                        bell.arm(batch.min(missing));
                        if look(&mut taken) == 0 {
                            thread::park();
                        }
                        bell.disarm();
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
                        if bell.after_publish() & SLEEPING != 0 && bell.ring() {
                            writer_thread.unpark();
                        }
                    })
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            writer.join().unwrap();
        });
    }

    #[test]
    fn no_lost_wakeup_idle() {
        model(1);
    }

    /// The asymmetric Dekker, every interleaving: a producer publishes (a flag) and then
    /// loads the doorbell, reporting whether it saw `bit`; the other side runs `signal`
    /// (which stores the doorbell and fences) and then looks at the flag. At least one of
    /// the two must see the other.
    fn one_producer(bit: u64, signal: fn(&Doorbell)) {
        loom::model(move || {
            let slot = Arc::new(AtomicBool::new(false));
            let bell = Arc::new(Doorbell::new());
            let producer = {
                let (slot, bell) = (slot.clone(), bell.clone());
                thread::spawn(move || {
                    slot.store(true, std::sync::atomic::Ordering::Release);
                    bell.after_publish() & bit != 0
                })
            };
            signal(&bell);
            let other_side_saw = slot.load(Acquire);
            let producer_saw = producer.join().unwrap();
            assert!(other_side_saw || producer_saw, "neither side saw the other");
        });
    }

    /// The writer arms the doorbell and looks again before it parks: it sees the record, or
    /// the producer sees `SLEEPING` (and rings: parking with neither is a lost wake-up).
    #[test]
    fn no_lost_wakeup_one_producer_exhaustive() {
        one_producer(SLEEPING, |bell| bell.arm(1));
    }

    /// The close protocol: the closer sets `ATTENTION`, fences and drains; a record is
    /// drained by the closer or by its producer, never by neither.
    #[test]
    fn no_record_stranded_at_close() {
        one_producer(ATTENTION, |bell| {
            bell.attention();
            bell.heavy();
        });
    }
}
