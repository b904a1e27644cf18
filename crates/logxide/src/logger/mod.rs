//! The structured logger: levels, fields, context, actions and task trees, on the writer.
//!
//! A log call checks the level (one atomic load; nothing else happens below the threshold),
//! then encodes the record in the caller's thread into a thread-local buffer — key order
//! `ts, tid, lvl, mt, msg`, then the call's fields, then scope and logger fields — and copies
//! it into this thread's lane of the [writer](crate::writer)'s queue. The macros' keys are
//! spelled at compile time ([`StaticKey`](crate::encode::StaticKey)); task ids are made so
//! that they never need escaping.
//!
//! ```
//! use logxide::sink::MemorySink;
//! let mem = MemorySink::new();
//! let log = logxide::Logger::builder().sink(mem.clone()).build()?;
//! logxide::info!(logger: log, "standalone message", user_id = 123);
//! log.flush(None)?;
//! let line = &mem.lines()[0];
//! assert!(line.ends_with(r#""lvl":[1],"mt":"info","msg":"standalone message","user_id":123}"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod action;
mod config;
mod fields;
pub(crate) mod fork;
mod global;
mod level;
mod task;

pub use action::{Action, ActionContext, DetachedAction, Instrumented, ParseContextError};
pub use config::{parse_duration, InitError, LoggerBuilder, ParseDurationError};
pub use fields::{FieldValue, FieldWriter, Fields, Mask};
pub use global::{
    __enabled, __global_action, __global_error, __global_log, __global_log_message, flush,
    flush_checked, global, init, is_async, metrics, shutdown, sync_mode, trigger, LoggerGuard,
    SyncMode,
};
pub use level::{Level, ParseLevelError};
pub use task::{TaskId, TaskIdMode};

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::encode::record::Time;
use crate::encode::{capture, Format, RecordEncoder};
use crate::writer::{
    FlushError, FlushTimeout, MetricsSnapshot, ShutdownReport, Writer, WriterHandle,
};
#[cfg(any(feature = "tracing", feature = "log"))]
pub(crate) use action::error_chain;
use action::At;
#[cfg(feature = "tracing")]
pub(crate) use action::{
    cancelled_since, current_action, start_detached, unwinding_ends_actions, ActionRef, EnteredRef,
    Owner, Parent, Stamp, CANCELLED,
};
#[cfg(feature = "log")]
pub(crate) use global::republish_threshold;
#[cfg(feature = "tracing")]
pub(crate) use global::{discarded, with_global};

/// A logger: cheap to clone; clones and [`ctx`](Logger::ctx) children share one writer.
///
/// Build one with [`Logger::builder`], or install the global one with [`init`] and log
/// through the macros ([`info!`](crate::info) and friends).
///
/// A logger is `Send + Sync`: clone it into threads. The writer is drained when the last
/// clone is dropped — pitfall: an [`Action`] or [`DetachedAction`] still alive holds a clone
/// too — or at once with [`shutdown`](Logger::shutdown).
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
/// let worker = log.clone();
/// std::thread::spawn(move || worker.info("from a thread")).join().unwrap();
/// log.info("from main");
/// drop(log); // the last clone: drains the writer
/// assert_eq!(mem.lines().len(), 2);
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
#[derive(Clone)]
pub struct Logger {
    core: Arc<Core>,
    bound: Arc<Fields>,
}

pub(crate) struct Core {
    handle: WriterHandle,
    writer: Mutex<Option<Writer>>,
    threshold: AtomicU8,
    format: Format,
    task_ids: TaskIdMode,
    mask: Mask,
    force_sync: bool,
    path: Option<PathBuf>,
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("path", &self.core.path)
            .field("threshold", &self.core.threshold.load(Relaxed))
            .field("format", &self.core.format)
            .field("bound", &self.bound.masked(&self.core.mask))
            .finish()
    }
}

thread_local! {
    /// The record being encoded on this thread (reused: no allocation in steady state).
    static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
    /// The scopes entered on this thread, innermost last.
    static SCOPES: RefCell<Vec<ScopeEntry>> = const { RefCell::new(Vec::new()) };
    /// The id of the next scope entered on this thread.
    static NEXT_SCOPE: Cell<u64> = const { Cell::new(0) };
    /// Depth of `sync_mode` guards on this thread.
    static SYNC_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// The depth of [`sync_mode`] guards on this thread (0 once its locals are destroyed, where
/// the platform destroys even those of types without a destructor).
#[inline]
pub(crate) fn sync_depth() -> u32 {
    SYNC_DEPTH.try_with(Cell::get).unwrap_or(0)
}

/// Adds `delta` to this thread's [`sync_mode`] depth (nothing once its locals are destroyed).
pub(crate) fn add_sync_depth(delta: i32) {
    let _ = SYNC_DEPTH.try_with(|d| d.set(d.get().saturating_add_signed(delta)));
}

/// A message and whether it is known to need no escaping (a literal checked at compile
/// time by the macros).
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct __Message<'a> {
    text: &'a str,
    plain: bool,
    /// The whole message part of the record, spelled at compile time (a literal message of
    /// a level macro that needs no escaping).
    head: Option<&'static __LiteralHead>,
}

impl<'a> __Message<'a> {
    /// Any message (checked when it is written).
    #[inline]
    pub fn text(text: &'a str) -> Self {
        __Message {
            text,
            plain: false,
            head: None,
        }
    }

    /// A literal and `encode::__plain(literal)`, computed at compile time.
    #[inline]
    pub const fn literal(text: &'static str, plain: bool) -> __Message<'static> {
        __Message {
            text,
            plain,
            head: None,
        }
    }

    /// A literal with its message part spelled at compile time ([`__LiteralHead`]); used
    /// only if the literal needs no escaping (`head.plain`).
    #[inline]
    pub const fn literal_with_head(
        text: &'static str,
        head: &'static __LiteralHead,
    ) -> __Message<'static> {
        __Message {
            text,
            plain: head.plain,
            head: if head.plain { Some(head) } else { None },
        }
    }
}

/// A level macro's literal message with the keys and the level's name around it, in both
/// formats: compact `,"mt":"info","msg":"text"`, eliot
/// `,"message_type":"info","message":"text"` — one copy per record instead of four. The
/// macros build it with `concat!`; the spelled text is right only if `plain` (the literal
/// needs no escaping, `encode::__plain`), else it is not used.
#[doc(hidden)]
#[derive(Debug)]
pub struct __LiteralHead {
    plain: bool,
    compact: &'static str,
    eliot: &'static str,
}

impl __LiteralHead {
    #[doc(hidden)]
    pub const fn new(plain: bool, compact: &'static str, eliot: &'static str) -> Self {
        __LiteralHead {
            plain,
            compact,
            eliot,
        }
    }
}

/// Runs `f` with this thread's record buffer (see [`with_reused`]).
#[inline]
fn with_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    with_reused(&BUF, 512, f)
}

/// A per-thread buffer [`with_reused`] empties and reuses: bytes or text.
pub(crate) trait Reused: Default {
    fn clear(&mut self);
    fn capacity(&self) -> usize;
    fn with_capacity(bytes: usize) -> Self;
}

impl Reused for Vec<u8> {
    fn clear(&mut self) {
        Vec::clear(self)
    }
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn with_capacity(bytes: usize) -> Self {
        Vec::with_capacity(bytes)
    }
}

impl Reused for String {
    fn clear(&mut self) {
        String::clear(self)
    }
    fn capacity(&self) -> usize {
        String::capacity(self)
    }
    fn with_capacity(bytes: usize) -> Self {
        String::with_capacity(bytes)
    }
}

/// Runs `f` with the thread's buffer in `key`, emptied, or a fresh one if it is in use (a
/// value's `Display` or `Serialize` that logs while a record is being encoded) or gone (a
/// record logged while the thread's locals are destroyed: by another thread-local's `Drop`).
/// A buffer grown past 64 KiB is replaced by one of `keep` bytes afterwards.
#[inline]
pub(crate) fn with_reused<T: Reused, R>(
    key: &'static std::thread::LocalKey<RefCell<T>>,
    keep: usize,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    let mut f = Some(f);
    // `try_with`, not `with` (which is `try_with` and a panic): inside a thread-local's
    // destructor a panic aborts the process.
    let reused = key.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        buf.clear();
        let r = (f.take()?)(&mut buf);
        if buf.capacity() > 64 << 10 {
            *buf = T::with_capacity(keep);
        }
        Some(r)
    });
    match reused {
        Ok(Some(r)) => r,
        _ => (f.take().expect("not run yet"))(&mut T::default()),
    }
}

impl Logger {
    /// A builder with the seed system's defaults (file `<program>.log`, level debug, …):
    /// [`LoggerBuilder::new`], where the defaults are listed.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// log.info("ready");
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(r#""lvl":[1],"mt":"info","msg":"ready"}"#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn builder() -> LoggerBuilder {
        LoggerBuilder::new()
    }

    pub(crate) fn from_parts(
        writer: Writer,
        threshold: Level,
        format: Format,
        task_ids: TaskIdMode,
        mask: Mask,
        force_sync: bool,
        path: Option<PathBuf>,
    ) -> Logger {
        Logger {
            core: Arc::new(Core {
                handle: writer.handle(),
                writer: Mutex::new(Some(writer)),
                threshold: AtomicU8::new(threshold.value()),
                format,
                task_ids,
                mask,
                force_sync,
                path,
            }),
            bound: Arc::new(Fields::new()),
        }
    }

    /// True if records at `level` are written (one atomic load): `level` is at or above the
    /// threshold. Use it to skip costly work for a record that would be dropped (the macros
    /// check it before evaluating their fields).
    ///
    /// ```
    /// use logxide::Level;
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .level(Level::Info)
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()?;
    /// assert_eq!(log.level(), Level::Info);
    /// assert!(log.enabled(Level::Info) && log.enabled(Level::Critical));
    /// assert!(!log.enabled(Level::Debug));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    #[inline]
    pub fn enabled(&self, level: Level) -> bool {
        level.value() >= self.core.threshold.load(Relaxed)
    }

    /// The threshold: records below it are not written (see the example at
    /// [`enabled`](Self::enabled); [`set_level`](Self::set_level) changes it).
    ///
    /// ```
    /// use logxide::Level;
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .level(Level::Warning)
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()?;
    /// assert_eq!(log.level(), Level::Warning);
    /// log.set_level(Level::Info);
    /// assert_eq!(log.level(), Level::Info);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn level(&self) -> Level {
        let v = self.core.threshold.load(Relaxed);
        Level::ALL
            .into_iter()
            .find(|l| l.value() == v)
            .unwrap_or(Level::Debug)
    }

    /// Changes the threshold (for every clone of this logger, and for the macros when it is
    /// the global logger).
    ///
    /// ```
    /// use logxide::Level;
    /// let mem = logxide::sink::MemorySink::new();
    /// let _guard = logxide::LoggerBuilder::new()
    ///     .use_env(false)
    ///     .level(Level::Info)
    ///     .sink(mem.clone())
    ///     .init()
    ///     .unwrap();
    /// logxide::debug!("hidden");
    /// logxide::logger::global().unwrap().set_level(Level::Debug);
    /// logxide::debug!("shown");
    /// logxide::logger::flush(None).unwrap();
    /// assert_eq!(mem.lines().len(), 1);
    /// ```
    pub fn set_level(&self, level: Level) {
        self.core.threshold.store(level.value(), Relaxed);
        global::level_changed(self);
    }

    /// Logs `msg` at `level`; `fields` writes the call's fields. The macros call this.
    ///
    /// If `fields` panics (a value's `Display`, `Debug` or `Serialize` does), the record is
    /// not written: it is counted as dropped, reason
    /// [`panicked`](crate::writer::DropReason::Panicked), and the panic goes on to the
    /// caller; the thread's next record is written whole.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
    /// log.log(logxide::Level::Note, "cache warm", |f| {
    ///     f.field("entries", &1024);
    ///     f.field("ratio", &0.5);
    /// });
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(r#""mt":"note","msg":"cache warm","entries":1024,"ratio":0.5}"#));
    /// ```
    #[inline]
    pub fn log(&self, level: Level, msg: &str, fields: impl FnOnce(&mut FieldWriter<'_, '_>)) {
        self.__log(level, &__Message::text(msg), fields);
    }

    #[doc(hidden)]
    pub fn __log(
        &self,
        level: Level,
        msg: &__Message<'_>,
        fields: impl FnOnce(&mut FieldWriter<'_, '_>),
    ) {
        if self.enabled(level) {
            let head = |enc: &mut RecordEncoder<'_>| match msg.head {
                Some(h) => enc.spelled_message(h.compact, h.eliot),
                None => enc.message_with_head(level.message_head(), msg.text, msg.plain),
            };
            match action::inner_position() {
                Some(pos) => self.emit(At::Pos(&pos), level, head, fields),
                None => self.emit(At::NewTask, level, head, fields),
            }
        }
    }

    /// Logs `msg` at `level` with no fields. [`debug`](Self::debug), [`info`](Self::info),
    /// [`warning`](Self::warning) and [`error`](Self::error) are this at their level; for
    /// fields, use [`log`](Self::log) or the macros.
    ///
    /// ```
    /// use logxide::Level;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// log.message(Level::Success, "deployed");
    /// log.debug("d");
    /// log.info("i");
    /// log.warning("w");
    /// log.error("e");
    /// log.flush(None).unwrap();
    /// let kinds: Vec<_> = mem.lines().iter()
    ///     .map(|l| l.split(r#""mt":""#).nth(1).unwrap().split('"').next().unwrap().to_owned())
    ///     .collect();
    /// assert_eq!(kinds, ["success", "debug", "info", "warning", "error"]);
    /// assert!(mem.lines()[0].ends_with(r#""mt":"success","msg":"deployed"}"#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn message(&self, level: Level, msg: &str) {
        self.log(level, msg, |_| {});
    }

    /// Logs at debug (see the example at [`message`](Self::message)).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// log.debug("text");
    /// log.flush(None)?;
    /// assert!(mem.lines()[0].ends_with(r#""mt":"debug","msg":"text"}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn debug(&self, msg: &str) {
        self.message(Level::Debug, msg);
    }

    /// Logs at info (see the example at [`message`](Self::message)).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// log.info("text");
    /// log.flush(None)?;
    /// assert!(mem.lines()[0].ends_with(r#""mt":"info","msg":"text"}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self, msg: &str) {
        self.message(Level::Info, msg);
    }

    /// Logs at warning (see the example at [`message`](Self::message)).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// log.warning("text");
    /// log.flush(None)?;
    /// assert!(mem.lines()[0].ends_with(r#""mt":"warning","msg":"text"}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn warning(&self, msg: &str) {
        self.message(Level::Warning, msg);
    }

    /// Logs at error (see the example at [`message`](Self::message)).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// log.error("text");
    /// log.flush(None)?;
    /// assert!(mem.lines()[0].ends_with(r#""mt":"error","msg":"text"}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn error(&self, msg: &str) {
        self.message(Level::Error, msg);
    }

    /// Logs at info with `"📍 "` before the text.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
    /// log.checkpoint("loaded config");
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(r#""mt":"info","msg":"📍 loaded config"}"#));
    /// ```
    pub fn checkpoint(&self, msg: &str) {
        if self.enabled(Level::Info) {
            let text = format!("📍 {msg}");
            self.message(Level::Info, &text);
        }
    }

    /// Logs `msg` at error with the error's type (`exc`) and its text with its `source()`
    /// chain (`reason`).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
    /// let err = "x".parse::<u8>().unwrap_err();
    /// log.exception("bad input", &err);
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(
    ///     r#""mt":"error","msg":"bad input","exc":"core::num::error::ParseIntError","reason":"invalid digit found in string"}"#));
    /// ```
    ///
    /// A trait object (`&*e` for a `Box<dyn Error>`) does not say its type: `exc` is then
    /// the name its `Debug` output starts with — the type's name for a derived `Debug` —
    /// else `dyn core::error::Error`.
    ///
    /// ```
    /// # let mem = logxide::sink::MemorySink::new();
    /// # let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
    /// let boxed: Box<dyn std::error::Error> = "x".parse::<u8>().unwrap_err().into();
    /// log.exception("bad input", &*boxed);
    /// let text: Box<dyn std::error::Error> = "plain text".into();
    /// log.exception("bad input", &*text);
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].contains(r#""exc":"ParseIntError","reason":"invalid digit"#));
    /// assert!(mem.lines()[1].contains(r#""exc":"dyn core::error::Error","reason":"plain text""#));
    /// ```
    pub fn exception<E: std::error::Error + ?Sized>(&self, msg: &str, error: &E) {
        self.log_error(msg, error, |_| {});
    }

    /// Like [`exception`](Self::exception), with fields (after `exc` and `reason`); the
    /// [`exception!`](crate::exception) macro calls this. Inside an action the record takes
    /// the action's next position, as any record.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// let err = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer");
    /// log.log_error("query failed", &err, |f| {
    ///     f.field("table", "users");
    ///     f.field("attempt", &3);
    /// });
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(
    ///     r#""mt":"error","msg":"query failed","exc":"std::io::error::Error","reason":"no answer","table":"users","attempt":3}"#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn log_error<E: std::error::Error + ?Sized>(
        &self,
        msg: &str,
        error: &E,
        fields: impl FnOnce(&mut FieldWriter<'_, '_>),
    ) {
        if self.enabled(Level::Error) {
            let reason = action::error_chain(error);
            let exc = action::error_type(error);
            let pos = action::next_position(self.core.task_ids);
            self.emit(
                At::Pos(&pos),
                Level::Error,
                |enc| enc.message_with_head(Level::Error.message_head(), msg, false),
                |f| {
                    let enc = f.encoder();
                    enc.exception(&exc);
                    enc.reserved_field("reason", reason.as_str());
                    fields(f);
                },
            );
        }
    }

    /// A logger that adds `fields` to every record (on equal keys, the call's fields win,
    /// then scope fields, then these). A call's field that is `None` wins too: the record
    /// has no field of that key.
    ///
    /// ```
    /// use logxide::logger::Fields;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
    /// let req = log.ctx(Fields::new().with("request_id", "r-1"));
    /// req.info("hello");
    /// logxide::info!(logger: req, "untracked", request_id = None::<&str>);
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(r#""msg":"hello","request_id":"r-1"}"#));
    /// assert!(mem.lines()[1].ends_with(r#""msg":"untracked"}"#));
    /// ```
    pub fn ctx(&self, fields: Fields) -> Logger {
        Logger {
            core: Arc::clone(&self.core),
            bound: Arc::new(self.bound.merged_with(&fields)),
        }
    }

    /// The fields bound to this logger (by [`ctx`](Self::ctx), merged through nested
    /// `ctx` calls); empty for a built logger.
    ///
    /// ```
    /// use logxide::logger::Fields;
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()?;
    /// assert!(log.bound_fields().is_empty());
    /// let api = log.ctx(Fields::new().with("svc", "api")).ctx(Fields::new().with("v", 2));
    /// assert_eq!(api.bound_fields().get_json("svc"), Some(r#""api""#));
    /// assert_eq!(api.bound_fields().len(), 2);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn bound_fields(&self) -> &Fields {
        &self.bound
    }

    /// Starts an action (a child of the action entered on this thread, if any) and enters
    /// it; see [`Action`]. Action records have no level, as in Eliot: they are written
    /// whatever the logger's threshold (the records logged inside are filtered as usual).
    /// The [`start_action!`](crate::start_action) macro calls this on the global logger.
    ///
    /// ```
    /// use logxide::Level;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .level(Level::Error)
    ///     .sink(mem.clone())
    ///     .build()?;
    /// {
    ///     let _job = log.start_action("job", |f| f.field("id", &7));
    ///     let _step = log.start_action("job:step", |_| {}); // a child of `job`
    ///     log.info("below the threshold: not written");
    /// } // `_step` ends, then `_job`
    /// log.flush(None).unwrap();
    /// let lines = mem.lines();
    /// assert_eq!(lines.len(), 4);
    /// assert!(lines[0].contains(r#""lvl":[1],"at":"job","st":"started","id":7}"#));
    /// assert!(lines[1].contains(r#""lvl":[2,1],"at":"job:step","st":"started"}"#));
    /// assert!(lines[2].contains(r#""lvl":[2,2],"at":"job:step","st":"succeeded""#));
    /// assert!(lines[3].contains(r#""lvl":[3],"at":"job","st":"succeeded""#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn start_action(
        &self,
        action_type: impl Into<Cow<'static, str>>,
        fields: impl FnOnce(&mut FieldWriter<'_, '_>),
    ) -> Action {
        action::start(self, action_type.into(), None, fields)
    }

    /// Continues a task elsewhere: starts an action at the position `context` reserved
    /// (see [`Action::context`]). A context reserves one position: continue each one once
    /// (two continuations of one context would share their positions); take one context per
    /// piece of remote work.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
    /// let parent = log.start_action("rpc:call", |_| {});
    /// let ctx = parent.context().to_string(); // sent to the server
    /// let remote = log.continue_action(&ctx.parse().unwrap(), "rpc:serve", |_| {});
    /// drop(remote);
    /// drop(parent);
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[1].contains(r#""lvl":[2,1],"at":"rpc:serve","st":"started""#));
    /// ```
    pub fn continue_action(
        &self,
        context: &ActionContext,
        action_type: impl Into<Cow<'static, str>>,
        fields: impl FnOnce(&mut FieldWriter<'_, '_>),
    ) -> Action {
        action::start(self, action_type.into(), Some(context), fields)
    }

    /// Logs `msg` at `level` at the position `parent` gives to `viewer` (the `tracing`
    /// layer).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn log_in(
        &self,
        parent: action::Parent<'_>,
        viewer: action::Owner,
        level: Level,
        msg: &str,
        fields: impl FnOnce(&mut FieldWriter<'_, '_>),
    ) {
        if self.enabled(level) {
            let head = |enc: &mut RecordEncoder<'_>| {
                enc.message_with_head(level.message_head(), msg, false)
            };
            match action::slot(parent, viewer) {
                Some(pos) => self.emit(At::Pos(&pos), level, head, fields),
                None => self.emit(At::NewTask, level, head, fields),
            }
        }
    }

    /// Encodes one record at `at` and hands it to the writer; `level` is the record's
    /// severity for the sinks' level filters (it does not appear in the record).
    pub(crate) fn emit(
        &self,
        at: At<'_>,
        level: Level,
        head: impl FnOnce(&mut RecordEncoder<'_>),
        fields: impl FnOnce(&mut FieldWriter<'_, '_>),
    ) {
        // No scope fields once the thread's scopes are destroyed (a record logged by another
        // thread-local's `Drop`).
        let scope = SCOPES
            .try_with(|s| {
                s.try_borrow()
                    .ok()
                    .and_then(|s| s.last().map(|e| Arc::clone(&e.merged)))
            })
            .ok()
            .flatten();
        let empty = Fields::new();
        let scope = scope.as_deref().unwrap_or(&empty);
        // Records are captured: the writer formats their costly values — the writer thread
        // for queued records, the caller under the writer's lock for synchronous ones, with
        // the same clock, so that a thread's times never go back across the two (see "Time"
        // in `encode::capture`). The clock reading also orders queued records across threads
        // (see the writer's `queue` module).
        let ticks = capture::clock().raw();
        let time = Time::Ticks(ticks);
        // Until the record is handed over, a panic of the caller's code (a value's `Display`,
        // `Debug` or `Serialize`) counts it as dropped on its way out; the buffer is emptied
        // by the next record. (Free when nothing panics: it is forgotten.)
        let unfinished = Unfinished(Some(self));
        with_buffer(|buf| {
            let format = self.core.format;
            let mut enc = match at {
                At::Pos(pos) => RecordEncoder::begin_plain_id(
                    buf,
                    format,
                    time,
                    pos.task_id.as_str(),
                    &pos.level,
                ),
                At::NewTask => RecordEncoder::begin_new_task(buf, format, time, |out| {
                    task::write_new_task_id(out, self.core.task_ids)
                }),
            };
            head(&mut enc);
            let mut writer = FieldWriter::new(&mut enc, &self.core.mask, scope, &self.bound);
            fields(&mut writer);
            writer.finish_context();
            enc.finish();
            self.core.submit(buf, level, ticks);
        });
        std::mem::forget(unfinished);
    }

    /// Waits until every record logged before has reached the sinks (see
    /// [`WriterHandle::flush`]): a barrier for the records of every thread logged before the
    /// call. `None` waits as long as it takes. A sink that failed them does not make it fail:
    /// [`flush_checked`](Self::flush_checked) does. Pitfall: called from a sink or the `warn`
    /// hook (the writer's own thread), it returns an error at once ([`FlushTimeout::on_writer_thread`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::writer::Mode;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .writer_mode(Mode::Manual) // nothing is written on its own
    ///     .sink(mem.clone())
    ///     .build()?;
    /// log.info("queued");
    /// assert!(mem.lines().is_empty());
    /// log.flush(Some(Duration::from_secs(5))).unwrap();
    /// assert_eq!(mem.lines().len(), 1);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    ///
    /// # Errors
    /// [`FlushTimeout`] when `timeout` expires first.
    pub fn flush(&self, timeout: Option<Duration>) -> Result<(), FlushTimeout> {
        self.core.handle.flush(timeout)
    }

    /// [`flush`](Self::flush), then a check that every record it covered was written: a
    /// sink that failed records (a full disk, a panic) or a flush (an `fsync`) since the
    /// last check makes it an error, which says which sink, how many records and why (see
    /// [`WriterHandle::flush_checked`]; each failure is reported once). `flush` reports
    /// only that the records reached the sinks; their failures are otherwise only in
    /// [`metrics`](Self::metrics).
    ///
    /// ```
    /// use std::io;
    /// use logxide::sink::{Batch, FnSink, SinkError};
    /// use logxide::writer::FlushError;
    /// let full = FnSink::new("disk", |_: &Batch<'_>| -> Result<(), SinkError> {
    ///     Err(io::Error::other("no space left on device").into())
    /// });
    /// let log = logxide::Logger::builder().use_env(false).sink(full).build()?;
    /// log.info("lost");
    /// assert!(log.flush(None).is_ok()); // it reached the sink...
    /// let Err(FlushError::Failed { failed, sinks }) = log.flush_checked(None) else {
    ///     panic!("the failure is reported")
    /// };
    /// assert_eq!((failed, sinks[0].failed), (1, 1)); // ...which failed it
    /// assert!(log.flush_checked(None).is_ok()); // reported once
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when `timeout` expires first; [`FlushError::Failed`] when a
    /// sink failed since the last check.
    pub fn flush_checked(&self, timeout: Option<Duration>) -> Result<(), FlushError> {
        self.core.handle.flush_checked(timeout)
    }

    /// Asks the writer to write what is queued now (manual mode), without waiting for the
    /// write ([`flush`](Self::flush) waits).
    ///
    /// ```
    /// use logxide::writer::Mode;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .writer_mode(Mode::Manual)
    ///     .sink(mem.clone())
    ///     .build()?;
    /// log.info("queued");
    /// log.trigger();
    /// // In manual mode only the trigger writes it (a minute is only a bound, not expected).
    /// let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    /// while log.metrics().written == 0 && std::time::Instant::now() < until {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(mem.lines().len(), 1);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn trigger(&self) {
        self.core.handle.trigger();
    }

    /// The writer's counters, shared by every clone: `enqueued = written + dropped + failed +
    /// pending` holds in every snapshot; `dropped_by` gives the reasons.
    ///
    /// ```
    /// use logxide::writer::{Mode, Policy};
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .queue(1)
    ///     .policy(Policy::DropNewest)
    ///     .writer_mode(Mode::Manual)
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()?;
    /// log.info("kept");
    /// log.info("refused: the queue holds one");
    /// let m = log.metrics();
    /// assert_eq!((m.enqueued, m.pending, m.dropped_by.queue_full), (2, 1, 1));
    /// log.flush(None).unwrap();
    /// let m = log.metrics();
    /// assert_eq!((m.written, m.dropped, m.failed, m.pending), (1, 1, 0, 0));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn metrics(&self) -> MetricsSnapshot {
        self.core.handle.metrics()
    }

    /// True if records logged now go through the background thread: false with `async` off
    /// or `LOGXIDE_SYNC=1`, and once the writer no longer runs (shut down, fallen back to
    /// synchronous writes, or inherited through `fork()`). (Inside [`sync_mode`] records are
    /// written synchronously whatever this says.)
    ///
    /// ```
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// assert!(log.is_async());
    /// log.shutdown(None);
    /// assert!(!log.is_async());
    /// ```
    pub fn is_async(&self) -> bool {
        !self.core.force_sync && self.core.handle.state() == crate::writer::WriterState::Running
    }

    /// The writer's validated settings: queue capacity, batch size, flush interval, policy,
    /// mode… as in effect, after the environment's overrides (`LOGXIDE_WRITER_MODE`: see
    /// [`LoggerBuilder::use_env`](super::LoggerBuilder::use_env)).
    ///
    /// ```
    /// use logxide::writer::{Mode, Policy};
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .set("writer_mode", "manual")?
    ///     .set("policy", "skip")?
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()?;
    /// assert_eq!(log.writer_settings().mode(), Mode::Manual);
    /// assert_eq!(log.writer_settings().policy(), Policy::DropNewest);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn writer_settings(&self) -> &crate::writer::Settings {
        self.core.handle.settings()
    }

    /// The log file, if the logger writes one: the target as given (not made absolute), or
    /// the default `<program>.log`; `None` with only sinks.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// let file = logxide::Logger::builder().use_env(false).target(&path).build()?;
    /// assert_eq!(file.path(), Some(path.as_path()));
    /// let memory = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()?;
    /// assert_eq!(memory.path(), None);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.core.path.as_deref()
    }

    /// Drains and stops the writer (for every clone); later records are counted as dropped
    /// (reason `shutdown`). Returns `None` if it was already shut down — once that shutdown's
    /// drain is over, when another thread's is still under way (or once `timeout` expired).
    /// Called from the writer thread (the `warn` hook), it does not wait for that thread: see
    /// [`Writer::shutdown`](crate::writer::Writer::shutdown).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// log.info("before");
    /// let report = log.shutdown(None).unwrap();
    /// assert_eq!((report.metrics.written, report.metrics.pending), (1, 0));
    /// assert!(log.shutdown(None).is_none()); // already shut down
    /// log.info("after: counted, not written");
    /// assert_eq!(log.metrics().dropped_by.shutdown, 1);
    /// assert_eq!(mem.lines().len(), 1);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn shutdown(&self, timeout: Option<Duration>) -> Option<ShutdownReport> {
        // (`None` too for a timeout past the clock's range: it never expires.)
        let deadline = crate::writer::deadline_after(timeout);
        let writer = self
            .core
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match writer {
            Some(w) => Some(w.shutdown(timeout)),
            None => {
                // Shut down by another call, perhaps still draining on another thread.
                self.core.handle.wait_shut_down(deadline);
                None
            }
        }
    }
}

/// A record not yet handed to the writer: dropped while unwinding a panic (its `Display`,
/// `Debug` or `Serialize` code panicked), it counts the record as enqueued and dropped,
/// reason [`DropReason::Panicked`](crate::writer::DropReason::Panicked), so that no record
/// goes uncounted — by its logger, or by the global logger (`None`; discarded if there is
/// none, as the record would have been). [`Logger::emit`] holds one while it encodes; a
/// bridge (`log`, `tracing`) that formats the message before calling the logger holds one
/// while it formats, and forgets it before the logger's own takes over (a record is counted
/// once). A finished record forgets it.
pub(crate) struct Unfinished<'a>(pub(crate) Option<&'a Logger>);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        match self.0 {
            Some(logger) => logger.core.handle.count_panicked(),
            None => {
                if with_global(|logger| logger.core.handle.count_panicked()).is_none() {
                    discarded(1);
                }
            }
        }
    }
}

impl Core {
    /// Whether a record logged now on this thread is queued (else written synchronously:
    /// `async` off, `LOGXIDE_SYNC`, or inside [`sync_mode`]).
    #[inline]
    fn queues(&self) -> bool {
        !self.force_sync && sync_depth() == 0
    }

    /// Hands a finished record, captured at `ticks`, to the writer: queued (see
    /// [`Core::queues`]), else written now.
    #[inline]
    fn submit(&self, line: &[u8], level: Level, ticks: u64) {
        // A refused record is counted (with its reason) in the writer's metrics.
        let level = level.value();
        let _ = if self.queues() {
            self.handle.enqueue_encoded(line, level, true, ticks)
        } else {
            self.handle.write_sync_encoded(line, level, ticks)
        };
    }
}

/// Adds `fields` to every record logged on this thread until the guard drops; nested scopes
/// merge, the inner one winning on equal keys. A record's call-site fields win over them
/// (a `None` one too: the record then has no field of that key), and they over the fields
/// bound with [`Logger::ctx`].
///
/// ```
/// use logxide::logger::{scope, Fields};
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// {
///     let _outer = scope(Fields::new().with("tenant", "a").with("zone", "eu"));
///     let _inner = scope(Fields::new().with("zone", "us"));
///     log.info("inside");
/// }
/// log.info("outside");
/// log.flush(None).unwrap();
/// assert!(mem.lines()[0].ends_with(r#""msg":"inside","tenant":"a","zone":"us"}"#));
/// assert!(mem.lines()[1].ends_with(r#""msg":"outside"}"#));
/// ```
///
/// Guards may be dropped in any order: each ends its own scope, and the records logged
/// afterwards carry the fields of the scopes still entered, merged in the order they were
/// entered.
///
/// ```
/// use logxide::logger::{scope, Fields};
/// # let mem = logxide::sink::MemorySink::new();
/// # let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// let outer = scope(Fields::new().with("tenant", "a").with("zone", "eu"));
/// let inner = scope(Fields::new().with("zone", "us"));
/// drop(outer);
/// log.info("inner only");
/// drop(inner);
/// log.flush(None).unwrap();
/// assert!(mem.lines()[0].ends_with(r#""msg":"inner only","zone":"us"}"#));
/// ```
///
/// Entered while the thread's locals are destroyed (by another thread-local's `Drop`), after
/// its scopes were, a scope adds nothing: the thread has no scopes any more.
pub fn scope(fields: Fields) -> ScopeGuard {
    // `try_with`: a panic inside a thread-local's destructor aborts the process.
    let id = NEXT_SCOPE
        .try_with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        })
        .unwrap_or(u64::MAX);
    let _ = SCOPES.try_with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return;
        };
        let own = Arc::new(fields);
        let merged = merge_scope(s.last(), &own);
        s.push(ScopeEntry { id, own, merged });
    });
    ScopeGuard {
        id,
        _not_send: std::marker::PhantomData,
    }
}

/// One scope entered on a thread.
struct ScopeEntry {
    /// Which guard ends it.
    id: u64,
    /// The scope's own fields.
    own: Arc<Fields>,
    /// Its fields merged into those of the scopes entered before it (what records carry).
    merged: Arc<Fields>,
}

/// The fields of a scope entered inside `outer` (if any) with `own` fields.
fn merge_scope(outer: Option<&ScopeEntry>, own: &Arc<Fields>) -> Arc<Fields> {
    match outer {
        Some(outer) => Arc::new(outer.merged.merged_with(own)),
        None => Arc::clone(own),
    }
}

/// Ends a [`scope`] when dropped (guards may be dropped in any order: see [`scope`]).
/// Scopes are per thread, so the guard is not `Send`: records of other threads — also of
/// a future moved to another thread — do not carry the scope's fields.
///
/// ```
/// use logxide::logger::{scope, Fields};
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
/// let guard = scope(Fields::new().with("request", 42));
/// log.info("in");
/// drop(guard);
/// log.info("out");
/// log.flush(None).unwrap();
/// assert!(mem.lines()[0].ends_with(r#""msg":"in","request":42}"#));
/// assert!(mem.lines()[1].ends_with(r#""msg":"out"}"#));
/// ```
///
/// Moving a guard to another thread (to end the scope there) does not compile:
///
/// ```compile_fail,E0277
/// let guard = logxide::logger::scope(logxide::logger::Fields::new().with("request", 42));
/// std::thread::spawn(move || drop(guard));
/// ```
#[must_use = "the scope ends when this guard is dropped"]
pub struct ScopeGuard {
    id: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl fmt::Debug for ScopeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScopeGuard")
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        // `try_with`: this guard may be dropped while the thread's locals are destroyed.
        let _ = SCOPES.try_with(|s| {
            let Ok(mut s) = s.try_borrow_mut() else {
                return;
            };
            let Some(i) = s.iter().rposition(|e| e.id == self.id) else {
                return;
            };
            s.remove(i);
            // The scopes entered after this one merged its fields: merge theirs again.
            for j in i..s.len() {
                let merged = merge_scope(j.checked_sub(1).map(|k| &s[k]), &s[j].own);
                s[j].merged = merged;
            }
        });
    }
}
