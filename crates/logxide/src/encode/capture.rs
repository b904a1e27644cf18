//! Deferred formatting: the caller captures a record's time and floats raw, and the writer
//! thread turns them into JSON text.
//!
//! # Why
//!
//! Reading the OS clock and formatting the timestamp and floats are a good part of what a
//! log call costs the caller. In a *captured* record the caller writes everything else as
//! finished JSON (braces, keys, strings, integers, the task id) and, in place of the time
//! and of each float, a **segment**: a marker byte, a tag, a link and eight raw bytes (for
//! the time, the CPU's tick counter: see [`clock`]). The writer thread
//! [`expand`](Expander::expand_from)s the segments as it gathers a batch, so that work runs on
//! the writer's core, in parallel with the callers (Quill's hot-path/back-end split). The
//! output is byte for byte what the eager encoder writes.
//!
//! What is deferred is chosen by measurement, so that neither side of the queue is the
//! bottleneck (`logxide-bench peers`, medians of 5 interleaved runs, and callgrind's
//! instructions per record on each side, `logxide-bench hot`):
//!
//! - **Integers are written by the caller**: `itoa` costs it about 45 instructions, while a
//!   segment costs the writer about 150 (the formatting and the segment's handling). With
//!   integers deferred the writer was the slower side: 5.2 M records/s with one producer,
//!   against 6.0 with integers written by the caller (same total at four producers).
//! - **Floats are deferred**: the shortest round-trip form costs about 130 instructions;
//!   with floats written by the caller too, the caller became the slower side (4.4 M/s).
//! - **Strings are written by the caller**: checking a short string for characters to
//!   escape costs it about what copying it into a segment would, and a deferred string
//!   would cost the writer a UTF-8 validation on top. `Display`, `Debug` and serde values
//!   borrow the caller's data and are formatted by the caller.
//!
//! # Why the marker is unambiguous
//!
//! A segment starts with [`MARK`] (`0x01`). The encoder never writes that byte raw in JSON
//! text: every control character inside a string or a key is escaped (`\u0001`), and JSON
//! has no other place a control character could be. So outside segments the byte cannot
//! occur, and a segment's payload is skipped by its fixed length without being looked at.
//!
//! The writer does not rely on that, though: it looks for the marker only once, for the
//! record's first segment (its time, which comes before any of the user's text), and finds
//! every later segment by the link of the one before (see [`Segments`]), never looking at the
//! text in between. So an [`Encode`](super::Encode) impl that breaks its contract and writes
//! the byte raw (a string from a JSON library that does not escape control characters, say)
//! gets the record it would get written eagerly, and cannot make a fake segment.
//!
//! Captured records only ever come from [`RecordEncoder`](super::RecordEncoder) and travel
//! the queue tagged as such: lines given to the writer directly are never expanded.
//!
//! # Layout
//!
//! Fourteen bytes per segment: `MARK`, a tag, a `u32` link to the next segment (see
//! [`Segments`]), eight bytes of value; numbers little-endian.
//!
//! | tag | value | written as |
//! |---|---|---|
//! | `T` | the caller's clock ticks ([`clock`]) | `1700000000.123456` (wall time: [`Expander`]) |
//! | `f` | `f64` bits | `0.25`, `"NaN"` |
//! | `g` | `f32` bits | `0.1` |
//!
//! # Time: where `ts` comes from, and how far off it can be
//!
//! A logger's record's time is the caller's reading of the tick counter ([`clock`]), which
//! the writer turns into wall time from an *anchor* ([`Expander`]): a tick reading and
//! `CLOCK_REALTIME` read back to back, renewed once a record is [`REANCHOR_NANOS`] (0.1 s)
//! or more from it. The counter's rate is calibrated once per process (by `quanta`, against
//! `CLOCK_MONOTONIC`) and never again; the anchors keep that from adding up: a record's
//! `ts` is the anchor's `CLOCK_REALTIME` plus the ticks since it at the calibrated rate. Its
//! error against `CLOCK_REALTIME` at the call is so made of:
//!
//! - the calibration's rate error, and any rate difference between `CLOCK_MONOTONIC` and
//!   `CLOCK_REALTIME` (NTP slewing the latter), both over at most 0.1 s (without a trusted
//!   counter the ticks are `CLOCK_MONOTONIC` itself: no calibration error);
//! - the time between the anchor's two reads;
//! - a step of the OS clock since the anchor (followed at the next anchor, within 0.1 s).
//!
//! No test measures it: the tests check a queued record's `ts` against a window around the
//! call (1 ms wide in `ticks_expand_to_the_wall_clock_time_of_the_call`). The one figure
//! seen is the disagreement between consecutive anchors: `logxide check` on a run of 1.4
//! million records found 8 records 2 µs back within their task (the case [`ProducerTime`]
//! now smooths).
//!
//! Every record the logger makes is dated so, however it is written: a queued one by the
//! writer thread as it gathers a batch; one written synchronously
//! ([`sync_mode`](crate::logger::sync_mode), `async` off, `LOGXIDE_SYNC=1`), or any in
//! fallback mode ([`WriterState::Fallback`](crate::writer::WriterState::Fallback)), by the
//! caller, under the writer's core lock (which that write takes anyway), with the same
//! expander, after the queue is drained. (Before, such a record read `CLOCK_REALTIME` at the
//! call, or a fresh anchor of its own: next to its thread's queued records it could be off
//! by their error, and a synchronous record logged right after a queued one could get a
//! `ts` before it, which `logxide check` reports inside a task as `ts goes backwards`.)
//!
//! **Monotonicity.** One thread's records — queued, synchronous and written in fallback
//! mode, in any mix — never get times that go back by less than [`SMOOTHED_NANOS`] (1 ms):
//! a new anchor that puts a later call before an earlier one by less is smoothed (the
//! earlier time is kept); a bigger step back is the OS clock set back, and followed. The
//! time of the thread's last record is kept with its lane (see [`ProducerTime`]), which a
//! thread's first synchronous write registers if it has none yet (as its first queued
//! record would; a lane allocates its ring, 64 KiB, and takes credits of the queue only at
//! its first queued record, so a thread that writes only synchronously costs neither). Records a thread logs while its lanes cannot be reached
//! (from a sink running on it inside a push, or from a destructor once its thread-local
//! storage is gone) go through a lane shared by such records of all threads and are
//! smoothed against that lane's last record. Lines given to the writer directly
//! (`WriterHandle::enqueue`, `write_sync`) carry no time of the writer's. Pinned, with the
//! tick clock put 0.4 ms off the OS clock, by
//! `a_threads_queued_and_sync_records_never_go_back_in_time` (`logger::action`) and
//! `in_fallback_a_threads_times_never_go_back` (`writer::shared`).

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::json;

/// The byte that starts a segment.
pub(crate) const MARK: u8 = 0x01;

const TICKS: u8 = b'T';
const FLOAT: u8 = b'f';
const FLOAT32: u8 = b'g';

/// A value as a plain scalar, which a record being captured writes by the cheapest route —
/// a float is left for the writer thread to format, an integer or a string written at once:
/// see [`Encode::scalar`](super::Encode::scalar).
///
/// ```
/// use logxide::encode::{Encode, Scalar};
/// assert_eq!(7u8.scalar(), Some(Scalar::Unsigned(7)));
/// assert_eq!("text".scalar(), Some(Scalar::Str("text")));
/// assert_eq!(true.scalar(), None); // as cheap to write now
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Scalar<'a> {
    /// A signed integer.
    Signed(i64),
    /// An unsigned integer.
    Unsigned(u64),
    /// A 64-bit float (non-finite values become the strings `"NaN"`, `"Infinity"`, …).
    Float(f64),
    /// A 32-bit float, written in its own shortest form.
    Float32(f32),
    /// A string, escaped when it is written.
    Str(&'a str),
}

/// The clock of captured records: the CPU's time-stamp counter, read in about a third of
/// the time `clock_gettime` takes (measured here: 10 ns against 29), through `quanta`, which
/// calibrates it once against the OS's monotonic clock. Where the counter cannot be trusted
/// — on Linux, unless the kernel itself keeps time with it (its clocksource is `tsc`: a
/// kernel that found the counters of its CPUs out of step, or a hypervisor's clock, says
/// otherwise), or where `quanta` finds no invariant counter — the ticks are the OS's
/// monotonic clock in nanoseconds. The writer turns ticks into wall-clock time (see
/// [`Expander`]). Calibrating takes up to a few milliseconds: loggers warm it up when they
/// are built.
pub(crate) fn clock() -> &'static Ticks {
    static CLOCK: OnceLock<Ticks> = OnceLock::new();
    CLOCK.get_or_init(|| {
        if kernel_trusts_the_tsc() {
            Ticks::Counter(quanta::Clock::new())
        } else {
            Ticks::Monotonic
        }
    })
}

/// A source of ticks: see [`clock`].
#[derive(Debug)]
pub(crate) enum Ticks {
    Counter(quanta::Clock),
    /// `CLOCK_MONOTONIC`, in nanoseconds.
    Monotonic,
}

impl Ticks {
    /// The ticks now.
    #[inline(always)]
    pub(crate) fn raw(&self) -> u64 {
        match self {
            Ticks::Counter(clock) => clock.raw(),
            Ticks::Monotonic => {
                let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                (t.tv_sec as u64)
                    .wrapping_mul(1_000_000_000)
                    .wrapping_add(t.tv_nsec as u64)
            }
        }
    }

    /// Nanoseconds from `start` to `end` (0 if `end` is not after `start`).
    #[inline(always)]
    pub(crate) fn delta_as_nanos(&self, start: u64, end: u64) -> u64 {
        match self {
            Ticks::Counter(clock) => clock.delta_as_nanos(start, end),
            Ticks::Monotonic => end.saturating_sub(start),
        }
    }
}

/// Whether the kernel keeps time with the CPU's time-stamp counter (Linux); elsewhere
/// `quanta`'s own check decides.
fn kernel_trusts_the_tsc() -> bool {
    if cfg!(miri) {
        // (The interpreter cannot run `cpuid`/`rdtsc`.)
        false
    } else if cfg!(target_os = "linux") {
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
    } else {
        true
    }
}

/// The segments of a record being captured: writes them, chained so that the writer finds
/// each from the one before without scanning the text between them.
///
/// A segment is fourteen bytes: [`MARK`], its tag, a `u32` *link* — the distance from this
/// segment to the next one, `0` for the last, [`FAR`] when the next is 4 GiB away or more
/// (the writer then looks for its marker: a record that big is never queued, as it is above
/// any queue's byte bound in practice) — and eight bytes of value. (A `u16` link sent the
/// writer looking for the marker in the text past 64 KiB, where a raw `0x01` written by an
/// `Encode` impl was taken for a segment: the writer thread panicked on the record and
/// restarted, again and again.) A segment is written as the last, and its link set when
/// the next one is written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segments {
    /// Where the last segment starts.
    last: Option<usize>,
}

/// A link to a segment too far to say.
const FAR: u32 = u32::MAX;
/// The bytes of a segment.
const SEGMENT: usize = 14;

impl Segments {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Segments { last: None }
    }

    /// Appends a time segment: the clock's ticks now.
    #[cfg(test)]
    pub(crate) fn now(&mut self, out: &mut Vec<u8>) {
        self.ticks(out, clock().raw());
    }

    /// Appends a time segment: `ticks` of the [`clock`].
    #[inline(always)]
    pub(crate) fn ticks(&mut self, out: &mut Vec<u8>, ticks: u64) {
        self.segment(out, TICKS, ticks);
    }

    /// Appends a scalar: a segment for a float; integers and strings are written now (see
    /// the module docs).
    #[inline(always)]
    pub(crate) fn scalar(&mut self, out: &mut Vec<u8>, value: Scalar<'_>) {
        match value {
            Scalar::Signed(v) => json::write_int(out, v),
            Scalar::Unsigned(v) => json::write_int(out, v),
            Scalar::Float(v) => self.segment(out, FLOAT, v.to_bits()),
            Scalar::Float32(v) => self.segment(out, FLOAT32, u64::from(v.to_bits())),
            Scalar::Str(s) => json::write_str(out, s),
        }
    }

    #[inline(always)]
    fn segment(&mut self, out: &mut Vec<u8>, tag: u8, bits: u64) {
        let at = out.len();
        self.link(out, at);
        // Two fixed-size appends, stores of constants and of the value's register: a
        // segment put together in an array on the stack and copied from it made the copy's
        // loads wait for the stores that built it.
        out.reserve(SEGMENT);
        out.extend_from_slice(&[MARK, tag, 0, 0, 0, 0]);
        out.extend_from_slice(&bits.to_le_bytes());
        self.last = Some(at);
    }

    /// Points the last segment's link at `next`. (A segment is written with the link 0,
    /// "the last": the record needs no end mark.)
    #[inline(always)]
    fn link(&self, out: &mut [u8], next: usize) {
        if let Some(last) = self.last {
            let distance = u32::try_from(next - last).unwrap_or(FAR);
            if let Some(link) = out.get_mut(last + 2..last + 6) {
                link.copy_from_slice(&distance.to_le_bytes());
            }
        }
    }
}

/// How long the writer uses one pairing of the tick counter with the OS's wall clock before
/// it takes a new one: this bounds how long a record's time can drift from the OS clock (the
/// counter's rate error from its one calibration and the OS clocks' rate difference, over
/// at most this long, plus any step of the OS clock: see "Time" in the module docs).
const REANCHOR_NANOS: u64 = 100_000_000;

/// How far back a new anchor may put a later call without that being followed (see
/// [`Expander::wall_nanos`]): well above the anchors' disagreement (a few microseconds),
/// well below any deliberate step of the OS clock.
const SMOOTHED_NANOS: u64 = 1_000_000;

/// Formats the segments of captured records: [`expand_from`](Expander::expand_from).
///
/// Time segments hold clock ticks; the expander converts them to wall-clock time from an
/// *anchor*, a pairing of the ticks with the OS's `CLOCK_REALTIME` read back to back, taken
/// again when a record is more than [`REANCHOR_NANOS`] past it, or that far before it once
/// the anchor itself is that old (a record that waited longer in the queue is dated back from
/// a fresh anchor by the ticks: a backlog costs no OS clock read per record). So a record's
/// `ts` is the OS's wall time at the call to within the anchor's error (see "Time" in the
/// module docs), and follows a step of the OS clock within a tenth of a second. The expander also remembers the text of the last
/// timestamp's seconds, which consecutive records nearly always share.
///
/// Times are nanoseconds since the Unix epoch in a `u64`, so they saturate at its end,
/// 2554-07-21 23:34:33.709551 UTC: with the OS clock past it, every captured record's time is
/// `18446744073.709551`, where a record encoded eagerly at
/// [`Timestamp::now`](super::Timestamp::now) has the clock's time. With the OS clock before
/// the epoch, an anchor takes it as the epoch itself: captured records get `0.000000` plus
/// the time since the anchor, eager ones `0.000000`.
pub(crate) struct Expander {
    /// The clock the records' ticks come from.
    ticks: &'static Ticks,
    /// (ticks, nanoseconds since the Unix epoch) read together.
    anchor: Option<(u64, u64)>,
    /// The latest ticks formatted so far, and the time given to them.
    last: (u64, u64),
    secs: u64,
    /// `secs` in decimal, `secs_len` bytes (none yet when 0).
    secs_text: [u8; 20],
    secs_len: usize,
}

impl Default for Expander {
    fn default() -> Self {
        Expander::with_ticks(clock())
    }
}

impl Expander {
    fn with_ticks(ticks: &'static Ticks) -> Self {
        Expander {
            ticks,
            anchor: None,
            last: (0, 0),
            secs: 0,
            secs_text: [0; 20],
            secs_len: 0,
        }
    }

    /// Tests: dates the records from now on from the anchor `(ticks, wall)` (nanoseconds
    /// since the epoch), as if the tick clock and the OS clock disagreed by that much.
    #[cfg(test)]
    pub(crate) fn set_anchor(&mut self, ticks: u64, wall: u64) {
        self.anchor = Some((ticks, wall));
    }

    /// [`expand_from`](Self::expand_from) for a producer with no record before (tests).
    #[cfg(test)]
    pub(crate) fn expand(&mut self, captured: &[u8], out: &mut Vec<u8>) {
        self.expand_from(captured, out, &mut ProducerTime::default());
    }

    /// Appends `captured` — a record written through [`Segments`] — to `out` with every
    /// segment formatted: the finished JSON text, byte for byte what the eager
    /// encoder writes (but for the clock the time comes from). The record is the producer's
    /// (the thread's) whose last record's time is `producer` (updated): a producer's records
    /// never get times that go back by less than [`SMOOTHED_NANOS`], whatever other
    /// producers' records were formatted in between (see [`wall_nanos`](Self::wall_nanos)).
    ///
    /// # Panics
    /// If `captured` was not written by the capturing encoder (a segment cut short), which
    /// the queue's typing rules out.
    pub(crate) fn expand_from(
        &mut self,
        captured: &[u8],
        out: &mut Vec<u8>,
        producer: &mut ProducerTime,
    ) {
        let mut done = 0;
        let mut next = json::find_byte(captured, MARK);
        while let Some(at) = next {
            out.extend_from_slice(&captured[done..at]);
            let (&[mark, tag, l0, l1, l2, l3, b0, b1, b2, b3, b4, b5, b6, b7], _) = captured[at..]
                .split_first_chunk::<SEGMENT>()
                .expect("a whole segment");
            debug_assert_eq!(mark, MARK);
            self.segment(
                tag,
                u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
                out,
                producer,
            );
            done = at + SEGMENT;
            next = match u32::from_le_bytes([l0, l1, l2, l3]) {
                0 => None,
                FAR => json::find_byte(&captured[done..], MARK).map(|i| done + i),
                distance => Some(at + distance as usize),
            };
        }
        out.extend_from_slice(&captured[done..]);
    }

    /// Formats one segment's value.
    #[inline(always)]
    fn segment(&mut self, tag: u8, bits: u64, out: &mut Vec<u8>, producer: &mut ProducerTime) {
        match tag {
            TICKS => {
                let nanos = producer.smoothed(bits, self.wall_nanos(bits));
                let micros = (nanos % 1_000_000_000 / 1000) as u32;
                self.timestamp(out, nanos / 1_000_000_000, micros);
            }
            FLOAT => json::write_float(out, f64::from_bits(bits)),
            FLOAT32 => json::write_float(out, f32::from_bits(bits as u32)),
            other => unreachable!("unknown capture segment tag {other:#x}"),
        }
    }

    /// Nanoseconds since the Unix epoch at `ticks`, never before the time given to earlier
    /// ticks by less than [`SMOOTHED_NANOS`].
    #[inline]
    fn wall_nanos(&mut self, ticks: u64) -> u64 {
        let wall = self.unsmoothed_nanos(ticks);
        let (last_ticks, last_wall) = self.last;
        if ticks < last_ticks {
            // An earlier call (another thread's record, queued later): as it comes.
            return wall;
        }
        // A new anchor can put a later call a microsecond or so before an earlier one (the
        // counter's calibration against the OS clock is not exact): that would make time go
        // backwards within a task, so the earlier time is kept. A bigger step back is the OS
        // clock being set back, which is followed as `CLOCK_REALTIME` would be.
        let wall = if wall < last_wall && last_wall - wall < SMOOTHED_NANOS {
            last_wall
        } else {
            wall
        };
        self.last = (ticks, wall);
        wall
    }

    /// [`wall_nanos`](Self::wall_nanos) without the smoothing across anchors.
    #[inline]
    fn unsmoothed_nanos(&mut self, ticks: u64) -> u64 {
        if let Some((t0, wall0)) = self.anchor {
            if let Some(wall) = self.time_from_anchor(t0, wall0, ticks) {
                return wall;
            }
        }
        self.outside_anchor(ticks)
    }

    /// [`unsmoothed_nanos`](Self::unsmoothed_nanos) for ticks outside the anchor's lifetime
    /// (or with no anchor yet): out of line, so that the usual case stays as small as it was
    /// (callgrind: 16 more instructions per record in the writer with this inlined).
    #[cold]
    #[inline(never)]
    fn outside_anchor(&mut self, ticks: u64) -> u64 {
        // Ticks far *before* the anchor are a record that waited long in the queue, or a
        // counter that jumped back (a VM resumed or moved). While the anchor is fresh (the
        // counter now within its lifetime past it) it is the first: the record is dated back
        // from the anchor, as a new one would date it, without a `clock_gettime` per record
        // of a backlog (on the writer that is behind). Else a new anchor: right for the
        // second, and harmless for the first.
        if let Some((t0, wall0)) = self.anchor {
            let now = self.ticks.raw();
            if ticks < t0 && now >= t0 && self.ticks.delta_as_nanos(t0, now) < REANCHOR_NANOS {
                return wall0.saturating_sub(self.ticks.delta_as_nanos(ticks, t0));
            }
        }
        let (t0, wall0) = self.reanchor();
        self.time_from_anchor(t0, wall0, ticks).unwrap_or_else(|| {
            let back = self.ticks.delta_as_nanos(ticks, t0);
            wall0
                .saturating_add(self.ticks.delta_as_nanos(t0, ticks))
                .saturating_sub(back)
        })
    }

    /// The time at `ticks` from the anchor `(t0, wall0)`, if within its lifetime either way.
    #[inline(always)]
    fn time_from_anchor(&self, t0: u64, wall0: u64, ticks: u64) -> Option<u64> {
        if ticks >= t0 {
            let ahead = self.ticks.delta_as_nanos(t0, ticks);
            (ahead < REANCHOR_NANOS).then(|| wall0.saturating_add(ahead))
        } else {
            let behind = self.ticks.delta_as_nanos(ticks, t0);
            (behind < REANCHOR_NANOS).then(|| wall0.saturating_sub(behind))
        }
    }

    #[cold]
    fn reanchor(&mut self) -> (u64, u64) {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let anchor = (self.ticks.raw(), wall);
        self.anchor = Some(anchor);
        anchor
    }

    #[inline]
    fn timestamp(&mut self, out: &mut Vec<u8>, secs: u64, micros: u32) {
        if secs != self.secs || self.secs_len == 0 {
            let mut digits = itoa::Buffer::new();
            let d = digits.format(secs).as_bytes();
            self.secs_text[..d.len()].copy_from_slice(d);
            self.secs_len = d.len();
            self.secs = secs;
        }
        out.extend_from_slice(&self.secs_text[..self.secs_len]);
        json::write_micros(out, micros);
    }
}

/// The last time given to one producer's records: (ticks, nanoseconds since the epoch).
///
/// The expander's own smoothing compares a record with the latest ticks formatted so far,
/// over all producers: a record whose ticks are earlier than another producer's record
/// formatted before it is taken as it comes. If a new anchor came in between, disagreeing
/// with the old one by a microsecond or so, that record could get a time before its own
/// producer's previous record (found by `logxide check` on the main job: 8 records in
/// 1.4 million, 2 µs back within their task). Each producer's records come in the order of
/// their ticks (one lane, one thread), so smoothing against the producer's own last record
/// keeps every producer's times from going back.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProducerTime {
    ticks: u64,
    wall: u64,
}

impl ProducerTime {
    #[inline]
    fn smoothed(&mut self, ticks: u64, wall: u64) -> u64 {
        let wall = if ticks >= self.ticks && wall < self.wall && self.wall - wall < SMOOTHED_NANOS {
            self.wall
        } else {
            wall
        };
        *self = ProducerTime { ticks, wall };
        wall
    }
}

/// [`Expander::expand`] with a fresh expander (tests).
#[cfg(test)]
pub(crate) fn expand(captured: &[u8], out: &mut Vec<u8>) {
    Expander::default().expand(captured, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encode;
    use proptest::prelude::*;

    /// Captures what `write` writes (with its segment table), then expands it.
    fn expanded(write: impl Fn(&mut Segments, &mut Vec<u8>)) -> Vec<u8> {
        let (mut segs, mut captured) = (Segments::new(), Vec::new());
        write(&mut segs, &mut captured);
        let mut out = Vec::new();
        expand(&captured, &mut out);
        out
    }

    /// A captured record holding only the time now.
    fn captured_now() -> Vec<u8> {
        let (mut segs, mut c) = (Segments::new(), Vec::new());
        segs.now(&mut c);
        c
    }

    fn eager(write: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    #[test]
    fn every_scalar_expands_to_its_eager_encoding() {
        for v in [0i64, -1, i64::MIN, i64::MAX, 42] {
            assert_eq!(
                expanded(|s, o| s.scalar(o, Scalar::Signed(v))),
                eager(|o| v.encode(o))
            );
        }
        for v in [0u64, 1, u64::MAX] {
            assert_eq!(
                expanded(|s, o| s.scalar(o, Scalar::Unsigned(v))),
                eager(|o| v.encode(o))
            );
        }
        for v in [
            0.0f64,
            -0.0,
            0.25,
            1e300,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            1e21,
        ] {
            assert_eq!(
                expanded(|s, o| s.scalar(o, Scalar::Float(v))),
                eager(|o| v.encode(o))
            );
        }
        for v in [0.1f32, f32::NAN, f32::MAX, -3.5] {
            assert_eq!(
                expanded(|s, o| s.scalar(o, Scalar::Float32(v))),
                eager(|o| v.encode(o))
            );
        }
        for s in [
            "",
            "plain",
            "q\"b\\",
            "\u{1}\n\u{7f}",
            "a\u{2028}b",
            "ünï 🎉",
        ] {
            let captured = expanded(|g, o| g.scalar(o, Scalar::Str(s)));
            assert_eq!(captured, eager(|o| s.encode(o)), "{s:?}");
        }
    }

    #[test]
    fn ticks_expand_to_the_wall_clock_time_of_the_call() {
        let wall = || {
            let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            d.as_secs_f64()
        };
        let mut ex = Expander::default();
        for round in 0..3 {
            let before = wall();
            let c = captured_now();
            let after = wall();
            let mut out = Vec::new();
            ex.expand(&c, &mut out);
            let text = std::str::from_utf8(&out).unwrap();
            assert_eq!(text.len() - text.find('.').unwrap(), 7, "{text}");
            let t: f64 = text.parse().unwrap();
            // A few microseconds of calibration error, and the anchor's own reading.
            assert!(
                before - 1e-3 < t && t < after + 1e-3,
                "{before} {t} {after}"
            );
            if round == 1 {
                // Past the anchor's lifetime: a new anchor, still the right time.
                std::thread::sleep(std::time::Duration::from_nanos(REANCHOR_NANOS + 1_000_000));
            }
        }
        // Ticks taken before the anchor (a record captured, then the writer re-anchored).
        let early = captured_now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut ex = Expander::default();
        let (late, mut out) = (captured_now(), Vec::new());
        ex.expand(&late, &mut out);
        out.push(b' ');
        ex.expand(&early, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        let (late, early) = text.split_once(' ').unwrap();
        let (late, early): (f64, f64) = (late.parse().unwrap(), early.parse().unwrap());
        assert!(early < late && late - early > 0.004, "{early} {late}");
    }

    #[test]
    fn the_os_monotonic_clock_serves_where_the_counter_is_not_trusted() {
        static OS: Ticks = Ticks::Monotonic;
        let wall = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        };
        let (a, b) = (OS.raw(), OS.raw());
        assert!(b >= a && OS.delta_as_nanos(a, b) == b - a && OS.delta_as_nanos(b, a) == 0);
        let mut ex = Expander::with_ticks(&OS);
        let before = wall();
        let (mut segs, mut c) = (Segments::new(), Vec::new());
        segs.segment(&mut c, TICKS, OS.raw());
        let after = wall();
        let mut out = Vec::new();
        ex.expand(&c, &mut out);
        let t: f64 = std::str::from_utf8(&out).unwrap().parse().unwrap();
        assert!(
            before - 1e-4 < t && t < after + 1e-4,
            "{before} {t} {after}"
        );
    }

    /// A backlog of records that waited longer than an anchor's lifetime in the queue (a
    /// writer held up by a slow sink) is dated from one fresh anchor, not a new pairing with
    /// the OS clock per record (a `clock_gettime` each, on the writer that is already behind):
    /// each record gets the anchor's time less its age, to the nanosecond.
    #[test]
    fn a_backlog_of_old_records_is_dated_from_one_anchor() {
        static OS: Ticks = Ticks::Monotonic;
        let mut ex = Expander::with_ticks(&OS);
        let start = OS.raw() - 3 * REANCHOR_NANOS;
        let (mut anchors, mut last_anchor) = (Vec::new(), None);
        let mut times = Vec::new();
        for i in 0..200 {
            let ticks = start + i * 1_000;
            let wall = ex.wall_nanos(ticks);
            if ex.anchor != last_anchor {
                anchors.push(ex.anchor);
                last_anchor = ex.anchor;
            }
            let (t0, wall0) = ex.anchor.unwrap();
            assert_eq!(wall, wall0 - (t0 - ticks), "record {i}");
            times.push(wall);
        }
        // One anchor (a second one only if this thread was held up past its lifetime).
        assert!(anchors.len() <= 2, "{} anchors", anchors.len());
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_counter_that_jumped_back_gets_a_new_anchor() {
        let clock = clock();
        let wall = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        };
        // An anchor that pairs the wall time now with ticks far ahead: as if the counter had
        // been reset since.
        let mut ex = Expander {
            anchor: Some((clock.raw() + (1 << 40), 1_000_000_000_000_000_000)),
            ..Expander::default()
        };
        // (With the OS clock the ticks are nanoseconds: 2^40 of them is 18 minutes ahead.)
        let before = wall();
        let c = captured_now();
        let mut out = Vec::new();
        ex.expand(&c, &mut out);
        let t: f64 = std::str::from_utf8(&out).unwrap().parse().unwrap();
        assert!((t - before).abs() < 1e-2, "{before} {t}");
    }

    #[test]
    fn a_new_anchor_never_sends_a_later_call_back_by_a_little_but_follows_a_clock_step() {
        static OS: Ticks = Ticks::Monotonic;
        let mut ex = Expander::with_ticks(&OS);
        let t = OS.raw();
        ex.anchor = Some((t, 5_000_000_000));
        assert_eq!(ex.wall_nanos(t + 1_000), 5_000_001_000);
        // A new anchor that puts the same instant 3 µs earlier.
        ex.anchor = Some((t, 4_999_997_000));
        assert_eq!(ex.wall_nanos(t + 2_000), 5_000_001_000);
        assert_eq!(ex.wall_nanos(t + 5_000), 5_000_002_000);
        // An earlier call formatted late (another thread's record) is not held up.
        assert_eq!(ex.wall_nanos(t + 500), 4_999_997_500);
        // The OS clock set back by a second: followed.
        ex.anchor = Some((t, 3_999_997_000));
        assert_eq!(ex.wall_nanos(t + 6_000), 4_000_003_000);
    }

    #[test]
    fn a_producer_never_goes_back_when_another_producer_came_between() {
        static OS: Ticks = Ticks::Monotonic;
        let mut ex = Expander::with_ticks(&OS);
        let (mut x, mut y) = (ProducerTime::default(), ProducerTime::default());
        let t = OS.raw();
        fn time(ex: &mut Expander, p: &mut ProducerTime, ticks: u64) -> u64 {
            let wall = ex.wall_nanos(ticks);
            p.smoothed(ticks, wall)
        }
        ex.anchor = Some((t, 5_000_000_000));
        assert_eq!(time(&mut ex, &mut x, t + 1_000), 5_000_001_000);
        assert_eq!(time(&mut ex, &mut y, t + 5_000), 5_000_005_000);
        // A new anchor 3 µs earlier; x's next call is before y's last one, so the
        // expander's own rule takes it as it comes (4 999 999 000): x's rule holds it.
        ex.anchor = Some((t, 4_999_997_000));
        assert_eq!(ex.wall_nanos(t + 2_000), 4_999_999_000);
        assert_eq!(time(&mut ex, &mut x, t + 2_000), 5_000_001_000);
        assert_eq!(time(&mut ex, &mut x, t + 9_000), 5_000_006_000);
        // A step back of the OS clock by a second is followed.
        ex.anchor = Some((t, 3_999_997_000));
        assert_eq!(time(&mut ex, &mut x, t + 10_000), 4_000_007_000);
    }

    #[test]
    fn times_saturate_at_the_end_of_u64_nanoseconds() {
        static OS: Ticks = Ticks::Monotonic;
        let mut ex = Expander::with_ticks(&OS);
        let t = OS.raw();
        // An OS clock a microsecond before 2554-07-21 23:34:33.709551.
        ex.anchor = Some((t, u64::MAX - 1_615));
        let mut out = Vec::new();
        for ticks in [t, t + 5_000, t + 50_000_000] {
            let (mut segs, mut c) = (Segments::new(), Vec::new());
            segs.ticks(&mut c, ticks);
            ex.expand(&c, &mut out);
            out.push(b' ');
        }
        assert_eq!(
            out,
            b"18446744073.709550 18446744073.709551 18446744073.709551 "
        );
    }

    #[test]
    fn seconds_text_is_cached_and_replaced_when_they_change() {
        let mut ex = Expander::default();
        let mut out = Vec::new();
        for (secs, micros) in [(5, 1), (5, 2), (6, 3), (10_000, 4), (5, 999_999), (0, 0)] {
            ex.timestamp(&mut out, secs, micros);
            out.push(b' ');
        }
        assert_eq!(
            out,
            b"5.000001 5.000002 6.000003 10000.000004 5.999999 0.000000 "
        );
    }

    #[test]
    fn text_around_segments_is_copied() {
        let out = expanded(|s, c| {
            c.extend_from_slice(b"{\"a\":");
            s.scalar(c, Scalar::Float(7.0));
            c.extend_from_slice(b",\"b\":\"\\u0001\",\"c\":");
            s.scalar(c, Scalar::Float32(-7.5));
            s.scalar(c, Scalar::Float(0.5));
            c.extend_from_slice(b"}\n");
        });
        assert_eq!(
            out,
            b"{\"a\":7.0,\"b\":\"\\u0001\",\"c\":-7.50.5}\n".to_vec()
        );
    }

    #[test]
    fn a_segment_far_from_the_last_is_found_by_its_link() {
        let long = "x".repeat(70_000);
        let (mut segs, mut c) = (Segments::new(), Vec::new());
        segs.scalar(&mut c, Scalar::Float(1.5));
        segs.scalar(&mut c, Scalar::Str(&long));
        segs.scalar(&mut c, Scalar::Float(7.0));
        c.push(b' ');
        segs.scalar(&mut c, Scalar::Float(-8.0));
        // The first segment says where the second one is.
        assert_eq!(c[2..6], (70_002 + SEGMENT as u32).to_le_bytes());
        let mut out = Vec::new();
        expand(&c, &mut out);
        let want = [
            b"1.5".to_vec(),
            eager(|o| long.encode(o)),
            b"7.0 -8.0".to_vec(),
        ]
        .concat();
        assert_eq!(out, want);
    }

    /// A record written by the capturing encoder, expanded, and the same record written
    /// eagerly at `1.000002`, with the expanded record's time replaced by that.
    fn captured_and_eager(
        fields: impl Fn(&mut crate::encode::RecordEncoder<'_>),
    ) -> (Vec<u8>, Vec<u8>) {
        use crate::encode::record::Time;
        use crate::encode::{Format, RecordEncoder, Timestamp};
        let record = |time| {
            let mut buf = Vec::new();
            let mut rec = RecordEncoder::begin_plain_id(&mut buf, Format::Compact, time, "t", &[1]);
            fields(&mut rec);
            rec.finish();
            buf
        };
        let eager = record(Time::Wall(Timestamp { secs: 1, micros: 2 }));
        let captured = record(Time::Ticks(clock().raw()));
        let mut out = Vec::new();
        expand(&captured, &mut out);
        let tid = out
            .windows(7)
            .position(|w| w == b",\"tid\":")
            .expect("a tid");
        let expanded = [b"{\"ts\":1.000002".as_slice(), &out[tid..]].concat();
        (expanded, eager)
    }

    /// An `Encode` that breaks its contract: it writes its bytes as they are (raw control
    /// characters in a string: a JSON library that does not escape them, say).
    struct Unescaped(&'static [u8]);

    impl Encode for Unescaped {
        fn encode(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(self.0);
        }
    }

    #[test]
    fn a_mark_in_the_text_far_before_a_segment_is_copied_as_text() {
        let long = "x".repeat(70_000);
        for raw in [
            b"\"a\x01b\"".as_slice(),
            b"\"\x01f\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\"",
            b"\"\x01T\"",
            b"\"\x01",
        ] {
            let (captured, eager) = captured_and_eager(|rec| {
                rec.field("big", long.as_str());
                rec.field("raw", &Unescaped(raw));
                rec.field("f", &1.5);
                rec.field("big", long.as_str());
                rec.field("raw", &Unescaped(raw));
                rec.field("g", &2.5f32);
            });
            assert!(captured == eager, "{raw:?}");
        }
    }

    #[derive(Debug, Clone)]
    enum Part {
        Signed(i64),
        Unsigned(u64),
        Float(f64),
        Float32(f32),
        Str(String),
        Text(String),
    }

    proptest! {
        #[test]
        fn any_bytes_an_encode_impl_writes_leave_the_segments_alone(
            parts in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        prop_oneof![Just(MARK), Just(TICKS), Just(FLOAT), Just(FLOAT32), any::<u8>()],
                        0..30,
                    ),
                    0usize..70_000,
                    any::<f64>(),
                ),
                1..6,
            )
        ) {
            // A record's first segment (its time) comes before any of the user's text.
            let (mut captured, mut want) = (Vec::new(), b"0.5".to_vec());
            let mut segs = Segments::new();
            segs.scalar(&mut captured, Scalar::Float(0.5));
            for (raw, pad, f) in &parts {
                for out in [&mut captured, &mut want] {
                    out.extend_from_slice(raw);
                    out.resize(out.len() + pad, b'x');
                }
                segs.scalar(&mut captured, Scalar::Float(*f));
                f.encode(&mut want);
            }
            let mut out = Vec::new();
            expand(&captured, &mut out);
            prop_assert!(out == want);
        }

        #[test]
        fn any_mix_of_values_expands_to_the_eager_text(
            parts in proptest::collection::vec(
                prop_oneof![
                    any::<i64>().prop_map(Part::Signed),
                    any::<u64>().prop_map(Part::Unsigned),
                    any::<f64>().prop_map(Part::Float),
                    any::<f32>().prop_map(Part::Float32),
                    any::<String>().prop_map(Part::Str),
                    "[a-z,:{}\\[\\]\"]{0,20}".prop_map(Part::Text),
                ],
                0..40,
            )
        ) {
            let (mut captured, mut want) = (Vec::new(), Vec::new());
            let mut segs = Segments::new();
            for p in &parts {
                match p {
                    Part::Signed(v) => { segs.scalar(&mut captured, Scalar::Signed(*v)); v.encode(&mut want) }
                    Part::Unsigned(v) => { segs.scalar(&mut captured, Scalar::Unsigned(*v)); v.encode(&mut want) }
                    Part::Float(v) => { segs.scalar(&mut captured, Scalar::Float(*v)); v.encode(&mut want) }
                    Part::Float32(v) => { segs.scalar(&mut captured, Scalar::Float32(*v)); v.encode(&mut want) }
                    Part::Str(v) => { segs.scalar(&mut captured, Scalar::Str(v)); v.encode(&mut want) }
                    Part::Text(t) => { captured.extend_from_slice(t.as_bytes()); want.extend_from_slice(t.as_bytes()) }
                }
            }
            let mut out = Vec::new();
            expand(&captured, &mut out);
            prop_assert_eq!(out, want);
        }
    }
}
