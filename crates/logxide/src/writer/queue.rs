//! The queue between producers and the writer thread: one [lane](super::lane) per producer
//! thread, bounded together by the [budget](super::budget), read in the order of the calls.
//!
//! # Producers
//!
//! A thread's first record for a writer registers a lane and keeps its write side in a
//! thread-local list (most recently used first), so later records find it with one
//! comparison. The write side goes away with the thread, which finishes the lane; the
//! delivering thread retires finished lanes once it has read them ([`Cursor::sweep`]). A
//! record logged while the thread's list is in use (from inside a push: a sink running on
//! this thread) or after its thread-local storage is gone (a destructor at thread exit)
//! goes through one shared lane behind a mutex. A thread that writes synchronously registers
//! its lane too, for the time of its records ([`Queue::own_lane`]); a lane holds no ring
//! and no credits until its first push (see the lane's "Growing").
//!
//! # Order
//!
//! Each lane is read in the order it was written, so each producer's records keep their
//! order. Across lanes, records are merged by the *ticks* in their header: the clock
//! reading at the start of the call (`encode::capture::clock`, monotonic and common to all
//! cores). If one call *happens before* another (same thread, or synchronized through a
//! lock or a channel), its clock reading came first, and its record is written first —
//! with one subtlety the reader handles: the two records may be published while the reader
//! looks at the lanes one after the other, so that it sees the later record and not yet the
//! earlier one. Therefore [`Cursor::take`] looks twice. The first look (`S1`) fixes what it
//! may take; the second finds, in every lane, the first record published since (if any),
//! and the smallest of their ticks, `M`. It takes only records of `S1` with ticks below
//! `M`, oldest first. A record `r1` that happens before a record `r2` of `S1` was published
//! before `r2`, so before the second look began: it is in `S1`, or it is among the records
//! the second look found, and then `M ≤ ticks(r1) ≤ ticks(r2)` holds `r2` back for a later
//! pass. Records of `S1` that are held back are taken by a later pass (the first of them
//! in the next one unless an even older call is published meanwhile), so everything is
//! taken eventually. Equal ticks on two cores for two calls ordered by a hand-over between
//! them cannot happen (the hand-over takes longer than a tick).
//!
//! The shared lane holds records of several threads; its header ticks are kept monotonic
//! (the larger of the call's and the previous record's), which keeps both rules true for
//! it.
//!
//! # Reading without blocking producers
//!
//! Producers do not wait for a reader: publishing takes no lock; the reader holds a lane's
//! lock only while it copies records out, and a producer evicting under `drop_oldest` skips
//! a lane being read. (A producer that starts a new ring takes the lane's `next` lock, which
//! a reader holds only for the moment it moves on to that ring.) The list of lanes is
//! swapped whole ([`ArcSwap`]), so reading it takes no lock — in a forked child too, where a
//! lock held at the fork would stay held.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use smallvec::SmallVec;

use super::budget::Budget;
use super::lane::{
    Header, Lane, LaneProducer, LaneReader, NoCredits, Record, View, HEADER, MAX_RECORD,
    SEGMENT_MAX,
};
use crate::encode::capture::ProducerTime;

/// Where the delivering thread puts the records it takes.
pub(crate) trait Collect {
    /// One record: its body (the line, `\n` included), severity and lane flags, and the
    /// time given to its lane's last record (updated by a captured record).
    fn record(&mut self, body: &[u8], level: u8, flags: u8, time: &mut ProducerTime);
    /// False once the batch is full: take no more now.
    fn room(&self) -> bool;
}

/// Every registered lane, and what lanes retired since had published.
struct Lanes {
    list: Vec<Arc<Lane>>,
    retired_published: u64,
}

pub(crate) struct Queue {
    /// Tells this writer's lanes apart from other writers' in a thread's list.
    id: u64,
    budget: Arc<Budget>,
    lanes: ArcSwap<Lanes>,
    /// Serializes changes of `lanes`.
    lanes_change: Mutex<()>,
    /// See the module docs.
    shared_lane: Mutex<Option<LaneProducer>>,
    /// The largest ring a lane starts for records that fit it: what the budget allows at
    /// most, with headers, but no more than [`SEGMENT_MAX`].
    max_segment: usize,
    /// The largest record (its `\n` included): `max_bytes`, or [`MAX_RECORD`] if smaller.
    max_record: usize,
}

thread_local! {
    /// This thread's lanes, one per writer it logged to, the most recently used first.
    static PRODUCERS: RefCell<Vec<(u64, LaneProducer)>> = const { RefCell::new(Vec::new()) };
}

impl Queue {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        // Producers' pushes use the fences (see the budget's "Reclaiming").
        super::doorbell::init_fences();
        let budget = Arc::new(Budget::new(capacity, max_bytes));
        let max_segment = max_bytes
            .saturating_add(capacity.saturating_mul(HEADER))
            .min(SEGMENT_MAX);
        Queue {
            id: NEXT_ID.fetch_add(1, Relaxed),
            budget,
            lanes: ArcSwap::from_pointee(Lanes {
                list: Vec::new(),
                retired_published: 0,
            }),
            lanes_change: Mutex::new(()),
            shared_lane: Mutex::new(None),
            max_segment,
            max_record: max_bytes.min(MAX_RECORD),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.budget.capacity()
    }

    /// The largest record a push may be given (its `\n` included): the byte bound, and at
    /// most what a lane's header can say ([`MAX_RECORD`]). Producers refuse larger ones.
    #[inline(always)]
    pub(crate) fn max_record(&self) -> usize {
        self.max_record
    }

    pub(crate) fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Publishes `record` in this thread's lane. `Err` if the queue is full — after taking
    /// back the credits idle lanes hold, where those are what keeps it out (see the budget's
    /// "Reclaiming").
    #[inline]
    pub(crate) fn push(&self, record: &Record<'_>) -> Result<(), NoCredits> {
        match self.push_once(record) {
            Ok(()) => Ok(()),
            Err(NoCredits) => self.push_reclaiming(record),
        }
    }

    #[cold]
    fn push_reclaiming(&self, record: &Record<'_>) -> Result<(), NoCredits> {
        if !self.budget.reclaim_may_help(record.len) {
            return Err(NoCredits);
        }
        let lanes = self.lanes.load();
        if self.budget.reclaim(lanes.list.iter().map(|l| l.claim())) {
            self.push_once(record)
        } else {
            Err(NoCredits)
        }
    }

    #[inline(always)]
    fn push_once(&self, record: &Record<'_>) -> Result<(), NoCredits> {
        let own = PRODUCERS.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut list) => Some(self.producer_in(&mut list).push(record)),
            Err(_) => None,
        });
        match own {
            Ok(Some(result)) => result,
            _ => self.push_shared(record),
        }
    }

    #[inline(always)]
    fn producer_in<'l>(&self, list: &'l mut Vec<(u64, LaneProducer)>) -> &'l mut LaneProducer {
        if list.first().is_some_and(|(id, _)| *id == self.id) {
            return &mut list[0].1;
        }
        self.find_or_register(list)
    }

    #[cold]
    fn find_or_register<'l>(&self, list: &'l mut Vec<(u64, LaneProducer)>) -> &'l mut LaneProducer {
        match list.iter().position(|(id, _)| *id == self.id) {
            Some(i) => list.swap(0, i),
            None => {
                // Lanes of writers that shut down are of no more use.
                list.retain(|(_, p)| !p.lane().is_retired());
                list.insert(0, (self.id, self.register()));
            }
        }
        &mut list[0].1
    }

    /// A new lane, in the list the readers see.
    fn register(&self) -> LaneProducer {
        let (lane, producer) = Lane::new(Arc::clone(&self.budget), self.max_segment);
        self.change_lanes(|list| {
            list.push(lane);
            0
        });
        producer
    }

    /// Replaces the list of lanes with `change`d copy; `change` returns what the lanes it
    /// removed had published.
    fn change_lanes(&self, change: impl FnOnce(&mut Vec<Arc<Lane>>) -> u64) {
        let _serial = self.lanes_change.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.lanes.load();
        let mut list = old.list.clone();
        let retired = change(&mut list);
        self.lanes.store(Arc::new(Lanes {
            list,
            retired_published: old.retired_published + retired,
        }));
    }

    /// The lane of the calling thread's records — registered if it has none yet, as by its
    /// first push — or the shared lane where its list is in use or gone (see the module
    /// docs). Its reader keeps the time given to the thread's last record, which a record the
    /// thread writes itself (synchronously) is dated against. A lane registered here holds no
    /// ring memory and no credits until the thread's first push.
    #[cold]
    pub(crate) fn own_lane(&self) -> Arc<Lane> {
        let own = PRODUCERS.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut list) => Some(Arc::clone(self.producer_in(&mut list).lane())),
            Err(_) => None,
        });
        match own {
            Ok(Some(lane)) => lane,
            _ => {
                let mut shared = self.shared_lane.lock().unwrap_or_else(|e| e.into_inner());
                Arc::clone(shared.get_or_insert_with(|| self.register()).lane())
            }
        }
    }

    #[cold]
    fn push_shared(&self, record: &Record<'_>) -> Result<(), NoCredits> {
        let mut shared = self.shared_lane.lock().unwrap_or_else(|e| e.into_inner());
        shared.get_or_insert_with(|| self.register()).push(record)
    }

    /// Tests: the bytes of every lane's rings.
    #[cfg(all(test, not(logxide_loom)))]
    pub(crate) fn ring_bytes(&self) -> usize {
        self.lanes.load().list.iter().map(|l| l.ring_bytes()).sum()
    }

    /// Tests: how many lanes are registered.
    #[cfg(all(test, not(logxide_loom)))]
    pub(crate) fn lane_count(&self) -> usize {
        self.lanes.load().list.len()
    }

    /// Records published so far by all lanes (without taking a lock).
    pub(crate) fn published(&self) -> u64 {
        let lanes = self.lanes.load();
        lanes.retired_published + lanes.list.iter().map(|l| l.published()).sum::<u64>()
    }

    /// Records published and not yet read, over all lanes (without taking a lock; one may be
    /// on its way into its lane).
    pub(crate) fn pending(&self) -> u64 {
        self.lanes.load().list.iter().map(|l| l.pending()).sum()
    }

    /// Evicts the oldest record readable now (by its call's ticks) for `drop_oldest`,
    /// skipping lanes being read; its credits go back to the budget. True if one was.
    pub(crate) fn evict_oldest(&self) -> bool {
        let lanes = self.lanes.load_full();
        let mut best: Option<(u64, LaneReader<'_>)> = None;
        for lane in &lanes.list {
            if lane.pending() == 0 {
                continue;
            }
            let Some(mut reader) = lane.try_lock() else {
                continue;
            };
            reader.settle();
            if reader.readable() == 0 {
                continue;
            }
            let ticks = reader.view(HEADER).header(0).ticks;
            if best.as_ref().map_or(true, |(t, _)| ticks < *t) {
                best = Some((ticks, reader));
            }
        }
        let Some((_, mut reader)) = best else {
            return false;
        };
        let header = reader.view(HEADER).header(0);
        reader.view(HEADER + header.len).commit(HEADER + header.len);
        reader.count_consumed(1);
        drop(reader);
        self.budget.release(1, header.len as i64);
        true
    }

    /// Marks every lane retired (the writer is closed): their producers' threads drop them.
    pub(crate) fn retire_all(&self) {
        for lane in &self.lanes.load().list {
            lane.retire();
        }
    }
}

/// The delivering thread's view of the lanes (kept in the writer's core).
#[derive(Default)]
pub(crate) struct Cursor {
    /// Where a record split by a ring's wrap-around is put together.
    scratch: Vec<u8>,
    /// Tests: runs before the first look at each lane (its index), to publish records
    /// exactly where a real producer could.
    #[cfg(test)]
    before_first_look: Option<Box<dyn FnMut(usize) + Send>>,
}

/// A lane being read in one pass of [`Cursor::take`].
struct Open<'a> {
    reader: LaneReader<'a>,
    /// Bytes of the first look (`S1`).
    first: usize,
}

/// A lane's records of `S1` being taken.
struct Taking<'v> {
    view: View<'v>,
    time: ProducerTime,
    at: usize,
    end: usize,
    next: Option<Header>,
    records: u64,
}

impl Taking<'_> {
    #[inline]
    fn advance(&mut self, len: usize) {
        self.at += HEADER + len;
        self.records += 1;
        self.next = (self.at < self.end).then(|| self.view.header(self.at));
    }
}

impl Cursor {
    /// Records published and not yet taken, over all lanes (one may be on its way in).
    pub(crate) fn pending(&self, queue: &Queue) -> u64 {
        queue.pending()
    }

    /// What each lane has published now: [`reached`](Self::reached) tells when all of it
    /// was taken.
    pub(crate) fn targets(&self, queue: &Queue) -> Vec<(Arc<Lane>, u64)> {
        queue
            .lanes
            .load()
            .list
            .iter()
            .map(|l| (Arc::clone(l), l.published()))
            .collect()
    }

    /// True when every lane of `targets` has been read up to its target.
    pub(crate) fn reached(targets: &[(Arc<Lane>, u64)]) -> bool {
        targets.iter().all(|(lane, n)| lane.consumed() >= *n)
    }

    /// Takes records in the order of their calls (see the module docs) into `out`, at
    /// most `limit`, until `out` has no room. Returns how many. Their credits go back to
    /// the budget.
    #[inline(always)]
    pub(crate) fn take(&mut self, queue: &Queue, out: &mut impl Collect, limit: usize) -> usize {
        let lanes = queue.lanes.load();
        let scratch = &mut self.scratch;
        // The first look.
        let mut open: SmallVec<[Open<'_>; 4]> = SmallVec::new();
        let mut opened: SmallVec<[usize; 4]> = SmallVec::new();
        for (i, lane) in lanes.list.iter().enumerate() {
            #[cfg(test)]
            if let Some(hook) = &mut self.before_first_look {
                hook(i);
            }
            if lane.pending() == 0 {
                continue;
            }
            let mut reader = lane.lock();
            reader.settle();
            let first = reader.readable();
            if first > 0 {
                open.push(Open { reader, first });
                opened.push(i);
            }
        }
        if open.is_empty() {
            return 0;
        }
        // The second look: the oldest call published since, in any other lane. (A lane's
        // own later records come from later calls: they cannot hold its first ones back.)
        let mut bound = u64::MAX;
        if lanes.list.len() > 1 {
            for o in open.iter_mut() {
                // (Also in a ring the lane's producer started since the first look.)
                if let Some(ticks) = o.reader.ticks_after(o.first) {
                    bound = bound.min(ticks);
                }
            }
            for (i, lane) in lanes.list.iter().enumerate() {
                if opened.contains(&i) || lane.pending() == 0 {
                    continue;
                }
                let mut reader = lane.lock();
                reader.settle();
                let now = reader.readable();
                if now > 0 {
                    bound = bound.min(reader.view(now).header(0).ticks);
                }
            }
        }
        let mut taking: SmallVec<[Taking<'_>; 4]> = open
            .iter_mut()
            .map(|o| {
                let time = o.reader.time();
                let view = o.reader.view(o.first);
                let next = Some(view.header(0));
                Taking {
                    view,
                    time,
                    at: 0,
                    end: o.first,
                    next,
                    records: 0,
                }
            })
            .collect();
        let mut taken = 0;
        let mut bytes = 0;
        if taking.len() == 1 {
            let t = &mut taking[0];
            while let Some(h) = t.next {
                if taken >= limit || h.ticks >= bound || !out.room() {
                    break;
                }
                let body = t.view.body(t.at, h.len, scratch);
                out.record(body, h.level, h.flags, &mut t.time);
                taken += 1;
                bytes += h.len;
                t.advance(h.len);
            }
        } else {
            while taken < limit && out.room() {
                let Some((i, h)) = taking
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| t.next.map(|h| (i, h)))
                    .min_by_key(|(_, h)| h.ticks)
                else {
                    break;
                };
                if h.ticks >= bound {
                    break;
                }
                let t = &mut taking[i];
                let body = t.view.body(t.at, h.len, scratch);
                out.record(body, h.level, h.flags, &mut t.time);
                taken += 1;
                bytes += h.len;
                t.advance(h.len);
            }
        }
        let counts: SmallVec<[(u64, ProducerTime); 4]> = taking
            .into_iter()
            .map(|t| {
                t.view.commit(t.at);
                (t.records, t.time)
            })
            .collect();
        for (o, (n, time)) in open.iter_mut().zip(counts) {
            o.reader.count_consumed(n);
            o.reader.set_time(time);
        }
        drop(open);
        if taken > 0 {
            queue.budget.release(taken as i64, bytes as i64);
        }
        taken
    }

    /// Retires the lanes whose producer thread exited and whose records were all taken.
    pub(crate) fn sweep(&mut self, queue: &Queue) {
        let lanes = queue.lanes.load_full();
        let finished: Vec<*const Lane> = lanes
            .list
            .iter()
            .filter(|l| l.pending() == 0)
            .filter(|l| l.try_lock().is_some_and(|mut r| r.settle()))
            .map(Arc::as_ptr)
            .collect();
        if finished.is_empty() {
            return;
        }
        queue.change_lanes(|list| {
            let mut retired = 0;
            list.retain(|l| {
                let done = finished.contains(&Arc::as_ptr(l));
                if done {
                    retired += l.published();
                }
                !done
            });
            retired
        });
    }
}

#[cfg(all(test, not(logxide_loom)))]
mod tests {
    use super::*;

    /// Collects bodies as strings.
    #[derive(Default)]
    struct Lines(Vec<String>, usize);

    impl Collect for Lines {
        fn record(&mut self, body: &[u8], _level: u8, _flags: u8, _time: &mut ProducerTime) {
            self.0.push(String::from_utf8(body.to_vec()).unwrap());
        }
        fn room(&self) -> bool {
            self.0.len() < self.1
        }
    }

    fn push(q: &Queue, s: &str, ticks: u64) {
        let line = format!("{s}\n");
        q.push(&Record {
            parts: &[line.as_bytes()],
            len: line.len(),
            level: 0,
            flags: 0,
            ticks,
        })
        .unwrap();
    }

    #[test]
    fn lanes_are_merged_by_the_ticks_of_their_calls() {
        let q = Arc::new(Queue::new(1000, 1 << 20));
        let t = |name: &'static str, ticks: &'static [u64]| {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                for &k in ticks {
                    push(&q, &format!("{name}{k}"), k);
                }
                // Keep the lane's write side alive while the test reads (a finished lane
                // is fine too, but not what this test is about).
                PRODUCERS.with(|p| p.take())
            })
            .join()
            .unwrap()
        };
        let _producers = [t("a", &[1, 4, 5, 9]), t("b", &[2, 3, 7]), t("c", &[6, 8])];
        let mut out = Lines(Vec::new(), usize::MAX);
        let mut cursor = Cursor::default();
        assert_eq!(cursor.take(&q, &mut out, usize::MAX), 9);
        assert_eq!(out.0.concat(), "a1\nb2\nb3\na4\na5\nc6\nb7\nc8\na9\n");
        assert_eq!(cursor.pending(&q), 0);
        assert_eq!(q.published(), 9);
    }

    /// A producer thread of its own (so a lane of its own) that `push`es each record it is
    /// sent; the closure returned sends one and waits until it is published.
    fn lane_thread(q: &Arc<Queue>) -> impl Fn(&str, u64) + Send + 'static {
        let (tx, rx) = std::sync::mpsc::channel::<(String, u64)>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let q = Arc::clone(q);
        std::thread::spawn(move || {
            for (s, t) in rx {
                push(&q, &s, t);
                done_tx.send(()).unwrap();
            }
        });
        move |s: &str, t: u64| {
            tx.send((s.to_owned(), t)).unwrap();
            done_rx.recv().unwrap();
        }
    }

    /// The race the second look is for: the reader looks at lane 0 (empty), then lane 0's
    /// thread publishes `r1` and hands over to lane 1's thread, which publishes `r2`, then the
    /// reader looks at lane 1 and finds `r2`. `r2` must wait for `r1`.
    #[test]
    fn a_record_published_during_the_first_look_is_not_overtaken() {
        let q = Arc::new(Queue::new(1000, 1 << 20));
        // Register both lanes (a record each, taken at once).
        let producer = |name: &'static str| {
            let send = lane_thread(&q);
            send(&format!("{name}-warmup"), 1);
            move |s: &str, t: u64| send(&format!("{name}{s}"), t)
        };
        let a = producer("a");
        let b = producer("b");
        let mut cursor = Cursor::default();
        let mut out = Lines(Vec::new(), usize::MAX);
        assert_eq!(cursor.take(&q, &mut out, usize::MAX), 2);
        let mut once = Some((a, b));
        // After the reader looked at lane 0, before it looks at lane 1.
        cursor.before_first_look = Some(Box::new(move |lane| {
            if lane == 1 {
                if let Some((a, b)) = once.take() {
                    a("1", 10);
                    b("2", 20);
                }
            }
        }));
        let mut out = Lines(Vec::new(), usize::MAX);
        // This pass found only r2 in its first look, and r1 in its second: it takes nothing.
        assert_eq!(cursor.take(&q, &mut out, usize::MAX), 0);
        assert_eq!(cursor.take(&q, &mut out, usize::MAX), 2);
        assert_eq!(out.0, ["a1\n", "b2\n"]);
    }

    /// The same race when the earlier record goes into a new ring of its lane (the lane's
    /// ring is full of records of the first look): the second look must find it there too,
    /// or `r2` (of the first look, in another lane) overtakes it.
    #[test]
    fn a_record_published_into_a_new_ring_during_the_first_look_is_not_overtaken() {
        let q = Arc::new(Queue::new(1000, 1 << 20));
        let a = lane_thread(&q);
        // Lane 0 (thread a): a record that nearly fills its first ring.
        let big = format!(
            "a0-{}",
            "x".repeat(super::super::lane::FIRST_SEGMENT - 1000)
        );
        a(&big, 1);
        // Lane 1: this thread's.
        push(&q, "b0", 0);
        let mut cursor = Cursor::default();
        let mut once = Some((a, Arc::clone(&q)));
        // After the reader looked at lane 0, before it looks at lane 1.
        cursor.before_first_look = Some(Box::new(move |lane| {
            if lane == 1 {
                if let Some((a, q)) = once.take() {
                    // r1 does not fit what is left of lane 0's ring: it starts a new one.
                    a(&("a1".to_owned() + &"y".repeat(2000)), 10);
                    push(&q, "b2", 20);
                }
            }
        }));
        let mut out = Lines(Vec::new(), usize::MAX);
        while cursor.take(&q, &mut out, usize::MAX) > 0 {}
        let order: Vec<&str> = out.0.iter().map(|l| &l[..2]).collect();
        assert_eq!(order, ["b0", "a0", "a1", "b2"]);
    }

    #[test]
    fn limit_and_room_stop_a_pass_and_the_next_goes_on() {
        let q = Queue::new(1000, 1 << 20);
        for i in 0..10 {
            push(&q, &i.to_string(), i);
        }
        let mut cursor = Cursor::default();
        let mut out = Lines(Vec::new(), 3);
        assert_eq!(cursor.take(&q, &mut out, 100), 3);
        out.1 = 100;
        assert_eq!(cursor.take(&q, &mut out, 4), 4);
        assert_eq!(cursor.take(&q, &mut out, 100), 3);
        assert_eq!(out.0.concat(), "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n");
        // Taken records' credits are back; the lane keeps the rest of its last grant of 3.
        assert_eq!(q.budget().records_out(), 2);
    }

    #[test]
    fn the_oldest_record_is_evicted_first() {
        let q = Arc::new(Queue::new(1000, 1 << 20));
        push(&q, "mine-5", 5);
        let _other = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                push(&q, "other-3", 3);
                push(&q, "other-7", 7);
                PRODUCERS.with(|p| p.take())
            })
            .join()
            .unwrap()
        };
        assert!(q.evict_oldest());
        assert!(q.evict_oldest());
        let mut out = Lines(Vec::new(), usize::MAX);
        Cursor::default().take(&q, &mut out, usize::MAX);
        assert_eq!(out.0, ["other-7\n"]);
        assert!(!q.evict_oldest());
    }

    /// A lane registered only for the time of its thread's records (a thread that writes
    /// synchronously) holds no ring and no credits; its first push starts a ring of
    /// [`FIRST_SEGMENT`](super::super::lane::FIRST_SEGMENT) bytes, as a lane registered by
    /// that push would have.
    #[test]
    fn a_lane_registered_for_its_time_holds_no_ring_until_its_first_push() {
        let q = Arc::new(Queue::new(1000, 1 << 20));
        let timers: Vec<_> = (0..4)
            .map(|_| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    drop(q.own_lane());
                    PRODUCERS.with(|p| p.take())
                })
            })
            .collect();
        let _timers: Vec<_> = timers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(q.lane_count(), 4);
        assert_eq!(q.ring_bytes(), 0);
        assert_eq!(q.budget().records_out(), 0);
        // This thread: its lane for its time, then a record.
        drop(q.own_lane());
        assert_eq!(q.ring_bytes(), 0);
        push(&q, "first", 1);
        assert_eq!(q.lane_count(), 5);
        assert_eq!(q.ring_bytes(), super::super::lane::FIRST_SEGMENT);
        let mut out = Lines(Vec::new(), usize::MAX);
        assert_eq!(Cursor::default().take(&q, &mut out, usize::MAX), 1);
        assert_eq!(out.0, ["first\n"]);
    }

    #[test]
    fn a_finished_lane_is_swept_and_its_count_kept() {
        let q = Arc::new(Queue::new(1000, 1 << 20));
        {
            let q = Arc::clone(&q);
            std::thread::spawn(move || push(&q, "bye", 1))
                .join()
                .unwrap();
        }
        let mut cursor = Cursor::default();
        cursor.sweep(&q);
        assert_eq!(q.lanes.load().list.len(), 1, "not read yet: kept");
        let mut out = Lines(Vec::new(), usize::MAX);
        assert_eq!(cursor.take(&q, &mut out, usize::MAX), 1);
        cursor.sweep(&q);
        assert_eq!(q.lanes.load().list.len(), 0);
        assert_eq!(q.published(), 1);
        // The thread's unspent credits came back when it exited.
        assert_eq!(q.budget().records_out(), 0);
    }
}
