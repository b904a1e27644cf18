//! The `log` facade: records of every crate that logs through `log` land in logxide's file,
//! as messages with their target, module, file and line as fields (`target`, `module`,
//! `file`, `line`), and `log`'s key-values as fields of their own after them. A key-value
//! named like one of those four wins: the bridge leaves its own field of that name out (the
//! more specific source wins, as a call-site field over a scope's), so no line has a key
//! twice. Key-values that are numbers (floats, and integers of any width: `u128` and `i128`
//! too, as the `tracing` layer writes them) or booleans are written as JSON numbers and
//! booleans, strings as strings, errors (`Value::from_dyn_error`) as their text with their
//! `source()` chain (as the `tracing` layer writes them), anything else as its `Display`
//! text. A key-value that is `None` (an `Option`, or `Value::null()`) is left out, as a
//! logxide `Option` field that is `None` is — and, as that one, it hides the logger's and
//! the scope's field of its key from the record (key-values override them, as call-site
//! fields do). Metadata a record lacks (no module path, file or line) is not written and
//! hides nothing.
//!
//! Levels map as: trace and debug → debug, info → info, warn → warning, error → error.
//! Installed with [`install`], the bridge keeps `log`'s maximum level at the global
//! logger's threshold, so that `log` skips a call below it without calling the bridge.
//!
//! ```
//! let mem = logxide::sink::MemorySink::new();
//! let logger = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
//! let bridge = logxide::integrations::log::LogBridge::new(logger.clone());
//! // In an application: `logxide::integrations::log::install()?` once, after `init`.
//! use log::Log;
//! bridge.log(
//!     &log::Record::builder()
//!         .args(format_args!("connected to {}", "db1"))
//!         .level(log::Level::Warn)
//!         .target("pool")
//!         .build(),
//! );
//! logger.flush(None).unwrap();
//! assert!(mem.lines()[0].contains(r#""mt":"warning","msg":"connected to db1","target":"pool""#));
//! ```

use std::cell::RefCell;
use std::fmt::Write as _;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use log::kv::{Error as KvError, Key, Value, VisitSource, VisitValue};

use crate::encode::key::interned;
use crate::encode::{display, Key as FieldKey, StaticKey};
use crate::logger::{error_chain, with_reused, FieldWriter, Level, Logger, Unfinished};

/// A `log::Log` that writes into a [`Logger`], or into the global logger. [`install`]
/// sets up the usual case (the global logger); see the module docs for the records it
/// writes.
///
/// ```
/// use log::Log;
/// let mem = logxide::sink::MemorySink::new();
/// let logger = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
/// let bridge = logxide::integrations::log::LogBridge::new(logger.clone());
/// let record = log::Record::builder().args(format_args!("hi")).level(log::Level::Trace).build();
/// assert!(bridge.enabled(record.metadata()));
/// bridge.log(&record);
/// logger.flush(None).unwrap();
/// assert!(mem.lines()[0].contains(r#""mt":"debug","msg":"hi""#)); // trace → debug
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogBridge {
    logger: Option<Logger>,
}

impl LogBridge {
    /// A bridge into `logger`, for a `log` logger of your own making. Pitfall: unlike
    /// [`install`], `log::set_boxed_logger` with it leaves `log`'s maximum level to you
    /// (`log`'s default, `Off`, drops every call before the bridge sees it).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let logger = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
    /// let bridge = logxide::integrations::log::LogBridge::new(logger.clone());
    /// log::set_boxed_logger(Box::new(bridge)).unwrap();
    /// log::set_max_level(log::LevelFilter::Info);
    /// log::info!(target: "db", rows = 3; "query done");
    /// log::debug!("skipped by log itself");
    /// logger.flush(None).unwrap();
    /// assert_eq!(mem.lines().len(), 1);
    /// assert!(mem.lines()[0].contains(r#""msg":"query done","target":"db""#));
    /// assert!(mem.lines()[0].ends_with(r#""rows":3}"#));
    /// ```
    pub fn new(logger: Logger) -> Self {
        LogBridge {
            logger: Some(logger),
        }
    }

    /// A bridge into the global logger (whatever [`init`](crate::init) installed, also after
    /// a re-init). Before [`init`](crate::init), its records are discarded and counted by
    /// [`metrics`](crate::logger::metrics), as the macros' are.
    ///
    /// ```
    /// use log::Log;
    /// let bridge = logxide::integrations::log::LogBridge::global();
    /// let record = log::Record::builder().args(format_args!("hi")).level(log::Level::Info).build();
    /// bridge.log(&record); // no global logger yet: discarded, counted
    /// assert_eq!(logxide::logger::metrics().dropped_by.shutdown, 1);
    /// let mem = logxide::sink::MemorySink::new();
    /// let _guard = logxide::LoggerBuilder::new().use_env(false).sink(mem.clone()).init().unwrap();
    /// bridge.log(&record);
    /// bridge.flush(); // log::Log::flush: the global logger's flush
    /// assert_eq!(mem.lines().len(), 1);
    /// ```
    pub fn global() -> Self {
        LogBridge { logger: None }
    }
}

/// Set once [`install`] made the bridge `log`'s logger: the global logger's threshold is then
/// mirrored in `log`'s maximum level.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs [`LogBridge::global`] as `log`'s logger. `log`'s maximum level follows the
/// global logger's threshold from then on (its `init`s, [`Logger::set_level`],
/// `LOGXIDE_LEVEL`), so that a `log` call below it is skipped by `log` itself, before any
/// call into logxide.
///
/// ```
/// # let guard = logxide::LoggerBuilder::new().use_env(false)
/// #     .sink(logxide::sink::MemorySink::new()).init().unwrap();
/// logxide::integrations::log::install().unwrap();
/// guard.logger().set_level(logxide::Level::Warning);
/// assert_eq!(log::max_level(), log::LevelFilter::Warn);
/// guard.logger().set_level(logxide::Level::Debug);
/// assert_eq!(log::max_level(), log::LevelFilter::Trace);
/// ```
///
/// # Errors
/// `log::SetLoggerError` if a `log` logger was installed already.
pub fn install() -> Result<(), log::SetLoggerError> {
    log::set_boxed_logger(Box::new(LogBridge::global()))?;
    INSTALLED.store(true, SeqCst);
    crate::logger::republish_threshold();
    Ok(())
}

/// The global logger's threshold changed (the caller holds the lock that orders such
/// changes): `log`'s maximum level follows it if the bridge is installed.
pub(crate) fn threshold_changed(threshold: u8) {
    if INSTALLED.load(SeqCst) {
        log::set_max_level(max_level(threshold));
    }
}

/// The most verbose `log` level whose logxide [`level`] is at or above `threshold` (a
/// threshold of 0 — no global logger — passes everything on, to be counted as discarded).
fn max_level(threshold: u8) -> log::LevelFilter {
    [
        log::LevelFilter::Trace,
        log::LevelFilter::Info,
        log::LevelFilter::Warn,
        log::LevelFilter::Error,
    ]
    .into_iter()
    .find(|f| f.to_level().is_some_and(|l| level(l).value() >= threshold))
    .unwrap_or(log::LevelFilter::Off)
}

/// The logxide level of a `log` level: trace and debug → debug, info → info, warn →
/// warning, error → error (`log` has no success, note or critical).
///
/// ```
/// use logxide::{integrations::log::level, Level};
/// assert_eq!(level(log::Level::Trace), Level::Debug);
/// assert_eq!(level(log::Level::Debug), Level::Debug);
/// assert_eq!(level(log::Level::Info), Level::Info);
/// assert_eq!(level(log::Level::Warn), Level::Warning);
/// assert_eq!(level(log::Level::Error), Level::Error);
/// ```
pub fn level(level: log::Level) -> Level {
    match level {
        log::Level::Error => Level::Error,
        log::Level::Warn => Level::Warning,
        log::Level::Info => Level::Info,
        log::Level::Debug | log::Level::Trace => Level::Debug,
    }
}

/// The bridge's own keys, spelled once at compile time (as the macros' keys are).
const TARGET: StaticKey = StaticKey::new("target", ",\"target\":");
const MODULE: StaticKey = StaticKey::new("module", ",\"module\":");
const FILE: StaticKey = StaticKey::new("file", ",\"file\":");
const LINE: StaticKey = StaticKey::new("line", ",\"line\":");

thread_local! {
    /// Formatted messages (those that are not a plain string) are written here.
    static MESSAGE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let level = level(metadata.level());
        match &self.logger {
            Some(l) => l.enabled(level),
            None => crate::logger::__enabled(level),
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = level(record.level());
        let fields = |f: &mut FieldWriter<'_, '_>| {
            let kvs = record.key_values();
            let mut own = OwnKeys::default();
            let _ = kvs.visit(&mut own);
            if !own.target {
                f.field(&TARGET, record.target());
            }
            // Metadata the record lacks is no `None` of the caller's: written only when
            // known, so that it does not hide a context field of that name.
            if let Some(module) = record.module_path().filter(|_| !own.module) {
                f.field(&MODULE, module);
            }
            if let Some(file) = record.file().filter(|_| !own.file) {
                f.field(&FILE, file);
            }
            if let Some(line) = record.line().filter(|_| !own.line) {
                f.field(&LINE, &line);
            }
            let _ = kvs.visit(&mut Fields(f));
        };
        let emit = |msg: &str| match &self.logger {
            Some(l) => l.log(level, msg, fields),
            None => crate::logger::__global_log(level, msg, fields),
        };
        match record.args().as_str() {
            Some(plain) => emit(plain),
            // The thread's reused buffer, or a fresh one: a `Display` that logs while its own
            // message is formatted, or a record logged while the thread's locals are destroyed.
            // With `write!`, not `to_string` (which panics when a `Display` fails on its own):
            // the text is what it wrote so far.
            None => with_reused(&MESSAGE, 0, |text| {
                // A panic of the message's `Display` loses the record: counted (reason
                // panicked), as one in a key-value's, which the logger's encoding runs.
                let unformatted = Unfinished(self.logger.as_ref());
                let _ = write!(text, "{}", record.args());
                std::mem::forget(unformatted);
                emit(text);
            }),
        }
    }

    fn flush(&self) {
        let _ = match &self.logger {
            Some(l) => l.flush(None),
            None => crate::logger::flush(None),
        };
    }
}

/// Which of the bridge's own field names the key-values use (those fields are left out).
#[derive(Default)]
struct OwnKeys {
    target: bool,
    module: bool,
    file: bool,
    line: bool,
}

impl<'kvs> VisitSource<'kvs> for OwnKeys {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), KvError> {
        let own = match key.as_str() {
            "target" => &mut self.target,
            "module" => &mut self.module,
            "file" => &mut self.file,
            "line" => &mut self.line,
            _ => return Ok(()),
        };
        // A null key-value is left out: the bridge's own field stays.
        if !is_null(&value) {
            *own = true;
        }
        Ok(())
    }
}

/// Whether `value` is `log`'s null (an `Option` that is `None`, or `Value::null()`).
fn is_null(value: &Value<'_>) -> bool {
    struct Null(bool);
    impl<'v> VisitValue<'v> for Null {
        fn visit_any(&mut self, _: Value<'_>) -> Result<(), KvError> {
            Ok(())
        }
        fn visit_null(&mut self) -> Result<(), KvError> {
            self.0 = true;
            Ok(())
        }
    }
    let mut null = Null(false);
    let _ = value.visit(&mut null);
    null.0
}

/// Writes `log`'s key-values as fields, keeping numbers and booleans as JSON numbers and
/// booleans (128-bit integers too: every integer is a JSON integer, whatever its size).
struct Fields<'a, 'e, 'b>(&'a mut FieldWriter<'e, 'b>);

impl<'kvs> VisitSource<'kvs> for Fields<'_, '_, '_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), KvError> {
        // One visit of the value, which says what it holds (a string, a number, `None`...),
        // rather than a cast attempt per kind.
        // The call site's key, spelled once for the program (a literal, in `log`'s macros).
        let name = key.as_str();
        let key: FieldKey<'_> = match interned(name) {
            Some(k) => k.into(),
            None => name.into(),
        };
        value.visit(OneField {
            f: &mut *self.0,
            key,
        })
    }
}

/// Writes one key-value as the field `key`.
struct OneField<'a, 'e, 'b, 'k> {
    f: &'a mut FieldWriter<'e, 'b>,
    key: FieldKey<'k>,
}

impl<'v> VisitValue<'v> for OneField<'_, '_, '_, '_> {
    fn visit_any(&mut self, value: Value<'_>) -> Result<(), KvError> {
        self.f.field(self.key, &display(&value));
        Ok(())
    }

    fn visit_null(&mut self) -> Result<(), KvError> {
        // `None` (or `Value::null()`): left out, as a logxide `Option` field that is `None`
        // is (its `Display` would be the text "None"), hiding the context field of its key
        // as that does.
        self.f.absent(self.key);
        Ok(())
    }

    fn visit_u64(&mut self, value: u64) -> Result<(), KvError> {
        self.f.field(self.key, &value);
        Ok(())
    }

    fn visit_i64(&mut self, value: i64) -> Result<(), KvError> {
        self.f.field(self.key, &value);
        Ok(())
    }

    fn visit_u128(&mut self, value: u128) -> Result<(), KvError> {
        // Beyond 64 bits: still a JSON integer (as the tracing layer writes it).
        self.f.field(self.key, &value);
        Ok(())
    }

    fn visit_i128(&mut self, value: i128) -> Result<(), KvError> {
        self.f.field(self.key, &value);
        Ok(())
    }

    fn visit_f64(&mut self, value: f64) -> Result<(), KvError> {
        self.f.field(self.key, &value);
        Ok(())
    }

    fn visit_bool(&mut self, value: bool) -> Result<(), KvError> {
        self.f.field(self.key, &value);
        Ok(())
    }

    fn visit_str(&mut self, value: &str) -> Result<(), KvError> {
        self.f.field(self.key, value);
        Ok(())
    }

    fn visit_error(&mut self, err: &(dyn std::error::Error + 'static)) -> Result<(), KvError> {
        // An error (`log::kv::Value::from_dyn_error`): with its `source()` chain, as the
        // tracing layer writes one.
        self.f.field(self.key, error_chain(err).as_str());
        Ok(())
    }

    fn visit_borrowed_error(
        &mut self,
        err: &'v (dyn std::error::Error + 'static),
    ) -> Result<(), KvError> {
        self.visit_error(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_maximum_level_is_the_most_verbose_one_the_threshold_passes() {
        let cases = [
            (0, log::LevelFilter::Trace),
            (Level::Debug.value(), log::LevelFilter::Trace),
            (Level::Info.value(), log::LevelFilter::Info),
            (Level::Success.value(), log::LevelFilter::Warn),
            (Level::Note.value(), log::LevelFilter::Warn),
            (Level::Warning.value(), log::LevelFilter::Warn),
            (Level::Error.value(), log::LevelFilter::Error),
            (Level::Critical.value(), log::LevelFilter::Off),
        ];
        for (threshold, filter) in cases {
            assert_eq!(max_level(threshold), filter, "{threshold}");
        }
    }
}
