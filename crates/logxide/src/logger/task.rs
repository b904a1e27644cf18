//! Task ids: `sqid` (short, `<prefix>.<base-62 counter>`) and `uuid` (UUID4).
//!
//! The `sqid` prefix is 8 base-62 characters (47 bits) drawn by each thread when it makes its
//! first id, and again after a fork, from the process id, the time and the random keys of the
//! standard library's hasher: two processes — or a parent and its child, which share the
//! parent's memory — get different prefixes with overwhelming probability, unlike upstream's
//! last two digits of the pid. Counters are handed to threads in blocks of 1024 from one
//! process-wide counter, so ids never repeat within a process and threads do not contend.
//! Nothing here takes a lock, so a child forked while another thread makes an id is safe.
//!
//! A `uuid` has 122 random bits (version 4, variant `10`) from two generators per thread,
//! seeded like the prefix (again after a fork): 128 bits of state, one for each half.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use arrayvec::{ArrayString, ArrayVec};
use serde::Serialize;

use super::fork;

/// How task ids are made.
///
/// ```
/// use logxide::TaskIdMode;
/// assert_eq!("uuid".parse::<TaskIdMode>().unwrap(), TaskIdMode::Uuid);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskIdMode {
    /// Short ids: `<8-char process prefix>.<base-62 counter>` (default).
    #[default]
    Sqid,
    /// Random UUID4s.
    Uuid,
}

impl FromStr for TaskIdMode {
    type Err = crate::writer::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sqid" => Ok(TaskIdMode::Sqid),
            "uuid" => Ok(TaskIdMode::Uuid),
            _ => Err(crate::writer::ParseError::new(
                "task id mode",
                s,
                "sqid, uuid",
            )),
        }
    }
}

impl fmt::Display for TaskIdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskIdMode::Sqid => "sqid",
            TaskIdMode::Uuid => "uuid",
        })
    }
}

/// A task id, stored inline (no allocation): 1 to 36 printable ASCII characters, none of
/// them `"` or `\` — so an id never needs escaping in JSON, and the encoder copies it as is.
///
/// ```
/// use logxide::logger::TaskId;
/// assert_eq!(TaskId::parse("Ab3dEf9h.1k").unwrap().as_str(), "Ab3dEf9h.1k");
/// assert!(TaskId::parse("").is_none());
/// assert!(TaskId::parse("quote\"d").is_none());
/// assert!(TaskId::parse("line\nbreak").is_none());
/// assert!(TaskId::parse(&"x".repeat(37)).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId(ArrayString<36>);

impl TaskId {
    /// The id as text, as records carry it in `tid` (its `Display` is the same).
    ///
    /// ```
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// let id = log.start_action("job", |_| {}).task_id();
    /// let (prefix, counter) = id.as_str().split_once('.').unwrap(); // sqid: prefix.counter
    /// assert_eq!(prefix.len(), 8);
    /// assert!(counter.bytes().all(|b| b.is_ascii_alphanumeric()));
    /// assert_eq!(id.to_string(), id.as_str());
    /// ```
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// An id from text; `None` unless it is 1 to 36 printable ASCII characters other than
    /// `"` and `\`. Any such text is accepted (a task id from another system, a UUID), not
    /// only the ids logxide makes.
    ///
    /// ```
    /// use logxide::logger::TaskId;
    /// let id = TaskId::parse("4f0e7c1a-9d2b-4c3e-8a5f-6b7c8d9e0f1a").unwrap();
    /// assert_eq!(id.as_str().len(), 36);
    /// assert_eq!(TaskId::parse("with space@host").unwrap().as_str(), "with space@host");
    /// assert!(TaskId::parse("back\\slash").is_none());
    /// assert!(TaskId::parse("naïve").is_none()); // not ASCII
    /// ```
    pub fn parse(s: &str) -> Option<TaskId> {
        let allowed = |b: u8| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
        if s.is_empty() || !s.bytes().all(allowed) {
            return None;
        }
        ArrayString::from(s).ok().map(TaskId)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const BASE62: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const PREFIX_LEN: usize = 8;
const BLOCK: u64 = 1024;

/// A random 64-bit number: hasher keys (random per process), pid, time, and a salt.
fn entropy(salt: u64) -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(salt);
    h.write_u32(std::process::id());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    h.finish()
}

static NEXT_BLOCK: AtomicU64 = AtomicU64::new(0);

/// A fresh random prefix, with the `.` that follows it.
fn new_prefix(salt: u64) -> ArrayString<{ PREFIX_LEN + 1 }> {
    let mut n = entropy(salt);
    let mut text = ArrayString::new();
    for _ in 0..PREFIX_LEN {
        text.push(char::from(BASE62[(n % 62) as usize]));
        n /= 62;
    }
    text.push('.');
    text
}

struct ThreadIds {
    generation: u64,
    prefix: ArrayString<{ PREFIX_LEN + 1 }>,
    next: u64,
    end: u64,
    /// The states of the uuid generators: one per half of a uuid, seeded apart, so that a
    /// uuid comes from 128 bits of state (one 64-bit state would fix both halves, and two
    /// threads whose states met would share halves from there on).
    rng: u64,
    rng_lo: u64,
    /// The text of sqid `next - 1` when this thread made it, else empty: the next id is
    /// usually this one with its last digit bumped. (ASCII bytes, so that the bump is one
    /// store, not a `char`'s decoding and encoding.)
    last: ArrayVec<u8, 36>,
}

impl ThreadIds {
    fn new(generation: u64) -> Self {
        ThreadIds {
            generation,
            prefix: new_prefix(generation),
            next: 0,
            end: 0,
            rng: entropy(generation ^ 0x9e37_79b9_7f4a_7c15),
            rng_lo: entropy(generation ^ 0x6a09_e667_f3bc_c909),
            last: ArrayVec::new(),
        }
    }

    /// The next sqid: `<prefix>.<counter in base 62>`.
    fn next_sqid(&mut self) -> ArrayString<36> {
        self.bump_sqid();
        let text = std::str::from_utf8(&self.last).expect("a sqid is ASCII");
        ArrayString::from(text).expect("a sqid fits 36 bytes")
    }

    /// Appends the next sqid to `out` (and makes it `last`). In the common case (see
    /// [`bumped_digit`](Self::bumped_digit)) the unchanged bytes are copied before the new
    /// digit is stored: copying `last` after a one-byte store into it made the copy's wide
    /// loads wait for that store (measured: the costliest copy of a log call).
    #[inline]
    fn write_next_sqid(&mut self, out: &mut Vec<u8>) {
        match self.bumped_digit() {
            Some(d) => {
                out.extend_from_slice(&self.last[..self.last.len() - 1]);
                out.push(d);
                self.take_bumped(d);
            }
            None => {
                self.start_sqid();
                out.extend_from_slice(&self.last);
            }
        }
    }

    /// Makes `last` the next sqid.
    #[inline]
    fn bump_sqid(&mut self) {
        match self.bumped_digit() {
            Some(d) => self.take_bumped(d),
            None => self.start_sqid(),
        }
    }

    /// The next sqid's last digit, when it is `last` with only that digit changed: the block
    /// goes on and `last` (which holds `next - 1`) does not end in the highest digit.
    #[inline(always)]
    fn bumped_digit(&self) -> Option<u8> {
        match self.last.last() {
            Some(&d) if d != b'Z' && self.next != self.end => {
                Some(BASE62[usize::from(DIGIT_VALUE[usize::from(d)]) + 1])
            }
            _ => None,
        }
    }

    /// Makes `last` the next sqid, [`bumped_digit`](Self::bumped_digit) `d`.
    #[inline(always)]
    fn take_bumped(&mut self, d: u8) {
        self.next += 1;
        if let Some(last) = self.last.last_mut() {
            *last = d;
        }
    }

    /// Makes `last` the next sqid written out whole: at a carry, or from a new block.
    #[cold]
    fn start_sqid(&mut self) {
        if self.next == self.end {
            self.next = NEXT_BLOCK.fetch_add(BLOCK, Relaxed) + 1;
            self.end = self.next + BLOCK;
        }
        let n = self.next;
        self.next += 1;
        self.last.clear();
        let mut digits = [0; 11];
        self.last
            .try_extend_from_slice(self.prefix.as_bytes())
            .and_then(|()| self.last.try_extend_from_slice(base62(n, &mut digits)))
            .expect("a sqid fits 36 bytes");
    }
}

/// The value of each base-62 digit, indexed by its ASCII code.
static DIGIT_VALUE: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 62 {
        t[BASE62[i] as usize] = i as u8;
        i += 1;
    }
    t
};

thread_local! {
    static IDS: RefCell<Option<ThreadIds>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's id state, drawn anew on first use and after a fork.
///
/// Once the thread's locals are destroyed (an id made by another thread-local's `Drop`),
/// where `with` would panic — and abort the process — `f` gets a state of its own, drawn for
/// this id only: a fresh prefix, and a counter from a block of [`NEXT_BLOCK`] nobody else
/// uses, so the id is unique as any other.
fn with_thread_ids<R>(f: impl FnOnce(&mut ThreadIds) -> R) -> R {
    let generation = fork::generation();
    let mut f = Some(f);
    let done = IDS.try_with(|cell| {
        let mut ids = cell.try_borrow_mut().ok()?;
        let ids = match &mut *ids {
            Some(ids) if ids.generation == generation => ids,
            ids => ids.insert(ThreadIds::new(generation)),
        };
        Some((f.take()?)(ids))
    });
    match done {
        Ok(Some(r)) => r,
        _ => without_thread_ids(generation, f.take().expect("not run yet")),
    }
}

#[cold]
#[inline(never)]
fn without_thread_ids<R>(generation: u64, f: impl FnOnce(&mut ThreadIds) -> R) -> R {
    f(&mut ThreadIds::new(generation))
}

/// Appends a new task id in `mode` to `out` (what [`new_task_id`] makes, without the copies
/// of a [`TaskId`]): the id of a record that starts a task of its own.
#[inline]
pub(crate) fn write_new_task_id(out: &mut Vec<u8>, mode: TaskIdMode) {
    with_thread_ids(|ids| match mode {
        TaskIdMode::Sqid => ids.write_next_sqid(out),
        TaskIdMode::Uuid => out.extend_from_slice(make_id(ids, mode).as_bytes()),
    })
}

/// A new task id in `mode`.
pub(crate) fn new_task_id(mode: TaskIdMode) -> TaskId {
    with_thread_ids(|ids| TaskId(make_id(ids, mode)))
}

fn make_id(ids: &mut ThreadIds, mode: TaskIdMode) -> ArrayString<36> {
    let mut id = ArrayString::<36>::new();
    match mode {
        TaskIdMode::Sqid => return ids.next_sqid(),
        TaskIdMode::Uuid => {
            let hi = splitmix(&mut ids.rng);
            let lo = splitmix(&mut ids.rng_lo);
            let mut raw = (u128::from(hi) << 64) | u128::from(lo);
            // Version 4, variant 10xx.
            raw = (raw & !(0xf << 76)) | (0x4 << 76);
            raw = (raw & !(0x3 << 62)) | (0x2 << 62);
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for i in 0..32 {
                if matches!(i, 8 | 12 | 16 | 20) {
                    id.push('-');
                }
                let nibble = (raw >> (124 - 4 * i)) & 0xf;
                id.push(char::from(HEX[nibble as usize]));
            }
        }
    }
    id
}

/// `n` in base 62, written at the end of `digits` (11 digits hold any `u64`).
#[inline]
fn base62(mut n: u64, digits: &mut [u8; 11]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = BASE62[(n % 62) as usize];
        n /= 62;
        if n == 0 {
            break;
        }
    }
    &digits[i..]
}

/// SplitMix64: a fast generator, seeded per thread (and per fork) from [`entropy`]. A uuid
/// takes one number from each of two: 122 random bits from 128 bits of state.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sqid_shape_and_uniqueness() {
        let ids: Vec<_> = (0..5000).map(|_| new_task_id(TaskIdMode::Sqid)).collect();
        let first = ids[0].as_str();
        let (prefix, counter) = first.split_once('.').unwrap();
        assert_eq!(prefix.len(), PREFIX_LEN);
        assert!(counter.bytes().all(|b| b.is_ascii_alphanumeric()));
        let set: HashSet<_> = ids.iter().map(|i| i.as_str().to_owned()).collect();
        assert_eq!(set.len(), ids.len());
        // One prefix per thread.
        assert!(ids.iter().all(|i| i.as_str().starts_with(prefix)));
    }

    #[test]
    fn ids_made_without_the_threads_state_are_unique() {
        // What a thread whose locals are destroyed makes: a state of its own per id.
        let generation = fork::generation();
        let mut seen = HashSet::new();
        for _ in 0..500 {
            for mode in [TaskIdMode::Sqid, TaskIdMode::Uuid] {
                let id = without_thread_ids(generation, |ids| make_id(ids, mode));
                assert!(seen.insert(id.as_str().to_owned()), "{id} twice");
                let id = new_task_id(mode);
                assert!(seen.insert(id.as_str().to_owned()), "{id} twice");
            }
        }
        let mut out = Vec::new();
        without_thread_ids(generation, |ids| {
            ids.bump_sqid();
            out.extend_from_slice(&ids.last);
        });
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.split_once('.').unwrap().0.len(), PREFIX_LEN);
        assert!(seen.insert(text));
    }

    #[test]
    fn sqid_counters_are_exact_across_digit_carries() {
        // Each id's counter, decoded, is the counter of the id before plus one, except where
        // the thread took a new block: the bumped last digit never drifts from the number.
        let value = |id: &TaskId| {
            let digits = id.as_str().split_once('.').unwrap().1;
            digits
                .bytes()
                .fold(0u64, |n, d| n * 62 + u64::from(DIGIT_VALUE[d as usize]))
        };
        // Both ways of making an id, interleaved: they share the thread's counter.
        let ids: Vec<_> = std::thread::spawn(|| {
            (0..10_000)
                .map(|i| {
                    if i % 3 == 0 {
                        new_task_id(TaskIdMode::Sqid)
                    } else {
                        let mut out = Vec::new();
                        write_new_task_id(&mut out, TaskIdMode::Sqid);
                        let text = std::str::from_utf8(&out).unwrap();
                        TaskId(ArrayString::from(text).unwrap())
                    }
                })
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        for pair in ids.windows(2) {
            let (a, b) = (value(&pair[0]), value(&pair[1]));
            if b != a + 1 {
                assert_eq!((b - 1) % BLOCK, 0, "{} then {}", pair[0], pair[1]);
            }
            let mut digits = [0; 11];
            let text = base62(b, &mut digits);
            assert!(pair[1].as_str().as_bytes().ends_with(text), "{}", pair[1]);
        }
        // The counters passed many carries ("…Z" to "…10").
        let carries = ids.iter().filter(|i| i.as_str().ends_with('Z')).count();
        assert!(carries > 100, "{carries} {:?}", &ids[..70]);
    }

    #[test]
    fn sqid_unique_across_threads() {
        let all: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..3000)
                            .map(|_| new_task_id(TaskIdMode::Sqid).to_string())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let set: HashSet<_> = all.iter().collect();
        assert_eq!(set.len(), 12_000);
    }

    #[test]
    fn uuid_v4_format() {
        let id = new_task_id(TaskIdMode::Uuid);
        let s = id.as_str();
        assert_eq!(s.len(), 36);
        let parts: Vec<_> = s.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(new_task_id(TaskIdMode::Uuid), id);
    }

    /// A uuid's two halves came from one 64-bit generator state, drawn one after the other:
    /// the first half fixed the second, and a thread whose state met another's (64 bits to
    /// match, not 122) made the same ids from there on. Each half now has a generator of
    /// its own: a thread whose first generator is where another's is after one id still
    /// makes other ids.
    #[test]
    fn a_uuid_is_not_fixed_by_one_64_bit_state() {
        let generation = fork::generation();
        let mut a = ThreadIds::new(generation);
        let mut b = ThreadIds::new(generation);
        let before = a.rng;
        let first = make_id(&mut a, TaskIdMode::Uuid);
        b.rng = a.rng;
        assert_ne!(a.rng, before);
        let ids_a: Vec<_> = (0..64).map(|_| make_id(&mut a, TaskIdMode::Uuid)).collect();
        let ids_b: Vec<_> = (0..64).map(|_| make_id(&mut b, TaskIdMode::Uuid)).collect();
        let mut seen = HashSet::from([first]);
        for id in ids_a.iter().chain(&ids_b) {
            assert!(seen.insert(*id), "{id} twice");
        }
    }

    #[test]
    fn uuids_carry_version_4_and_variant_1_bits() {
        for _ in 0..1000 {
            let id = new_task_id(TaskIdMode::Uuid);
            let b = id.as_str().as_bytes();
            assert_eq!(
                (b[8], b[13], b[14], b[18], b[23]),
                (b'-', b'-', b'4', b'-', b'-'),
                "{id}"
            );
            assert!(matches!(b[19], b'8' | b'9' | b'a' | b'b'), "{id}");
            assert!(
                id.as_str()
                    .bytes()
                    .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{id}"
            );
        }
    }

    #[test]
    fn forked_child_gets_a_new_prefix() {
        let parent = new_task_id(TaskIdMode::Sqid).to_string();
        let (r, w) = {
            let mut fds = [0; 2];
            // SAFETY: test-only: a pipe and a fork; the child only computes an id, writes it
            // to the pipe and exits without unwinding.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            (fds[0], fds[1])
        };
        // SAFETY: see above.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let id = new_task_id(TaskIdMode::Sqid).to_string();
            // SAFETY: writing a byte buffer to the pipe we own, then exiting at once.
            unsafe {
                libc::write(w, id.as_ptr().cast(), id.len());
                libc::_exit(0);
            }
        }
        let mut buf = [0u8; 64];
        // SAFETY: reading into a buffer we own from the pipe; waiting for our child.
        let n = unsafe {
            libc::close(w);
            let n = libc::read(r, buf.as_mut_ptr().cast(), buf.len());
            libc::waitpid(pid, std::ptr::null_mut(), 0);
            n
        };
        let child = std::str::from_utf8(&buf[..n as usize]).unwrap();
        assert_ne!(
            child.split('.').next(),
            parent.split('.').next(),
            "{child} vs {parent}"
        );
    }
}

deserialize_by_from_str!(TaskIdMode);
