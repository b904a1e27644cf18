//! Sinks: where the writer thread hands batches of records.
//!
//! A [`Sink`] receives a whole [`Batch`] at once — many complete lines in one contiguous
//! buffer — so a file sink makes one large `write(2)` per batch instead of one syscall per
//! record. One thread at a time calls a sink's methods, under the writer's lock: usually the
//! writer thread, but also a [`write_sync`](crate::writer::WriterHandle::write_sync) caller,
//! every caller once the writer fell back to synchronous writes, and a producer racing with
//! the shutdown (see [`Sink::write_batch`]), so sinks need `Send` but not `Sync`.
//!
//! Built-in sinks:
//!
//! | sink | for |
//! |---|---|
//! | [`FileSink`] | a log file, with the `line`, `block` or `mmap` I/O strategy |
//! | [`RotatingFile`] | a log file rotated by size and/or time ([`RotateOptions`]), with retention and background gzip/zstd compression (`line` or `block`) |
//! | [`StdStream`] | standard output or standard error |
//! | [`Console`] | human-readable, colored lines (control characters escaped) on standard error or output |
//! | [`MemorySink`] | tests: keeps every byte, readable from another thread |
//! | [`WriteSink`] | any [`std::io::Write`] |
//! | [`FnSink`] | a closure that receives each batch |
//! | [`LevelFilter`] | wraps another sink: only the records at or above a level reach it |
//!
//! # Errors and accounting
//!
//! [`Sink::write_batch`] reports failure as a [`SinkError`] that says how many records, from
//! the start of the batch, were completely written before the error. The writer counts the
//! rest as failed for that sink, keeps the error readable in the metrics, and goes on with the
//! next batch: a failing sink never stops the others. In the writer's totals a record is
//! failed only when every sink that takes it ([`Sink::accepts`]: a [`LevelFilter`] that
//! leaves it out does not) failed it. The next
//! [`flush_checked`](crate::writer::WriterHandle::flush_checked) reports each sink's
//! failures since the last check, naming the sink (a plain `flush` only says the records
//! reached the sinks).
//!
//! # Non-blocking outputs
//!
//! A descriptor may be non-blocking without the sink knowing: standard output set
//! `O_NONBLOCK` by a parent process (or by another program sharing the terminal or pipe),
//! a non-blocking socket or FIFO. When it is full, a write fails with `WouldBlock`;
//! [`StdStream`], [`Console`], [`WriteSink`] and [`FileSink`] (on a FIFO or a device) then
//! wait for it to take bytes again — `poll(2)` on standard output or error and on the file
//! sink's descriptor, short growing sleeps (1 ms to 50 ms) for any other writer —
//! and go on where they stopped, so a slow reader costs time, not records. Only a descriptor
//! that accepts no byte for the sink's `would_block_timeout` (default
//! [`DEFAULT_WOULD_BLOCK_TIMEOUT`], 10 s) fails the rest of the batch, with an
//! [`io::ErrorKind::TimedOut`] error that says so.

pub mod console;
mod file;
mod filter;
mod mmap;
pub mod rotate;

pub use console::{render_record, ColorChoice, Console, ParseColorChoiceError};
pub use file::{Durability, FileOptions, FileSink, IoStrategy, OpenMode, ParseOptionError};
pub use filter::LevelFilter;
pub use rotate::{Compression, Period, RotateOptions, RotatingFile};

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::encode::guard::Checked;

/// A batch of complete records (lines), stored back to back in one buffer.
///
/// Every record ends with `\n`. [`Batch::bytes`] is the concatenation of all records, ready
/// for a single write. Each record may carry a severity ([`Batch::level`]): the logger's
/// numeric level (debug 10 … critical 50), or none when the producer did not say
/// ([`WriterHandle::enqueue`](crate::writer::WriterHandle::enqueue), [`Batch::new`]).
///
/// ```
/// use logxide::sink::Batch;
/// let batch = Batch::new(b"{\"a\":1}\n{\"b\":2}\n", &[8, 16]);
/// assert_eq!(batch.len(), 2);
/// let lines: Vec<&[u8]> = batch.records().collect();
/// assert_eq!(lines, [&b"{\"a\":1}\n"[..], &b"{\"b\":2}\n"[..]]);
/// ```
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// The buffer the `ends` offsets point into.
    buf: &'a [u8],
    /// Offset of the first record in `buf`.
    start: usize,
    ends: &'a [usize],
    /// Empty (every record of unknown level), or one level per record, parallel to `ends`.
    levels: &'a [u8],
}

impl<'a> Batch<'a> {
    /// The level stored for a record whose severity is unknown: [`Batch::level`] returns
    /// `None` for it, and it passes every [`LevelFilter`].
    ///
    /// ```
    /// use logxide::sink::{Batch, LevelFilter, MemorySink, Sink};
    /// let batch = Batch::with_levels(b"a\n", &[2], &[Batch::NO_LEVEL]);
    /// assert_eq!(batch.level(0), None);
    /// let mut loud = LevelFilter::new(MemorySink::new(), 40);
    /// loud.write_batch(&batch).unwrap();
    /// assert_eq!(loud.get_ref().lines(), ["a"]); // a record of unknown level passes
    /// ```
    pub const NO_LEVEL: u8 = u8::MAX;

    /// A batch over `bytes`, where `ends[i]` is the offset just past record `i`. Its records
    /// have no level ([`Batch::level`] is `None`).
    ///
    /// # Panics
    /// If `ends` is not increasing or its last entry is not `bytes.len()`.
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::new(b"{}\n{\"a\":1}\n", &[3, 11]);
    /// assert_eq!((batch.len(), batch.level(0)), (2, None));
    /// ```
    pub fn new(bytes: &'a [u8], ends: &'a [usize]) -> Self {
        Self::with_levels(bytes, ends, &[])
    }

    /// A batch whose record `i` has severity `levels[i]` ([`Batch::NO_LEVEL`]: unknown).
    /// An empty `levels` means no record has a level.
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::with_levels(b"a\nb\nc\n", &[2, 4, 6], &[20, Batch::NO_LEVEL, 40]);
    /// assert_eq!(batch.level(0), Some(20));
    /// assert_eq!(batch.level(1), None);
    /// assert_eq!(batch.skip(2).level(0), Some(40));
    /// assert_eq!(batch.levels().collect::<Vec<_>>(), [Some(20), None, Some(40)]);
    /// ```
    ///
    /// # Panics
    /// As [`Batch::new`], and if `levels` is neither empty nor as long as `ends`.
    pub fn with_levels(bytes: &'a [u8], ends: &'a [usize], levels: &'a [u8]) -> Self {
        assert!(
            levels.is_empty() || levels.len() == ends.len(),
            "one level per record, or none"
        );
        assert_eq!(
            ends.last().copied().unwrap_or(0),
            bytes.len(),
            "the last record must end at the end of the batch"
        );
        assert!(
            ends.windows(2).all(|w| w[0] <= w[1]),
            "record ends must be increasing"
        );
        Batch {
            buf: bytes,
            start: 0,
            ends,
            levels,
        }
    }

    /// The severity of record `i`: `None` if it is unknown (or `i` is out of range).
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::with_levels(b"a\nb\n", &[2, 4], &[30, Batch::NO_LEVEL]);
    /// assert_eq!([0, 1, 2].map(|i| batch.level(i)), [Some(30), None, None]);
    /// ```
    pub fn level(&self, i: usize) -> Option<u8> {
        if i >= self.ends.len() {
            return None;
        }
        match self.levels.get(i) {
            Some(&l) if l != Self::NO_LEVEL => Some(l),
            _ => None,
        }
    }

    /// The severity of each record, in order (`None`: unknown).
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::new(b"a\nb\n", &[2, 4]); // no levels given
    /// assert_eq!(batch.levels().collect::<Vec<_>>(), [None, None]);
    /// ```
    pub fn levels(&self) -> impl Iterator<Item = Option<u8>> + 'a {
        let levels = self.levels;
        (0..self.ends.len()).map(move |i| match levels.get(i) {
            Some(&l) if l != Self::NO_LEVEL => Some(l),
            _ => None,
        })
    }

    /// All records, back to back.
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::new(b"a\nbb\n", &[2, 5]);
    /// assert_eq!(batch.bytes(), b"a\nbb\n");
    /// assert_eq!(batch.skip(1).bytes(), b"bb\n");
    /// ```
    pub fn bytes(&self) -> &'a [u8] {
        let end = self.ends.last().copied().unwrap_or(self.start);
        &self.buf[self.start..end]
    }

    /// Number of records.
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// assert_eq!(Batch::new(b"a\nbb\n", &[2, 5]).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the batch holds no record.
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::new(b"a\n", &[2]);
    /// assert!(!batch.is_empty() && batch.skip(1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Byte length of the first `n` records (of all of them if the batch has fewer: a
    /// sink's count of records written may be passed as it is).
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::new(b"a\nbb\n", &[2, 5]);
    /// assert_eq!(batch.prefix_bytes(1), 2);
    /// assert_eq!(batch.prefix_bytes(9), 5);
    /// ```
    pub fn prefix_bytes(&self, n: usize) -> usize {
        match n.min(self.ends.len()) {
            0 => 0,
            n => self.ends[n - 1] - self.start,
        }
    }

    /// How many records lie completely within the first `bytes` bytes of the batch (any
    /// number of bytes: `usize::MAX` counts them all).
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::new(b"a\nbb\n", &[2, 5]);
    /// assert_eq!(batch.records_within(4), 1);
    /// assert_eq!(batch.skip(1).records_within(usize::MAX), 1);
    /// ```
    pub fn records_within(&self, bytes: usize) -> usize {
        let limit = self.start.saturating_add(bytes);
        self.ends.partition_point(|&e| e <= limit)
    }

    /// The records, one slice per line (each including its `\n`).
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::new(b"a\nbb\n", &[2, 5]);
    /// assert_eq!(batch.records().collect::<Vec<_>>(), [&b"a\n"[..], &b"bb\n"[..]]);
    /// ```
    pub fn records(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        let mut start = self.start;
        self.ends.iter().map(move |&end| {
            let rec = &buf[start..end];
            start = end;
            rec
        })
    }

    /// The first `n` records of the batch (all of them if it has fewer).
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::with_levels(b"a\nbb\nccc\n", &[2, 5, 9], &[10, 20, 30]);
    /// let head = batch.skip(1).take(1);
    /// assert_eq!(head.bytes(), b"bb\n");
    /// assert_eq!(head.len(), 1);
    /// assert_eq!(head.level(0), Some(20));
    /// ```
    pub fn take(&self, n: usize) -> Batch<'a> {
        let n = n.min(self.ends.len());
        Batch {
            buf: self.buf,
            start: self.start,
            ends: &self.ends[..n],
            levels: self.levels.get(..n).unwrap_or(&[]),
        }
    }

    /// The part of the batch from record `first` on.
    ///
    /// ```
    /// use logxide::sink::Batch;
    /// let batch = Batch::new(b"a\nbb\nccc\n", &[2, 5, 9]);
    /// let tail = batch.skip(1);
    /// assert_eq!(tail.bytes(), b"bb\nccc\n");
    /// assert_eq!(tail.records().collect::<Vec<_>>(), [&b"bb\n"[..], &b"ccc\n"[..]]);
    /// ```
    pub fn skip(&self, first: usize) -> Batch<'a> {
        let first = first.min(self.ends.len());
        let start = if first == 0 {
            self.start
        } else {
            self.ends[first - 1]
        };
        Batch {
            buf: self.buf,
            start,
            ends: &self.ends[first..],
            levels: self.levels.get(first..).unwrap_or(&[]),
        }
    }
}

/// A sink failed to write (part of) a batch.
///
/// ```
/// use std::io;
/// use logxide::sink::{Batch, FnSink, SinkError};
/// use logxide::writer::Writer;
/// // Writes the first record of each batch, then fails.
/// let half = FnSink::new("half", |_: &Batch<'_>| -> Result<(), SinkError> {
///     Err(SinkError { written: 1, error: io::Error::other("disk full") })
/// });
/// let writer = Writer::builder().sink(half).build().unwrap();
/// let h = writer.handle();
/// h.enqueue(b"a").unwrap();
/// h.enqueue(b"b").unwrap();
/// let m = writer.shutdown(None).metrics;
/// assert_eq!(m.written + m.failed, 2); // each record written or failed, as the sink said
/// ```
#[derive(Debug)]
pub struct SinkError {
    /// Records, counted from the start of the batch, that were completely written before the
    /// error. The rest of the batch failed for this sink.
    pub written: usize,
    /// What went wrong.
    pub error: io::Error,
}

impl SinkError {
    /// An error before any record of the batch was written.
    ///
    /// ```
    /// use logxide::sink::SinkError;
    /// let e = SinkError::new(std::io::Error::other("disk full"));
    /// assert_eq!(e.written, 0);
    /// assert_eq!(e.to_string(), "disk full (before any record of the batch was written)");
    /// ```
    pub fn new(error: io::Error) -> Self {
        SinkError { written: 0, error }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The error may be a user's wrapping one whose `Display` fails on its own: it is what
        // it wrote so far, and the rest follows (the writer formats this into its metrics).
        write!(f, "{} ", Checked(&self.error))?;
        match self.written {
            0 => f.write_str("(before any record of the batch was written)"),
            1 => f.write_str("(after 1 complete record of the batch)"),
            n => write!(f, "(after {n} complete records of the batch)"),
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<io::Error> for SinkError {
    fn from(error: io::Error) -> Self {
        SinkError::new(error)
    }
}

/// A destination for batches of records.
///
/// Implementations must write whole records: after an error, [`SinkError::written`] says how
/// many leading records of the batch were completely written, and no partial record may be
/// left behind where a later write would append after it.
///
/// ```
/// use logxide::sink::{Batch, Sink, SinkError};
///
/// /// Counts lines instead of writing them.
/// struct Counter(usize);
///
/// impl Sink for Counter {
///     fn name(&self) -> &str { "counter" }
///     fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
///         self.0 += batch.len();
///         Ok(())
///     }
/// }
///
/// let mut c = Counter(0);
/// c.write_batch(&Batch::new(b"{}\n{}\n", &[3, 6])).unwrap();
/// assert_eq!(c.0, 2);
/// ```
pub trait Sink: Send + 'static {
    /// A short name for metrics and error messages (a path, `stderr`, ...).
    fn name(&self) -> &str;

    /// Write every record of `batch`. Called by one thread at a time — under the writer's
    /// lock — but not always the writer thread: a [`write_sync`] caller writes (and flushes)
    /// from its own thread, as does any caller after the writer fell back to synchronous
    /// writes, and a producer that races with the shutdown may drain the queue from its
    /// thread. A sink must not rely on running on the writer thread.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use logxide::sink::{Batch, FnSink, SinkError};
    /// use logxide::writer::{Mode, Writer};
    /// let threads = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&threads);
    /// let sink = FnSink::new("where", move |_: &Batch<'_>| -> Result<(), SinkError> {
    ///     seen.lock().unwrap().push(std::thread::current().id());
    ///     Ok(())
    /// });
    /// let writer = Writer::builder().mode(Mode::Manual).sink(sink).build().unwrap();
    /// writer.handle().write_sync(b"now").unwrap();
    /// assert_eq!(*threads.lock().unwrap(), [std::thread::current().id()]);
    /// ```
    ///
    /// [`write_sync`]: crate::writer::WriterHandle::write_sync
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError>;

    /// Make everything written so far reach its destination (and stable storage, if the sink
    /// was configured for durability). Called for `flush()` barriers and after each
    /// [`write_sync`](crate::writer::WriterHandle::write_sync), by the thread that wrote (see
    /// [`write_batch`](Self::write_batch)).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Called once when the writer shuts down, after the last batch.
    fn close(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// How many bytes the writer should gather before handing this sink a batch, when records
    /// have not yet waited the flush interval. `0` (the default) means "hand me records as
    /// soon as the writer takes them"; the `block` file strategy asks for 64 KiB.
    ///
    /// A writer hands one batch to all its sinks, so it gathers the smallest size any of
    /// them asks for: next to a sink that asks for `0` (a `line` or `mmap` file, a
    /// [`MemorySink`], a console with [`gather_bytes(0)`](Console::gather_bytes)), a sink
    /// that asks for 64 KiB gets each batch as the writer takes it too — no record waits
    /// longer than its most eager sink wants, at the cost of more, smaller writes elsewhere.
    /// Give sinks that must write large blocks a writer of their own. The writer asks once,
    /// when it is built.
    fn coalesce_bytes(&self) -> usize {
        0
    }

    /// Whether this sink takes the records of severity `level` (`None`: unknown; see
    /// [`Batch::level`]) — false for those a filter leaves out ([`LevelFilter`]). Default:
    /// every record.
    ///
    /// The writer asks only after a sink failed part of a batch: a record counts as written
    /// in its metrics if a sink that takes it wrote it (or if no sink takes it), so a record
    /// a filter left out, and every other sink failed, is counted failed — not written
    /// because the filter had nothing to do with it.
    ///
    /// ```
    /// use logxide::sink::{LevelFilter, MemorySink, Sink};
    /// let loud = LevelFilter::new(MemorySink::new(), 30);
    /// assert_eq!([Some(20), Some(30), None].map(|l| loud.accepts(l)), [false, true, true]);
    /// ```
    fn accepts(&self, level: Option<u8>) -> bool {
        let _ = level;
        true
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn accepts(&self, level: Option<u8>) -> bool {
        (**self).accepts(level)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        (**self).write_batch(batch)
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn close(&mut self) -> io::Result<()> {
        (**self).close()
    }
    fn coalesce_bytes(&self) -> usize {
        (**self).coalesce_bytes()
    }
}

/// Keeps every byte written to it; clones share the same buffer. Made for tests.
///
/// ```
/// use logxide::sink::{Batch, MemorySink, Sink};
/// let mem = MemorySink::new();
/// let mut sink = mem.clone();
/// sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
/// assert_eq!(mem.contents(), b"{}\n");
/// assert_eq!(mem.lines(), vec!["{}".to_string()]);
/// ```
#[derive(Clone, Default)]
pub struct MemorySink {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl MemorySink {
    /// An empty in-memory sink.
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// let mem = MemorySink::new();
    /// assert!(mem.contents().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything written so far.
    ///
    /// ```
    /// use logxide::sink::{Batch, MemorySink, Sink};
    /// let mem = MemorySink::new();
    /// mem.clone().write_batch(&Batch::new(b"a\n", &[2])).unwrap(); // clones share the bytes
    /// assert_eq!(mem.contents(), b"a\n");
    /// ```
    pub fn contents(&self) -> Vec<u8> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Everything written so far, split into lines (without the `\n`), lossily decoded.
    ///
    /// ```
    /// use logxide::sink::{Batch, MemorySink, Sink};
    /// let mut mem = MemorySink::new();
    /// mem.write_batch(&Batch::new(b"a\nbb\n", &[2, 5])).unwrap();
    /// assert_eq!(mem.lines(), ["a", "bb"]);
    /// ```
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.contents())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Sink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        self.buf
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(batch.bytes());
        Ok(())
    }
}

/// Which standard stream a [`StdStream`] sink writes to.
///
/// ```
/// use logxide::sink::{Sink, StdStream, Stream};
/// assert_eq!(StdStream::new(Stream::Stdout).name(), "stdout");
/// assert_eq!(StdStream::new(Stream::Stderr).name(), "stderr");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How long [`StdStream`], [`Console`] and [`WriteSink`] wait, by default, for a full
/// non-blocking output to take bytes again before they fail the rest of the batch (see
/// [Non-blocking outputs](self#non-blocking-outputs)).
///
/// ```
/// assert_eq!(logxide::sink::DEFAULT_WOULD_BLOCK_TIMEOUT, std::time::Duration::from_secs(10));
/// ```
pub const DEFAULT_WOULD_BLOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest sleep between two attempts on a writer that would block and cannot be polled.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// How a sink's write goes on after `WouldBlock`: what it waits on, and for how long with no
/// byte accepted before it gives up.
#[derive(Clone, Copy, Debug)]
struct Patience {
    /// The standard stream whose descriptor is polled; `None`: any writer, retried after a
    /// short sleep.
    stream: Option<Stream>,
    timeout: Duration,
}

impl Patience {
    fn new(stream: Option<Stream>) -> Self {
        Patience {
            stream,
            timeout: DEFAULT_WOULD_BLOCK_TIMEOUT,
        }
    }

    /// After a `WouldBlock` at `stalled` (when the output last refused, with no byte taken
    /// since): waits until it may take bytes again, `pause` being the sleep for a writer that
    /// cannot be polled. `Err` once the output took nothing for the timeout.
    fn wait(&self, stalled: Instant, pause: &mut Duration) -> io::Result<()> {
        match self.stream {
            Some(Stream::Stdout) => {
                wait_writable(Some(io::stdout().as_fd()), self.timeout, stalled, pause)
            }
            Some(Stream::Stderr) => {
                wait_writable(Some(io::stderr().as_fd()), self.timeout, stalled, pause)
            }
            None => wait_writable(None, self.timeout, stalled, pause),
        }
    }
}

/// After a write that would block at `stalled` (no byte taken since): waits until `fd` can
/// be written to — polled; without a descriptor, a sleep of `pause`, which then doubles up
/// to [`MAX_RETRY_PAUSE`] — or `Err` (`TimedOut`, saying why) once `timeout` has passed
/// since `stalled`.
fn wait_writable(
    fd: Option<BorrowedFd<'_>>,
    timeout: Duration,
    stalled: Instant,
    pause: &mut Duration,
) -> io::Result<()> {
    let left = match timeout.checked_sub(stalled.elapsed()) {
        Some(left) if !left.is_zero() => left,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the output would block and took no byte for {timeout:?} (a non-blocking \
                     descriptor whose reader does not read): the write is given up"
                ),
            ))
        }
    };
    if !fd.is_some_and(|fd| poll_writable(fd, left)) {
        std::thread::sleep(left.min(*pause));
        *pause = (*pause * 2).min(MAX_RETRY_PAUSE);
    }
    Ok(())
}

/// Waits (at most `left`, and at most a second at a time) until `fd` can be written to, or
/// is in error; false if `poll(2)` itself failed (the caller sleeps instead).
fn poll_writable(fd: BorrowedFd<'_>, left: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let Ok(timeout) = Timespec::try_from(left.min(Duration::from_secs(1))) else {
        return false;
    };
    let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
    match poll(&mut fds, Some(&timeout)) {
        Ok(_) => true,
        Err(rustix::io::Errno::INTR) => true,
        Err(_) => false,
    }
}

/// Writes batches to standard output or standard error: each batch in one `write` call,
/// continued after a short write (see [`WriteSink`] for what an error counts). A stream made
/// non-blocking by someone else is waited for when full (see
/// [Non-blocking outputs](self#non-blocking-outputs)). A stream that cannot be written
/// (its descriptor closed, or open for reading only: `EBADF`, which Rust's `print!`
/// ignores) fails the batch, its records counted failed with an error saying so; the same
/// holds for [`Console::stdout`] and [`Console::stderr`].
///
/// ```
/// use logxide::sink::{Stream, StdStream};
/// use logxide::writer::Writer;
/// let writer = Writer::builder().sink(StdStream::new(Stream::Stderr)).build().unwrap();
/// writer.handle().enqueue(br#"{"msg":"on standard error"}"#).unwrap();
/// assert_eq!(writer.shutdown(None).metrics.written, 1);
/// ```
pub struct StdStream {
    stream: Stream,
    torn: bool,
    patience: Patience,
}

impl StdStream {
    /// A sink for `stream`.
    ///
    /// ```
    /// use logxide::sink::{Batch, Sink, StdStream, Stream};
    /// let mut sink = StdStream::new(Stream::Stderr);
    /// sink.write_batch(&Batch::new(b"{\"msg\":\"to stderr\"}\n", &[20])).unwrap();
    /// assert_eq!(sink.name(), "stderr");
    /// ```
    pub fn new(stream: Stream) -> Self {
        StdStream {
            stream,
            torn: false,
            patience: Patience::new(Some(stream)),
        }
    }

    /// How long a full non-blocking stream may take no byte before the rest of the batch
    /// fails (default [`DEFAULT_WOULD_BLOCK_TIMEOUT`]; `Duration::ZERO`: fail at once).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::{Stream, StdStream};
    /// let sink = StdStream::new(Stream::Stdout).would_block_timeout(Duration::from_secs(1));
    /// # use logxide::sink::Sink;
    /// assert_eq!(sink.name(), "stdout");
    /// ```
    pub fn would_block_timeout(mut self, timeout: Duration) -> Self {
        self.patience.timeout = timeout;
        self
    }
}

impl Sink for StdStream {
    fn name(&self) -> &str {
        match self.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        let (torn, patience) = (&mut self.torn, self.patience);
        let out = &mut StdWriter(self.stream);
        // The stream stays locked for the whole batch: no other thread's `print!` between
        // two of its writes.
        match self.stream {
            Stream::Stdout => {
                let _lock = io::stdout().lock();
                write_records(out, batch, torn, patience)
            }
            Stream::Stderr => {
                let _lock = io::stderr().lock();
                write_records(out, batch, torn, patience)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.stream {
            Stream::Stdout => flush_patiently(&mut io::stdout().lock(), self.patience),
            Stream::Stderr => flush_patiently(&mut io::stderr().lock(), self.patience),
        }
    }
    fn close(&mut self) -> io::Result<()> {
        end_torn(&mut StdWriter(self.stream), &mut self.torn, self.patience)?;
        self.flush()
    }
}

/// Standard output or error for the sinks: each write goes straight to the descriptor
/// (after what Rust's own buffer of the stream holds, so `print!` output keeps its place).
/// Rust's `Stdout` and `Stderr` take a descriptor that cannot be written (`EBADF`: closed,
/// or open for reading only) for a success — records counted written that went nowhere;
/// here it is an error that says so.
struct StdWriter(Stream);

impl Write for StdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = match self.0 {
            Stream::Stdout => {
                let mut lock = io::stdout().lock();
                lock.flush()?;
                rustix::io::write(&lock, buf)
            }
            // Unbuffered: nothing of Rust's to write first.
            Stream::Stderr => rustix::io::write(io::stderr().lock(), buf),
        };
        written.map_err(|errno| {
            let e = io::Error::from(errno);
            if e.raw_os_error() != Some(libc::EBADF) {
                return e;
            }
            let which = match self.0 {
                Stream::Stdout => "standard output",
                Stream::Stderr => "standard error",
            };
            io::Error::new(
                e.kind(),
                format!("{which} cannot be written (closed, or not open for writing): {e}"),
            )
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.0 {
            Stream::Stdout => io::stdout().lock().flush(),
            Stream::Stderr => Ok(()),
        }
    }
}

/// Writes all of `bytes` to `w` as `write_all` does, but on error also says how many bytes
/// were accepted. A write that would block is waited for per `patience`. (The sinks that
/// hand a generic writer whole lines: [`StdStream`], [`WriteSink`], [`Console`].)
fn write_counted(
    w: &mut impl Write,
    bytes: &[u8],
    patience: Patience,
) -> Result<(), (usize, io::Error)> {
    write_waiting(w, bytes, |since, pause| patience.wait(since, pause))
}

/// [`write_counted`]'s loop, `wait` being called after each `WouldBlock` with the instant
/// since which the output has taken no byte and the sleep for a writer that cannot be polled
/// (see [`wait_writable`]). Also the loop of a [`FileSink`] (which polls its own descriptor).
fn write_waiting(
    w: &mut impl Write,
    bytes: &[u8],
    mut wait: impl FnMut(Instant, &mut Duration) -> io::Result<()>,
) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    // Since when the output has refused bytes (none taken since), and the next sleep.
    let mut stalled: Option<Instant> = None;
    let mut pause = Duration::from_millis(1);
    while done < bytes.len() {
        match w.write(&bytes[done..]) {
            Ok(0) => {
                return Err((
                    done,
                    io::Error::new(io::ErrorKind::WriteZero, "the writer accepted no bytes"),
                ))
            }
            Ok(n) => {
                done += n;
                stalled = None;
                pause = Duration::from_millis(1);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let since = *stalled.get_or_insert_with(Instant::now);
                wait(since, &mut pause).map_err(|e| (done, e))?;
            }
            Err(error) => return Err((done, error)),
        }
    }
    Ok(())
}

/// `w.flush()`, waited for per `patience` while it would block (a buffered writer over a
/// full non-blocking descriptor).
fn flush_patiently(w: &mut impl Write, patience: Patience) -> io::Result<()> {
    let mut stalled: Option<Instant> = None;
    let mut pause = Duration::from_millis(1);
    loop {
        match w.flush() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let since = *stalled.get_or_insert_with(Instant::now);
                patience.wait(since, &mut pause)?;
            }
            done => return done,
        }
    }
}

/// When the last batch ended inside a record (`torn`), ends that line with `\n`, so that
/// what follows starts a line of its own instead of being glued onto the torn record.
fn end_torn(w: &mut impl Write, torn: &mut bool, patience: Patience) -> io::Result<()> {
    if *torn {
        write_counted(w, b"\n", patience).map_err(|(_, e)| e)?;
        *torn = false;
    }
    Ok(())
}

/// Writes all of `batch` to `w` as `write_all` does, but on error reports how many records
/// of the batch were accepted completely (not 0 when some were). A record accepted only in
/// part cannot be taken back from a generic writer: `torn` remembers it, and the next batch
/// (or the close) first ends its line, so the torn record never swallows the next one.
fn write_records(
    w: &mut impl Write,
    batch: &Batch<'_>,
    torn: &mut bool,
    patience: Patience,
) -> Result<(), SinkError> {
    end_torn(w, torn, patience)?;
    write_counted(w, batch.bytes(), patience).map_err(|(done, error)| {
        let written = batch.records_within(done);
        *torn = done > batch.prefix_bytes(written);
        SinkError { written, error }
    })
}

/// Adapts any [`Write`] into a sink: each batch written whole (short writes and `EINTR`
/// retried, as `write_all` does; a write that would block retried after a short sleep, see
/// [Non-blocking outputs](self#non-blocking-outputs)), `flush` on barriers. After an error,
/// [`SinkError::written`] counts the records the writer accepted completely; the start of a
/// record it accepted in part cannot be taken back from a generic writer, so the next batch
/// (or [`close`](Sink::close)) first ends that torn line with `\n`: later records are never
/// glued onto it.
///
/// ```
/// use logxide::sink::{Batch, Sink, WriteSink};
/// let mut sink = WriteSink::new("vec", Vec::new());
/// sink.write_batch(&Batch::new(b"{}\n", &[3])).unwrap();
/// assert_eq!(sink.get_ref(), b"{}\n");
/// ```
pub struct WriteSink<W> {
    name: String,
    inner: W,
    /// The last batch ended inside a record: its line is still open.
    torn: bool,
    patience: Patience,
}

impl<W: Write + Send + 'static> WriteSink<W> {
    /// Wraps `inner`; `name` appears in metrics and errors.
    ///
    /// ```
    /// use logxide::sink::{Sink, WriteSink};
    /// let sink = WriteSink::new("buffer", Vec::new());
    /// assert_eq!(sink.name(), "buffer"); // as metrics and errors show it
    /// ```
    pub fn new(name: impl Into<String>, inner: W) -> Self {
        WriteSink {
            name: name.into(),
            inner,
            torn: false,
            patience: Patience::new(None),
        }
    }

    /// How long a writer that would block may take no byte before the rest of the batch
    /// fails (default [`DEFAULT_WOULD_BLOCK_TIMEOUT`]; `Duration::ZERO`: fail at once).
    ///
    /// ```
    /// use std::io::{self, Write};
    /// use std::time::Duration;
    /// use logxide::sink::WriteSink;
    /// use logxide::writer::Writer;
    /// /// A writer that is always full.
    /// struct Full;
    /// impl Write for Full {
    ///     fn write(&mut self, _: &[u8]) -> io::Result<usize> {
    ///         Err(io::ErrorKind::WouldBlock.into())
    ///     }
    ///     fn flush(&mut self) -> io::Result<()> {
    ///         Ok(())
    ///     }
    /// }
    /// let sink = WriteSink::new("full", Full).would_block_timeout(Duration::ZERO);
    /// let writer = Writer::builder().sink(sink).build().unwrap();
    /// writer.handle().enqueue(b"never taken").unwrap();
    /// writer.handle().flush(None).unwrap();
    /// let m = writer.handle().metrics();
    /// assert_eq!((m.written, m.failed), (0, 1)); // counted, with the reason:
    /// assert!(m.sinks[0].last_error.as_deref().unwrap().contains("would block"));
    /// ```
    pub fn would_block_timeout(mut self, timeout: Duration) -> Self {
        self.patience.timeout = timeout;
        self
    }

    /// The wrapped writer.
    ///
    /// ```
    /// use logxide::sink::{Batch, Sink, WriteSink};
    /// let mut sink = WriteSink::new("vec", Vec::new());
    /// sink.write_batch(&Batch::new(b"a\n", &[2])).unwrap();
    /// assert_eq!(sink.get_ref().as_slice(), b"a\n");
    /// ```
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write + Send + 'static> Sink for WriteSink<W> {
    fn name(&self) -> &str {
        &self.name
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        write_records(&mut self.inner, batch, &mut self.torn, self.patience)
    }
    fn flush(&mut self) -> io::Result<()> {
        flush_patiently(&mut self.inner, self.patience)
    }
    fn close(&mut self) -> io::Result<()> {
        end_torn(&mut self.inner, &mut self.torn, self.patience)?;
        flush_patiently(&mut self.inner, self.patience)
    }
}

/// A sink made of a closure that receives each batch.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use logxide::sink::{Batch, FnSink, Sink};
/// let records = Arc::new(AtomicUsize::new(0));
/// let counted = Arc::clone(&records);
/// let mut sink = FnSink::new("count", move |b: &Batch<'_>| {
///     counted.fetch_add(b.len(), Ordering::Relaxed);
///     Ok(())
/// });
/// sink.write_batch(&Batch::new(b"{}\n{}\n", &[3, 6])).unwrap();
/// assert_eq!(records.load(Ordering::Relaxed), 2);
/// ```
pub struct FnSink<F> {
    name: String,
    f: F,
}

impl<F> FnSink<F>
where
    F: FnMut(&Batch<'_>) -> Result<(), SinkError> + Send + 'static,
{
    /// A sink that calls `f` with every batch.
    ///
    /// ```
    /// use logxide::sink::{Batch, FnSink, Sink, SinkError};
    /// let sink = FnSink::new("discard", |_: &Batch<'_>| -> Result<(), SinkError> { Ok(()) });
    /// assert_eq!(sink.name(), "discard");
    /// ```
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnSink {
            name: name.into(),
            f,
        }
    }
}

impl<F> Sink for FnSink<F>
where
    F: FnMut(&Batch<'_>) -> Result<(), SinkError> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        (self.f)(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts at most 3 bytes per call and `cap` bytes in all, then fails (EINTR once first).
    struct Limited {
        buf: Vec<u8>,
        cap: usize,
        interrupted: bool,
    }

    impl Write for Limited {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.buf.len() >= self.cap {
                return Err(io::Error::other("full"));
            }
            let n = b.len().min(self.cap - self.buf.len()).min(3);
            self.buf.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// `prefix_bytes` of more records than the batch holds is the whole batch (as `take`),
    /// not a panic: a sink's own count (an error's `written`) may be passed as it is.
    #[test]
    fn prefix_bytes_past_the_last_record_is_the_whole_batch() {
        let batch = Batch::new(b"a\nbb\n", &[2, 5]);
        assert_eq!(
            [0, 1, 2, 3, usize::MAX].map(|n| batch.prefix_bytes(n)),
            [0, 2, 5, 5, 5]
        );
        let tail = batch.skip(1);
        assert_eq!([0, 1, 2].map(|n| tail.prefix_bytes(n)), [0, 3, 3]);
        assert_eq!(batch.skip(2).prefix_bytes(1), 0);
    }

    /// `records_within` of any number of bytes, up to `usize::MAX`, also on a batch's tail
    /// (whose records start past 0 in the buffer): no overflow (a panic in debug builds, a
    /// count of 0 in release ones).
    #[test]
    fn records_within_any_number_of_bytes_counts_without_overflow() {
        let batch = Batch::new(b"a\nbb\nccc\n", &[2, 5, 9]);
        let tail = batch.skip(1);
        assert_eq!(
            [0, 2, 3, 6, 7, usize::MAX].map(|n| tail.records_within(n)),
            [0, 0, 1, 1, 2, 2]
        );
        assert_eq!(batch.records_within(usize::MAX), 3);
    }

    #[test]
    fn write_sink_counts_the_records_its_writer_accepted_before_an_error() {
        let batch = Batch::new(b"aaa\nbbb\nccc\n", &[4, 8, 12]);
        for (cap, written) in [(0, 0), (3, 0), (4, 1), (10, 2), (11, 2)] {
            let mut sink = WriteSink::new(
                "limited",
                Limited {
                    buf: Vec::new(),
                    cap,
                    interrupted: false,
                },
            );
            let err = sink.write_batch(&batch).unwrap_err();
            assert_eq!(err.written, written, "cap {cap}");
            assert_eq!(err.error.to_string(), "full");
            assert_eq!(sink.get_ref().buf, &batch.bytes()[..cap]);
        }
        let mut sink = WriteSink::new(
            "roomy",
            Limited {
                buf: Vec::new(),
                cap: 12,
                interrupted: false,
            },
        );
        sink.write_batch(&batch).unwrap();
        assert_eq!(sink.get_ref().buf, batch.bytes());
    }
}
