//! The bounded queue between producers and the writer thread.
//!
//! # Design
//!
//! Records travel as owned byte buffers through a bounded MPMC ring
//! ([`crossbeam_queue::ArrayQueue`]). Buffers are recycled: the writer thread returns each
//! emptied buffer to a second ring (the pool), and producers take their next buffer from it,
//! so in steady state no record allocates on the caller's side. Buffers that grew past
//! [`RETAIN_MAX`] are freed instead of pooled, which bounds the memory the pool keeps.
//!
//! The queue is bounded twice: by `capacity` items (the ring's size) and by `max_bytes`
//! queued bytes (an atomic reservation taken before a push and released when the writer pops).
//!
//! # Ordering guarantee
//!
//! The ring is FIFO with one consumer, so each producer's records are written in the order it
//! enqueued them. Across producers the order is the order in which their pushes reached the
//! ring: if one enqueue *happens before* another (same thread, or synchronized through a lock
//! or channel), it is written first.
//!
//! # Waiting for space (`block` policy)
//!
//! A producer that finds the queue full spins briefly, then sleeps on `space_cv`. The
//! protocol that prevents a lost wake-up: the producer holds `space` while it increments
//! `space_waiters`, retries the push, and calls `wait` (which releases `space`); the consumer,
//! after popping, issues a `SeqCst` fence and, if `space_waiters > 0`, takes `space` before
//! `notify_all`. If the consumer saw `space_waiters == 0`, its pop precedes the producer's
//! increment in the `SeqCst` order, so the producer's retry sees the free slot; otherwise the
//! consumer's `notify_all` cannot run until the producer is inside `wait`. Waits also carry a
//! short timeout as a second line of defence.

use std::sync::atomic::{fence, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::{Backoff, CachePadded};

/// Buffers whose capacity grew beyond this are freed rather than pooled.
pub(crate) const RETAIN_MAX: usize = 4096;
/// Capacity of a freshly allocated record buffer.
const FRESH_CAPACITY: usize = 256;

/// One queue entry: a record with its severity ([`Batch::NO_LEVEL`] when unknown), or a
/// `flush()` barrier with its ticket.
///
/// [`Batch::NO_LEVEL`]: crate::sink::Batch::NO_LEVEL
pub(crate) enum Item {
    Record(Vec<u8>, u8),
    /// A record captured by the encoder: its segments are formatted when it is delivered
    /// (see [`crate::encode::capture`]).
    Captured(Vec<u8>, u8),
    Barrier(u64),
}

impl Item {
    /// A record item; `captured` says whether it holds capture segments.
    #[inline]
    pub(crate) fn record(buf: Vec<u8>, level: u8, captured: bool) -> Item {
        if captured {
            Item::Captured(buf, level)
        } else {
            Item::Record(buf, level)
        }
    }
}

pub(crate) struct Queue {
    items: ArrayQueue<Item>,
    pool: ArrayQueue<Vec<u8>>,
    bytes: CachePadded<AtomicUsize>,
    max_bytes: usize,
    space: Mutex<()>,
    space_cv: Condvar,
    space_waiters: CachePadded<AtomicUsize>,
}

impl Queue {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Queue {
            items: ArrayQueue::new(capacity),
            pool: ArrayQueue::new(capacity),
            bytes: CachePadded::new(AtomicUsize::new(0)),
            max_bytes,
            space: Mutex::new(()),
            space_cv: Condvar::new(),
            space_waiters: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.items.capacity()
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// A buffer holding a copy of `line`, from the pool when one is there.
    #[inline]
    pub(crate) fn make_record(&self, line: &[u8], add_newline: bool) -> Vec<u8> {
        let mut buf = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(FRESH_CAPACITY.max(line.len() + 1)));
        buf.extend_from_slice(line);
        if add_newline {
            buf.push(b'\n');
        }
        buf
    }

    /// An empty buffer, from the pool when one is there.
    #[inline]
    pub(crate) fn empty_buffer(&self) -> Vec<u8> {
        self.pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(FRESH_CAPACITY))
    }

    /// Gives an emptied buffer back to the pool (or frees it if it grew large).
    #[inline]
    pub(crate) fn recycle(&self, mut buf: Vec<u8>) {
        if buf.capacity() <= RETAIN_MAX {
            buf.clear();
            let _ = self.pool.push(buf);
        }
    }

    /// Reserves `n` bytes of the byte bound; false if that would exceed it.
    #[inline]
    pub(crate) fn reserve(&self, n: usize) -> bool {
        let before = self.bytes.fetch_add(n, SeqCst);
        if before + n > self.max_bytes {
            self.bytes.fetch_sub(n, SeqCst);
            return false;
        }
        true
    }

    /// Returns `n` reserved bytes.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        if n > 0 {
            self.bytes.fetch_sub(n, SeqCst);
        }
    }

    #[inline]
    pub(crate) fn try_push(&self, item: Item) -> Result<(), Item> {
        self.items.push(item)
    }

    /// Pushes, evicting and returning the oldest item if the ring is full.
    pub(crate) fn force_push(&self, item: Item) -> Option<Item> {
        self.items.force_push(item)
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<Item> {
        self.items.pop()
    }

    /// Called by the consumer after it freed space.
    pub(crate) fn notify_space(&self) {
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

    /// Retries `attempt` until it succeeds, `give_up()` says stop, or `deadline` passes.
    ///
    /// `attempt` returns `Ok(T)` on success and `Err(item)` when there is still no space.
    /// `on_wait` is called once, before the first sleep (to wake the consumer).
    pub(crate) fn wait_for_space<T>(
        &self,
        mut item: Item,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(Item) -> Result<T, Item>,
        give_up: impl Fn() -> bool,
        on_wait: impl Fn(),
    ) -> Result<T, Item> {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            item = match attempt(item) {
                Ok(v) => return Ok(v),
                Err(item) => item,
            };
            backoff.snooze();
        }
        on_wait();
        let mut guard = self.space.lock().unwrap_or_else(|e| e.into_inner());
        self.space_waiters.fetch_add(1, SeqCst);
        let result = loop {
            fence(SeqCst);
            item = match attempt(item) {
                Ok(v) => break Ok(v),
                Err(item) => item,
            };
            if give_up() {
                break Err(item);
            }
            let mut wait = Duration::from_millis(50);
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    break Err(item);
                }
                wait = wait.min(d - now);
            }
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
