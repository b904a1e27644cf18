//! Writer configuration: policies, modes, limits, and their validation.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::sink::Sink;

/// What an enqueue does when the queue is full.
///
/// ```
/// use logxide::writer::Policy;
/// assert_eq!("skip".parse::<Policy>().unwrap(), Policy::DropNewest);
/// assert_eq!("replace".parse::<Policy>().unwrap(), Policy::DropOldest);
/// assert!("bogus".parse::<Policy>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The caller waits for space (optionally up to a timeout). Nothing is lost.
    #[default]
    Block,
    /// The oldest queued record is evicted (and counted) to make room.
    DropOldest,
    /// The new record is refused (and counted).
    DropNewest,
    /// The new record is refused, counted, and reported at most once per second — by the
    /// writer thread, at its next pass: in [`Mode::Manual`] without a `deadline` the writer
    /// sleeps until the next trigger, flush or the shutdown, and the report waits with it
    /// (see [`on_drop_warning`](super::WriterBuilder::on_drop_warning)). The refused
    /// record's enqueue returns `Err` at once either way.
    Warn,
}

impl Policy {
    /// The canonical name (`block`, `drop_oldest`, `drop_newest`, `warn`).
    ///
    /// ```
    /// use logxide::writer::Policy;
    /// assert_eq!(Policy::DropOldest.as_str(), "drop_oldest");
    /// assert_eq!("replace".parse::<Policy>().unwrap().as_str(), "drop_oldest"); // an alias
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Block => "block",
            Policy::DropOldest => "drop_oldest",
            Policy::DropNewest => "drop_newest",
            Policy::Warn => "warn",
        }
    }
}

/// When the writer thread writes.
///
/// ```
/// use logxide::writer::Mode;
/// assert_eq!("loop".parse::<Mode>().unwrap(), Mode::Loop);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Sleep until data arrives; write when `batch_size` records are pending, the oldest has
    /// waited the flush interval, or the queue is full (by its byte bound it may be with
    /// fewer than `batch_size` records).
    #[default]
    Trigger,
    /// Wake every `tick` and write what is queued.
    Loop,
    /// Write only on `trigger()`, `flush()`, shutdown, a full queue with a blocked producer,
    /// or an expired deadline.
    Manual,
}

impl Mode {
    /// The canonical name (`trigger`, `loop`, `manual`).
    ///
    /// ```
    /// use logxide::writer::Mode;
    /// assert_eq!(Mode::Manual.as_str(), "manual");
    /// assert_eq!(Mode::default().as_str(), "trigger");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Trigger => "trigger",
            Mode::Loop => "loop",
            Mode::Manual => "manual",
        }
    }
}

/// An option value that could not be parsed.
///
/// ```
/// use logxide::writer::Policy;
/// let err = "sometimes".parse::<Policy>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid policy "sometimes": expected one of block, drop_oldest, drop_newest, warn, skip (= drop_newest), replace (= drop_oldest)"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        ParseError {
            what,
            value: value.to_owned(),
            expected,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} {:?}: expected one of {}",
            self.what, self.value, self.expected
        )
    }
}

impl std::error::Error for ParseError {}

impl crate::OptionNames for ParseError {
    fn names(&self) -> (&'static str, &'static str) {
        (self.what, self.expected)
    }
}

impl FromStr for Policy {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "block" => Ok(Policy::Block),
            "drop_oldest" | "replace" => Ok(Policy::DropOldest),
            "drop_newest" | "skip" => Ok(Policy::DropNewest),
            "warn" => Ok(Policy::Warn),
            _ => Err(ParseError::new(
                "policy",
                s,
                "block, drop_oldest, drop_newest, warn, skip (= drop_newest), replace (= drop_oldest)",
            )),
        }
    }
}

impl FromStr for Mode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trigger" => Ok(Mode::Trigger),
            "loop" => Ok(Mode::Loop),
            "manual" => Ok(Mode::Manual),
            _ => Err(ParseError::new("writer mode", s, "trigger, loop, manual")),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration the writer refuses, found before anything was started or opened.
///
/// ```
/// use logxide::writer::{BuildError, Writer};
/// use logxide::sink::MemorySink;
/// let err = Writer::builder().capacity(0).sink(MemorySink::new()).build().unwrap_err();
/// assert!(matches!(err, BuildError::Invalid { option: "capacity", .. }));
/// assert_eq!(err.to_string(), "invalid writer option `capacity` = 0: the queue must hold at least one record");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// An option has a value the writer cannot work with.
    Invalid {
        /// The option's name.
        option: &'static str,
        /// The value given, as text.
        value: String,
        /// Why it is refused and what is accepted.
        reason: &'static str,
    },
    /// No sink was given: records would have nowhere to go.
    NoSink,
    /// The writer thread could not be started.
    Spawn(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Invalid {
                option,
                value,
                reason,
            } => write!(f, "invalid writer option `{option}` = {value}: {reason}"),
            BuildError::NoSink => {
                f.write_str("the writer has no sink: add at least one with `.sink(...)`")
            }
            BuildError::Spawn(e) => write!(f, "cannot start the writer thread: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// Receives the once-per-second reports of the `warn` policy.
pub type WarnHook = Arc<dyn Fn(&DropWarning) + Send + Sync>;

/// A report of records refused under the `warn` policy since the previous report.
///
/// ```
/// use logxide::writer::DropWarning;
/// let w = DropWarning { dropped: 3, total: 10 };
/// assert_eq!(w.to_string(), "logxide: queue full, 3 records dropped since the last report (10 in total)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropWarning {
    /// Records refused since the previous report.
    pub dropped: u64,
    /// Records refused in total.
    pub total: u64,
}

impl fmt::Display for DropWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "logxide: queue full, {} records dropped since the last report ({} in total)",
            self.dropped, self.total
        )
    }
}

/// The largest queue capacity, in records (2^28; its message spells it out).
pub(crate) const MAX_CAPACITY: usize = 1 << 28;

/// The validated settings of a writer (everything but the sinks).
///
/// ```
/// use std::time::Duration;
/// use logxide::writer::{Mode, Policy, Settings};
/// let s = Settings::default(); // a writer's defaults
/// assert_eq!((s.capacity(), s.max_bytes(), s.batch_size()), (10_000, 64 << 20, 100));
/// assert_eq!((s.policy(), s.mode(), s.block_timeout(), s.deadline()), (Policy::Block, Mode::Trigger, None, None));
/// assert_eq!((s.flush_interval(), s.tick(), s.max_restarts()), (Duration::from_millis(100), Duration::from_millis(10), 10));
/// ```
#[derive(Clone)]
pub struct Settings {
    pub(crate) capacity: usize,
    pub(crate) max_bytes: usize,
    pub(crate) policy: Policy,
    pub(crate) block_timeout: Option<Duration>,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) deadline: Option<Duration>,
    pub(crate) mode: Mode,
    pub(crate) tick: Duration,
    pub(crate) max_restarts: u32,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) thread_name: String,
    pub(crate) warn_hook: Option<WarnHook>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .field("policy", &self.policy)
            .field("block_timeout", &self.block_timeout)
            .field("batch_size", &self.batch_size)
            .field("flush_interval", &self.flush_interval)
            .field("deadline", &self.deadline)
            .field("mode", &self.mode)
            .field("tick", &self.tick)
            .field("max_restarts", &self.max_restarts)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            capacity: 10_000,
            max_bytes: 64 << 20,
            policy: Policy::Block,
            block_timeout: None,
            batch_size: 100,
            flush_interval: Duration::from_millis(100),
            deadline: None,
            mode: Mode::Trigger,
            tick: Duration::from_millis(10),
            max_restarts: 10,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            thread_name: "logxide-writer".to_owned(),
            warn_hook: None,
        }
    }
}

impl Settings {
    /// Queue capacity in records.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().capacity(), 10_000);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queue bound in bytes.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().max_bytes(), 64 << 20);
    /// ```
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The full-queue policy.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().policy(), logxide::writer::Policy::Block);
    /// ```
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// How long `block` waits at most (`None`: as long as it takes).
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().block_timeout(), None);
    /// ```
    pub fn block_timeout(&self) -> Option<Duration> {
        self.block_timeout
    }

    /// Records pending that make a trigger-mode write.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().batch_size(), 100);
    /// ```
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The longest a record waits in trigger mode.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().flush_interval(), std::time::Duration::from_millis(100));
    /// ```
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }

    /// The longest a record waits in any mode, if set.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The writer thread's mode.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().mode(), logxide::writer::Mode::Trigger);
    /// ```
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The loop-mode period.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().tick(), std::time::Duration::from_millis(10));
    /// ```
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Restarts before falling back to synchronous writes.
    ///
    /// ```
    /// use logxide::writer::Settings;
    /// assert_eq!(Settings::default().max_restarts(), 10);
    /// ```
    pub fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The longest a record may wait in trigger mode before the writer writes it.
    pub(crate) fn max_wait(&self) -> Duration {
        match self.deadline {
            Some(d) => d.min(self.flush_interval),
            None => self.flush_interval,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        fn invalid(
            option: &'static str,
            value: impl fmt::Debug,
            reason: &'static str,
        ) -> BuildError {
            BuildError::Invalid {
                option,
                value: format!("{value:?}"),
                reason,
            }
        }
        if self.capacity == 0 {
            return Err(invalid(
                "capacity",
                0,
                "the queue must hold at least one record",
            ));
        }
        if self.capacity > MAX_CAPACITY {
            return Err(invalid(
                "capacity",
                self.capacity,
                "at most 268435456 records (use max_bytes to bound memory instead)",
            ));
        }
        if self.max_bytes == 0 {
            return Err(invalid(
                "max_bytes",
                0,
                "the queue must hold at least one byte",
            ));
        }
        // The byte budget counts with `i64` (credits taken and given back): a larger bound
        // would start it negative, the queue full for ever.
        if self.max_bytes > i64::MAX as usize {
            return Err(invalid(
                "max_bytes",
                self.max_bytes,
                "at most 9223372036854775807 bytes",
            ));
        }
        if self.batch_size == 0 {
            return Err(invalid(
                "batch_size",
                0,
                "a batch holds at least one record",
            ));
        }
        if self.batch_size > self.capacity {
            return Err(invalid(
                "batch_size",
                self.batch_size,
                "must not exceed the queue capacity, or a batch could never fill",
            ));
        }
        if self.flush_interval.is_zero() {
            return Err(invalid(
                "flush_interval",
                self.flush_interval,
                "must be positive (use batch_size 1 to write every record at once)",
            ));
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(invalid("deadline", Duration::ZERO, "must be positive"));
        }
        if self.mode == Mode::Loop && self.tick.is_zero() {
            return Err(invalid(
                "tick",
                self.tick,
                "loop mode needs a positive tick",
            ));
        }
        if self.block_timeout == Some(Duration::ZERO) {
            return Err(invalid(
                "block_timeout",
                Duration::ZERO,
                "must be positive (use the drop_newest policy to never wait)",
            ));
        }
        if let Some(timeout) = self.block_timeout.filter(|_| self.policy != Policy::Block) {
            return Err(invalid(
                "block_timeout",
                timeout,
                "applies only to the block policy",
            ));
        }
        // As `block_timeout`: an option the policy never uses is refused, not ignored — a
        // hook set for reports that never come says the policy is not the one intended.
        // (The policy comes from the options only, never from the environment: a logger's
        // environment cannot make a hook set in code invalid.)
        if self.warn_hook.is_some() && self.policy != Policy::Warn {
            return Err(BuildError::Invalid {
                option: "on_drop_warning",
                value: format!("a hook (with policy `{}`)", self.policy),
                reason: "applies only to the warn policy",
            });
        }
        if self.thread_name.contains('\0') {
            return Err(invalid(
                "thread_name",
                &self.thread_name,
                "a thread name cannot contain a NUL character",
            ));
        }
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return Err(invalid(
                "restart_backoff",
                (self.backoff_initial, self.backoff_max),
                "the initial backoff must be positive and not above the maximum",
            ));
        }
        Ok(())
    }
}

pub(crate) type BoxedSink = Box<dyn Sink>;

deserialize_by_from_str!(Policy, Mode);
