//! A lane: the queue of one producer thread, a single-producer single-consumer byte ring
//! ([`rtrb`]) that its thread writes records into and the delivering thread reads from.
//!
//! # Why lanes
//!
//! A record handed over through a ring shared by every producer costs each call several
//! read-modify-writes on cache lines that the writer thread touches too (the ring's
//! indices, a pool of buffers, a byte count, a counter): each one waits for the line to
//! come back from the other core, and for the record's own stores to drain before it. In a
//! lane the producer copies the record into memory only it writes and publishes it with one
//! plain store of the ring's write index; it reads the reader's index only when its cached
//! copy says the ring is full. Measured here (150-byte records, one producer, a consumer
//! thread copying them out): 16 ns per record against 240–400 ns through the shared ring.
//!
//! # Layout
//!
//! A record is a 16-byte header and its body (the line, `\n` included), written and
//! published together, so the reader never sees part of one:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | body length, `u32` little-endian |
//! | 4 | severity ([`Batch::NO_LEVEL`](crate::sink::Batch::NO_LEVEL) when unknown) |
//! | 5 | flags: [`CAPTURED`] |
//! | 6..8 | zero |
//! | 8..16 | the call's clock ticks (the order of calls across lanes), `u64` little-endian |
//!
//! The ring wraps around: a record may be split between its end and its start, and the
//! reader copies such a record into a scratch buffer.
//!
//! # Growing
//!
//! A lane starts with an empty ring, of no memory: a thread may register one only for the
//! time of its records (see [`ProducerTime`]: a thread that writes synchronously) and never
//! queue into it. Its first record does not fit, so the producer starts its first real ring,
//! of [`FIRST_SEGMENT`] bytes, the way it grows below — on the cold path: the hot path of a
//! push is the same as with a ring allocated up front.
//!
//! When a record does not fit, the producer starts a ring twice as large (a *segment*; at most [`SEGMENT_MAX`], or the size of a larger
//! record), hands its read side to the lane's `next` list, and drops its write side of the
//! old one; the reader finishes the old segment — it knows it is finished when its producer
//! is gone ([`rtrb::Consumer::is_abandoned`]) and it is empty — and moves on. The order is
//! safe because the producer hands over the new segment before it abandons the old one: a
//! reader that sees the old one abandoned finds the new one in `next`. So memory follows the
//! backlog, up to the bounds the [budget](super::budget) enforces, instead of being reserved
//! for the worst case. A ring made larger than [`SHRINK_ABOVE`] for a large record is left
//! the same way: its producer looks at the reader's index every [`SHRINK_CHECK`] records and
//! starts a [`SHRINK_TO`] ring once the lane is nearly read (what it holds would fit a
//! quarter of that; the reader finishes the old ring first, so the order is kept), so that
//! one large record does not leave a thread with a large ring it would go on touching page
//! by page. A lane whose producer thread exited is finished the same way, with nothing in
//! `next`: the reader then retires it.

use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::sync::atomic::{
    fence, AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_utils::CachePadded;
use rtrb::{Consumer, CopyToUninit, Producer, RingBuffer};

use super::budget::{Budget, Claim};
use crate::encode::capture::ProducerTime;

/// Bytes of a record's header in the ring.
pub(crate) const HEADER: usize = 16;
/// The largest record (its `\n` included): the header holds its length in 32 bits.
pub(crate) const MAX_RECORD: usize = u32::MAX as usize;
/// Flag: the body holds capture segments ([`crate::encode::capture`]).
pub(crate) const CAPTURED: u8 = 1;
/// The size of the first ring a lane allocates (at its first push). (Under Miri every size here is 16 times smaller, so that
/// the tests reach each growing and shrinking path in the interpreter's time.)
pub(crate) const FIRST_SEGMENT: usize = (64 << 10) / MIRI_SCALE;
/// The largest ring a lane grows to by doubling; a backlog larger than that continues in
/// further rings of this size, and only a record that does not fit one gets a larger ring
/// of its own. Measured (`logxide-bench peers`, 4 threads, 4 interleaved runs): peak RSS
/// 10–11 MB with this cap against 15–19 MB with rings doubling up to the byte bound, at the
/// same throughput; a 256 KiB cap saved 2–3 MB more but raised the p99 of some runs.
pub(crate) const SEGMENT_MAX: usize = (512 << 10) / MIRI_SCALE;
/// How often (in records) a producer on a large ring checks whether it holds little.
const SHRINK_CHECK: u64 = 256;
/// Rings larger than this shrink once they hold little (see "Growing").
const SHRINK_ABOVE: usize = (1 << 20) / MIRI_SCALE;
/// What they shrink to.
const SHRINK_TO: usize = (256 << 10) / MIRI_SCALE;
/// See [`FIRST_SEGMENT`].
const MIRI_SCALE: usize = if cfg!(miri) { 16 } else { 1 };

/// What the header says of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) len: usize,
    pub(crate) level: u8,
    pub(crate) flags: u8,
    pub(crate) ticks: u64,
}

impl Header {
    /// The header as the two little-endian words it is made of (bytes 0..8 and 8..16), built
    /// in registers: written into the ring as two stores. (Built in a byte array on the stack
    /// and copied as one 16-byte load, it made that load wait for the stores before it:
    /// measured as the costliest instruction of a push.)
    #[inline(always)]
    fn words(&self) -> [u64; 2] {
        let lo =
            u64::from(self.len as u32) | u64::from(self.level) << 32 | u64::from(self.flags) << 40;
        [lo, self.ticks]
    }

    /// The header's bytes (the two [`words`](Self::words), little-endian).
    #[inline(always)]
    fn encode(&self) -> [u8; HEADER] {
        let [lo, hi] = self.words();
        let mut h = [0u8; HEADER];
        h[..8].copy_from_slice(&lo.to_le_bytes());
        h[8..].copy_from_slice(&hi.to_le_bytes());
        h
    }

    #[inline(always)]
    fn decode(h: &[u8; HEADER]) -> Header {
        let [l0, l1, l2, l3, level, flags, _, _, t @ ..] = *h;
        Header {
            len: u32::from_le_bytes([l0, l1, l2, l3]) as usize,
            level,
            flags,
            ticks: u64::from_le_bytes(t),
        }
    }
}

/// The state of a lane shared by its producer and its readers.
pub(crate) struct Lane {
    /// The read side. Whoever reads holds this lock: the delivering thread, or a producer
    /// evicting the oldest record under `drop_oldest`.
    reader: Mutex<Reader>,
    /// Segments the producer started, oldest first, that the reader has not reached.
    next: Mutex<VecDeque<Consumer<u8>>>,
    /// Records published, stored by the producer before it publishes each record (so a
    /// record is always counted here before it can be counted as written).
    published: CachePadded<AtomicU64>,
    /// Records read (written or evicted), stored under the `reader` lock.
    consumed: AtomicU64,
    /// The writer shut down: the producer's thread may drop its side.
    retired: AtomicBool,
    /// The credits the producer holds (see the budget's "Reclaiming"). On a line of its own:
    /// the producer writes it at each push, others look at it only to reclaim.
    claim: CachePadded<Claim>,
    /// The largest segment the lane may start.
    max_segment: usize,
}

/// The read side of a lane: its current segment, and the time given to the lane's last
/// record (see [`ProducerTime`]).
pub(crate) struct Reader {
    ring: Consumer<u8>,
    time: ProducerTime,
}

/// The write side of a lane, owned by one producer thread.
pub(crate) struct LaneProducer {
    lane: Arc<Lane>,
    ring: Producer<u8>,
    published: u64,
    budget: Arc<Budget>,
    /// The ring is larger than [`SHRINK_ABOVE`] (see "Growing").
    grown: bool,
    /// The ticks in the last header written: headers never go back (see `push`).
    last_ticks: u64,
}

impl Lane {
    /// A new lane and its producer; `max_segment` bounds its rings (enough for every
    /// record the budget allows to be in it at once). It holds no ring memory until its
    /// first push (see "Growing").
    pub(crate) fn new(budget: Arc<Budget>, max_segment: usize) -> (Arc<Lane>, LaneProducer) {
        // Capacity 0 allocates no buffer; the first push finds no room and grows.
        let (producer, consumer) = RingBuffer::new(0);
        let lane = Arc::new(Lane {
            reader: Mutex::new(Reader {
                ring: consumer,
                time: ProducerTime::default(),
            }),
            next: Mutex::new(VecDeque::new()),
            published: CachePadded::new(AtomicU64::new(0)),
            consumed: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            claim: CachePadded::default(),
            max_segment,
        });
        let producer = LaneProducer {
            lane: Arc::clone(&lane),
            ring: producer,
            published: 0,
            budget,
            grown: false,
            last_ticks: 0,
        };
        (lane, producer)
    }

    /// Records published so far.
    #[inline]
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Acquire)
    }

    /// Records read so far.
    #[inline]
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed.load(Acquire)
    }

    /// Records published and not yet read (one may still be on its way into the ring).
    #[inline]
    pub(crate) fn pending(&self) -> u64 {
        self.published().saturating_sub(self.consumed())
    }

    pub(crate) fn retire(&self) {
        self.retired.store(true, Relaxed);
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Relaxed)
    }

    /// The credits its producer holds.
    pub(crate) fn claim(&self) -> &Claim {
        &self.claim
    }

    /// Tests: the bytes of the rings the lane holds now (its current one and those started
    /// after it that the reader has not reached).
    #[cfg(all(test, not(logxide_loom)))]
    pub(crate) fn ring_bytes(&self) -> usize {
        let current = self.lock().reader.ring.buffer().capacity();
        let next = self.next.lock().unwrap();
        current + next.iter().map(|r| r.buffer().capacity()).sum::<usize>()
    }

    /// Locks the read side (waiting for another reader).
    pub(crate) fn lock(&self) -> LaneReader<'_> {
        LaneReader {
            lane: self,
            reader: self.reader.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Locks the read side unless another reader holds it.
    pub(crate) fn try_lock(&self) -> Option<LaneReader<'_>> {
        match self.reader.try_lock() {
            Ok(reader) => Some(LaneReader { lane: self, reader }),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(LaneReader {
                lane: self,
                reader: e.into_inner(),
            }),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// The read side of a lane, locked.
pub(crate) struct LaneReader<'a> {
    lane: &'a Lane,
    reader: MutexGuard<'a, Reader>,
}

impl LaneReader<'_> {
    /// Moves on to the producer's next segment while the current one is finished (its
    /// producer gone, nothing left in it). True if the lane itself is finished: its
    /// producer thread has exited and every record was read.
    pub(crate) fn settle(&mut self) -> bool {
        loop {
            if !self.reader.ring.is_abandoned() {
                return false;
            }
            // `is_abandoned` reads the producer's reference count without ordering: this
            // fence pairs with the `Release` of the producer's drop, so that everything it
            // wrote before (its last records, the hand-over of the next segment) is seen.
            fence(Acquire);
            if self.reader.ring.slots() > 0 {
                return false;
            }
            let next = self
                .lane
                .next
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            match next {
                Some(ring) => self.reader.ring = ring,
                None => return true,
            }
        }
    }

    /// The ticks of the first record published after the first `bytes` readable ones, if
    /// any: further in the current segment, or in a segment the producer started since (to
    /// grow or to shrink: see "Growing"), which [`readable`](Self::readable) does not show
    /// while the current one holds records.
    pub(crate) fn ticks_after(&mut self, bytes: usize) -> Option<u64> {
        let now = self.readable();
        if now > bytes {
            return Some(self.view(now).header(bytes).ticks);
        }
        if !self.reader.ring.is_abandoned() {
            return None;
        }
        // As in `settle`: what the producer wrote before it abandoned the segment (its last
        // records, the hand-over of the next one) is seen after this fence.
        fence(Acquire);
        let now = self.readable();
        if now > bytes {
            return Some(self.view(now).header(bytes).ticks);
        }
        // The ticks of a ring's first record, if it holds one (looked at, not committed).
        let first = |ring: &mut Consumer<u8>| {
            (ring.slots() > 0).then(|| {
                let chunk = ring.read_chunk(HEADER).expect("a whole record is readable");
                View { chunk }.header(0).ticks
            })
        };
        let mut next = self.lane.next.lock().unwrap_or_else(|e| e.into_inner());
        for ring in next.iter_mut() {
            if let Some(ticks) = first(ring) {
                return Some(ticks);
            }
            if !ring.is_abandoned() {
                return None;
            }
            fence(Acquire);
            if let Some(ticks) = first(ring) {
                return Some(ticks);
            }
        }
        None
    }

    /// The bytes of the records readable now in the current segment (whole records: each
    /// is published in one piece).
    #[inline]
    pub(crate) fn readable(&self) -> usize {
        self.reader.ring.slots()
    }

    /// The first `bytes` readable bytes, to read records from. `bytes` must be at most
    /// [`readable`](Self::readable).
    #[inline]
    pub(crate) fn view(&mut self, bytes: usize) -> View<'_> {
        let chunk = self
            .reader
            .ring
            .read_chunk(bytes)
            .expect("no more than the readable bytes");
        View { chunk }
    }

    /// The time given to this lane's last record, for the next ones (see [`ProducerTime`]).
    #[inline]
    pub(crate) fn time(&self) -> ProducerTime {
        self.reader.time
    }

    #[inline]
    pub(crate) fn set_time(&mut self, time: ProducerTime) {
        self.reader.time = time;
    }

    /// Counts `records` read through a [`View`] that was committed.
    #[inline]
    pub(crate) fn count_consumed(&self, records: u64) {
        if records > 0 {
            let c = self.lane.consumed.load(Relaxed);
            self.lane.consumed.store(c + records, Release);
        }
    }
}

/// Some readable bytes of a lane's current segment (two slices where the ring wraps).
pub(crate) struct View<'a> {
    chunk: rtrb::chunks::ReadChunk<'a, u8>,
}

impl View<'_> {
    /// The header of the record at `at` (an offset into the view at a record boundary).
    #[inline]
    pub(crate) fn header(&self, at: usize) -> Header {
        let (a, b) = self.chunk.as_slices();
        let mut h = [0u8; HEADER];
        if let Some(bytes) = a.get(at..at + HEADER) {
            h.copy_from_slice(bytes);
        } else {
            copy_out(a, b, at, &mut h);
        }
        Header::decode(&h)
    }

    /// The body of the record at `at` whose header says `len`: borrowed from the ring, or
    /// copied into `scratch` where the ring wraps inside it.
    #[inline]
    pub(crate) fn body<'s>(&'s self, at: usize, len: usize, scratch: &'s mut Vec<u8>) -> &'s [u8] {
        let (a, b) = self.chunk.as_slices();
        let start = at + HEADER;
        if let Some(body) = a.get(start..start + len) {
            return body;
        }
        if start >= a.len() {
            return &b[start - a.len()..start - a.len() + len];
        }
        scratch.clear();
        scratch.resize(len, 0);
        copy_out(a, b, start, scratch);
        scratch
    }

    /// Frees the first `bytes` of the view (whole records) for the producer.
    #[inline]
    pub(crate) fn commit(self, bytes: usize) {
        self.chunk.commit(bytes);
    }
}

/// Copies `out.len()` bytes at offset `at` of the concatenation `a ++ b`.
fn copy_out(a: &[u8], b: &[u8], at: usize, out: &mut [u8]) {
    let mut filled = 0;
    if at < a.len() {
        let n = (a.len() - at).min(out.len());
        out[..n].copy_from_slice(&a[at..at + n]);
        filled = n;
    }
    let from = (at + filled) - a.len();
    let rest = out.len() - filled;
    out[filled..].copy_from_slice(&b[from..from + rest]);
}

/// A record on its way into a lane: its body is the concatenation of `parts` (`len` bytes
/// in all, `\n` included), with the header's fields.
#[derive(Clone, Copy)]
pub(crate) struct Record<'a> {
    pub(crate) parts: &'a [&'a [u8]],
    pub(crate) len: usize,
    pub(crate) level: u8,
    pub(crate) flags: u8,
    pub(crate) ticks: u64,
}

/// The producer found no credits: the queue is full (see the [budget](super::budget)).
#[derive(Debug)]
pub(crate) struct NoCredits;

impl LaneProducer {
    /// The lane this producer writes.
    pub(crate) fn lane(&self) -> &Arc<Lane> {
        &self.lane
    }

    /// Publishes `record` if the lane holds credits for it or the budget grants them.
    #[inline]
    pub(crate) fn push(&mut self, record: &Record<'_>) -> Result<(), NoCredits> {
        let Record {
            parts,
            len,
            level,
            flags,
            ticks,
        } = *record;
        let claim = &self.lane.claim;
        claim.begin(&self.budget);
        let spent = claim.spend(len) || self.refill(len);
        claim.end();
        if !spent {
            return Err(NoCredits);
        }
        if self.grown && self.published % SHRINK_CHECK == 0 {
            self.shrink_if_empty();
        }
        // A lane's records are read in order, and merged with other lanes' by these ticks:
        // they must not go back. One thread's clock readings do not; the shared lane's, made
        // by several threads before they took its lock, can (see the `queue` module).
        let ticks = ticks.max(self.last_ticks);
        self.last_ticks = ticks;
        let header = Header {
            len,
            level,
            flags,
            ticks,
        };
        let need = HEADER + len;
        // The reader's index is read only when the cached one says the ring is full.
        if self.ring.cached_slots() < need && self.ring.slots() < need {
            self.grow(need);
        }
        let mut chunk = self
            .ring
            .write_chunk_uninit(need)
            .expect("the ring has room (checked or grown above)");
        let (first, second) = chunk.as_mut_slices();
        if second.is_empty() {
            fill_contiguous(first, header.words(), parts);
        } else {
            fill_wrapped(first, second, &header.encode(), parts);
        }
        // Counted before it is published: see `Lane::published`.
        self.published += 1;
        self.lane.published.store(self.published, Relaxed);
        // SAFETY: `commit_all` requires every byte of the chunk to be initialized.
        // `fill_contiguous` / `fill_wrapped` wrote all `need` of them: the 16 header bytes
        // and then the `len` bytes of `parts` (`len` is their total length, which both
        // functions assert), in order, across the chunk's one or two slices.
        unsafe { chunk.commit_all() };
        Ok(())
    }

    #[cold]
    fn refill(&self, len: usize) -> bool {
        let claim = &self.lane.claim;
        self.budget.grant(claim, len) && claim.spend(len)
    }

    /// Starts a larger segment that holds at least `need` bytes (see "Growing"): the lane's
    /// first one (after its empty ring) of [`FIRST_SEGMENT`] bytes.
    #[cold]
    fn grow(&mut self, need: usize) {
        let size = (self.ring.buffer().capacity() * 2)
            .max(FIRST_SEGMENT)
            .min(self.lane.max_segment)
            .max(need.next_power_of_two())
            .max(need);
        self.start_segment(size);
    }

    /// Goes back to a small ring when a grown one holds little (see "Growing").
    #[cold]
    fn shrink_if_empty(&mut self) {
        // Older rings may still hold records too: the lane must be nearly read.
        let held = self.ring.buffer().capacity() - self.ring.slots();
        if held < SHRINK_TO / 4 && self.lane.pending() < SHRINK_CHECK {
            self.start_segment(SHRINK_TO.min(self.lane.max_segment));
        }
    }

    /// Hands the reader a new ring of `size` bytes and abandons the current one.
    fn start_segment(&mut self, size: usize) {
        let (producer, consumer) = RingBuffer::new(size);
        self.grown = size > SHRINK_ABOVE;
        // Hand the read side over before abandoning the old segment (see "Growing").
        self.lane
            .next
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(consumer);
        self.ring = producer;
    }
}

impl Drop for LaneProducer {
    fn drop(&mut self) {
        // In a forked child (the copy of a parent thread's lane, dropped when that thread or
        // the process exits there) the budget's locks may be held for ever by a thread the
        // child does not have, and the writer stands down there: nothing is given back.
        if self.budget.forked() {
            return;
        }
        // The thread exits (or the writer is gone): what this lane holds unspent goes back.
        self.budget.retire(&self.lane.claim);
    }
}

#[inline(always)]
fn fill_contiguous(dst: &mut [MaybeUninit<u8>], header: [u64; 2], parts: &[&[u8]]) {
    let (h, mut rest) = dst.split_at_mut(HEADER);
    let (h0, h1) = h.split_at_mut(8);
    header[0].to_le_bytes().copy_to_uninit(h0);
    header[1].to_le_bytes().copy_to_uninit(h1);
    for part in parts {
        let (d, tail) = rest.split_at_mut(part.len());
        part.copy_to_uninit(d);
        rest = tail;
    }
    assert!(rest.is_empty(), "the parts fill the record exactly");
}

#[cold]
fn fill_wrapped(
    first: &mut [MaybeUninit<u8>],
    second: &mut [MaybeUninit<u8>],
    header: &[u8; HEADER],
    parts: &[&[u8]],
) {
    let mut dst: &mut [MaybeUninit<u8>] = first;
    let mut later: &mut [MaybeUninit<u8>] = second;
    for part in std::iter::once(&header[..]).chain(parts.iter().copied()) {
        let mut src = part;
        while !src.is_empty() {
            if dst.is_empty() {
                dst = std::mem::take(&mut later);
            }
            let n = src.len().min(dst.len());
            let (d, tail) = std::mem::take(&mut dst).split_at_mut(n);
            src[..n].copy_to_uninit(d);
            dst = tail;
            src = &src[n..];
        }
    }
    assert!(
        dst.is_empty() && later.is_empty(),
        "the parts fill the record exactly"
    );
}

#[cfg(all(test, not(logxide_loom)))]
mod tests {
    use super::*;

    fn rec<'a>(parts: &'a [&'a [u8]], len: usize, level: u8, flags: u8, ticks: u64) -> Record<'a> {
        Record {
            parts,
            len,
            level,
            flags,
            ticks,
        }
    }

    fn lane(max_segment: usize) -> (Arc<Lane>, LaneProducer) {
        Lane::new(Arc::new(Budget::new(1 << 20, 1 << 30)), max_segment)
    }

    /// Reads every record readable now: (header, body).
    fn read_all(lane: &Lane) -> Vec<(Header, Vec<u8>)> {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        let mut r = lane.lock();
        loop {
            r.settle();
            let n = r.readable();
            if n == 0 {
                break;
            }
            let view = r.view(n);
            let mut at = 0;
            let mut records = 0;
            while at < n {
                let h = view.header(at);
                out.push((h, view.body(at, h.len, &mut scratch).to_vec()));
                at += HEADER + h.len;
                records += 1;
            }
            assert_eq!(at, n, "records end where the readable bytes end");
            view.commit(n);
            r.count_consumed(records);
        }
        out
    }

    #[test]
    fn records_come_out_whole_and_in_order_across_wraps_and_growth() {
        let (lane, mut p) = lane(1 << 20);
        let mut want = Vec::new();
        let mut got = Vec::new();
        // Odd sizes so that records straddle the ring's end; more than the first segment
        // holds between reads, so that it grows.
        let (rounds, records, size) = if cfg!(miri) {
            (12, 40, 600)
        } else {
            (40, 500, 3000)
        };
        for round in 0..rounds {
            for i in 0..(round * 37 % records + 1) {
                let n = ((round * 131 + i * 17) % size) as usize;
                let body: Vec<u8> = (0..n).map(|k| (k as u8) ^ (i as u8)).collect();
                let h = Header {
                    len: n + 1,
                    level: (i % 60) as u8,
                    flags: (i % 2) as u8,
                    ticks: round << 32 | i,
                };
                p.push(&rec(&[&body, b"\n"], n + 1, h.level, h.flags, h.ticks))
                    .unwrap();
                want.push((h, [body, b"\n".to_vec()].concat()));
            }
            got.extend(read_all(&lane));
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want);
        assert_eq!(lane.published(), want.len() as u64);
        assert_eq!(lane.consumed(), want.len() as u64);
        assert_eq!(lane.pending(), 0);
    }

    /// A lane holds no ring until its first push, which starts one of `FIRST_SEGMENT`
    /// bytes (or `max_segment`, if smaller; or a larger record's size), and the reader
    /// moves past the empty ring to it.
    #[test]
    fn a_lanes_first_ring_is_allocated_by_its_first_push() {
        let body = vec![b'x'; FIRST_SEGMENT + 1];
        for (max_segment, record, ring) in [
            (1 << 20, &body[..10], FIRST_SEGMENT),
            (FIRST_SEGMENT / 4, &body[..10], FIRST_SEGMENT / 4),
            (1 << 20, &body[..], 2 * FIRST_SEGMENT),
        ] {
            let (lane, mut p) = lane(max_segment);
            assert_eq!(lane.ring_bytes(), 0);
            assert_eq!(p.ring.buffer().capacity(), 0);
            assert_eq!(read_all(&lane), []);
            p.push(&rec(&[record], record.len(), 1, 0, 7)).unwrap();
            assert_eq!(p.ring.buffer().capacity(), ring);
            assert_eq!(lane.ring_bytes(), ring);
            let got = read_all(&lane);
            assert_eq!(got.len(), 1);
            assert_eq!((got[0].0.ticks, &got[0].1[..]), (7, record));
            // The reader is on the new ring now: the empty one is gone.
            assert_eq!(lane.ring_bytes(), ring);
        }
    }

    #[test]
    fn a_record_larger_than_the_ring_gets_a_segment_of_its_own() {
        let (lane, mut p) = lane(64 << 20);
        // (Under Miri twice the largest ring is enough, and the interpreter's time.)
        let times = if cfg!(miri) { 2 } else { 10 };
        let big = vec![b'x'; times * SEGMENT_MAX];
        p.push(&rec(&[b"a\n"], 2, 1, 0, 1)).unwrap();
        p.push(&rec(&[&big], big.len(), 2, 0, 2)).unwrap();
        p.push(&rec(&[b"b\n"], 2, 3, 0, 3)).unwrap();
        let got = read_all(&lane);
        let bodies: Vec<usize> = got.iter().map(|(_, b)| b.len()).collect();
        assert_eq!(bodies, [2, times * SEGMENT_MAX, 2]);
        assert_eq!(got[1].0.level, 2);
    }

    #[test]
    fn a_backlog_beyond_the_largest_ring_continues_in_more_rings() {
        let (lane, mut p) = lane(SEGMENT_MAX);
        // 6 rings' worth of 1000-byte records.
        let records = (6 * SEGMENT_MAX / 1000) as u64;
        for i in 0..records {
            let body = format!("{i:0999}\n");
            p.push(&rec(&[body.as_bytes()], 1000, 0, 0, i)).unwrap();
            assert!(p.ring.buffer().capacity() <= SEGMENT_MAX);
        }
        assert!(
            lane.next.lock().unwrap().len() >= 5,
            "6 rings' worth in rings of SEGMENT_MAX"
        );
        let got = read_all(&lane);
        assert_eq!(got.len() as u64, records);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, (h, b))| h.ticks == i as u64 && b == format!("{i:0999}\n").as_bytes()));
    }

    #[test]
    fn a_grown_ring_goes_back_to_a_small_one_once_it_holds_little() {
        let (lane, mut p) = lane(64 << 20);
        let body = [b'z'; 999];
        let records = (2 * SHRINK_ABOVE / 1000) as u64;
        for _ in 0..records {
            p.push(&rec(&[&body, b"\n"], 1000, 0, 0, 0)).unwrap();
        }
        assert!(p.ring.buffer().capacity() > SHRINK_ABOVE);
        // Unread, it holds much: it stays.
        for _ in 0..SHRINK_CHECK {
            p.push(&rec(&[&body, b"\n"], 1000, 0, 0, 0)).unwrap();
        }
        assert!(p.grown);
        assert_eq!(read_all(&lane).len() as u64, records + SHRINK_CHECK);
        // Still grown until the producer looks (every SHRINK_CHECK records), and while
        // its ring holds much.
        for _ in 0..SHRINK_CHECK {
            p.push(&rec(&[b"x\n"], 2, 0, 0, 0)).unwrap();
        }
        assert_eq!(p.ring.buffer().capacity(), SHRINK_TO);
        assert!(!p.grown);
        // Nothing lost or reordered across the switch.
        let got = read_all(&lane);
        assert_eq!(got.len() as u64, SHRINK_CHECK);
        assert!(got.iter().all(|(_, b)| b == b"x\n"));
        assert_eq!(lane.pending(), 0);
    }

    #[test]
    fn header_words_are_its_bytes() {
        for (len, level, flags, ticks) in [
            (0, 0, 0, 0),
            (1, 20, CAPTURED, 7),
            (u32::MAX as usize, u8::MAX, u8::MAX, u64::MAX),
            (0x0102_0304, 0x05, 0x06, 0x0708_090a_0b0c_0d0e),
        ] {
            let h = Header {
                len,
                level,
                flags,
                ticks,
            };
            let bytes = h.encode();
            assert_eq!(Header::decode(&bytes), h);
            // The layout of the module docs: length, level, flags, two zero bytes, ticks.
            assert_eq!(bytes[..4], (len as u32).to_le_bytes());
            assert_eq!(
                (bytes[4], bytes[5], bytes[6], bytes[7]),
                (level, flags, 0, 0)
            );
            assert_eq!(bytes[8..], ticks.to_le_bytes());
        }
    }

    #[test]
    fn header_ticks_never_go_back_within_a_lane() {
        let (lane, mut p) = lane(1 << 20);
        for t in [5, 3, 9, 9, 1, 12] {
            p.push(&rec(&[b"r\n"], 2, 0, 0, t)).unwrap();
        }
        let ticks: Vec<u64> = read_all(&lane).iter().map(|(h, _)| h.ticks).collect();
        assert_eq!(ticks, [5, 5, 9, 9, 9, 12]);
    }

    #[test]
    fn a_finished_lane_is_reported_once_drained() {
        let (lane, mut p) = lane(1 << 20);
        p.push(&rec(&[b"last\n"], 5, 1, 0, 1)).unwrap();
        drop(p);
        assert!(!lane.lock().settle(), "a record is still in it");
        assert_eq!(read_all(&lane).len(), 1);
        assert!(lane.lock().settle());
    }

    #[test]
    fn a_reader_on_another_thread_sees_every_record_once() {
        let (lane, mut p) = lane(1 << 20);
        const N: u64 = if cfg!(miri) { 2_000 } else { 200_000 };
        let reader = {
            let lane = Arc::clone(&lane);
            std::thread::spawn(move || {
                let mut next = 0u64;
                let mut scratch = Vec::new();
                loop {
                    let mut r = lane.lock();
                    let done = r.settle();
                    let n = r.readable();
                    if n == 0 {
                        if done {
                            return next;
                        }
                        drop(r);
                        std::thread::yield_now();
                        continue;
                    }
                    let view = r.view(n);
                    let mut at = 0;
                    let mut records = 0;
                    while at < n {
                        let h = view.header(at);
                        let body = view.body(at, h.len, &mut scratch);
                        assert_eq!(h.ticks, next);
                        assert_eq!(body, format!("{next}\n").as_bytes());
                        next += 1;
                        records += 1;
                        at += HEADER + h.len;
                    }
                    view.commit(n);
                    r.count_consumed(records);
                }
            })
        };
        for i in 0..N {
            let s = format!("{i}\n");
            p.push(&rec(&[s.as_bytes()], s.len(), 0, 0, i)).unwrap();
        }
        drop(p);
        assert_eq!(reader.join().unwrap(), N);
    }

    /// A forked child drops the lanes its thread inherited (when that thread, or the
    /// process, exits there: the thread's list of lanes goes) without taking the budget's
    /// locks, which a thread the child does not have may hold for ever — here the `reclaim`
    /// lock, as a reclaim under way at the fork holds it.
    #[cfg(not(miri))]
    #[test]
    fn a_lane_dropped_in_a_forked_child_takes_no_lock_of_the_parents() {
        use std::time::{Duration, Instant};
        let budget = Arc::new(Budget::new(100, 1 << 20));
        let (_lane, mut p) = Lane::new(Arc::clone(&budget), 1 << 16);
        p.push(&rec(&[b"x\n"], 2, 0, 0, 1)).unwrap();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                let _reclaim = budget.lock_reclaim();
                locked_tx.send(()).unwrap();
                let _ = release_rx.recv();
            })
        };
        locked_rx.recv().unwrap();
        // SAFETY: `fork` has no precondition; the child only drops `p` (freeing memory, which
        // glibc keeps usable after `fork`) and leaves through `_exit`, never returning into
        // the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            drop(p);
            // SAFETY: `_exit` ends the child at once; it has no precondition.
            unsafe { libc::_exit(0) };
        }
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        let bound = Instant::now() + Duration::from_secs(10);
        let mut status = 0;
        loop {
            // SAFETY: `waitpid` on our own child, with a valid pointer to `status`.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                break;
            }
            if Instant::now() > bound {
                // SAFETY: as above; the child is ours and still running.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("the child hung dropping its inherited lane");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
