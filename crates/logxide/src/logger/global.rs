//! The global logger behind the macros, its guard, and the process-wide hooks.
//!
//! # At process end
//!
//! - The [`LoggerGuard`] returned by [`init`] drains the writer when dropped (keep it in
//!   `main`). Records logged after that are counted as dropped (reason `shutdown`).
//! - A panic: the hook installed by `init` (unless turned off) logs the panic at critical and
//!   flushes, then runs the previous hook. Actions being unwound write their `failed` records
//!   as their guards drop; the guard in `main` drains them.
//! - The panic hook is installed once per process (by the first `init` with it on, outside
//!   a panic), chaining to the hook found then, and never taken back: no later `init`,
//!   guard drop or [`shutdown`] calls `take_hook` or `set_hook`, so a hook the application
//!   sets after `init` stays the process's hook. One that chains to the hook it replaces
//!   (`take_hook`, then calls it) keeps panics logged, once; one that does not replaces
//!   logxide's for good (`set_hook` drops it), and no later `init` installs it again (that
//!   would log twice under a hook that chains).
//! - `std::process::exit` runs no destructors: call [`shutdown`] (or drop the guard) first,
//!   or records still queued are lost with the process.
//! - Signals: SIGTERM and SIGINT kill the process without running destructors unless
//!   [`LoggerBuilder::flush_on_signals`](super::LoggerBuilder::flush_on_signals) is on; then a
//!   thread catches them, drains the global logger, and performs the default action (a
//!   signal the application handles is flushed for and left to its handler; an ignored one
//!   stays ignored). In a
//!   process forked after that (which has the handlers but not the thread) they take their
//!   default action at once. Off in a later `init`, the handlers stay but drain nothing: the
//!   signals take the disposition they had before logxide handled them.
//! - SIGKILL, a power cut, or `abort`: queued records are lost; written ones are whole lines.
//! - `fork()`: the child's copy of the global logger stands down (see "Fork" in the
//!   [writer's docs](crate::writer)): its records are counted as dropped (`forked`); `flush`,
//!   [`shutdown`] and the guard return at once; the parent's queued records are written once,
//!   by the parent. Call [`init`] in the child (with its own file) to log there: it installs a
//!   new writer without draining the inherited one.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::atomic::{
    AtomicBool, AtomicU64, AtomicU8, Ordering::Acquire, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use super::config::{InitError, LoggerBuilder};
use super::fields::FieldWriter;
use super::level::Level;
use super::{__Message, add_sync_depth, Logger};
use crate::writer::{FlushError, FlushTimeout, MetricsSnapshot, ShutdownReport};

static GLOBAL: ArcSwapOption<Logger> = ArcSwapOption::const_empty();
/// Bumped after every change of `GLOBAL`: threads keep their own copy of the pointer (see
/// [`with_current`]) and take it again when this moved.
static GENERATION: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's copy of `GLOBAL` and the generation it was taken at.
    static CURRENT: RefCell<(u64, Option<Arc<Logger>>)> = const { RefCell::new((0, None)) };
}

/// Replaces the global logger, returning the previous one.
fn set_global(logger: Option<Arc<Logger>>) -> Option<Arc<Logger>> {
    let _publishing = THRESHOLD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let previous = GLOBAL.swap(logger);
    GENERATION.fetch_add(1, SeqCst);
    publish_threshold();
    previous
}

/// Copies the global logger's threshold (0 without one) into `THRESHOLD`, which the macros
/// check; the caller holds `THRESHOLD_LOCK`.
fn publish_threshold() {
    let threshold = GLOBAL
        .load()
        .as_ref()
        .map_or(0, |l| l.core.threshold.load(Relaxed));
    THRESHOLD.store(threshold, Relaxed);
    #[cfg(feature = "log")]
    crate::integrations::log::threshold_changed(threshold);
}

/// Publishes the global logger's threshold again (to a `log` bridge just installed).
#[cfg(feature = "log")]
pub(crate) fn republish_threshold() {
    let _publishing = THRESHOLD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    publish_threshold();
}

/// After [`Logger::set_level`]: if `logger` is (a clone of) the global logger, the macros
/// see its new threshold.
pub(crate) fn level_changed(logger: &Logger) {
    let _publishing = THRESHOLD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if GLOBAL
        .load()
        .as_ref()
        .is_some_and(|g| Arc::ptr_eq(&g.core, &logger.core))
    {
        publish_threshold();
    }
}

/// Runs `f` with the global logger (`None` if there is none), read from this thread's copy
/// of it: one thread-local access and one load of a counter nobody writes in the common case,
/// instead of `arc-swap`'s protocol on every call (about 100 instructions). A call that
/// races with `init` may use the logger being replaced, as it could with `GLOBAL` itself.
/// A record logged while this thread's copy is in use and out of date (from a `Display`
/// inside a log call, right after a re-init) reads `GLOBAL` directly.
#[inline]
fn with_current<R>(f: impl FnOnce(Option<&Logger>) -> R) -> R {
    let generation = GENERATION.load(Acquire);
    let mut f = Some(f);
    let cached = CURRENT.try_with(|cell| {
        if let Ok(current) = cell.try_borrow() {
            if current.0 == generation {
                return Some((f.take().expect("called once"))(current.1.as_deref()));
            }
        }
        refresh(cell, generation, &mut f)
    });
    match cached {
        Ok(Some(r)) => r,
        _ => (f.take().expect("called once"))(GLOBAL.load().as_deref()),
    }
}

#[cold]
fn refresh<R, F: FnOnce(Option<&Logger>) -> R>(
    cell: &RefCell<(u64, Option<Arc<Logger>>)>,
    generation: u64,
    f: &mut Option<F>,
) -> Option<R> {
    let mut current = cell.try_borrow_mut().ok()?;
    *current = (generation, GLOBAL.load_full());
    drop(current);
    let current = cell.try_borrow().ok()?;
    Some((f.take().expect("called once"))(current.1.as_deref()))
}
/// The global logger's threshold, for the macros' first check (0: no logger, so that the
/// call reaches the slow path that reports it).
static THRESHOLD: AtomicU8 = AtomicU8::new(0);
/// Held while `GLOBAL` changes or `THRESHOLD` is written, so that `THRESHOLD` is always the
/// threshold of the logger in `GLOBAL` (a `set_level` racing with `init` cannot leave the
/// replaced logger's threshold there).
static THRESHOLD_LOCK: Mutex<()> = Mutex::new(());
static UNCONFIGURED: AtomicU64 = AtomicU64::new(0);
/// The last global logger [`shutdown`] or a re-init onto its file uninstalled (its counters
/// stay readable, while it drains and after), with `UNCONFIGURED` at that moment (or when
/// what it carried began, see `CARRIED`): what [`metrics`] reports while no logger is
/// installed.
static RETIRED: Mutex<Option<(Arc<Logger>, u64)>> = Mutex::new(None);
/// The global logger a re-init onto the same file installed, with `UNCONFIGURED` when that
/// re-init uninstalled the logger it replaced: records logged while that one drained found
/// no logger and were discarded, and [`metrics`] counts them with the new logger's. An
/// `init` with no logger installed (the first, or one after [`shutdown`]) carries the same
/// way the discarded records [`metrics`] reported until then (those since the process began,
/// or those the stopped logger carried and the ones discarded since its shutdown).
static CARRIED: Mutex<Option<(Arc<Logger>, u64)>> = Mutex::new(None);
/// The global logger the `init` under way replaces, from before it is uninstalled until it
/// is drained (its guard's drop waits for that drain).
static REPLACED: Mutex<Option<Arc<Logger>>> = Mutex::new(None);
static WARNED_UNCONFIGURED: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();
/// Whether the installed panic hook logs: the `panic_hook` option of the last successful
/// `init` (the hook itself, once installed, stays for the life of the process).
static PANIC_HOOK_ON: AtomicBool = AtomicBool::new(false);
static SIGNALS: Once = Once::new();
/// Set while the SIGTERM/SIGINT handlers are installed but `flush_on_signals` is off (the
/// last successful `init` turned it off): the handlers then drain nothing and chain to the
/// signals' original disposition. Shared with the handlers' conditional default action.
static SIGNALS_OFF: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Held by [`install`] from its checks to the new logger in place: concurrent `init`s take
/// turns, or one could open the file another is still draining the previous logger into
/// (it sees no global logger meanwhile). See [`install_turn`].
static INSTALL_LOCK: Mutex<()> = Mutex::new(());
/// The fork generation of the process whose thread took `INSTALL_LOCK` last.
static INSTALL_HOLDER: AtomicU64 = AtomicU64::new(0);

/// Waits for `INSTALL_LOCK`; `None` (no turn taken, as before there was one) in an `init`
/// on a writer's thread — inside a sink call or the `warn` hook: that writer may be the one
/// the holder of the turn waits to drain — and in a forked child whose copy of the lock is
/// held by a thread of the parent (never released there).
fn install_turn() -> Option<std::sync::MutexGuard<'static, ()>> {
    if crate::writer::in_sink_call() || crate::writer::on_a_writer_thread() {
        return None;
    }
    let generation = super::fork::generation();
    loop {
        match INSTALL_LOCK.try_lock() {
            Ok(turn) => {
                INSTALL_HOLDER.store(generation, SeqCst);
                return Some(turn);
            }
            Err(std::sync::TryLockError::Poisoned(turn)) => {
                INSTALL_HOLDER.store(generation, SeqCst);
                return Some(turn.into_inner());
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                if INSTALL_HOLDER.load(SeqCst) < generation {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Installs the global logger built from `builder`; see [`LoggerBuilder::init`].
pub(crate) fn install(builder: LoggerBuilder) -> Result<LoggerGuard, InitError> {
    let _turn = install_turn();
    let hook = builder.panic_hook;
    let signals = builder.flush_on_signals;
    builder.check()?;
    // Re-init onto the file the current logger writes: drain and close it first, or opening
    // the file again (truncating, or mapping it) would overwrite records still on their way.
    let same_file = GLOBAL.load().as_ref().is_some_and(|current| {
        match (current.path(), builder.resolved_target()) {
            (Some(a), Some(b)) => same_path(a, &b),
            _ => false,
        }
    });
    let mut discarded_since = None;
    if same_file {
        builder.check_reopen()?;
        let previous = {
            // While it drains, `metrics` reports it (and the records discarded meanwhile), as
            // it reports a logger `shutdown` drains: not the one `shutdown` stopped before.
            let mut retired = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
            let now = UNCONFIGURED.load(SeqCst);
            discarded_since = Some(now);
            being_replaced(GLOBAL.load_full());
            let previous = set_global(None);
            if let Some(previous) = &previous {
                let since = carried_since(previous).unwrap_or(now);
                *retired = Some((Arc::clone(previous), since));
            }
            previous
        };
        if let Some(previous) = previous {
            // (If another thread's shutdown — its guard dropped — took the writer first, this
            // waits for that drain.)
            previous.shutdown(None);
        }
        being_replaced(None);
    } else if GLOBAL.load().is_none() {
        // Records discarded for lack of a logger before this one (since the last one
        // `shutdown` stopped, which reported them until now, or since the process began).
        let retired = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
        discarded_since = Some(retired.as_ref().map_or(0, |(_, since)| *since));
        // A `shutdown` whose timeout expired left that logger draining: onto its file, wait
        // for it, or opening the file again (truncating, appending, or mapping it) would put
        // the new records before its last ones, or under them.
        let draining = retired.as_ref().map(|(logger, _)| Arc::clone(logger));
        drop(retired);
        if let Some(retired) =
            draining.filter(
                |retired| match (retired.path(), builder.resolved_target()) {
                    (Some(a), Some(b)) => same_path(a, &b),
                    _ => false,
                },
            )
        {
            // Its writer is taken: this waits for that drain (or shuts it down, if the
            // `shutdown` that retired it has not taken the writer yet).
            retired.shutdown(None);
        }
    }
    let logger = Arc::new(builder.build()?);
    let previous = {
        // Under `RETIRED`, which `shutdown` holds as it uninstalls: one on another thread
        // since the look at the global logger above (while the logger was built) left none
        // installed, and this logger goes in over none — carrying, as such an `init` does,
        // the records `metrics` reported as discarded until now (else they would vanish from
        // its counts).
        let retired = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
        if discarded_since.is_none() && GLOBAL.load().is_none() {
            discarded_since = Some(retired.as_ref().map_or(0, |(_, since)| *since));
        }
        // Before the logger is visible, so that `metrics` never misses what it carries.
        *CARRIED.lock().unwrap_or_else(|e| e.into_inner()) =
            discarded_since.map(|since| (Arc::clone(&logger), since));
        if !same_file {
            being_replaced(GLOBAL.load_full());
        }
        set_global(Some(Arc::clone(&logger)))
    };
    if let Some(previous) = previous {
        previous.shutdown(None);
    }
    being_replaced(None);
    PANIC_HOOK_ON.store(hook, SeqCst);
    if hook {
        install_panic_hook();
    }
    SIGNALS_OFF.store(!signals, SeqCst);
    if signals {
        install_signal_flush();
    }
    Ok(LoggerGuard { logger })
}

/// Notes `logger` as the global logger the `init` under way replaces and drains (`None`
/// once it is done): its guard, dropped meanwhile, waits for that drain.
fn being_replaced(logger: Option<Arc<Logger>>) {
    *REPLACED.lock().unwrap_or_else(|e| e.into_inner()) = logger;
}

/// Whether `logger` is the one the `init` under way replaces (see [`being_replaced`]).
fn is_being_replaced(logger: &Arc<Logger>) -> bool {
    let replaced = REPLACED.lock().unwrap_or_else(|e| e.into_inner());
    replaced.as_ref().is_some_and(|r| Arc::ptr_eq(r, logger))
}

/// True if `a` and `b` name the same file, however spelled: by device and inode when both
/// exist (`..`, symbolic and hard links included), else by their paths with the directory
/// resolved.
fn same_path(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return (ma.dev(), ma.ino()) == (mb.dev(), mb.ino());
    }
    // A file that does not exist (yet): its directory, resolved, and its name.
    let resolved = |p: &std::path::Path| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        match (std::fs::canonicalize(dir), p.file_name()) {
            (Ok(dir), Some(name)) => dir.join(name),
            _ => std::path::absolute(p).unwrap_or_else(|_| p.to_owned()),
        }
    };
    resolved(a) == resolved(b)
}

/// Installs the global logger with the default options (file `<program>.log`).
///
/// ```no_run
/// let _guard = logxide::init()?;
/// logxide::info!("service started", port = 8080);
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
///
/// # Errors
/// See [`LoggerBuilder::init`].
pub fn init() -> Result<LoggerGuard, InitError> {
    LoggerBuilder::new().init()
}

/// Drains the global logger when dropped (if it is still the global one). Keep it in
/// `main` for the life of the program.
///
/// Pitfalls: `let _ = logxide::init()?;` drops the guard at once — bind it to a name
/// (`let _guard = ...`). After the guard drops, the drained logger stays installed, stopped:
/// records logged then are counted as dropped (reason `shutdown`), not written. A guard
/// whose logger a later `init` replaced does nothing when dropped (that `init` drains it;
/// the drop waits for that drain to end, when another thread's `init` is still at it).
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// let guard = logxide::LoggerBuilder::new().use_env(false).sink(mem.clone()).init()?;
/// logxide::info!("before");
/// drop(guard); // drains: no flush needed
/// assert_eq!(mem.lines().len(), 1);
/// logxide::info!("after: counted, not written");
/// let m = logxide::logger::metrics();
/// assert_eq!((m.enqueued, m.written, m.dropped_by.shutdown), (2, 1, 1));
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
///
/// ```
/// # use logxide::{sink::MemorySink, LoggerBuilder};
/// let (a, b) = (MemorySink::new(), MemorySink::new());
/// let first = LoggerBuilder::new().use_env(false).sink(a.clone()).init()?;
/// let second = LoggerBuilder::new().use_env(false).sink(b.clone()).init()?; // drains `first`'s
/// drop(first); // no longer the global logger's guard: does nothing
/// logxide::info!("goes to the second");
/// drop(second);
/// assert_eq!((a.lines().len(), b.lines().len()), (0, 1));
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
#[must_use = "the logger is drained and stopped when this guard is dropped: keep it in main"]
#[derive(Debug)]
pub struct LoggerGuard {
    logger: Arc<Logger>,
}

impl LoggerGuard {
    /// The logger this guard installed (still the global one unless a later `init`
    /// replaced it).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("app.log");
    /// let guard = logxide::LoggerBuilder::new().use_env(false).target(&path).init()?;
    /// assert_eq!(guard.logger().path(), Some(path.as_path()));
    /// guard.logger().set_level(logxide::Level::Error); // the macros follow it
    /// assert!(!logxide::logger::global().unwrap().enabled(logxide::Level::Warning));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn logger(&self) -> &Logger {
        &self.logger
    }
}

impl Drop for LoggerGuard {
    fn drop(&mut self) {
        let current = GLOBAL.load();
        if current
            .as_ref()
            .is_some_and(|g| Arc::ptr_eq(g, &self.logger))
            // Or an `init` on another thread replaced it and drains it: returning before that
            // drain ends could let the process end with its records on their way (`shutdown`
            // waits for a drain another call began).
            || is_being_replaced(&self.logger)
        {
            self.logger.shutdown(None);
        }
    }
}

/// The global logger, if one is installed: a clone (cheap, sharing its writer), for code
/// that takes a [`Logger`] or calls its methods. It stays installed (stopped) after its
/// guard drops; [`shutdown`] uninstalls it.
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// assert!(logxide::logger::global().is_none());
/// let _guard = logxide::LoggerBuilder::new().use_env(false).sink(mem.clone()).init()?;
/// let log = logxide::logger::global().unwrap();
/// log.info("through a clone");
/// logxide::info!("through the macros");
/// logxide::logger::flush(None).unwrap();
/// assert_eq!(mem.lines().len(), 2);
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
pub fn global() -> Option<Logger> {
    GLOBAL.load_full().map(|l| (*l).clone())
}

/// Runs `f` with the global logger, if one is installed (without cloning it).
#[cfg(feature = "tracing")]
pub(crate) fn with_global<R>(f: impl FnOnce(&Logger) -> R) -> Option<R> {
    GLOBAL.load().as_deref().map(f)
}

#[doc(hidden)]
#[inline]
pub fn __enabled(level: Level) -> bool {
    level.value() >= THRESHOLD.load(Relaxed)
}

#[doc(hidden)]
pub fn __global_log(level: Level, msg: &str, fields: impl FnOnce(&mut FieldWriter<'_, '_>)) {
    __global_log_message(level, &__Message::text(msg), fields);
}

#[doc(hidden)]
pub fn __global_log_message(
    level: Level,
    msg: &__Message<'_>,
    fields: impl FnOnce(&mut FieldWriter<'_, '_>),
) {
    with_current(|logger| match logger {
        Some(logger) => logger.__log(level, msg, fields),
        None => discarded(1),
    })
}

/// Counts `n` records discarded for lack of a global logger (reported by [`metrics`]) and
/// says so on stderr, once per process. A caller that found no global logger counts its
/// record here directly (the `tracing` layer's events, as [`__global_action`] its records):
/// going on through the macros' path would look for the logger again, and hand one an
/// `init` installed meanwhile a stand-in record instead of the caller's.
pub(crate) fn discarded(n: u64) {
    UNCONFIGURED.fetch_add(n, Relaxed);
    if !WARNED_UNCONFIGURED.swap(true, Relaxed) {
        // Best effort: `eprintln!` would panic the caller with stderr closed.
        let _ = writeln!(
            std::io::stderr(),
            "logxide: a record was logged before `logxide::init()` (or after the global logger was shut down, or while a re-init onto its file drained it) and was discarded; records discarded so far are counted by `logxide::logger::metrics()`"
        );
    }
}

#[doc(hidden)]
pub fn __global_error<E: std::error::Error + ?Sized>(
    msg: &str,
    error: &E,
    fields: impl FnOnce(&mut FieldWriter<'_, '_>),
) {
    match GLOBAL.load().as_ref() {
        Some(logger) => logger.log_error(msg, error, fields),
        None => discarded(1),
    }
}

#[doc(hidden)]
pub fn __global_action(
    action_type: impl Into<std::borrow::Cow<'static, str>>,
    fields: impl FnOnce(&mut FieldWriter<'_, '_>),
) -> super::Action {
    match GLOBAL.load_full() {
        Some(logger) => logger.start_action(action_type, fields),
        None => {
            // Its two records, the start and the end (which a guard always writes), are
            // counted now: the discarding logger it ends in counts nothing. (Counted
            // directly: a logger installed meanwhile must not receive a stand-in record.)
            discarded(2);
            // An action needs a logger to end in; a discarding one keeps the code path alive.
            // It is no parent: a logger installed while it runs must not get records inside
            // a task whose start went nowhere.
            super::action::start_discarded(&disabled_logger(), action_type.into(), fields)
        }
    }
}

/// A logger that discards everything (no sink reached), for actions started before init.
fn disabled_logger() -> Logger {
    static DISABLED: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();
    DISABLED
        .get_or_init(|| {
            let logger = LoggerBuilder::new()
                .use_env(false)
                .sink(crate::sink::FnSink::new(
                    "discard",
                    |_: &crate::sink::Batch<'_>| Ok(()),
                ))
                .build()
                .expect("a discarding logger always builds");
            logger.set_level(Level::Critical);
            logger.core.threshold.store(u8::MAX, Relaxed);
            logger
        })
        .clone()
}

/// Waits until every record logged before has reached the sinks of the global logger
/// (written by the sinks, not necessarily synced to disk), and for the drain of the logger
/// an [`init`] under way on another thread replaces (a re-init onto its file uninstalls it
/// first); `Ok` at once without either. (Not for a logger a [`shutdown`] whose timeout
/// expired left draining: that timeout bounds it.) A sink that failed the records does not
/// make it fail: [`flush_checked`] does.
/// Pitfall: called from a sink or the `warn` hook (the writer's own thread), it cannot wait
/// for itself and returns an error at once.
///
/// ```
/// use logxide::writer::Mode;
/// let mem = logxide::sink::MemorySink::new();
/// assert!(logxide::logger::flush(None).is_ok()); // no logger: nothing to wait for
/// let _guard = logxide::LoggerBuilder::new()
///     .use_env(false)
///     .writer_mode(Mode::Manual) // nothing is written on its own
///     .sink(mem.clone())
///     .init()?;
/// logxide::info!("queued");
/// assert_eq!(mem.lines().len(), 0);
/// logxide::logger::flush(Some(std::time::Duration::from_secs(5))).unwrap();
/// assert_eq!(mem.lines().len(), 1);
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
///
/// # Errors
/// [`FlushTimeout`] when `timeout` expires first.
pub fn flush(timeout: Option<Duration>) -> Result<(), FlushTimeout> {
    // (`None` too for a timeout past the clock's range: it never expires.)
    let deadline = crate::writer::deadline_after(timeout);
    let left = || deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
    // The records logged before may be in the logger an `init` under way replaces, still
    // draining (with no global logger meanwhile, for a re-init onto its file).
    let replaced = REPLACED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(replaced) = replaced {
        replaced.flush(left())?;
    }
    match GLOBAL.load_full() {
        Some(l) => l.flush(left()),
        None => Ok(()),
    }
}

/// [`flush`], then a check that every record it covered was written (see
/// [`Logger::flush_checked`]): an error names each sink that failed records or a flush (an
/// `fsync`) since the last check, in the global logger and in a logger an [`init`] under way
/// replaces. Each failure is reported once.
///
/// ```
/// use logxide::sink::{Batch, FnSink, SinkError};
/// use logxide::writer::FlushError;
/// let full = FnSink::new("disk", |_: &Batch<'_>| -> Result<(), SinkError> {
///     Err(std::io::Error::other("no space left on device").into())
/// });
/// let _guard = logxide::LoggerBuilder::new().use_env(false).sink(full).init()?;
/// logxide::info!("lost");
/// let err = logxide::logger::flush_checked(None).unwrap_err();
/// assert!(matches!(err, FlushError::Failed { failed: 1, .. }), "{err}");
/// assert!(logxide::logger::flush_checked(None).is_ok()); // reported once
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
///
/// # Errors
/// [`FlushError::Timeout`] when `timeout` expires first; [`FlushError::Failed`] with the
/// failures of both loggers when a sink failed since the last check.
pub fn flush_checked(timeout: Option<Duration>) -> Result<(), FlushError> {
    // (`None` too for a timeout past the clock's range: it never expires.)
    let deadline = crate::writer::deadline_after(timeout);
    let left = || deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
    let replaced = REPLACED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let earlier = match replaced {
        Some(replaced) => replaced.flush_checked(left()),
        None => Ok(()),
    };
    if let Err(FlushError::Timeout(t)) = earlier {
        return Err(FlushError::Timeout(t));
    }
    let now = match GLOBAL.load_full() {
        Some(l) => l.flush_checked(left()),
        None => Ok(()),
    };
    match (earlier, now) {
        (Ok(()), now) => now,
        (Err(FlushError::Failed { failed, mut sinks }), now) => {
            // A timeout of the current logger leaves its failures for the next check; the
            // replaced logger's were taken by this one and are reported now.
            if let Err(FlushError::Failed {
                failed: more,
                sinks: others,
            }) = now
            {
                sinks.extend(others);
                return Err(FlushError::Failed {
                    failed: failed + more,
                    sinks,
                });
            }
            Err(FlushError::Failed { failed, sinks })
        }
        (Err(timeout), _) => Err(timeout),
    }
}

/// Asks the global writer to write what is queued now (manual mode), without waiting for
/// it ([`flush`] waits). Nothing happens without a global logger.
///
/// ```
/// use logxide::writer::Mode;
/// let mem = logxide::sink::MemorySink::new();
/// let _guard = logxide::LoggerBuilder::new()
///     .use_env(false)
///     .writer_mode(Mode::Manual)
///     .sink(mem.clone())
///     .init()?;
/// logxide::info!("queued");
/// logxide::logger::trigger();
/// // In manual mode only the trigger writes it; it returned before the write (a minute is
/// // only a bound, not expected).
/// let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
/// while mem.lines().is_empty() && std::time::Instant::now() < until {
///     std::thread::sleep(std::time::Duration::from_millis(1));
/// }
/// assert_eq!(logxide::logger::metrics().written, 1);
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
pub fn trigger() {
    if let Some(l) = GLOBAL.load_full() {
        l.trigger();
    }
}

/// The global writer's counters. With no global logger: those of the last one
/// [`shutdown`] stopped (its final counts; as they go while it still drains after a
/// timeout) or a re-init onto its file uninstalled (as they go while that `init` drains it),
/// if any, with the records discarded since for lack of a logger added as
/// `enqueued` and `dropped_by.shutdown`; before any logger, just those. The next logger
/// installed takes them over: it is reported with the records discarded before it (before
/// the first `init`, or since the last shutdown; for a re-init onto the file of the logger it
/// replaces, while that one drained) added the same way, also once [`shutdown`] stopped it.
/// So a record discarded for lack of a logger stays in the counts `metrics` reports, until a
/// logger is installed over a running one (the replaced one keeps its counts, readable
/// through its guard's [`LoggerGuard::logger`]). An action started with no global logger
/// is counted as its two records (its start and its end) when it starts.
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// let guard = logxide::LoggerBuilder::new().use_env(false).sink(mem).init().unwrap();
/// logxide::info!("one");
/// logxide::logger::shutdown(None).unwrap();
/// logxide::info!("after shutdown: discarded, and counted");
/// let m = logxide::logger::metrics();
/// assert_eq!((m.enqueued, m.written, m.dropped_by.shutdown), (2, 1, 1));
/// # drop(guard);
/// ```
pub fn metrics() -> MetricsSnapshot {
    if let Some(l) = GLOBAL.load_full() {
        let mut snapshot = l.metrics();
        let n = carried_since(&l).map_or(0, |since| UNCONFIGURED.load(SeqCst) - since);
        snapshot.enqueued += n;
        snapshot.dropped += n;
        snapshot.dropped_by.shutdown += n;
        return snapshot;
    }
    let retired = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
    let (mut snapshot, since) = match &*retired {
        Some((logger, since)) => (logger.metrics(), *since),
        None => (never_installed(), 0),
    };
    let n = UNCONFIGURED.load(Relaxed) - since;
    snapshot.enqueued += n;
    snapshot.dropped += n;
    snapshot.dropped_by.shutdown += n;
    snapshot
}

/// When `logger` was installed by a re-init onto the same file: `UNCONFIGURED` as that
/// re-init uninstalled the previous logger (see `CARRIED`).
fn carried_since(logger: &Arc<Logger>) -> Option<u64> {
    let carried = CARRIED.lock().unwrap_or_else(|e| e.into_inner());
    match &*carried {
        Some((l, since)) if Arc::ptr_eq(l, logger) => Some(*since),
        _ => None,
    }
}

/// The counts of a writer that never took a record.
fn never_installed() -> MetricsSnapshot {
    MetricsSnapshot {
        enqueued: 0,
        written: 0,
        dropped: 0,
        dropped_by: crate::writer::DroppedBy::default(),
        failed: 0,
        pending: 0,
        errors: 0,
        restarts: 0,
        batches: 0,
        bytes: 0,
        high_water: 0,
        warnings: 0,
        wakeups: 0,
        state: crate::writer::WriterState::Stopped,
        sinks: Vec::new(),
    }
}

/// True if the global logger writes through its background thread: false without one, with
/// `async` off or `LOGXIDE_SYNC=1`, and once its writer no longer runs (drained by the
/// guard, fallen back to synchronous writes, or inherited through `fork()`).
///
/// ```
/// assert!(!logxide::logger::is_async()); // no global logger yet
/// let guard = logxide::LoggerBuilder::new()
///     .use_env(false)
///     .sink(logxide::sink::MemorySink::new())
///     .init()?;
/// assert!(logxide::logger::is_async());
/// drop(guard);
/// assert!(!logxide::logger::is_async()); // drained and stopped
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
pub fn is_async() -> bool {
    GLOBAL.load().as_ref().is_some_and(|l| l.is_async())
}

/// Drains and stops the global logger and uninstalls it; returns its final report, or
/// `None` without a global logger (also the second time) — once the drain of the logger
/// uninstalled last is over, if it still drains (a re-init onto its file, or a shutdown whose
/// timeout expired), or at `timeout`. Call it before
/// `std::process::exit`, which runs no destructors (the guard would not drain). With a
/// `timeout` that expires, the report has `timed_out` set and counts the records still
/// pending; the writer goes on draining in the background (an [`init`] onto its file waits
/// for that drain to end before it opens the file). Records logged afterwards find
/// no logger: they are discarded and counted by [`metrics`].
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// let _guard = logxide::LoggerBuilder::new().use_env(false).sink(mem.clone()).init()?;
/// logxide::info!("last words");
/// let report = logxide::logger::shutdown(None).unwrap();
/// assert_eq!((report.metrics.written, report.metrics.pending), (1, 0));
/// assert_eq!(mem.lines().len(), 1);
/// assert!(logxide::logger::global().is_none());
/// assert!(logxide::logger::shutdown(None).is_none());
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
pub fn shutdown(timeout: Option<Duration>) -> Option<ShutdownReport> {
    let logger = {
        // Its counts stay readable through `metrics` while it drains, and after.
        let mut retired = RETIRED.lock().unwrap_or_else(|e| e.into_inner());
        let Some(logger) = set_global(None) else {
            // The logger uninstalled last may still drain (a re-init onto its file, or a
            // shutdown whose timeout expired): return once it is done, or at `timeout`.
            let draining = retired.as_ref().map(|(logger, _)| Arc::clone(logger));
            drop(retired);
            // (Its report is the re-init's or that shutdown's, not this call's.)
            if let Some(logger) = draining {
                logger.shutdown(timeout);
            }
            return None;
        };
        // What it was counted with (see `CARRIED`) stays counted.
        let since = carried_since(&logger).unwrap_or_else(|| UNCONFIGURED.load(SeqCst));
        *retired = Some((Arc::clone(&logger), since));
        logger
    };
    logger.shutdown(timeout)
}

/// Records logged on this thread while the guard lives are written synchronously — handed
/// to every sink, and flushed by it, before the log call returns, after everything logged
/// before. A file then holds the record (a `block` file's buffer is written out too), in the
/// OS's page cache: it is synced to disk only with the file's
/// [`Durability`](crate::sink::Durability), as for queued records.
///
/// Its `ts` comes from the same clock as the thread's queued records' (the tick counter,
/// converted by the writer's expander, under the writer's lock the write takes anyway), and
/// never goes back from theirs: one thread's records, queued and synchronous in any mix,
/// never get times that go back by less than 1 ms (a bigger step back is the OS clock set
/// back, and followed). See "Time" in the `encode::capture` module docs
/// (`src/encode/capture.rs`).
///
/// ```
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// let _sync = logxide::logger::sync_mode();
/// log.error("fatal: out of disk");
/// assert_eq!(mem.lines().len(), 1); // no flush needed
/// ```
///
/// In a file with the default `block` strategy, with a writer that writes nothing on its own:
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("app.log");
/// let log = logxide::Logger::builder()
///     .use_env(false)
///     .target(&path)
///     .writer_mode(logxide::writer::Mode::Manual)
///     .build()?;
/// log.info("queued");
/// {
///     let _sync = logxide::logger::sync_mode();
///     log.error("fatal: out of disk");
///     let text = std::fs::read_to_string(&path)?;
///     assert_eq!(text.lines().count(), 2); // the queued record first, then this one
///     assert!(text.lines().nth(1).unwrap().ends_with(r#""msg":"fatal: out of disk"}"#));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sync_mode() -> SyncMode {
    add_sync_depth(1);
    SyncMode {
        _not_send: std::marker::PhantomData,
    }
}

/// Ends a [`sync_mode`] when dropped. Guards nest (synchronous until the last one drops);
/// they are per thread (not `Send`): other threads' records stay queued.
///
/// ```
/// use logxide::writer::Mode;
/// let mem = logxide::sink::MemorySink::new();
/// let log = logxide::Logger::builder()
///     .use_env(false)
///     .writer_mode(Mode::Manual) // queued records wait for a flush
///     .sink(mem.clone())
///     .build()?;
/// {
///     let _sync = logxide::logger::sync_mode();
///     log.info("written at once");
///     assert_eq!(mem.lines().len(), 1);
/// }
/// log.info("queued again");
/// assert_eq!(mem.lines().len(), 1);
/// log.flush(None).unwrap();
/// assert_eq!(mem.lines().len(), 2);
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
#[must_use = "synchronous mode ends when this guard is dropped"]
#[derive(Debug)]
pub struct SyncMode {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for SyncMode {
    fn drop(&mut self) {
        add_sync_depth(-1);
    }
}

/// Installs the panic hook, once — but not from a thread unwinding a panic (an `init` in a
/// `Drop`), where `take_hook` and `set_hook` panic, which aborts the process: the next
/// `init` outside a panic installs it. Never again after that, and never uninstalled: the
/// hook in place may be the application's, set after `init` (see the module docs).
fn install_panic_hook() {
    if std::thread::panicking() {
        return;
    }
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(logger) = GLOBAL.load_full().filter(|_| PANIC_HOOK_ON.load(SeqCst)) {
                let message = crate::writer::panic_message(info.payload());
                let location = info.location().map(|l| l.to_string());
                logger.log(Level::Critical, "panic", |f| {
                    let enc = f.encoder();
                    enc.exception("panic");
                    enc.reserved_field("reason", message.as_str());
                    f.field("location", &location);
                    f.field(
                        "thread",
                        std::thread::current().name().unwrap_or("<unnamed>"),
                    );
                });
                // Inside a sink the writer is this thread: flushing would wait for itself.
                if !crate::writer::in_sink_call() {
                    let _ = logger.flush(Some(Duration::from_secs(1)));
                }
            }
            previous(info);
        }));
    });
}

/// Installs the SIGTERM/SIGINT handlers, once, according to what each signal did before
/// (see [`Disposition`](super::fork::Disposition)):
///
/// - a signal with its default action: a thread drains the global logger, then takes the
///   default action — while `SIGNALS_OFF` is clear;
/// - a signal the application handles: signal-hook chains to its handler, and the thread
///   flushes the global logger (a barrier: the application decides whether and how the
///   process ends, and may go on logging);
/// - an ignored signal: left ignored (it ends nothing, so there is nothing to drain for).
///
/// A signal handler cannot be uninstalled soundly (signal-hook keeps its handler for the
/// other registrations, and a signal whose last action is removed is ignored, not
/// defaulted), so a later `init` with `flush_on_signals(false)` sets `SIGNALS_OFF` instead:
/// the thread skips the signal, and for a signal whose disposition was the default, an action
/// in the handler itself performs it (`register_conditional_default`: async-signal-safe, no
/// thread needed). A handler installed before runs as signal-hook chains to it.
fn install_signal_flush() {
    SIGNALS.call_once(|| {
        use super::fork::{disposition, Disposition};
        use signal_hook::consts::{SIGINT, SIGTERM};
        // Asked before signal-hook's handler replaces the disposition.
        let handled: Vec<(i32, Disposition)> = [SIGTERM, SIGINT]
            .into_iter()
            .map(|signal| (signal, disposition(signal)))
            .filter(|&(_, d)| d != Disposition::Ignored)
            .collect();
        if handled.is_empty() {
            return;
        }
        let Ok(mut signals) = signal_hook::iterator::Signals::new(handled.iter().map(|h| h.0))
        else {
            let _ = writeln!(std::io::stderr(), "logxide: cannot install the SIGTERM/SIGINT flush handler");
            return;
        };
        let actions = handled.clone();
        let spawned = std::thread::Builder::new()
            .name("logxide-signals".to_owned())
            .spawn(move || {
                for signal in signals.forever() {
                    // Off: the handler chained to the original disposition already.
                    if SIGNALS_OFF.load(SeqCst) {
                        continue;
                    }
                    match actions.iter().find(|h| h.0 == signal).map(|h| h.1) {
                        Some(Disposition::Default) => {
                            shutdown(Some(Duration::from_secs(10)));
                            let _ = signal_hook::low_level::emulate_default_handler(signal);
                        }
                        // The application's handler ran (chained) and decides what follows.
                        _ => {
                            let _ = flush(Some(Duration::from_secs(10)));
                        }
                    }
                }
            });
        if spawned.is_err() {
            let _ = writeln!(std::io::stderr(), "logxide: cannot start the SIGTERM/SIGINT flush thread");
        }
        // A forked child inherits the handlers but not the thread: without this, SIGTERM and
        // SIGINT would be caught there and never acted on. In a child they take their
        // default action (the child's copy of the logger has nothing of its own to drain).
        for &(signal, d) in &handled {
            if d == Disposition::Default && super::fork::default_action_in_children(signal).is_err()
            {
                let _ = writeln!(std::io::stderr(), "logxide: cannot install the SIGTERM/SIGINT handler for forked children");
            }
        }
        for &(signal, d) in &handled {
            if d == Disposition::Default
                && signal_hook::flag::register_conditional_default(
                    signal,
                    Arc::clone(&SIGNALS_OFF),
                )
                .is_err()
            {
                let _ = writeln!(std::io::stderr(), "logxide: cannot install the SIGTERM/SIGINT default action for flush_on_signals(false)");
            }
        }
    });
}
