//! The asynchronous writer: a bounded queue and one background thread that batches records
//! to one or more [sinks](crate::sink).
//!
//! Producers hold a cheap, cloneable [`WriterHandle`] and [`enqueue`](WriterHandle::enqueue)
//! already-serialized lines; the writer thread takes them in FIFO order, gathers them into
//! large batches and hands each batch to every sink. The [`Writer`] owns the thread: dropping
//! it (or calling [`Writer::shutdown`]) drains every queued record first.
//!
//! ```
//! use logxide::sink::MemorySink;
//! use logxide::writer::{Policy, Writer};
//!
//! let memory = MemorySink::new();
//! let writer = Writer::builder()
//!     .capacity(1024)
//!     .policy(Policy::Block)
//!     .sink(memory.clone())
//!     .build()?;
//! let handle = writer.handle();
//! handle.enqueue(br#"{"msg":"hello"}"#).unwrap();
//! writer.flush(None)?; // everything enqueued so far has reached the sinks
//! assert_eq!(memory.contents(), b"{\"msg\":\"hello\"}\n");
//! let report = writer.shutdown(None);
//! assert_eq!(report.metrics.written, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - **Nothing is lost silently.** Each record is written, or counted as dropped (with a
//!   [`DropReason`]) or failed (every sink that takes it refused it; the error is in the
//!   metrics). [`Writer::metrics`] satisfies `enqueued = written + dropped + failed +
//!   pending`. A dropped record is the `Err` of its enqueue (or, for a record the logger
//!   began to encode and a value's `Display`, `Debug` or `Serialize` panicked, counted with
//!   [`DropReason::Panicked`] while the panic goes on to the caller); a record a sink failed
//!   to write (or a failed `fsync`) makes the next [`WriterHandle::flush_checked`] fail,
//!   naming the sink — or, not checked before, the [`ShutdownReport`]'s
//!   [`check`](ShutdownReport::check) — where [`WriterHandle::flush`] only says the records
//!   reached the sinks.
//! - **Bounded memory.** The queue holds at most `capacity` records and `max_bytes` bytes
//!   under every policy; the writer's own batch is at most 1 MiB plus one record. Each
//!   producer thread has its own lane (a ring that starts at 64 KiB and grows with its
//!   backlog, within those bounds). With several producers a full queue may be reported
//!   while idle threads hold a few unspent credits — never more than half of either bound
//!   in all (see the `budget` module); a single producer fills the queue exactly. A record
//!   too large for what they leave (up to `max_bytes` itself) takes their credits back, so
//!   any record within the bounds gets in once the queue is empty.
//! - **Order.** Each producer's records are written in the order it enqueued them; records of
//!   producers synchronized with each other keep their happens-before order (lanes are
//!   merged by the clock reading of each call; see the `queue` module).
//! - **Draining.** [`Writer::flush`], [`Writer::shutdown`] and dropping the [`Writer`] drain
//!   the queue in every mode, `manual` included. A shutdown with a timeout that expires
//!   reports the exact number still pending; the thread goes on draining in the background.
//! - **Recovery.** A panic in a sink or in the writer loop restarts the loop with exponential
//!   backoff (the batch in hand is retried, the queue kept; the backoff starts over once a
//!   restarted loop has delivered a batch); after `max_restarts` the writer
//!   falls back to synchronous writes by the callers, and reports [`WriterState::Fallback`].
//!   A batch that makes the same sink panic twice in a row is given up for that sink: its
//!   records are counted failed there (and in `failed` unless another sink wrote them), the
//!   reason is the sink's and the writer's last error, and the writer goes on with the next
//!   batch. A sink's flush that panics twice in a row is skipped once the same way. So a
//!   poisoned record costs two restarts, not all of them. A panic that escapes the restart
//!   loop itself (a bug, or a sink's `name` panicking while the writer gives up its batch)
//!   ends in fallback mode too, the panic's text the last error: the queue is never left
//!   with nobody to write it.
//! - **Fork.** A process forked (`fork()`) from the one that built the writer inherits a copy
//!   of it — queue, buffers, sinks, and any lock the writer thread held at that instant — but
//!   not its thread. In the child the writer stands down ([`WriterState::Forked`]): every
//!   record given to it is dropped with reason [`DropReason::Forked`] and counted; the records
//!   the parent had in flight at the fork are counted there too (their copies are discarded:
//!   the parent writes its own, once). [`flush`](WriterHandle::flush) and
//!   [`trigger`](WriterHandle::trigger) return at once; [`Writer::shutdown`] and dropping the
//!   [`Writer`] neither wait for nor join the parent's thread; nothing in the child takes the
//!   writer's locks, pops its queue, or calls (or drops) its sinks. The check costs producers
//!   one relaxed atomic load.
//!
//! # Pitfalls
//!
//! - Records enqueued after shutdown are dropped (reason `shutdown`), not written: keep the
//!   [`Writer`] alive as long as threads log, typically in `main`.
//! - `std::process::exit` does not run destructors: call [`Writer::shutdown`] first.
//! - Every thread that logs has its own lane: a ring of 64 KiB that grows to 512 KiB (and
//!   chains more) while the writer lags behind it, and goes away when the thread exits.
//!   A process with thousands of threads logging at once holds that much per thread.
//! - A record logged while the same thread is pushing one (from inside a sink running on
//!   that thread) goes through a shared lane behind a mutex: it keeps its place in time
//!   order, but not in that thread's own lane order.
//! - In `manual` mode records wait for [`Writer::trigger`] or [`Writer::flush`] (or a full
//!   queue, or the `deadline`); a process that never triggers only writes at shutdown.
//! - A forked child that logs must build its own writer — or call
//!   [`init`](crate::logger::init) again, which installs a new one without draining the
//!   inherited one; until then its records are dropped (`forked`). Give the child its own
//!   file: re-initializing onto the parent's truncates it (mode `w`), and two `mmap` writers
//!   overwrite each other. The fork is noticed through a `pthread_atfork` handler, so a child
//!   made by a raw `clone` system call is not. POSIX allows only async-signal-safe calls in
//!   the child of a multi-threaded process until it calls `exec`; logging there relies on the
//!   C library keeping `malloc` usable after `fork`, as glibc does.

mod budget;
mod config;
mod doorbell;
mod lane;
mod metrics;
mod queue;
mod shared;
mod worker;

pub(crate) use config::MAX_CAPACITY;
pub use config::{BuildError, DropWarning, Mode, ParseError, Policy, Settings};
pub use metrics::{DropReason, DroppedBy, MetricsSnapshot, SinkFailure, SinkMetrics, WriterState};

use std::fmt;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use config::BoxedSink;
use doorbell::ATTENTION;
use lane::{Lane, Record, CAPTURED};
pub(crate) use shared::{deadline_after, in_sink_call, on_a_writer_thread, panic_message};
use shared::{Shared, CLOSED, FALLBACK, RUNNING};

use crate::encode::capture;
use crate::sink::{Batch, Sink};

/// Builds a [`Writer`]; every option is checked by [`build`](WriterBuilder::build) before
/// the thread starts. A duration past the clock's range (`Duration::MAX`) — as an option
/// here, or the timeout of [`Writer::flush`] or [`Writer::shutdown`] — never expires.
///
/// ```
/// use std::time::Duration;
/// use logxide::sink::MemorySink;
/// use logxide::writer::{Mode, Policy, Writer};
///
/// let writer = Writer::builder()
///     .capacity(10_000)
///     .max_bytes(16 << 20)
///     .policy(Policy::DropOldest)
///     .batch_size(100)
///     .flush_interval(Duration::from_millis(100))
///     .deadline(Duration::from_millis(500))
///     .mode(Mode::Loop)
///     .tick(Duration::from_millis(10))
///     .max_restarts(10)
///     .sink(MemorySink::new())
///     .build()
///     .unwrap();
/// let s = writer.handle().settings().clone();
/// assert_eq!((s.capacity(), s.max_bytes(), s.batch_size()), (10_000, 16 << 20, 100));
/// assert_eq!((s.policy(), s.mode(), s.deadline()), (Policy::DropOldest, Mode::Loop, Some(Duration::from_millis(500))));
/// // Unset, the batch size is 100, or the capacity if that is smaller.
/// let small = Writer::builder().capacity(50).sink(MemorySink::new()).build().unwrap();
/// assert_eq!(small.handle().settings().batch_size(), 50);
/// ```
pub struct WriterBuilder {
    settings: Settings,
    sinks: Vec<BoxedSink>,
    /// `batch_size` was set; otherwise it defaults to `min(100, capacity)`.
    batch_set: bool,
}

impl WriterBuilder {
    /// Queue capacity in records (default 10 000).
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{DropReason, Mode, Policy, Writer};
    /// let writer = Writer::builder()
    ///     .capacity(2)
    ///     .policy(Policy::DropNewest)
    ///     .mode(Mode::Manual) // nothing is written before the flush
    ///     .sink(MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// let h = writer.handle();
    /// assert!(h.enqueue(b"1").is_ok() && h.enqueue(b"2").is_ok());
    /// assert_eq!(h.enqueue(b"3").unwrap_err().reason, DropReason::QueueFull);
    /// let err = Writer::builder().capacity(0).sink(MemorySink::new()).build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid writer option `capacity` = 0: the queue must hold at least one record");
    /// ```
    pub fn capacity(mut self, records: usize) -> Self {
        self.settings.capacity = records;
        self
    }

    /// Queue bound in bytes (default 64 MiB; at most `i64::MAX`). A record larger than this
    /// is refused, and so is one larger than 4 GiB − 1 bytes (its `\n` included) whatever
    /// the bound.
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{DropReason, Writer};
    /// let writer = Writer::builder().max_bytes(8).sink(MemorySink::new()).build().unwrap();
    /// let h = writer.handle();
    /// assert!(h.enqueue(b"short").is_ok()); // 6 bytes with its `\n`
    /// assert_eq!(h.enqueue(b"longer than 8").unwrap_err().reason, DropReason::Invalid);
    /// assert_eq!(writer.shutdown(None).metrics.dropped_by.invalid, 1);
    /// ```
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_bytes = bytes;
        self
    }

    /// What to do when the queue is full (default [`Policy::Block`]).
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Policy, Queued, Writer};
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder()
    ///     .capacity(1)
    ///     .policy(Policy::DropOldest)
    ///     .mode(Mode::Manual)
    ///     .sink(mem.clone())
    ///     .build()
    ///     .unwrap();
    /// let h = writer.handle();
    /// assert_eq!(h.enqueue(b"old"), Ok(Queued::Queued));
    /// assert_eq!(h.enqueue(b"new"), Ok(Queued::EvictedOldest));
    /// writer.flush(None).unwrap();
    /// assert_eq!(mem.lines(), ["new"]);
    /// ```
    pub fn policy(mut self, policy: Policy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// With [`Policy::Block`]: give up after waiting this long; the record is dropped with
    /// reason [`DropReason::Timeout`]. Default: wait as long as it takes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Policy, Writer};
    /// let writer = Writer::builder()
    ///     .block_timeout(Duration::from_millis(250))
    ///     .sink(MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(writer.handle().settings().block_timeout(), Some(Duration::from_millis(250)));
    /// // Only the block policy waits.
    /// let err = Writer::builder()
    ///     .policy(Policy::Warn)
    ///     .block_timeout(Duration::from_millis(250))
    ///     .sink(MemorySink::new())
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "invalid writer option `block_timeout` = 250ms: applies only to the block policy");
    /// ```
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.settings.block_timeout = Some(timeout);
        self
    }

    /// Records pending that make the writer write in trigger mode (default 100, or the
    /// capacity if that is smaller; set explicitly, it must not exceed the capacity). A queue
    /// that `max_bytes` fills with fewer records is written once it is full.
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let writer = Writer::builder().batch_size(10).sink(MemorySink::new()).build().unwrap();
    /// assert_eq!(writer.handle().settings().batch_size(), 10);
    /// let err = Writer::builder().capacity(5).batch_size(10).sink(MemorySink::new()).build();
    /// assert_eq!(
    ///     err.unwrap_err().to_string(),
    ///     "invalid writer option `batch_size` = 10: must not exceed the queue capacity, or a batch could never fill"
    /// );
    /// ```
    pub fn batch_size(mut self, records: usize) -> Self {
        self.settings.batch_size = records;
        self.batch_set = true;
        self
    }

    /// The settings as `build` will use them.
    fn resolved(&self) -> Settings {
        let mut settings = self.settings.clone();
        if !self.batch_set {
            settings.batch_size = settings.batch_size.min(settings.capacity.max(1));
        }
        settings
    }

    /// The longest a record waits before the writer writes it in trigger mode (default
    /// 100 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let writer = Writer::builder()
    ///     .flush_interval(Duration::from_millis(20))
    ///     .sink(MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(writer.handle().settings().flush_interval(), Duration::from_millis(20));
    /// let zero = Writer::builder().flush_interval(Duration::ZERO).sink(MemorySink::new()).build();
    /// assert!(zero.unwrap_err().to_string().starts_with("invalid writer option `flush_interval`"));
    /// ```
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.settings.flush_interval = interval;
        self
    }

    /// An upper bound on how long any record may wait, in every mode (default none).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Writer};
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder()
    ///     .mode(Mode::Manual) // never writes on its own...
    ///     .deadline(Duration::from_millis(10)) // ...but for the deadline
    ///     .sink(mem.clone())
    ///     .build()
    ///     .unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// let until = std::time::Instant::now() + Duration::from_secs(60); // a bound, not expected
    /// while mem.lines().is_empty() && std::time::Instant::now() < until {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// assert_eq!(mem.lines(), ["a"]);
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.settings.deadline = Some(deadline);
        self
    }

    /// When the writer writes (default [`Mode::Trigger`]).
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Writer};
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder().mode(Mode::Manual).sink(mem.clone()).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// assert!(mem.lines().is_empty()); // manual: written at a trigger, flush or shutdown
    /// writer.flush(None).unwrap();
    /// assert_eq!(mem.lines(), ["a"]);
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.settings.mode = mode;
        self
    }

    /// The period of [`Mode::Loop`] (default 10 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Writer};
    /// let writer = Writer::builder()
    ///     .mode(Mode::Loop)
    ///     .tick(Duration::from_millis(5))
    ///     .sink(MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(writer.handle().settings().tick(), Duration::from_millis(5));
    /// let zero = Writer::builder().mode(Mode::Loop).tick(Duration::ZERO).sink(MemorySink::new()).build();
    /// assert!(zero.unwrap_err().to_string().ends_with("loop mode needs a positive tick"));
    /// ```
    pub fn tick(mut self, tick: Duration) -> Self {
        self.settings.tick = tick;
        self
    }

    /// How many times a panicked writer thread is restarted before the writer falls back to
    /// synchronous writes (default 10). A batch that makes a sink panic twice in a row is
    /// given up for that sink, not retried at each restart (see "Recovery" in the
    /// [module docs](self)).
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let writer = Writer::builder().max_restarts(3).sink(MemorySink::new()).build().unwrap();
    /// assert_eq!(writer.handle().settings().max_restarts(), 3);
    /// ```
    pub fn max_restarts(mut self, restarts: u32) -> Self {
        self.settings.max_restarts = restarts;
        self
    }

    /// The first restart delay and its cap; the delay doubles after each restart (default
    /// 100 ms and 30 s), and starts over once a restarted writer has delivered a batch.
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let ok = Writer::builder()
    ///     .restart_backoff(Duration::from_millis(10), Duration::from_secs(1))
    ///     .sink(MemorySink::new())
    ///     .build();
    /// assert!(ok.is_ok());
    /// let err = Writer::builder()
    ///     .restart_backoff(Duration::from_secs(2), Duration::from_secs(1))
    ///     .sink(MemorySink::new())
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().ends_with("the initial backoff must be positive and not above the maximum"));
    /// ```
    pub fn restart_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.settings.backoff_initial = initial;
        self.settings.backoff_max = max;
        self
    }

    /// The writer thread's name (default `logxide-writer`). A NUL byte in it is refused by
    /// `build`. Linux shows threads by their first 15 bytes (`ps`, `top`, `/proc`): the Rust
    /// name (panic messages, `std::thread::current().name()`) keeps it whole.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use logxide::sink::{Batch, FnSink, SinkError};
    /// use logxide::writer::Writer;
    /// let seen = Arc::new(Mutex::new(None));
    /// let name = Arc::clone(&seen);
    /// let sink = FnSink::new("names", move |_: &Batch<'_>| -> Result<(), SinkError> {
    ///     *name.lock().unwrap() = std::thread::current().name().map(str::to_owned);
    ///     Ok(())
    /// });
    /// let writer = Writer::builder().thread_name("app-log-writer").sink(sink).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// writer.flush(None).unwrap(); // written by the writer thread
    /// assert_eq!(seen.lock().unwrap().as_deref(), Some("app-log-writer"));
    /// let nul = Writer::builder().thread_name("a\0b").sink(FnSink::new("x", |_: &Batch<'_>| Ok(()))).build();
    /// assert!(nul.is_err());
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.settings.thread_name = name.into();
        self
    }

    /// Where the `warn` policy reports drops (default: a line on standard error). With another
    /// policy it would never be called: `build` refuses it ([`BuildError::Invalid`], option
    /// `on_drop_warning`), as it refuses a `block_timeout` without the `block` policy.
    ///
    /// The hook runs on the writer thread, between two batches: while it runs nothing is
    /// written, and it must not wait for the writer. So a report waits for the writer's next
    /// pass: in `manual` mode without a `deadline`, that is the next trigger, flush or the
    /// shutdown (the writer sleeps until then). A [`flush`](WriterHandle::flush) from it
    /// returns `Err` at once (as from inside a sink); enqueuing never waits under `warn`.
    /// A panic in the hook is caught and counted as an error (`errors` in the metrics, its
    /// message the [last error](WriterHandle::last_error)); the writer goes on. The hook may
    /// shut the writer down (or drop it): that does not wait for the writer thread (see
    /// [`Writer::shutdown`]).
    ///
    /// After a fallback to synchronous writes ([`WriterState::Fallback`]) there is no writer
    /// thread: records refused then (by a sink that logs while a caller writes, say) are
    /// reported by the caller whose synchronous write follows them, on its thread once its
    /// write is done (holding none of the writer's locks, so a `flush` from the hook writes
    /// rather than fails), at most once per second as before; what is left is reported by
    /// the shutdown. Every refused record is counted (`queue_full`) and reported once.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    /// use std::sync::Arc;
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Policy, Writer};
    /// let reported = Arc::new(AtomicU64::new(0));
    /// let count = Arc::clone(&reported);
    /// let writer = Writer::builder()
    ///     .capacity(1)
    ///     .policy(Policy::Warn)
    ///     .mode(Mode::Manual) // the queue stays full until the shutdown
    ///     .on_drop_warning(move |w| {
    ///         count.fetch_add(w.dropped, Relaxed);
    ///     })
    ///     .sink(MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// for _ in 0..5 {
    ///     let _ = writer.handle().enqueue(b"burst"); // one is queued, four refused
    /// }
    /// writer.shutdown(None); // reports what is left
    /// assert_eq!(reported.load(Relaxed), 4);
    /// ```
    pub fn on_drop_warning(mut self, hook: impl Fn(&DropWarning) + Send + Sync + 'static) -> Self {
        self.settings.warn_hook = Some(Arc::new(hook));
        self
    }

    /// Adds a sink; every batch goes to every sink, in the order they were added. Batches are
    /// gathered to the smallest [`coalesce_bytes`](Sink::coalesce_bytes) of the sinks.
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let (a, b) = (MemorySink::new(), MemorySink::new());
    /// let writer = Writer::builder().sink(a.clone()).sink(b.clone()).build().unwrap();
    /// writer.handle().enqueue(b"both").unwrap();
    /// writer.flush(None).unwrap();
    /// assert_eq!((a.lines(), b.lines()), (vec!["both".to_owned()], vec!["both".to_owned()]));
    /// ```
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Adds an already boxed sink.
    ///
    /// ```
    /// use logxide::sink::{MemorySink, Sink};
    /// use logxide::writer::Writer;
    /// let mem = MemorySink::new();
    /// let chosen: Box<dyn Sink> = Box::new(mem.clone()); // picked at run time
    /// let writer = Writer::builder().boxed_sink(chosen).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// writer.flush(None).unwrap();
    /// assert_eq!(mem.lines(), ["a"]);
    /// ```
    pub fn boxed_sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// A builder with the same settings and no sinks.
    pub(crate) fn clone_settings(&self) -> WriterBuilder {
        WriterBuilder {
            settings: self.settings.clone(),
            sinks: Vec::new(),
            batch_set: self.batch_set,
        }
    }

    /// Checks the options without starting anything (what [`build`](Self::build) checks
    /// first).
    ///
    /// # Errors
    /// As [`build`](Self::build).
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{BuildError, Writer};
    /// assert!(matches!(Writer::builder().validate(), Err(BuildError::NoSink)));
    /// assert!(Writer::builder().sink(MemorySink::new()).validate().is_ok()); // nothing started
    /// ```
    pub fn validate(&self) -> Result<(), BuildError> {
        self.resolved().validate()?;
        if self.sinks.is_empty() {
            return Err(BuildError::NoSink);
        }
        Ok(())
    }

    /// Validates the options and starts the writer thread.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] names the first option refused and what it accepts;
    /// [`BuildError::NoSink`] when no sink was added. Nothing is started on error.
    ///
    /// ```
    /// use logxide::writer::Writer;
    /// let err = Writer::builder().build().unwrap_err();
    /// assert_eq!(err.to_string(), "the writer has no sink: add at least one with `.sink(...)`");
    /// ```
    pub fn build(mut self) -> Result<Writer, BuildError> {
        self.settings = self.resolved();
        self.settings.validate()?;
        if self.sinks.is_empty() {
            return Err(BuildError::NoSink);
        }
        let name = self.settings.thread_name.clone();
        let shared = Arc::new(Shared::new(self.settings, self.sinks));
        let thread_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || {
                // (Also set by the spawning thread: whichever comes first, before any record.)
                let _ = thread_shared.writer_thread.set(thread::current());
                shared::mark_writer_thread();
                let _exit = ExitMark(&thread_shared);
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker::supervise(&thread_shared)
                }));
                if let Err(payload) = run {
                    worker::abandon(&thread_shared, &panic_message(&*payload));
                }
            })
            .map_err(BuildError::Spawn)?;
        let _ = shared.writer_thread.set(thread.thread().clone());
        Ok(Writer {
            handle: WriterHandle { shared },
            thread: Some(thread),
            shut_down: false,
        })
    }
}

/// Marks the writer thread exited when it ends, also by unwinding (a panic that escaped the
/// supervisor): `shutdown` and `flush` wait for this mark, then drain and close what is
/// left from their own thread.
struct ExitMark<'a>(&'a Shared);

impl Drop for ExitMark<'_> {
    fn drop(&mut self) {
        self.0.worker_exited.store(true, SeqCst);
        let _g = self.0.done_lock.lock();
        self.0.done_cv.notify_all();
    }
}

/// The owner of the writer thread; dropping it drains every queued record and joins the
/// thread (like `tracing-appender`'s `WorkerGuard`). Dropped on the writer thread itself
/// (from the `warn` hook), it does not wait: see [`shutdown`](Writer::shutdown).
///
/// ```
/// use logxide::sink::MemorySink;
/// use logxide::writer::{Mode, Writer};
/// let mem = MemorySink::new();
/// let writer = Writer::builder().mode(Mode::Manual).sink(mem.clone()).build().unwrap();
/// writer.handle().enqueue(b"queued").unwrap();
/// drop(writer); // drains the queue, closes the sinks, joins the thread
/// assert_eq!(mem.lines(), ["queued"]);
/// ```
pub struct Writer {
    handle: WriterHandle,
    thread: Option<JoinHandle<()>>,
    shut_down: bool,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("settings", &self.handle.shared.settings)
            .field("state", &self.handle.shared.state())
            .finish()
    }
}

/// How a record was accepted.
///
/// ```
/// use logxide::sink::MemorySink;
/// use logxide::writer::{Queued, Writer};
/// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
/// assert_eq!(writer.handle().enqueue(b"a"), Ok(Queued::Queued));
/// assert_eq!(writer.handle().write_sync(b"b"), Ok(Queued::WrittenSync));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    /// Queued for the writer thread.
    Queued,
    /// Queued; an older record was evicted to make room ([`Policy::DropOldest`]).
    EvictedOldest,
    /// Handled synchronously by this call ([`write_sync`](WriterHandle::write_sync), or any
    /// enqueue once the writer is in fallback mode): written, or counted failed if every
    /// sink that takes it failed to write it (or, a bug, it could not be formatted; the
    /// reason is the [last error](WriterHandle::last_error)) — which the next
    /// [`flush_checked`](WriterHandle::flush_checked) reports.
    WrittenSync,
}

/// A record was not accepted; it is counted in the metrics under `reason`.
///
/// ```
/// use logxide::sink::MemorySink;
/// use logxide::writer::{DropReason, Writer};
/// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
/// let h = writer.handle();
/// writer.shutdown(None);
/// let dropped = h.enqueue(b"too late").unwrap_err();
/// assert_eq!(dropped.reason, DropReason::Shutdown);
/// assert_eq!(h.metrics().dropped_by.shutdown, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Why.
    pub reason: DropReason,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            DropReason::QueueFull => f.write_str("record dropped: the queue is full"),
            DropReason::Evicted => f.write_str("record evicted by a newer one"),
            DropReason::Timeout => f.write_str("record dropped: no space before the block timeout"),
            DropReason::Shutdown => f.write_str("record dropped: the writer is shut down"),
            DropReason::Invalid => f.write_str(
                "record dropped: it holds a line break before its end, or exceeds the queue's byte bound",
            ),
            DropReason::Forked => f.write_str(
                "record dropped: the writer was inherited through fork() and its thread runs in the parent only; build a new logger (or `init` again) in the child",
            ),
            DropReason::Panicked => f.write_str(
                "record dropped: a value's Display, Debug or Serialize panicked while it was encoded",
            ),
        }
    }
}

impl std::error::Error for Dropped {}

/// `flush` could not confirm every earlier record reached the sinks in time — or at all,
/// when called on the writer's own thread (from a sink or the `warn` hook), where it
/// returns at once because the writer would wait for itself.
///
/// ```
/// use std::time::Duration;
/// use logxide::sink::{Batch, FnSink, SinkError};
/// use logxide::writer::Writer;
/// let slow = FnSink::new("slow", |_: &Batch<'_>| -> Result<(), SinkError> {
///     std::thread::sleep(Duration::from_millis(300));
///     Ok(())
/// });
/// let writer = Writer::builder().sink(slow).build().unwrap();
/// writer.handle().enqueue(b"a").unwrap();
/// let err = writer.flush(Some(Duration::from_millis(1))).unwrap_err();
/// assert!(!err.on_writer_thread);
/// assert_eq!(err.to_string(), format!("flush timed out with {} records still pending", err.pending));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushTimeout {
    /// Records still pending when the timeout expired (or when the call returned).
    pub pending: u64,
    /// The call was made on the writer's own thread (a sink's call, the `warn` hook), which
    /// cannot wait for the writer: no timeout expired, the flush was refused at once.
    pub on_writer_thread: bool,
}

impl fmt::Display for FlushTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.on_writer_thread {
            write!(
                f,
                "flush refused on the writer's own thread (a sink or the warn hook cannot wait \
                 for the writer) with {} records still pending",
                self.pending
            )
        } else {
            write!(
                f,
                "flush timed out with {} records still pending",
                self.pending
            )
        }
    }
}

impl std::error::Error for FlushTimeout {}

/// Why [`flush_checked`](WriterHandle::flush_checked) failed: the flush did not complete
/// (as [`flush`](WriterHandle::flush) reports it), or it did and a sink failed to write or
/// flush since the last check.
///
/// ```
/// use std::io;
/// use logxide::sink::{Batch, FnSink, SinkError};
/// use logxide::writer::{FlushError, Writer};
/// let full = FnSink::new("disk", |_: &Batch<'_>| -> Result<(), SinkError> {
///     Err(io::Error::other("no space left on device").into())
/// });
/// let writer = Writer::builder().sink(full).build().unwrap();
/// writer.handle().enqueue(b"a").unwrap();
/// let err = writer.flush_checked(None).unwrap_err();
/// assert!(matches!(&err, FlushError::Failed { failed: 1, sinks } if sinks[0].name == "disk"));
/// assert_eq!(
///     err.to_string(),
///     "flush: 1 record written by no sink; sink 0 (disk) failed 1 record in 1 failed call \
///      since the last check (last: no space left on device (before any record of the batch was written))"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlushError {
    /// The flush could not confirm that every earlier record reached the sinks (see
    /// [`FlushTimeout`]). What failed is left for the next check.
    Timeout(FlushTimeout),
    /// Every earlier record reached the sinks, but some sinks failed since the last check
    /// (or since the writer started): their records are counted failed there (and in the
    /// metrics' `failed` if no sink wrote them), or their flush (an `fsync`) failed.
    Failed {
        /// Records no sink wrote, or the writer could not format (the metrics' `failed`).
        failed: u64,
        /// The sinks that failed records or calls, in the order they were added.
        sinks: Vec<SinkFailure>,
    },
}

impl From<FlushTimeout> for FlushError {
    fn from(timeout: FlushTimeout) -> Self {
        FlushError::Timeout(timeout)
    }
}

/// `n` `what`, with an `s` unless `n` is 1.
fn counted(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (failed, sinks) = match self {
            FlushError::Timeout(t) => return t.fmt(f),
            FlushError::Failed { failed, sinks } => (*failed, sinks),
        };
        f.write_str("flush: ")?;
        let mut parts = Vec::new();
        if failed > 0 {
            parts.push(format!("{} written by no sink", counted(failed, "record")));
        }
        for s in sinks {
            let mut part = format!(
                "sink {} ({}) failed {} in {} since the last check",
                s.index,
                s.name,
                counted(s.failed, "record"),
                counted(s.errors, "failed call"),
            );
            if let Some(e) = &s.last_error {
                part.push_str(&format!(" (last: {e})"));
            }
            parts.push(part);
        }
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for FlushError {}

/// What [`Writer::shutdown`] achieved.
///
/// [`check`](Self::check) says whether the last records reached every sink, as
/// [`flush_checked`](WriterHandle::flush_checked) would have said of the shutdown's drain:
///
/// ```
/// use std::io;
/// use logxide::sink::{Batch, FnSink, MemorySink, SinkError};
/// use logxide::writer::{FlushError, Mode, Writer};
/// let full = FnSink::new("full", |_: &Batch<'_>| -> Result<(), SinkError> {
///     Err(io::Error::other("disk full").into())
/// });
/// let writer = Writer::builder().mode(Mode::Manual).sink(full).build().unwrap();
/// writer.handle().enqueue(b"last words").unwrap();
/// // Written (and failed) by the shutdown's drain: the report says so.
/// let report = writer.shutdown(None);
/// match report.check() {
///     Err(FlushError::Failed { failed, sinks }) => {
///         assert_eq!(failed, 1);
///         assert_eq!((sinks[0].name.as_str(), sinks[0].failed), ("full", 1));
///     }
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(report.check(), Ok(())); // reported once
/// ```
#[derive(Clone, Debug)]
pub struct ShutdownReport {
    /// The counters after the drain (or when the timeout expired): `metrics.pending` records
    /// were not yet written then.
    pub metrics: MetricsSnapshot,
    /// The timeout expired before the writer finished draining; it goes on in the background.
    pub timed_out: bool,
    unchecked: Unchecked,
}

/// What [`ShutdownReport::check`] reports.
#[derive(Clone)]
enum Unchecked {
    /// The failures counted in the report's metrics that no check reported yet (the
    /// writer's record of what was reported, which every check updates).
    Since(Arc<std::sync::Mutex<metrics::FailuresSeen>>),
    /// The shutdown returned before the drain ended.
    TimedOut(FlushTimeout),
    /// Nothing to report: a process forked from the writer's, where nothing reaches a sink.
    Nothing,
}

impl fmt::Debug for Unchecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unchecked::Since(_) => f.write_str("Since(..)"),
            Unchecked::TimedOut(t) => f.debug_tuple("TimedOut").field(t).finish(),
            Unchecked::Nothing => f.write_str("Nothing"),
        }
    }
}

impl ShutdownReport {
    /// What a [`flush_checked`](WriterHandle::flush_checked) would have said of the
    /// shutdown's drain: `Ok` if every record reached the sinks and nothing failed since the
    /// last check (or since the writer started) — records the final drain could not write, a
    /// failed flush or `close` (a last `fsync`, say).
    ///
    /// Each failure is reported once, by the first check that follows it — this one, or a
    /// `flush_checked` (of a handle, after the shutdown): a second call returns `Ok`, as do
    /// the report's clones. The report marks nothing reported until it is checked, so a
    /// report dropped unread (and dropping the `Writer`) leaves its failures to the next
    /// `flush_checked`. Nothing in a process forked from the writer's (nothing there
    /// reaches a sink).
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when the shutdown returned before the drain ended
    /// (`timed_out`: the records still pending then; `on_writer_thread` for a shutdown from
    /// the writer's own thread): the failures are left for the next check, by
    /// [`WriterHandle::flush_checked`] once the drain is over. [`FlushError::Failed`] with
    /// the records no sink wrote and each failing sink's counts since the last check.
    pub fn check(&self) -> Result<(), FlushError> {
        match &self.unchecked {
            Unchecked::Nothing => Ok(()),
            Unchecked::TimedOut(t) => Err(FlushError::Timeout(t.clone())),
            Unchecked::Since(seen) => {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                match seen.since(&self.metrics) {
                    None => Ok(()),
                    Some((failed, sinks)) => Err(FlushError::Failed { failed, sinks }),
                }
            }
        }
    }
}

impl Writer {
    /// A builder with the default settings and no sink.
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
    /// assert_eq!(writer.handle().settings().capacity(), 10_000); // the default
    /// ```
    pub fn builder() -> WriterBuilder {
        WriterBuilder {
            settings: Settings::default(),
            sinks: Vec::new(),
            batch_set: false,
        }
    }

    /// A handle for producer threads (cheap to clone).
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder().sink(mem.clone()).build().unwrap();
    /// let h = writer.handle();
    /// std::thread::spawn(move || h.enqueue(b"from a thread").unwrap()).join().unwrap();
    /// writer.flush(None).unwrap();
    /// assert_eq!(mem.lines(), ["from a thread"]);
    /// ```
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// See [`WriterHandle::flush`].
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Writer};
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder().mode(Mode::Manual).sink(mem.clone()).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// writer.flush(None).unwrap();
    /// assert_eq!(mem.lines(), ["a"]);
    /// ```
    pub fn flush(&self, timeout: Option<Duration>) -> Result<(), FlushTimeout> {
        self.handle.flush(timeout)
    }

    /// See [`WriterHandle::flush_checked`].
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// assert_eq!(writer.flush_checked(None), Ok(())); // written, by every sink
    /// ```
    pub fn flush_checked(&self, timeout: Option<Duration>) -> Result<(), FlushError> {
        self.handle.flush_checked(timeout)
    }

    /// See [`WriterHandle::trigger`].
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Writer};
    /// let writer = Writer::builder().mode(Mode::Manual).sink(MemorySink::new()).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// writer.trigger(); // asks for the write, does not wait for it
    /// let report = writer.shutdown(None);
    /// assert_eq!(report.metrics.written, 1);
    /// ```
    pub fn trigger(&self) {
        self.handle.trigger()
    }

    /// See [`WriterHandle::metrics`].
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// writer.flush(None).unwrap();
    /// let m = writer.metrics();
    /// assert_eq!((m.enqueued, m.written, m.pending), (1, 1, 0));
    /// ```
    pub fn metrics(&self) -> MetricsSnapshot {
        self.handle.metrics()
    }

    /// Stops accepting records, drains the queue to the sinks, closes them and joins the
    /// thread. With a `timeout` that expires first, returns at once with `timed_out` set and
    /// the exact number still pending; the thread finishes the drain in the background.
    /// Its [`check`](ShutdownReport::check) says what a
    /// [`flush_checked`](WriterHandle::flush_checked) would: whether the last records reached
    /// every sink, and the closes succeeded.
    ///
    /// Called on the writer thread itself — from the `warn` policy's hook
    /// ([`on_drop_warning`](WriterBuilder::on_drop_warning)), which the writer runs, or from
    /// a sink — it cannot wait for that thread: it stops accepting records and returns at
    /// once, as when a timeout expires (`timed_out` set, the records still pending counted);
    /// the thread drains, closes the sinks and exits once the hook (or sink call) returns.
    /// Dropping the `Writer` there does the same. So does a sink called on a producer's
    /// thread (by [`write_sync`](WriterHandle::write_sync), or in fallback mode): a thread of
    /// the shutdown's own then joins the writer thread and closes the sinks once that call
    /// returns.
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Writer};
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder().mode(Mode::Manual).sink(mem.clone()).build().unwrap();
    /// writer.handle().enqueue(b"never triggered").unwrap();
    /// let report = writer.shutdown(Some(Duration::from_secs(5)));
    /// assert!(!report.timed_out);
    /// assert_eq!(mem.lines(), ["never triggered"]);
    /// ```
    pub fn shutdown(mut self, timeout: Option<Duration>) -> ShutdownReport {
        let timed_out = self.shutdown_inner(timeout);
        self.report(timed_out)
    }

    /// The shutdown; true if it returned before the drain ended (a timeout, or a call on the
    /// writer's own thread).
    fn shutdown_inner(&mut self, timeout: Option<Duration>) -> bool {
        self.shut_down = true;
        let shared = &self.handle.shared;
        if shared.forked() {
            // The thread is the parent's: nothing to wake, drain or join here (joining a
            // thread that does not exist in this process would never return).
            shared.orphan();
            std::mem::forget(self.thread.take());
            return false;
        }
        shared.leave_running(CLOSED);
        shared.queue.budget().wake_all_waiters();
        shared.unpark_writer();
        if shared.on_writer_thread() {
            // Called by the writer thread itself (from the `warn` hook, or a sink): it can
            // neither wait for its own exit nor join itself. Detached, it sees `CLOSED` once
            // this call returns, drains, closes the sinks and exits.
            self.thread = None;
            return true;
        }
        if shared::in_sink_call() {
            // A sink called on this thread, a producer's (by `write_sync`, or an enqueue in
            // fallback mode), which holds the core lock in an outer frame: the writer thread
            // cannot drain before this call returns, nor can this thread lock the core. The
            // rest of the shutdown goes to a thread of its own, which waits for the writer
            // thread's exit and joins it, then drains and closes under the core lock — which
            // it gets only once this sink call and the write around it are over. Both steps
            // are idempotent (`close_finished` is checked under the lock), so it does not
            // matter whether the writer thread (running) or nobody (fallback: that thread
            // is gone) closed the sinks first. Should the thread not start, the writer
            // thread still closes on its own (running); in fallback the sinks are then only
            // dropped, not closed.
            let _ = finish_in_background(shared, self.thread.take());
            return true;
        }
        let deadline = shared::deadline_after(timeout);
        if !shared.wait_until(deadline, || shared.worker_exited.load(SeqCst)) {
            // Detach: the thread keeps draining.
            self.thread = None;
            return true;
        }
        let thread = self.thread.take();
        let Some(deadline) = deadline else {
            finish_shutdown(shared, thread);
            return false;
        };
        // The rest takes the core lock, which a producer holds for as long as its sink call
        // takes (a synchronous write in fallback mode, or a record's `help_drain`): with a
        // timeout it runs on a thread of its own, waited for until the deadline, then left to
        // finish in the background. It is the same `finish_shutdown` as without a timeout,
        // so nothing differs but who waits for it.
        match finish_in_background(shared, thread) {
            Ok((finisher, finished)) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                if finished.recv_timeout(wait).is_err() {
                    return true;
                }
                let _ = finisher.join();
            }
            // Not started (its closure, and the writer's handle in it, dropped: the writer
            // thread exited already, so dropping its handle only detaches it).
            Err(_) => finish_shutdown(shared, None),
        }
        false
    }

    /// The report of a shutdown: the counters now, whether it returned before the end, and
    /// what its [`check`](ShutdownReport::check) reports.
    fn report(&self, timed_out: bool) -> ShutdownReport {
        let metrics = self.metrics();
        let shared = &self.handle.shared;
        let unchecked = if shared.forked() {
            Unchecked::Nothing
        } else if timed_out {
            Unchecked::TimedOut(FlushTimeout {
                pending: metrics.pending,
                on_writer_thread: shared::in_sink_call() || shared.on_writer_thread(),
            })
        } else {
            Unchecked::Since(Arc::clone(&shared.checked))
        };
        ShutdownReport {
            metrics,
            timed_out,
            unchecked,
        }
    }
}

/// Runs [`finish_shutdown`] on a thread of its own (`<thread name>-shutdown`); the receiver
/// gets a message once it is done.
fn finish_in_background(
    shared: &Arc<Shared>,
    thread: Option<JoinHandle<()>>,
) -> std::io::Result<(JoinHandle<()>, std::sync::mpsc::Receiver<()>)> {
    let (done, finished) = std::sync::mpsc::channel();
    let rest = Arc::clone(shared);
    let finisher = thread::Builder::new()
        .name(format!("{}-shutdown", shared.settings.thread_name))
        .spawn(move || {
            finish_shutdown(&rest, thread);
            let _ = done.send(());
        })?;
    Ok((finisher, finished))
}

/// The end of a shutdown, once the state is `CLOSED`: waits for the writer thread's exit and
/// joins it, then drains and closes what it left (after a fallback the thread is gone; a
/// no-op when it closed already).
fn finish_shutdown(shared: &Shared, thread: Option<JoinHandle<()>>) {
    shared.wait_until(None, || shared.worker_exited.load(SeqCst));
    if let Some(t) = thread {
        let _ = t.join();
    }
    shared.help_drain();
    let mut core = shared.lock_core();
    if !core.close_finished() {
        core.close(shared);
    }
    drop(core);
    // The writer thread made its final report when it ended; records refused since — after
    // a fallback, when callers wrote, or by a producer that raced with the state change —
    // are reported here.
    worker::report_drops(shared, true);
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.shut_down {
            self.shutdown_inner(None);
        }
    }
}

/// A producer's handle to the writer: enqueue records, flush, trigger, read metrics.
///
/// Cloning is cheap (one reference count). Handles stay valid after the [`Writer`] is shut
/// down: their records are then dropped with reason [`DropReason::Shutdown`].
///
/// ```
/// use logxide::sink::MemorySink;
/// use logxide::writer::Writer;
/// let mem = MemorySink::new();
/// let writer = Writer::builder().sink(mem.clone()).build().unwrap();
/// let threads: Vec<_> = (0..3)
///     .map(|i| {
///         let h = writer.handle();
///         std::thread::spawn(move || h.enqueue(format!("thread {i}").as_bytes()).unwrap())
///     })
///     .collect();
/// threads.into_iter().for_each(|t| { t.join().unwrap(); });
/// writer.flush(None).unwrap();
/// assert_eq!(mem.lines().len(), 3);
/// ```
#[derive(Clone)]
pub struct WriterHandle {
    shared: Arc<Shared>,
}

impl WriterHandle {
    /// Tests: see [`Shared::skew_clock`].
    #[cfg(test)]
    pub(crate) fn skew_clock(&self, ahead: u64) {
        self.shared.skew_clock(ahead);
    }

    /// Tests: the bytes of the queue's rings, and the records its lanes hold credits for
    /// (spent or not).
    #[cfg(all(test, not(logxide_loom)))]
    pub(crate) fn ring_bytes_and_credits(&self) -> (usize, usize) {
        let queue = &self.shared.queue;
        (queue.ring_bytes(), queue.budget().records_out())
    }

    /// The writer's state now (what [`metrics`](Self::metrics) reports, without the counts).
    pub(crate) fn state(&self) -> WriterState {
        self.shared.state()
    }

    /// For a writer another thread is shutting down (it took the [`Writer`], and is about
    /// to close it, or did): waits until it is closed and its thread has exited, or until
    /// `deadline`. True if it did; returns at once (false) in a forked child, on the
    /// writer's own thread and in a sink call, which that drain could be waiting for.
    pub(crate) fn wait_shut_down(&self, deadline: Option<Instant>) -> bool {
        let shared = &*self.shared;
        if shared.forked() || shared::in_sink_call() || shared.on_writer_thread() {
            return false;
        }
        shared.wait_until(deadline, || {
            shared.state.load(SeqCst) == CLOSED && shared.worker_exited.load(SeqCst)
        })
    }
}

impl fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterHandle")
            .field("state", &self.shared.state())
            .finish()
    }
}

impl WriterHandle {
    /// Enqueues one record: one line of already-serialized bytes, with or without its final
    /// `\n` (added when missing).
    ///
    /// In the common case this copies the bytes into this thread's lane of the queue, a ring
    /// that only this thread writes, and publishes them with one store: no allocation, no
    /// lock, no syscall, no read-modify-write of memory another thread writes. When the
    /// queue is full the [`Policy`] decides; a dropped record is counted and reported in the
    /// `Err`.
    ///
    /// A record enqueued from inside a sink call (a sink that logs, or a panic hook running
    /// in a sink) never waits, whatever the policy: if the queue is full it is dropped and
    /// counted as `queue_full` — waiting would deadlock the writer, which is that very call.
    ///
    /// # Errors
    /// [`Dropped`] with the reason: queue full (`drop_newest`, `warn`), block timeout, writer
    /// shut down, an invalid record (a `\n` before its end, or larger than `max_bytes` or
    /// 4 GiB − 1 bytes), or a writer inherited through `fork()` (see "Fork" in the
    /// [module docs](self)).
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{DropReason, Writer};
    /// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
    /// let h = writer.handle();
    /// assert!(h.enqueue(b"{\"n\":1}\n").is_ok());
    /// assert_eq!(h.enqueue(b"two\nlines").unwrap_err().reason, DropReason::Invalid);
    /// ```
    #[inline]
    pub fn enqueue(&self, line: &[u8]) -> Result<Queued, Dropped> {
        self.enqueue_with_level(line, Batch::NO_LEVEL)
    }

    /// Like [`enqueue`](Self::enqueue), with the record's severity (the logger passes
    /// [`Level::value`](crate::Level::value): debug 10 … critical 50). Sinks read it with
    /// [`Batch::level`]; a [`LevelFilter`](crate::sink::LevelFilter) uses it to pass only
    /// the records at or above its level. [`Batch::NO_LEVEL`] (what `enqueue` passes) means
    /// "unknown": such records pass every filter.
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue).
    ///
    /// ```
    /// use logxide::sink::{LevelFilter, MemorySink};
    /// use logxide::writer::Writer;
    /// let (all, loud) = (MemorySink::new(), MemorySink::new());
    /// let writer = Writer::builder()
    ///     .sink(all.clone())
    ///     .sink(LevelFilter::new(loud.clone(), 30))
    ///     .build()?;
    /// let h = writer.handle();
    /// h.enqueue_with_level(b"quiet", 20).unwrap();
    /// h.enqueue_with_level(b"loud", 40).unwrap();
    /// h.enqueue(b"unknown level").unwrap();
    /// writer.flush(None)?;
    /// assert_eq!(all.lines(), ["quiet", "loud", "unknown level"]);
    /// assert_eq!(loud.lines(), ["loud", "unknown level"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn enqueue_with_level(&self, line: &[u8], level: u8) -> Result<Queued, Dropped> {
        let shared = &*self.shared;
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let len = body.len() + 1;
        if len > shared.queue.max_record() || memchr::memchr(b'\n', body).is_some() {
            return self.drop_record(DropReason::Invalid);
        }
        if shared.state.load(Relaxed) != RUNNING || shared.forked() {
            return self.enqueue_slow(body, level, false);
        }
        with_rec(body, level, false, |rec| self.push(rec))
    }

    /// [`enqueue_with_level`](Self::enqueue_with_level) for a record made by the encoder,
    /// which is one line ending in `\n` by construction (so it is not searched for line
    /// breaks), its call's clock reading `ticks` (`encode::capture::clock`). With
    /// `captured`, the record holds capture segments, formatted by the writer thread
    /// ([`crate::encode::capture`]).
    #[inline]
    pub(crate) fn enqueue_encoded(
        &self,
        line: &[u8],
        level: u8,
        captured: bool,
        ticks: u64,
    ) -> Result<Queued, Dropped> {
        let shared = &*self.shared;
        let len = line.len();
        // (A captured record's segments may hold any byte.)
        debug_assert!(line.ends_with(b"\n") && (captured || !line[..len - 1].contains(&b'\n')));
        if len > shared.queue.max_record() {
            return self.drop_record(DropReason::Invalid);
        }
        let body = &line[..len - 1];
        if shared.state.load(Relaxed) != RUNNING || shared.forked() {
            return self.enqueue_slow(body, level, captured);
        }
        self.push(&Rec {
            record: Record {
                parts: &[line],
                len,
                level,
                flags: if captured { CAPTURED } else { 0 },
                ticks,
            },
            body,
        })
    }

    /// Publishes `rec` in this thread's lane; a full queue goes to the policy.
    #[inline]
    fn push(&self, rec: &Rec<'_>) -> Result<Queued, Dropped> {
        match self.try_push(rec) {
            true => Ok(self.pushed(Queued::Queued)),
            false => self.on_full(rec),
        }
    }

    #[inline(always)]
    fn try_push(&self, rec: &Rec<'_>) -> bool {
        self.shared.queue.push(&rec.record).is_ok()
    }

    /// After a record was published: one load of the doorbell, which is zero unless the
    /// writer sleeps and wants waking, or is leaving the running state (see the `doorbell`
    /// and `shared` modules).
    #[inline(always)]
    fn pushed(&self, how: Queued) -> Queued {
        let word = self.shared.bell.after_publish();
        if word != 0 {
            self.attention(word);
        }
        how
    }

    #[cold]
    fn attention(&self, word: u64) {
        let shared = &*self.shared;
        if shared.bell.ring() {
            shared.counters.wakeups.fetch_add(1, Relaxed);
            shared.unpark_writer();
        }
        // Inside a sink call this thread holds the core lock already (it is the writer, or a
        // caller draining): locking it again would never return. The record is taken by
        // whoever holds the lock next — the writer's last drain, or the closing thread's
        // `help_drain` — and both come after this sink call releases it.
        if word & ATTENTION != 0 && shared.state.load(SeqCst) != RUNNING && !shared::in_sink_call()
        {
            shared.help_drain();
        }
    }

    /// Writes one record synchronously from the caller's thread: everything enqueued before
    /// it is written first (the queue is drained), then this record, then the sinks are
    /// flushed. Slower than [`enqueue`](Self::enqueue) — for the records that must be in the
    /// sinks before the call returns (a fatal error, say); a file sink syncs them to disk only
    /// with its [`Durability`](crate::sink::Durability). Sink panics are caught and counted.
    ///
    /// `Ok` says the record was handled, not that a sink holds it: one every sink failed to
    /// write is counted failed, and the next [`flush_checked`](Self::flush_checked) says so.
    ///
    /// # Errors
    /// [`Dropped`] for an invalid record, or when the writer is shut down.
    ///
    /// ```
    /// use logxide::sink::{Batch, FnSink, MemorySink, SinkError};
    /// use logxide::writer::{FlushError, Mode, Queued, Writer};
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder().mode(Mode::Manual).sink(mem.clone()).build().unwrap();
    /// let h = writer.handle();
    /// h.enqueue(b"queued first").unwrap();
    /// assert_eq!(h.write_sync(b"then this one"), Ok(Queued::WrittenSync));
    /// assert_eq!(mem.lines(), ["queued first", "then this one"]);
    ///
    /// // A sink that fails: the write is handled (`Ok`), the record counted failed.
    /// let full = FnSink::new("full", |_: &Batch<'_>| -> Result<(), SinkError> {
    ///     Err(std::io::Error::other("disk full").into())
    /// });
    /// let writer = Writer::builder().sink(full).build().unwrap();
    /// let h = writer.handle();
    /// assert_eq!(h.write_sync(b"fatal: ..."), Ok(Queued::WrittenSync));
    /// assert!(matches!(h.flush_checked(None), Err(FlushError::Failed { failed: 1, .. })));
    /// ```
    pub fn write_sync(&self, line: &[u8]) -> Result<Queued, Dropped> {
        self.write_sync_with_level(line, Batch::NO_LEVEL)
    }

    /// Like [`write_sync`](Self::write_sync), with the record's severity (see
    /// [`enqueue_with_level`](Self::enqueue_with_level)).
    ///
    /// # Errors
    /// As [`write_sync`](Self::write_sync).
    ///
    /// ```
    /// use logxide::sink::{LevelFilter, MemorySink};
    /// use logxide::writer::{Queued, Writer};
    /// let loud = MemorySink::new();
    /// let writer = Writer::builder().sink(LevelFilter::new(loud.clone(), 30)).build().unwrap();
    /// let h = writer.handle();
    /// assert_eq!(h.write_sync_with_level(b"info", 20), Ok(Queued::WrittenSync));
    /// assert_eq!(h.write_sync_with_level(b"error", 40), Ok(Queued::WrittenSync));
    /// assert_eq!(loud.lines(), ["error"]); // in the sink when the call returns
    /// ```
    pub fn write_sync_with_level(&self, line: &[u8], level: u8) -> Result<Queued, Dropped> {
        let shared = &*self.shared;
        if shared.forked() {
            // Never the lock nor the queue of the parent's writer (see `Shared::orphan`).
            self.shared.orphan();
            return self.drop_record(DropReason::Forked);
        }
        if shared::in_sink_call() {
            // Called from inside a sink (the core lock is held by this thread): queue it.
            return self.enqueue_with_level(line, level);
        }
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if memchr::memchr(b'\n', body).is_some() {
            return self.drop_record(DropReason::Invalid);
        }
        self.write_sync_body(body, level, false, None)
    }

    /// [`write_sync_with_level`](Self::write_sync_with_level) for a captured record made by
    /// the encoder (one line ending in `\n`, holding capture segments), its call's clock
    /// reading `ticks`: formatted under the core lock by the writer's own expander, against
    /// the time given to this thread's last record, so that its `ts` never goes back from
    /// that of the thread's queued records (see "Time" in [`crate::encode::capture`]).
    pub(crate) fn write_sync_encoded(
        &self,
        line: &[u8],
        level: u8,
        ticks: u64,
    ) -> Result<Queued, Dropped> {
        let shared = &*self.shared;
        debug_assert!(line.ends_with(b"\n"));
        if shared.forked() {
            // Never the lock nor the queue of the parent's writer (see `Shared::orphan`).
            self.shared.orphan();
            return self.drop_record(DropReason::Forked);
        }
        if shared::in_sink_call() {
            // Called from inside a sink (the core lock is held by this thread): queue it.
            return self.enqueue_encoded(line, level, true, ticks);
        }
        let lane = self.own_lane();
        self.write_sync_body(&line[..line.len() - 1], level, true, lane.as_deref())
    }

    /// The lane of this thread's records, whose time a captured record it writes itself is
    /// formatted against (see [`Queue::own_lane`](queue::Queue::own_lane)): looked up, or
    /// registered, before the core lock is taken. None once the writer is closing: no lane is
    /// registered in a writer that will read none (the record is refused under the lock, or
    /// written with no time before it if it came before the sinks closed).
    fn own_lane(&self) -> Option<Arc<Lane>> {
        let shared = &*self.shared;
        (shared.state.load(SeqCst) != CLOSED).then(|| shared.queue.own_lane())
    }

    /// Writes `body` (without its `\n`) synchronously; `captured`, it is formatted against
    /// the time of the writing thread's `lane`.
    fn write_sync_body(
        &self,
        body: &[u8],
        level: u8,
        captured: bool,
        lane: Option<&Lane>,
    ) -> Result<Queued, Dropped> {
        let shared = &*self.shared;
        let mut core = shared.lock_core();
        if core.closed {
            drop(core);
            return self.drop_record(DropReason::Shutdown);
        }
        shared.counters.count_other();
        let caught = std::mem::replace(&mut core.catch_panics, true);
        core.drain(shared);
        if captured {
            core.push_captured(shared, body, level, lane);
        } else {
            core.push_record(shared, body, level);
        }
        core.deliver(shared);
        core.flush_sinks(shared);
        core.finish_barriers(shared);
        core.catch_panics = caught;
        drop(core);
        self.after_sync_write();
        Ok(Queued::WrittenSync)
    }

    /// After a synchronous write by this caller, holding no lock of the writer's: in fallback
    /// mode, where no writer thread is left to do it, reports the records refused under
    /// `warn` (sinks that logged while it wrote, say) to the hook, at most once per second.
    fn after_sync_write(&self) {
        if self.shared.state.load(SeqCst) == FALLBACK {
            worker::report_drops(&self.shared, false);
        }
    }

    /// Counts a record the logger began to encode and never finished (a value's `Display`,
    /// `Debug` or `Serialize` panicked): enqueued and dropped, reason
    /// [`DropReason::Panicked`].
    #[cold]
    pub(crate) fn count_panicked(&self) {
        let _ = self.drop_record(DropReason::Panicked);
    }

    fn drop_record(&self, reason: DropReason) -> Result<Queued, Dropped> {
        let c = &self.shared.counters;
        c.count_other();
        c.count_dropped(reason, 1);
        Err(Dropped { reason })
    }

    /// A record (`body`, without its `\n`) that cannot be queued: written from this thread in
    /// fallback mode (a captured record formatted here first), else counted as dropped.
    #[cold]
    fn enqueue_slow(&self, body: &[u8], level: u8, captured: bool) -> Result<Queued, Dropped> {
        let shared = &*self.shared;
        if shared.forked() {
            self.shared.orphan();
            return self.drop_record(DropReason::Forked);
        }
        match shared.state.load(SeqCst) {
            // A sink that logs while its caller writes synchronously: that caller holds the
            // core lock, so the record goes into this thread's lane, for the next synchronous
            // write or the shutdown to drain (it never waits: see `enqueue`).
            FALLBACK if shared::in_sink_call() => {
                if with_rec(body, level, captured, |rec| self.try_push(rec)) {
                    Ok(Queued::Queued)
                } else {
                    self.drop_record(DropReason::QueueFull)
                }
            }
            FALLBACK => {
                let lane = if captured { self.own_lane() } else { None };
                let mut core = shared.lock_core();
                // The shutdown may have closed the sinks between the load of the state and
                // this lock (it closes under the lock): the record would only be counted
                // dropped, so it is refused as such, not reported `WrittenSync`. Once the
                // lock is held `closed` cannot change before this write ends.
                if core.closed {
                    drop(core);
                    return self.drop_record(DropReason::Shutdown);
                }
                shared.counters.count_other();
                core.catch_panics = true;
                core.drain(shared);
                core.finish_barriers(shared);
                // A captured record is formatted as the writer thread would have: by its
                // expander, against the time of this thread's last record (a panic there,
                // a record the capturing encoder did not make, fails this record, not the
                // caller).
                if captured {
                    core.push_captured(shared, body, level, lane.as_deref());
                } else {
                    core.push_record(shared, body, level);
                }
                core.deliver(shared);
                drop(core);
                self.after_sync_write();
                Ok(Queued::WrittenSync)
            }
            _ => self.drop_record(DropReason::Shutdown),
        }
    }

    /// The queue (or its byte bound) is full: apply the policy.
    #[cold]
    fn on_full(&self, rec: &Rec<'_>) -> Result<Queued, Dropped> {
        let shared = &*self.shared;
        let q = &shared.queue;
        // What is waiting now: the queue may be full by its byte bound with far fewer records
        // than its capacity (or by its record bound with some credits unspent in idle lanes).
        shared.counters.raise_high_water(q.pending());
        if shared.settings.policy != Policy::Block {
            // (`block` asks while it waits for space.)
            shared.write_when_full();
        }
        match shared.settings.policy {
            Policy::DropNewest => self.drop_record(DropReason::QueueFull),
            Policy::Warn => {
                let dropped = self.drop_record(DropReason::QueueFull);
                // A producer that still saw `RUNNING` while the writer fell back: nobody
                // else may write (and so report) again before the shutdown.
                if !shared::in_sink_call() {
                    self.after_sync_write();
                }
                dropped
            }
            // Inside a sink call the writer is this thread: waiting for space would never end.
            Policy::Block if shared::in_sink_call() => self.drop_record(DropReason::QueueFull),
            Policy::DropOldest => {
                let mut evicted = false;
                loop {
                    if self.try_push(rec) {
                        let how = if evicted {
                            Queued::EvictedOldest
                        } else {
                            Queued::Queued
                        };
                        return Ok(self.pushed(how));
                    }
                    if shared.state.load(SeqCst) != RUNNING {
                        return self.enqueue_slow(
                            rec.body,
                            rec.record.level,
                            rec.record.flags & CAPTURED != 0,
                        );
                    }
                    if q.evict_oldest() {
                        shared.counters.count_dropped(DropReason::Evicted, 1);
                        evicted = true;
                    } else {
                        // The credits are with records being read, or on their way into a
                        // lane: let them land.
                        thread::yield_now();
                    }
                }
            }
            Policy::Block => {
                let deadline = shared::deadline_after(shared.settings.block_timeout);
                let pushed = q.budget().wait_for_space(
                    deadline,
                    || self.try_push(rec),
                    || shared.state.load(SeqCst) != RUNNING,
                    || shared.request_write(),
                );
                if pushed {
                    return Ok(self.pushed(Queued::Queued));
                }
                match shared.state.load(SeqCst) {
                    RUNNING => self.drop_record(DropReason::Timeout),
                    _ => self.enqueue_slow(
                        rec.body,
                        rec.record.level,
                        rec.record.flags & CAPTURED != 0,
                    ),
                }
            }
        }
    }

    /// Waits until every record enqueued before this call (by any thread, if that enqueue
    /// happened before this call) has been handed to every sink and the sinks flushed —
    /// synced to disk if their durability asks for it. Works in every mode.
    ///
    /// The flush of each sink is attempted, not confirmed: a sink whose write or flush (an
    /// `fsync`, say) fails does not make this call fail — the records it could not write are
    /// counted failed, and its error is in its own metrics ([`SinkMetrics`]: `errors`,
    /// `last_error`) and is the writer's [last error](Self::last_error).
    /// [`flush_checked`](Self::flush_checked) fails then, naming the sink and its counts.
    ///
    /// Called from the writer thread itself — inside a sink, or from the `warn` policy's
    /// hook ([`on_drop_warning`](WriterBuilder::on_drop_warning)), which the writer runs —
    /// it returns `Err` at once with the records pending: the writer cannot wait for
    /// itself. (Records enqueued there are written after the call returns, as usual.)
    ///
    /// In fallback mode the calling thread drains the queue itself, once no other caller's
    /// synchronous write holds the sinks — waiting for that ends with the timeout; a sink
    /// call this thread has begun is not interrupted.
    ///
    /// # Errors
    /// [`FlushTimeout`] with the number of records still pending if `timeout` expired.
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Writer};
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder().mode(Mode::Manual).sink(mem.clone()).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// writer.flush(None).unwrap();
    /// assert_eq!(mem.contents(), b"a\n");
    /// ```
    pub fn flush(&self, timeout: Option<Duration>) -> Result<(), FlushTimeout> {
        let shared = &*self.shared;
        if shared.forked() {
            // Every record given to this writer in this process was dropped (`forked`) and
            // counted: nothing is pending here.
            self.shared.orphan();
            return Ok(());
        }
        if shared::in_sink_call() || shared.on_writer_thread() {
            // The writer is this very call (a sink's, or the `warn` hook's): a barrier could
            // never complete, nor could the writer wait for its own exit.
            return Err(FlushTimeout {
                pending: self.metrics().pending,
                on_writer_thread: true,
            });
        }
        let deadline = shared::deadline_after(timeout);
        let timed_out = || FlushTimeout {
            pending: self.metrics().pending,
            on_writer_thread: false,
        };
        if shared.state.load(SeqCst) == RUNNING {
            // Everything published before this ticket is drawn happens before the writer
            // reads it, and is written before the ticket completes.
            let ticket = shared.next_ticket.fetch_add(1, SeqCst) + 1;
            shared.request_write();
            let done = shared.wait_until(deadline, || {
                shared.barrier_done.load(SeqCst) >= ticket || shared.state.load(SeqCst) != RUNNING
            });
            if !done {
                return Err(timed_out());
            }
            if shared.barrier_done.load(SeqCst) >= ticket {
                return Ok(());
            }
        }
        // Fallback or shutdown: drain here, or wait for the writer thread to finish.
        if shared.state.load(SeqCst) == FALLBACK || shared.worker_exited.load(SeqCst) {
            // A caller's synchronous write may hold the core for as long as its sink call
            // takes: the wait for it ends with the timeout.
            let Some(mut core) = shared.lock_core_until(deadline) else {
                return Err(timed_out());
            };
            core.catch_panics = true;
            core.drain(shared);
            core.finish_barriers(shared);
            core.flush_sinks(shared);
            drop(core);
            self.after_sync_write();
            return Ok(());
        }
        if shared.wait_until(deadline, || shared.worker_exited.load(SeqCst)) {
            Ok(())
        } else {
            Err(timed_out())
        }
    }

    /// [`flush`](Self::flush), then a check that no sink failed since the last check (by
    /// any thread) or since the writer started: a flush that confirms every earlier record
    /// was written, not just handed to the sinks.
    ///
    /// Each failure is reported once, by the first check that follows it: records a sink
    /// failed to write (an error, a caught panic), a failed flush or `fsync` (records
    /// written, maybe not on stable storage), and records no sink wrote. Failures of
    /// records enqueued by other threads during the call are reported with this call's.
    ///
    /// # Errors
    /// [`FlushError::Timeout`] as `flush` (the failures are then left for the next check);
    /// [`FlushError::Failed`] with the records no sink wrote and each failing sink's counts
    /// since the last check.
    ///
    /// ```
    /// use std::io;
    /// use logxide::sink::{Batch, FnSink, MemorySink, SinkError};
    /// use logxide::writer::{FlushError, Writer};
    /// let full = FnSink::new("full", |_: &Batch<'_>| -> Result<(), SinkError> {
    ///     Err(io::Error::other("disk full").into())
    /// });
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder().sink(mem.clone()).sink(full).build().unwrap();
    /// writer.handle().enqueue(b"a").unwrap();
    /// // `flush` only says everything reached the sinks:
    /// assert_eq!(writer.flush(None), Ok(()));
    /// // `flush_checked` says one of them failed it (the memory sink wrote it):
    /// match writer.flush_checked(None) {
    ///     Err(FlushError::Failed { failed, sinks }) => {
    ///         assert_eq!(failed, 0);
    ///         assert_eq!((sinks[0].name.as_str(), sinks[0].failed), ("full", 1));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// // Reported once.
    /// assert_eq!(writer.flush_checked(None), Ok(()));
    /// ```
    pub fn flush_checked(&self, timeout: Option<Duration>) -> Result<(), FlushError> {
        self.flush(timeout)?;
        let shared = &*self.shared;
        if shared.forked() {
            // Nothing given to this writer in this process reaches a sink (see `flush`).
            return Ok(());
        }
        let mut checked = shared.checked.lock().unwrap_or_else(|e| e.into_inner());
        match checked.since(&self.metrics()) {
            None => Ok(()),
            Some((failed, sinks)) => Err(FlushError::Failed { failed, sinks }),
        }
    }

    /// Asks the writer thread to write everything queued now, without waiting. This is how
    /// `manual` mode writes; in the other modes it writes before the batch or timer is due.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Mode, Writer};
    /// let mem = MemorySink::new();
    /// let writer = Writer::builder().mode(Mode::Manual).sink(mem.clone()).build().unwrap();
    /// let h = writer.handle();
    /// h.enqueue(b"a").unwrap();
    /// h.trigger();
    /// let until = Instant::now() + Duration::from_secs(60); // a bound, not expected
    /// while h.metrics().written == 0 && Instant::now() < until {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(mem.lines(), ["a"]);
    /// ```
    pub fn trigger(&self) {
        if !self.shared.forked() {
            self.shared.request_write();
        }
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::Writer;
    /// let writer = Writer::builder().sink(MemorySink::new()).build().unwrap();
    /// let h = writer.handle();
    /// h.enqueue(b"a").unwrap();
    /// h.flush(None).unwrap();
    /// let m = h.metrics();
    /// assert_eq!(m.enqueued, m.written + m.dropped + m.failed + m.pending);
    /// assert_eq!((m.written, m.sinks[0].written), (1, 1));
    /// ```
    pub fn metrics(&self) -> MetricsSnapshot {
        let shared = &self.shared;
        if shared.forked() {
            shared.orphan();
            return shared.metrics(WriterState::Forked, false);
        }
        shared.metrics(shared.state(), true)
    }

    /// The last error any sink or the writer thread reported (or the panic of the `warn`
    /// policy's hook), as text.
    ///
    /// ```
    /// use std::io;
    /// use logxide::sink::{Batch, FnSink, SinkError};
    /// use logxide::writer::Writer;
    /// let full = FnSink::new("disk", |_: &Batch<'_>| -> Result<(), SinkError> {
    ///     Err(io::Error::other("no space left on device").into())
    /// });
    /// let writer = Writer::builder().sink(full).build().unwrap();
    /// let h = writer.handle();
    /// assert_eq!(h.last_error(), None);
    /// h.enqueue(b"a").unwrap();
    /// h.flush(None).unwrap();
    /// assert_eq!(
    ///     h.last_error().as_deref(),
    ///     Some("disk: no space left on device (before any record of the batch was written)")
    /// );
    /// ```
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error()
    }

    /// The validated settings.
    ///
    /// ```
    /// use logxide::sink::MemorySink;
    /// use logxide::writer::{Policy, Writer};
    /// let writer = Writer::builder().capacity(50).sink(MemorySink::new()).build().unwrap();
    /// let s = writer.handle().settings().clone();
    /// assert_eq!((s.capacity(), s.batch_size(), s.policy()), (50, 50, Policy::Block));
    /// ```
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }
}

/// A record on its way into a lane, and its body without the `\n` (for the slow paths).
struct Rec<'a> {
    record: Record<'a>,
    body: &'a [u8],
}

/// Runs `f` with the record of `body` (no `\n`), timed now.
#[inline]
fn with_rec<R>(body: &[u8], level: u8, captured: bool, f: impl FnOnce(&Rec<'_>) -> R) -> R {
    f(&Rec {
        record: Record {
            parts: &[body, b"\n"],
            len: body.len() + 1,
            level,
            flags: if captured { CAPTURED } else { 0 },
            ticks: capture::clock().raw(),
        },
        body,
    })
}
