//! The logger's configuration: the seed system's `init` options, validated before anything
//! happens.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::fields::Mask;
use super::level::{Level, ParseLevelError};
use super::task::TaskIdMode;
use super::Logger;
use crate::encode::Format;
use crate::sink::rotate::parse_size;
use crate::sink::{
    ColorChoice, Console, FileOptions, IoStrategy, LevelFilter, OpenMode, RotateOptions, Sink,
};
use crate::writer::{BuildError, DropWarning, Mode, Policy, Writer, MAX_CAPACITY};

/// The `warn` policy's report hook.
type WarnHook = Arc<dyn Fn(&DropWarning) + Send + Sync>;

/// A duration written as text: a bare number is seconds; suffixes `ns`, `us`/`µs`/`μs`
/// (microseconds, with U+00B5 MICRO SIGN or U+03BC GREEK SMALL LETTER MU, which keyboards
/// and input methods produce alike), `ms`, `s`, `m` (minutes), `h`, `d` — in lower case —,
/// with optional spaces; at most 10^12 seconds (a longer one is an error that says so). A
/// fraction of a nanosecond is rounded to the nearest one (`1.4ns` is 1 ns); a time that
/// rounds to zero but is not zero (`0.4ns`) is an error.
///
/// ```
/// use std::time::Duration;
/// use logxide::logger::parse_duration;
/// assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
/// assert_eq!(parse_duration(" 3 ms ").unwrap(), Duration::from_millis(3));
/// assert_eq!(parse_duration("1.5 h").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("2µs").unwrap(), Duration::from_micros(2)); // micro sign
/// assert_eq!(parse_duration("2μs").unwrap(), Duration::from_micros(2)); // Greek mu
/// assert_eq!(parse_duration("1.4ns").unwrap(), Duration::from_nanos(1)); // rounded
/// assert!(parse_duration("0.4ns").is_err()); // not zero, but below a nanosecond
/// assert!(parse_duration("100MS").is_err()); // units in lower case
/// assert!(parse_duration("soon").is_err());
/// assert!(parse_duration("-1s").is_err());
/// assert!(parse_duration("1000000000001").is_err()); // at most 10^12 seconds
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, ParseDurationError> {
    let err = || ParseDurationError {
        text: text.to_owned(),
        too_large: false,
        too_small: false,
    };
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return Err(err());
    }
    let value: f64 = number.parse().map_err(|_| err())?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ns" => 1e-9,
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU.
        "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(err()),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > MAX_DURATION_SECS {
        return Err(ParseDurationError {
            text: text.to_owned(),
            too_large: true,
            too_small: false,
        });
    }
    let duration = Duration::from_secs_f64(secs);
    // A time shorter than a nanosecond would be zero without a word (`0.1ns`).
    if duration.is_zero() && secs > 0.0 {
        return Err(ParseDurationError {
            text: text.to_owned(),
            too_large: false,
            too_small: true,
        });
    }
    Ok(duration)
}

/// The longest duration a time string may give: 10^12 seconds (about 31 700 years).
const MAX_DURATION_SECS: f64 = 1e12;

/// Text that is not a duration, one longer than 10^12 seconds, or one shorter than a
/// nanosecond but not zero. Its message quotes the text and says what is accepted; the
/// time options of [`LoggerBuilder::set`] (`flush`, `deadline`, `tick`, ...) give it inside
/// an [`InitError::Option`] naming the option.
///
/// ```
/// use logxide::logger::parse_duration;
/// let err = parse_duration("soon").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid duration "soon": expected a number of seconds, optionally with a unit ns, us, µs or μs (micro sign or Greek mu), ms, s, m, h or d (e.g. "100ms", "1.5 h")"#
/// );
/// assert_eq!(
///     parse_duration("0.1ns").unwrap_err().to_string(),
///     r#"invalid duration "0.1ns": too small, the shortest is 1 ns (or 0)"#
/// );
/// assert!(parse_duration("12000000 d").unwrap_err().to_string().contains("too large"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDurationError {
    text: String,
    too_large: bool,
    too_small: bool,
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.too_large {
            return write!(
                f,
                "invalid duration {:?}: too large, at most 1000000000000 seconds (about 31 700 years)",
                self.text
            );
        }
        if self.too_small {
            return write!(
                f,
                "invalid duration {:?}: too small, the shortest is 1 ns (or 0)",
                self.text
            );
        }
        write!(
            f,
            "invalid duration {:?}: expected a number of seconds, optionally with a unit ns, us, µs or μs (micro sign or Greek mu), ms, s, m, h or d (e.g. \"100ms\", \"1.5 h\")",
            self.text
        )
    }
}

impl std::error::Error for ParseDurationError {}

/// Why the logger could not be set up. Nothing was changed (no file deleted or opened, no
/// thread started, no global replaced) when this is returned for an invalid option.
///
/// Its message names the option and says what was wrong and what is accepted:
///
/// ```
/// use logxide::logger::InitError;
/// let err = logxide::Logger::builder().set("queue", "lots").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"logxide option `queue`: invalid count "lots": expected a whole number"#
/// );
/// let InitError::Option { option, message } = err else { panic!("{err}") };
/// assert_eq!((option.as_str(), message.as_str()), ("queue", r#"invalid count "lots": expected a whole number"#));
/// ```
///
/// A writer setting out of range is found at `build`, before the file is touched: here the
/// existing file keeps its contents although `clean` was asked for.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("app.log");
/// std::fs::write(&path, "old records\n").unwrap();
/// let err = logxide::Logger::builder()
///     .use_env(false)
///     .target(&path)
///     .clean(true)
///     .queue(0)
///     .build()
///     .unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "logxide option `queue`: invalid value 0: the queue must hold at least one record"
/// );
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "old records\n");
/// ```
///
/// A file that cannot be opened is [`InitError::File`], with the OS error's kind:
///
/// ```
/// use logxide::logger::InitError;
/// # let dir = tempfile::tempdir().unwrap();
/// let err = logxide::Logger::builder()
///     .use_env(false)
///     .target(dir.path().join("no/such/dir/app.log"))
///     .set("create_parents", "false")?
///     .build()
///     .unwrap_err();
/// let InitError::File { error, .. } = &err else { panic!("{err}") };
/// assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
/// assert!(err.to_string().contains("no/such/dir/app.log"));
/// # Ok::<(), InitError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// An option (or environment variable) has a value that is not accepted.
    Option {
        /// The option's name, or the environment variable.
        option: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The writer could not be built: its thread could not be started
    /// ([`BuildError::Spawn`]). (A writer setting out of range is an [`InitError::Option`]
    /// under the option's name here. A builder always has a sink — the target, the default
    /// `<program>.log`, or the `.sink(...)`s — so [`BuildError::NoSink`] does not come from
    /// it.)
    Writer(BuildError),
    /// The log file could not be prepared (removed for `clean`, or opened): a missing
    /// directory with `create_parents` off, a directory the process may not write
    /// (`EACCES`) or on a read-only file system (`EROFS`), ... The error names the path and
    /// keeps the [`io::ErrorKind`](std::io::ErrorKind) of the OS error.
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The log file is a symbolic link and the file options refuse to follow one
    /// ([`FileOptions::follow_symlinks`]`(false)`, or `set("follow_symlinks", "false")`: the
    /// file is opened with `O_NOFOLLOW`). Found before anything is changed: the link, its
    /// destination and the global logger are left as they were.
    ///
    /// ```
    /// use logxide::logger::InitError;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let real = dir.path().join("real.log");
    /// let link = dir.path().join("app.log");
    /// std::os::unix::fs::symlink(&real, &link).unwrap();
    /// let err = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .target(&link)
    ///     .set("follow_symlinks", "false")?
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(&err, InitError::Symlink { path } if *path == link));
    /// assert!(err.to_string().ends_with("point `target` at the file itself, or allow symlinks"));
    /// assert!(!real.exists()); // nothing was created through the link
    /// # Ok::<(), InitError>(())
    /// ```
    Symlink {
        /// The path that is a symbolic link.
        path: PathBuf,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Option { option, message } => {
                write!(f, "logxide option `{option}`: {message}")
            }
            InitError::Writer(e) => write!(f, "logxide writer: {e}"),
            InitError::File { path, error } => {
                // The file sink's errors already name the path.
                let text = error.to_string();
                if text.contains(&*path.to_string_lossy()) {
                    write!(f, "logxide: {text}")
                } else {
                    write!(f, "logxide log file {}: {text}", path.display())
                }
            }
            InitError::Symlink { path } => write!(
                f,
                "logxide log file {} is a symbolic link: refused, the file options do not follow symlinks (follow_symlinks = false opens the file with O_NOFOLLOW); point `target` at the file itself, or allow symlinks",
                path.display()
            ),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Writer(e) => Some(e),
            InitError::File { error, .. } => Some(error),
            InitError::Option { .. } | InitError::Symlink { .. } => None,
        }
    }
}

/// The writer settings whose text `set` keeps for the messages of [`init_names`].
const GIVEN_AS_TEXT: [&str; 9] = [
    "queue",
    "size",
    "flush",
    "deadline",
    "tick",
    "max_bytes",
    "block_timeout",
    "max_restarts",
    "thread_name",
];

/// A writer setting refused, under the name the option has here (`queue`, `size`, `flush`
/// rather than the writer's `capacity`, `batch_size`, `flush_interval`), with its value
/// quoted as `set` was given it (`given`), else as the writer shows it.
fn init_names(e: BuildError, given: &[(&'static str, String)]) -> InitError {
    match e {
        BuildError::Invalid {
            option,
            value,
            reason,
        } => {
            let option = match option {
                "capacity" => "queue",
                "batch_size" => "size",
                "flush_interval" => "flush",
                other => other,
            };
            let value = match given.iter().find(|(name, _)| *name == option) {
                Some((_, text)) => format!("{text:?}"),
                None => value,
            };
            option_error(
                option,
                format!(
                    "invalid value {value}: {}",
                    reason.replace("batch_size", "size")
                ),
            )
        }
        other => InitError::Writer(other),
    }
}

/// A count: digits (surrounding spaces aside) for a whole number up to `max` (which a
/// larger one is told: the option's own bound, which may be below the type's). A sign is
/// refused, `+` too (which `str::parse` would take), as every other number here refuses it.
fn parse_count<T>(v: &str, max: impl fmt::Display) -> Result<T, String>
where
    T: std::str::FromStr<Err = std::num::ParseIntError>,
{
    let digits = v.trim();
    if digits.starts_with('+') {
        return Err(format!("invalid count {v:?}: expected a whole number"));
    }
    digits.parse::<T>().map_err(|err| match err.kind() {
        std::num::IntErrorKind::PosOverflow => {
            format!("invalid count {v:?}: too large, at most {max}")
        }
        _ => format!("invalid count {v:?}: expected a whole number"),
    })
}

/// The environment variable `var`, `None` when unset; a value that is not UTF-8 is an
/// error, not taken for unset.
fn env_var(var: &str) -> Result<Option<String>, InitError> {
    match std::env::var(var) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(option_error(
            var,
            format!("invalid value {v:?}: not valid UTF-8"),
        )),
    }
}

/// The `mask` option: comma-separated names (empty parts ignored), or `none` (any case)
/// alone for no masking. No names at all is an error: read as a mask of no names, a blank
/// value would write every secret in clear without a word.
fn parse_mask(value: &str) -> Result<Mask, String> {
    let names: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    match names[..] {
        [] => Err(
            "no names given: expected the names to mask, comma-separated (they replace \
             the default ones), or none (any case) to mask nothing"
                .to_owned(),
        ),
        [only] if only.eq_ignore_ascii_case("none") => Ok(Mask::none()),
        _ if names.iter().any(|n| n.eq_ignore_ascii_case("none")) => Err(format!(
            "none (mask nothing) cannot be listed with names: {value:?}"
        )),
        _ => Ok(Mask::new(names)),
    }
}

fn option_error(option: &str, message: impl fmt::Display) -> InitError {
    InitError::Option {
        option: option.to_owned(),
        message: message.to_string(),
    }
}

/// Builds a [`Logger`], or installs the global one with [`init`](LoggerBuilder::init).
///
/// Every option of the seed system's `init` exists under the same name; the text forms are
/// accepted through [`set`](LoggerBuilder::set). Environment: `LOGXIDE_SYNC=1` (or
/// `LOGXPY_SYNC=1`) forces synchronous writes; `LOGXIDE_LEVEL` sets the threshold (empty or blank: the
/// configured level); `LOGXIDE_WRITER_TYPE` / `LOGXIDE_WRITER_MODE` (or `LOGXPY_WRITER_TYPE` /
/// `LOGXPY_WRITER_MODE`) override `writer_type` / `writer_mode`: see [`use_env`](Self::use_env).
///
/// ```
/// use logxide::Logger;
/// let dir = tempfile::tempdir().unwrap();
/// let log = Logger::builder()
///     .set("target", dir.path().join("app.log").to_str().unwrap())?
///     .set("level", "info")?
///     .set("flush", "50ms")?
///     .set("policy", "skip")?          // = drop_newest
///     .set("writer_type", "line")?
///     .build()?;
/// log.info("ready");
/// log.shutdown(None);
/// assert!(std::fs::read_to_string(dir.path().join("app.log")).unwrap().contains("ready"));
/// assert!(Logger::builder().set("flush", "soon").is_err());
/// # Ok::<(), logxide::logger::InitError>(())
/// ```
pub struct LoggerBuilder {
    target: Option<PathBuf>,
    level: Level,
    mode: OpenMode,
    clean: bool,
    async_: bool,
    queue: usize,
    /// `None`: the writer's default, 100 or the queue size if smaller.
    size: Option<usize>,
    flush: Duration,
    deadline: Option<Duration>,
    max_bytes: Option<usize>,
    block_timeout: Option<Duration>,
    max_restarts: Option<u32>,
    thread_name: Option<String>,
    warn_hook: Option<WarnHook>,
    policy: Policy,
    writer_type: IoStrategy,
    writer_mode: Mode,
    tick: Duration,
    task_id_mode: TaskIdMode,
    format: Format,
    mask: Mask,
    file_options: FileOptions,
    rotate: Option<RotateOptions>,
    sinks: Vec<Box<dyn Sink>>,
    file: bool,
    use_env: bool,
    /// The text `set` was given for the writer's settings (by the option's name here), for
    /// the messages of values the writer's checks refuse; a typed setter removes its entry.
    given: Vec<(&'static str, String)>,
    pub(super) flush_on_signals: bool,
    pub(super) panic_hook: bool,
}

impl fmt::Debug for LoggerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggerBuilder")
            .field("target", &self.target)
            .field("level", &self.level)
            .field("async", &self.async_)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Default for LoggerBuilder {
    fn default() -> Self {
        LoggerBuilder::new()
    }
}

impl LoggerBuilder {
    /// The seed system's defaults: level debug, mode `w`, async, queue 10 000, size 100,
    /// flush 0.1 s, policy block, writer_type block, writer_mode trigger, tick 0.01 s,
    /// task ids sqid, the compact format, the default mask, a panic hook that flushes.
    /// [`Logger::builder`] and `Default` give the same.
    ///
    /// ```
    /// use logxide::{Level, LoggerBuilder};
    /// let builder = LoggerBuilder::new().use_env(false);
    /// assert_eq!(builder.resolved_target().unwrap().extension().unwrap(), "log");
    /// let log = builder.sink(logxide::sink::MemorySink::new()).build().unwrap();
    /// assert_eq!(log.level(), Level::Debug);
    /// assert!(log.is_async());
    /// ```
    pub fn new() -> Self {
        LoggerBuilder {
            target: None,
            level: Level::Debug,
            mode: OpenMode::Truncate,
            clean: false,
            async_: true,
            queue: 10_000,
            size: None,
            flush: Duration::from_millis(100),
            deadline: None,
            max_bytes: None,
            block_timeout: None,
            max_restarts: None,
            thread_name: None,
            warn_hook: None,
            policy: Policy::Block,
            writer_type: IoStrategy::Block,
            writer_mode: Mode::Trigger,
            tick: Duration::from_millis(10),
            task_id_mode: TaskIdMode::Sqid,
            format: Format::Compact,
            mask: Mask::default(),
            file_options: FileOptions::new(),
            rotate: None,
            sinks: Vec::new(),
            file: true,
            use_env: true,
            given: Vec::new(),
            flush_on_signals: false,
            panic_hook: true,
        }
    }

    /// Sets an option from text, by the seed system's names: `target`, `level`, `mode`
    /// (`w`/`a`), `clean`, `async`, `queue`, `size`, `flush`, `deadline`, `policy`,
    /// `writer_type`, `writer_mode`, `tick`, `task_id_mode`, `format`, `mask`
    /// (comma-separated names, which replace the [default ones](Mask::DEFAULT); `none`, any
    /// case and alone, masks nothing; a value with no names, such as an empty one, is an
    /// error rather than a mask hiding nothing); for a rotating file `rotate_size` (`100MB`, `512KiB`:
    /// units B, KB, MB, GB, KiB, MiB, GiB), `rotate_every` (`minute`, `hour`, `day`), `keep`
    /// (a count, or `all`: the default), `max_age` (a time string, or `forever`: the default)
    /// and `compress` (`none`, `gzip`, `zstd`).
    /// The writer's own limits: `max_bytes` (a size: `64MiB`), `block_timeout` (a time
    /// string, or `none` (any case) or empty for none, the default), `max_restarts` (a count),
    /// `thread_name`.
    /// The log file's [`FileOptions`]: `follow_symlinks` (a boolean, default true; false
    /// refuses a symbolic link at the path: `O_NOFOLLOW`), `create_parents` (a boolean,
    /// default true; false refuses a missing directory) and `permissions` (the mode of a new
    /// file, octal: `0640`, `640` or `0o640`, at most `0777` and with the owner's write bit;
    /// default `0644`; the umask applies). These change the builder's file options: a later
    /// [`file_options`](Self::file_options) replaces them.
    /// The seed documents' other names are aliases: `async_en`, `async_enabled`,
    /// `async_max_queue`/`max_queue`, `async_batch_size`/`batch_size`,
    /// `async_flush_interval`/`flush_interval`, `async_policy`/`queue_policy`.
    ///
    /// Values are parsed as the typed setters' types parse them (names and size units in
    /// any case, surrounding spaces); a count (`queue`, `size`, `max_restarts`, `keep`) is
    /// digits, without a sign; a time string's unit is written as listed at
    /// [`parse_duration`] (lower case: `100ms`, not `100MS`).
    /// Pitfall: an option set twice takes the last value, and `set` and the typed
    /// setters change the same settings, in the order called.
    ///
    /// ```
    /// use logxide::LoggerBuilder;
    /// let builder = LoggerBuilder::new()
    ///     .set("async_max_queue", "500")?   // an alias of `queue`
    ///     .set("policy", " Drop_Oldest ")?;
    /// let err = builder.set("colour", "red").unwrap_err();
    /// assert!(err.to_string().starts_with(
    ///     "logxide option `colour`: unknown option: expected one of target, level, mode,"));
    /// let err = LoggerBuilder::new().set("async", "maybe").unwrap_err();
    /// assert_eq!(err.to_string(),
    ///     r#"logxide option `async`: invalid boolean "maybe": expected true/false, yes/no, on/off or 1/0"#);
    /// // No masking is said in so many words; an empty list is an error.
    /// let _no_mask = LoggerBuilder::new().set("mask", "none")?;
    /// assert!(LoggerBuilder::new().set("mask", "").is_err());
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    ///
    /// # Errors
    /// [`InitError::Option`] naming the option, what was wrong, and what is accepted.
    pub fn set(mut self, option: &str, value: &str) -> Result<Self, InitError> {
        let e = |m: &dyn fmt::Display| option_error(option, m);
        let bool_value = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(e(&format!(
                "invalid boolean {v:?}: expected true/false, yes/no, on/off or 1/0"
            ))),
        };
        let count =
            |v: &str, max: &dyn fmt::Display| parse_count::<usize>(v, max).map_err(|m| e(&m));
        let duration = |v: &str| parse_duration(v).map_err(|err| e(&err));
        // The seed documents' longer names, accepted as aliases.
        let option = match option {
            "async_enabled" | "async_en" => "async",
            "async_max_queue" | "max_queue" => "queue",
            "async_batch_size" | "batch_size" => "size",
            "async_flush_interval" | "flush_interval" => "flush",
            "async_policy" | "queue_policy" => "policy",
            other => other,
        };
        match option {
            "target" => {
                if value.trim().is_empty() {
                    return Err(e(&"the target path is empty"));
                }
                self.target = Some(PathBuf::from(value));
                self.file = true;
            }
            "level" => self.level = value.parse().map_err(|err| e(&err))?,
            "mode" => self.mode = value.parse().map_err(|err| e(&err))?,
            "clean" => self.clean = bool_value(value)?,
            "async" => self.async_ = bool_value(value)?,
            // The writer's bounds (checked at `build`), told to a number too large to parse.
            "queue" => self.queue = count(value, &MAX_CAPACITY)?,
            "size" => {
                let bound = format!("the queue size (at most {MAX_CAPACITY})");
                self.size = Some(count(value, &bound)?)
            }
            "flush" => self.flush = duration(value)?,
            "deadline" => {
                self.deadline = match value.trim() {
                    // `None` too: what the seed system's Python default prints as.
                    v if v.is_empty() || v.eq_ignore_ascii_case("none") => None,
                    v => Some(parse_duration(v).map_err(|err| {
                        e(&format!("{err}, or none (any case) for no deadline"))
                    })?),
                }
            }
            "max_bytes" => {
                let bytes = crate::sink::rotate::parse_size(value).map_err(|err| {
                    if err.too_large() {
                        // The writer's bound, not the size parser's (u64).
                        e(&format!(
                            "invalid size {value:?}: too large, at most {} bytes",
                            (i64::MAX as u64).min(usize::MAX as u64)
                        ))
                    } else {
                        e(&err)
                    }
                })?;
                self.max_bytes = Some(usize::try_from(bytes).map_err(|_| {
                    e(&format!(
                        "{value:?} is too large for this platform: at most {} bytes",
                        usize::MAX
                    ))
                })?);
            }
            "block_timeout" => {
                self.block_timeout = match value.trim() {
                    // The default, as the README's table gives it (and as `deadline` takes it).
                    v if v.is_empty() || v.eq_ignore_ascii_case("none") => None,
                    v => Some(parse_duration(v).map_err(|err| {
                        e(&format!("{err}, or none (any case) for no timeout"))
                    })?),
                }
            }
            "max_restarts" => {
                self.max_restarts = Some(parse_count(value, u32::MAX).map_err(|m| e(&m))?)
            }
            "thread_name" => {
                if value.trim().is_empty() {
                    return Err(e(&"the thread name is empty"));
                }
                self.thread_name = Some(value.to_owned());
            }
            "policy" => self.policy = value.parse().map_err(|err| e(&err))?,
            "writer_type" => self.writer_type = value.parse().map_err(|err| e(&err))?,
            "writer_mode" => self.writer_mode = value.parse().map_err(|err| e(&err))?,
            "tick" => self.tick = duration(value)?,
            "task_id_mode" => self.task_id_mode = value.parse().map_err(|err| e(&err))?,
            "format" => {
                self.format = value
                    .parse()
                    .map_err(|err| e(&err))?
            }
            "mask" => self.mask = parse_mask(value).map_err(|m| e(&m))?,
            "rotate_size" => {
                let bytes = parse_size(value).map_err(|err| e(&err))?;
                if bytes == 0 {
                    return Err(e(&"the rotation size must be greater than zero"));
                }
                self.rotate = Some(self.rotate.take().unwrap_or_default().max_bytes(bytes));
            }
            "rotate_every" => {
                let period = value.parse().map_err(|err| e(&err))?;
                self.rotate = Some(self.rotate.take().unwrap_or_default().every(period));
            }
            "keep" => {
                let rotate = self.rotate.take().unwrap_or_default();
                self.rotate = Some(if value.trim().eq_ignore_ascii_case("all") {
                    rotate.keep_all()
                } else {
                    rotate.keep(
                        parse_count::<usize>(value, usize::MAX)
                            .map_err(|m| e(&format!("{m}, or all (no limit)")))?,
                    )
                });
            }
            "max_age" => {
                let rotate = self.rotate.take().unwrap_or_default();
                self.rotate = Some(if value.trim().eq_ignore_ascii_case("forever") {
                    rotate.keep_forever()
                } else {
                    rotate.max_age(
                        parse_duration(value)
                            .map_err(|err| e(&format!("{err}, or forever (no limit)")))?,
                    )
                });
            }
            "compress" => {
                let c = value.parse().map_err(|err| e(&err))?;
                self.rotate = Some(self.rotate.take().unwrap_or_default().compress(c));
            }
            "follow_symlinks" => {
                let follow = bool_value(value)?;
                self.file_options = std::mem::take(&mut self.file_options).follow_symlinks(follow);
            }
            "create_parents" => {
                let create = bool_value(value)?;
                self.file_options = std::mem::take(&mut self.file_options).create_parents(create);
            }
            "permissions" => {
                let mode = parse_mode(value).map_err(|m| e(&m))?;
                self.file_options = std::mem::take(&mut self.file_options).permissions(mode);
            }
            _ => {
                return Err(option_error(
                    option,
                    "unknown option: expected one of target, level, mode, clean, async, queue, size, flush, deadline, policy, writer_type, writer_mode, tick, task_id_mode, format, mask, max_bytes, block_timeout, max_restarts, thread_name, rotate_size, rotate_every, keep, max_age, compress, follow_symlinks, create_parents, permissions",
                ))
            }
        }
        if let Some(&name) = GIVEN_AS_TEXT.iter().find(|&&name| name == option) {
            self.typed(name);
            self.given.push((name, value.to_owned()));
        }
        Ok(self)
    }

    /// Forgets the text `set` gave the writer setting `name` (a typed setter replaced it).
    fn typed(&mut self, name: &str) {
        self.given.retain(|(n, _)| *n != name);
    }

    /// The log file (default: the program's name + `.log` in the working directory).
    /// Missing directories are created (unless the [file options](Self::file_options) say
    /// otherwise); [`Logger::path`] tells which file a logger writes.
    ///
    /// ```
    /// use logxide::sink::IoStrategy;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("logs/app.log");
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .target(&path)
    ///     .writer_type(IoStrategy::Line)   // one write per batch (default: block)
    ///     .build()?;
    /// assert_eq!(log.path(), Some(path.as_path()));
    /// log.info("hello");
    /// log.flush(None)?;
    /// assert!(std::fs::read_to_string(&path)?.ends_with(r#""mt":"info","msg":"hello"}
    /// "#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn target(mut self, path: impl AsRef<Path>) -> Self {
        self.target = Some(path.as_ref().to_owned());
        self.file = true;
        self
    }

    /// The threshold (default debug): records below it are skipped (one atomic load);
    /// action records are written whatever it is. `LOGXIDE_LEVEL` overrides it unless
    /// [`use_env`](Self::use_env) is off; [`Logger::set_level`] changes it later.
    ///
    /// ```
    /// use logxide::Level;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .level(Level::Warning)
    ///     .sink(mem.clone())
    ///     .build()?;
    /// log.info("skipped");
    /// log.warning("kept");
    /// log.flush(None)?;
    /// assert_eq!(mem.lines().len(), 1);
    /// assert!(mem.lines()[0].ends_with(r#""mt":"warning","msg":"kept"}"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Truncate (`w`, default) or append (`a`). Pitfall: the default empties an existing
    /// file at `build`.
    ///
    /// ```
    /// use logxide::sink::OpenMode;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// std::fs::write(&path, "{\"earlier\":1}\n")?;
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .target(&path)
    ///     .mode(OpenMode::Append)       // or .set("mode", "a")
    ///     .build()?;
    /// log.info("later");
    /// log.shutdown(None);
    /// let text = std::fs::read_to_string(&path)?;
    /// assert_eq!(text.lines().count(), 2);
    /// assert!(text.starts_with("{\"earlier\":1}\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(mut self, mode: OpenMode) -> Self {
        self.mode = mode;
        self
    }

    /// Delete an existing log file first (only after every option was validated), so the
    /// logger starts a new, empty file (created with the file options' permissions), in
    /// either [`mode`](Self::mode). When the target is a symbolic link, the file it points
    /// to (through every link) is the one deleted — the file the records would be written
    /// to — and the link stays: the open recreates the file through it. A missing file, or
    /// a link to one, is no error. With [`FileOptions::follow_symlinks`]`(false)` a link at
    /// the target is refused before anything is deleted ([`InitError::Symlink`]).
    ///
    /// ```
    /// use logxide::sink::OpenMode;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// std::fs::write(&path, "{\"old\":1}\n")?;
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .target(&path)
    ///     .mode(OpenMode::Append)
    ///     .clean(true)                  // appends, but to a new file
    ///     .build()?;
    /// log.info("new");
    /// log.shutdown(None);
    /// let text = std::fs::read_to_string(&path)?;
    /// assert_eq!(text.lines().count(), 1);
    /// assert!(text.contains(r#""msg":"new""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clean(mut self, clean: bool) -> Self {
        self.clean = clean;
        self
    }

    /// Background writer on (default) or records written synchronously: off, each record is
    /// in every sink before the log call returns (slower: the caller does the I/O).
    /// `LOGXIDE_SYNC=1` turns it off too (see [`use_env`](Self::use_env)).
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .async_writes(false)
    ///     .sink(mem.clone())
    ///     .build()?;
    /// assert!(!log.is_async());
    /// log.info("written now");
    /// assert_eq!(mem.lines().len(), 1); // no flush needed
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn async_writes(mut self, on: bool) -> Self {
        self.async_ = on;
        self
    }

    /// Queue capacity in records (default 10 000; at least 1, at most 2^28, checked at
    /// `build`). What happens when it is full is the [`policy`](Self::policy)'s choice; every
    /// refused record is counted in [`Logger::metrics`].
    ///
    /// The writer's settings together — [`queue`](Self::queue), [`size`](Self::size),
    /// [`flush_interval`](Self::flush_interval), [`deadline`](Self::deadline),
    /// [`policy`](Self::policy), [`writer_mode`](Self::writer_mode), [`tick`](Self::tick):
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::writer::{Mode, Policy};
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .queue(2)
    ///     .size(2)
    ///     .flush_interval(Duration::from_millis(50))
    ///     .deadline(Duration::from_secs(1))
    ///     .policy(Policy::DropNewest)      // a full queue refuses the new record
    ///     .writer_mode(Mode::Manual)       // nothing written until flush, trigger or shutdown
    ///     .tick(Duration::from_millis(10)) // (used by Mode::Loop only)
    ///     .sink(mem.clone())
    ///     .build()?;
    /// for i in 0..5 {
    ///     log.log(logxide::Level::Info, "burst", |f| f.field("i", &i));
    /// }
    /// let report = log.shutdown(None).unwrap();
    /// let m = report.metrics;
    /// assert_eq!((m.enqueued, m.written, m.dropped_by.queue_full), (5, 2, 3));
    /// assert!(mem.lines()[1].ends_with(r#""msg":"burst","i":1}"#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn queue(mut self, records: usize) -> Self {
        self.queue = records;
        self.typed("queue");
        self
    }

    /// Batch size that forces a write (default 100, or the queue size if smaller): in the
    /// `trigger` writer mode, this many queued records wake the writer, which takes everything
    /// queued. With `writer_type` `line` (and `mmap`) the batch reaches the file at once;
    /// with `block` (the default) the file sink coalesces batches into writes of about
    /// `block_size` bytes (64 KiB), so a batch smaller than that is written when more
    /// records complete the block or when its oldest record has waited `flush` — never
    /// later. `flush()`, `trigger()` and shutdown write at once in every case. At least 1
    /// and at most the [`queue`](Self::queue) size (checked at `build`); see the example
    /// there.
    ///
    /// ```
    /// use logxide::LoggerBuilder;
    /// let mem = logxide::sink::MemorySink::new();
    /// assert!(LoggerBuilder::new().use_env(false).queue(10).size(10).sink(mem.clone()).build().is_ok());
    /// let err = LoggerBuilder::new().use_env(false).queue(10).size(11).sink(mem).build().unwrap_err();
    /// assert!(err.to_string().starts_with("logxide option `size`"), "{err}");
    /// ```
    pub fn size(mut self, records: usize) -> Self {
        self.size = Some(records);
        self.typed("size");
        self
    }

    /// Flush interval (default 0.1 s): the longest a record waits in the queue (or in the
    /// file sink's block) before it is written, in the `trigger` and `loop` modes. Must be
    /// positive; see the example at [`queue`](Self::queue).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::LoggerBuilder;
    /// let mem = logxide::sink::MemorySink::new();
    /// let err = LoggerBuilder::new().use_env(false).flush_interval(Duration::ZERO).sink(mem).build().unwrap_err();
    /// assert!(err.to_string().starts_with("logxide option `flush`"), "{err}");
    /// ```
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush = interval;
        self.typed("flush");
        self
    }

    /// Upper bound on how long a record may wait (default none); must be positive. See the
    /// example at [`queue`](Self::queue).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::LoggerBuilder;
    /// let mem = logxide::sink::MemorySink::new();
    /// let err = LoggerBuilder::new().use_env(false).deadline(Duration::ZERO).sink(mem).build().unwrap_err();
    /// assert!(err.to_string().starts_with("logxide option `deadline`"), "{err}");
    /// ```
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self.typed("deadline");
        self
    }

    /// Full-queue policy (default block: the caller waits for room). `drop_newest` and
    /// `drop_oldest` count what they drop; `warn` also reports it
    /// ([`on_drop_warning`](Self::on_drop_warning)). See the example at
    /// [`queue`](Self::queue).
    ///
    /// ```
    /// use logxide::writer::{Mode, Policy};
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .queue(1)
    ///     .policy(Policy::DropOldest)
    ///     .writer_mode(Mode::Manual) // the queue stays full until the shutdown
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .build()?;
    /// log.info("first");
    /// log.info("second"); // evicts the first
    /// let m = log.shutdown(None).unwrap().metrics;
    /// assert_eq!((m.written, m.dropped_by.evicted), (1, 1));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Where the `warn` policy reports the records it refused (default: a line on standard
    /// error), at most once per second and once more at shutdown; the reports add up to
    /// every refused record. The hook runs on the writer thread: keep it short, and do not
    /// log through this logger from it (those records could be refused in turn). A flush
    /// from it returns an error at once: the writer cannot wait for itself. A panic in it is
    /// caught and counted as an error of the writer (its message the last error). With
    /// another policy the hook would never be called: `build` and `check` refuse it (an
    /// [`InitError::Option`] naming `on_drop_warning`).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    /// use std::sync::Arc;
    /// let reported = Arc::new(AtomicU64::new(0));
    /// let counter = Arc::clone(&reported);
    /// let log = logxide::Logger::builder()
    ///     .sink(logxide::sink::MemorySink::new())
    ///     .set("policy", "warn")?
    ///     .set("queue", "1")?
    ///     .set("writer_mode", "manual")?    // nothing is written until shutdown
    ///     .on_drop_warning(move |w| {
    ///         counter.fetch_add(w.dropped, Relaxed); // or a metric, or an alert
    ///     })
    ///     .build()?;
    /// for _ in 0..10 {
    ///     log.info("burst"); // the queue holds one: nine are refused
    /// }
    /// log.shutdown(None);
    /// assert_eq!(reported.load(Relaxed), 9);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn on_drop_warning(mut self, hook: impl Fn(&DropWarning) + Send + Sync + 'static) -> Self {
        self.warn_hook = Some(Arc::new(hook));
        self
    }

    /// The file's I/O strategy (default block): `line` writes each batch at once, `block`
    /// coalesces batches into writes of about 64 KiB, `mmap` writes into a mapping (not with
    /// [`rotate`](Self::rotate)). See the example at [`target`](Self::target).
    ///
    /// ```
    /// use logxide::sink::IoStrategy;
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.log");
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .target(&path)
    ///     .writer_type(IoStrategy::Line)
    ///     .build()?;
    /// log.info("one line");
    /// log.flush(None)?;
    /// assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 1);
    /// // mmap cannot rotate:
    /// let err = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .target(&path)
    ///     .writer_type(IoStrategy::Mmap)
    ///     .set("rotate_size", "1MB")?
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("mmap"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer_type(mut self, strategy: IoStrategy) -> Self {
        self.writer_type = strategy;
        self
    }

    /// The writer thread's mode (default trigger: woken by [`size`](Self::size) records or
    /// the flush interval; `loop` polls every [`tick`](Self::tick); `manual` writes only on
    /// `flush`, `trigger` and shutdown). See the example at [`queue`](Self::queue).
    ///
    /// ```
    /// use logxide::writer::Mode;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .writer_mode(Mode::Manual)
    ///     .sink(mem.clone())
    ///     .build()?;
    /// log.info("waits");
    /// assert!(mem.lines().is_empty()); // manual: written at a flush, a trigger or the shutdown
    /// log.flush(None)?;
    /// assert_eq!(mem.lines().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer_mode(mut self, mode: Mode) -> Self {
        self.writer_mode = mode;
        self
    }

    /// Loop-mode period (default 0.01 s; must be positive in the `loop` mode). See the
    /// example at [`queue`](Self::queue).
    ///
    /// ```
    /// use std::time::Duration;
    /// use logxide::LoggerBuilder;
    /// let mem = logxide::sink::MemorySink::new();
    /// let err = LoggerBuilder::new().use_env(false).writer_mode(logxide::writer::Mode::Loop).tick(Duration::ZERO).sink(mem).build().unwrap_err();
    /// assert!(err.to_string().starts_with("logxide option `tick`"), "{err}");
    /// ```
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self.typed("tick");
        self
    }

    /// Task id style (default sqid: `<8-character prefix>.<counter>`; `uuid`: a UUID4).
    ///
    /// ```
    /// use logxide::TaskIdMode;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .task_id_mode(TaskIdMode::Uuid)
    ///     .sink(mem.clone())
    ///     .build()?;
    /// let action = log.start_action("job", |_| {});
    /// let id = action.task_id();
    /// assert_eq!(id.as_str().len(), 36);
    /// assert_eq!(id.as_str().matches('-').count(), 4);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn task_id_mode(mut self, mode: TaskIdMode) -> Self {
        self.task_id_mode = mode;
        self
    }

    /// Compact logxpy keys (default) or Eliot's long names.
    ///
    /// ```
    /// use logxide::encode::Format;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .format(Format::Eliot)            // or .set("format", "eliot")
    ///     .sink(mem.clone())
    ///     .build()?;
    /// log.info("hello");
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].starts_with(r#"{"timestamp":"#));
    /// assert!(mem.lines()[0].ends_with(r#""task_level":[1],"message_type":"info","message":"hello"}"#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The names of fields written as `"***"` (default [`Mask::DEFAULT`]). This replaces
    /// the default names: pass [`Mask::DEFAULT`]'s too to keep them.
    ///
    /// ```
    /// use logxide::logger::Mask;
    /// let mem = logxide::sink::MemorySink::new();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .mask(Mask::new(["pin"]))
    ///     .sink(mem.clone())
    ///     .build()?;
    /// logxide::info!(logger: log, "card", pin = 1234, password = "not masked any more");
    /// log.flush(None).unwrap();
    /// assert!(mem.lines()[0].ends_with(r#""pin":"***","password":"not masked any more"}"#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn mask(mut self, mask: Mask) -> Self {
        self.mask = mask;
        self
    }

    /// File options beyond the strategy and open mode (durability, permissions, symlinks).
    /// Pitfall: this replaces the whole set, also what `set("permissions", ...)`,
    /// `follow_symlinks` or `create_parents` changed before; the strategy and open mode
    /// stay [`writer_type`](Self::writer_type)'s and [`mode`](Self::mode)'s.
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// use logxide::sink::FileOptions;
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .target(&path)
    ///     .file_options(FileOptions::new().permissions(0o600))
    ///     .build()?;
    /// log.shutdown(None);
    /// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file_options(mut self, options: FileOptions) -> Self {
        self.file_options = options;
        self
    }

    /// Rotate the log file ([`RotatingFile`](crate::sink::RotatingFile)) with these options.
    /// Their file options are replaced by the logger's ([`file_options`](Self::file_options),
    /// [`writer_type`](Self::writer_type), [`mode`](Self::mode)); `writer_type` `mmap` is
    /// refused at build, before any side effect. A target that is a symbolic link is
    /// resolved at build: its destination is the file rotated (next to it, after its name),
    /// and the link stays, pointing at the new active file (see
    /// [the rotating file's docs](crate::sink::rotate#a-symbolic-link-at-the-path)).
    ///
    /// ```
    /// use logxide::sink::{Compression, Period, RotateOptions};
    /// let dir = tempfile::tempdir().unwrap();
    /// let log = logxide::Logger::builder()
    ///     .target(dir.path().join("app.log"))
    ///     .rotate(RotateOptions::new().max_bytes(10 << 20).every(Period::Day).keep(7))
    ///     .set("compress", "zstd")?             // text options add to the same settings
    ///     .build()?;
    /// log.info("hello");
    /// log.shutdown(None);
    /// assert!(std::fs::read_to_string(dir.path().join("app.log"))?.contains(r#""msg":"hello""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rotate(mut self, options: RotateOptions) -> Self {
        self.rotate = Some(options);
        self
    }

    /// Adds a sink. With sinks and no [`target`](Self::target), no file is written; with a
    /// target too, every record goes to the file and to each sink.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let builder = logxide::Logger::builder().use_env(false).sink(mem.clone());
    /// assert_eq!(builder.resolved_target(), None);
    /// let log = builder.build()?;
    /// assert_eq!(log.path(), None);
    /// log.info("to memory only");
    /// log.flush(None).unwrap();
    /// assert_eq!(mem.lines().len(), 1);
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        if self.target.is_none() {
            self.file = false;
        }
        self
    }

    /// Also show the records at `min_level` or above on standard error, as human-readable
    /// lines ([`Console`], wrapped in a [`LevelFilter`]), colored per `color`. This adds to
    /// the file (or the sinks), it does not replace it: the file still receives every record
    /// at the logger's threshold, the console those at `min_level` or above among them.
    ///
    /// ```
    /// use logxide::{Level, sink::ColorChoice};
    /// let dir = tempfile::tempdir().unwrap();
    /// let log = logxide::Logger::builder()
    ///     .target(dir.path().join("app.log"))
    ///     .console(ColorChoice::Auto, Level::Warning)   // warnings and errors on stderr too
    ///     .build()?;
    /// log.info("only in the file");
    /// log.shutdown(None);
    /// assert!(std::fs::read_to_string(dir.path().join("app.log"))?.contains("only in the file"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn console(mut self, color: ColorChoice, min_level: Level) -> Self {
        self.sinks.push(Box::new(LevelFilter::at_least(
            Console::stderr_with(color),
            min_level,
        )));
        self
    }

    /// Read the environment (default true), at `build` / `check`: `LOGXIDE_SYNC` and
    /// `LOGXPY_SYNC` (either one `1`, `true`, `yes` or `on`, any case, forces synchronous
    /// writes; `0`, `false`, `no` and `off` do not), `LOGXIDE_LEVEL` (the
    /// threshold), `LOGXIDE_WRITER_TYPE` and `LOGXIDE_WRITER_MODE` (override `writer_type` and
    /// `writer_mode`; when unset, `LOGXPY_WRITER_TYPE` and `LOGXPY_WRITER_MODE`, the seed
    /// plan's names, are read). Empty or blank is unset. An invalid value there is an
    /// [`InitError::Option`] naming the variable, as is one that conflicts with another
    /// option (`mmap` with rotation). Turn it off where the environment must not
    /// change the logger (tests, libraries).
    ///
    /// ```
    /// use logxide::{Level, Logger};
    /// # let mem = logxide::sink::MemorySink::new();
    /// std::env::set_var("LOGXIDE_LEVEL", "error");
    /// let from_env = Logger::builder().sink(mem.clone()).build()?;
    /// assert_eq!(from_env.level(), Level::Error);
    /// let fixed = Logger::builder().use_env(false).sink(mem.clone()).build()?;
    /// assert_eq!(fixed.level(), Level::Debug);
    /// std::env::set_var("LOGXIDE_LEVEL", "loud");
    /// let err = Logger::builder().sink(mem).build().unwrap_err();
    /// assert!(err.to_string().starts_with(r#"logxide option `LOGXIDE_LEVEL`: invalid level "loud""#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn use_env(mut self, on: bool) -> Self {
        self.use_env = on;
        self
    }

    /// On SIGTERM/SIGINT, drain the global logger before the default action (off by default;
    /// applies to [`init`](Self::init)). In a process forked after that, the two signals take
    /// their default action at once (the draining thread is the parent's).
    ///
    /// What each signal did before the first `init` that turned this on is kept: a signal
    /// with its default action is drained for, then ends the process by the signal; a signal
    /// the application handles runs its handler, and the global logger is flushed (not shut
    /// down: the application decides how the process ends, and may go on logging); an
    /// ignored signal stays ignored (it ends nothing).
    ///
    /// Off in a later `init`, after an earlier one turned it on: the signals behave as if
    /// logxide had never handled them, without draining — they take the disposition they had
    /// before that earlier `init` (the default: the process ends by the signal, queued records
    /// lost; ignored if they were ignored; a handler installed before still runs). logxide's
    /// handler itself stays installed, as a signal handler cannot be removed soundly under
    /// other registrations: it only chains to that disposition (an action performing the
    /// default, in the handler). On again in a later `init`, they drain again.
    ///
    /// Pitfall: handlers the application registers *after* that first `init` (with
    /// `signal-hook`, or by replacing the disposition) are not what logxide chains to. With
    /// `signal-hook`, they run after logxide's actions, so a signal whose disposition was
    /// the default still ends the process (after the drain, or at once when off) before they
    /// run; register them before `init`, and they are kept as described above.
    ///
    /// ```no_run
    /// // In main: a SIGTERM (a container stopping) drains the queue before the process ends.
    /// let _guard = logxide::LoggerBuilder::new().flush_on_signals(true).init()?;
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    ///
    /// (Not run here: a test of it sends the process a signal.)
    pub fn flush_on_signals(mut self, on: bool) -> Self {
        self.flush_on_signals = on;
        self
    }

    /// Install a panic hook that logs the panic at critical and flushes before the previous
    /// hook runs (default on; applies to [`init`](Self::init)). Off in a later `init`, the
    /// hook an earlier one installed stops logging (it only runs the previous hook). An
    /// `init` made while its thread unwinds a panic (in a `Drop`) cannot install the hook
    /// (the standard library refuses to change it then): the next `init` does. It is
    /// installed once per process and never removed: a hook set with `std::panic::set_hook`
    /// after `init` stays in place through later `init`s and [`shutdown`](crate::logger::shutdown)
    /// — chaining to the hook it replaced keeps panics logged; not chaining turns logxide's
    /// off for good.
    ///
    /// ```
    /// let mem = logxide::sink::MemorySink::new();
    /// let _guard = logxide::LoggerBuilder::new()
    ///     .use_env(false)
    ///     .panic_hook(true)
    ///     .sink(mem.clone())
    ///     .init()?;
    /// let _ = std::panic::catch_unwind(|| panic!("boom"));
    /// assert!(mem.lines()[0].contains(r#""mt":"critical","msg":"panic","exc":"panic","reason":"boom""#));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn panic_hook(mut self, on: bool) -> Self {
        self.panic_hook = on;
        self
    }

    /// The file the logger would write, resolved as `build` resolves it: the
    /// [`target`](Self::target), else `<program name>.log` in the working directory; `None`
    /// when only [sinks](Self::sink) were given.
    ///
    /// ```
    /// use std::path::PathBuf;
    /// use logxide::LoggerBuilder;
    /// let b = LoggerBuilder::new().target("/var/log/app.log");
    /// assert_eq!(b.resolved_target(), Some(PathBuf::from("/var/log/app.log")));
    /// let default = LoggerBuilder::new().resolved_target().unwrap();
    /// assert_eq!(default.extension().unwrap(), "log");
    /// assert_eq!(default.parent(), Some(std::path::Path::new("")));
    /// ```
    pub fn resolved_target(&self) -> Option<PathBuf> {
        if !self.file {
            return None;
        }
        Some(self.target.clone().unwrap_or_else(default_target))
    }

    /// Checks every option and the environment without any side effect; with
    /// `follow_symlinks` off, also that the target is not a symbolic link.
    ///
    /// Pitfall: a file that cannot be opened (a missing directory with `create_parents` off,
    /// no permission) is only found by `build`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// let builder = logxide::Logger::builder().use_env(false).target(&path).size(0);
    /// let err = builder.check().unwrap_err();
    /// assert_eq!(err.to_string(), "logxide option `size`: invalid value 0: a batch holds at least one record");
    /// assert!(!path.exists()); // nothing was created
    /// ```
    ///
    /// # Errors
    /// [`InitError::Option`], [`InitError::Writer`] or [`InitError::Symlink`], as
    /// [`build`](Self::build) would.
    pub fn check(&self) -> Result<(), InitError> {
        self.check_options().map(|_| ())
    }

    /// Before the global logger that writes the target is closed to re-init onto its file:
    /// what can be found out, without changing anything, of whether `build` will be able to
    /// open the file again — that it can be opened for writing as `build` opens it, and for `clean` that its
    /// directory can be written — so that a failure leaves that logger in place.
    pub(crate) fn check_reopen(&self) -> Result<(), InitError> {
        let Some(path) = self.resolved_target() else {
            return Ok(());
        };
        let file_error = |error| InitError::File {
            path: path.clone(),
            error,
        };
        // With the access the open will ask for (see `FileSink::open_with`), without creating
        // or truncating: appending and `mmap` also read; appending with `line` or `block`
        // writes with `O_APPEND`, which an append-only file (`chattr +a`) requires.
        let writer_type = self.io_settings()?.writer_type;
        let mmap = writer_type == IoStrategy::Mmap;
        let append = self.mode == OpenMode::Append;
        let mut access = std::fs::OpenOptions::new();
        access
            .write(true)
            .read(mmap || append)
            .append(append && !mmap);
        match access.open(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_error(e)),
            _ => {}
        }
        if self.clean {
            // The directory of the file `clean` removes (a symbolic link's destination).
            let file = clean_target(&path)
                .map_err(file_error)?
                .unwrap_or_else(|| path.clone());
            let dir = match file.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            // The effective ids decide, as they will for the removal.
            rustix::fs::accessat(
                rustix::fs::CWD,
                dir,
                rustix::fs::Access::WRITE_OK,
                rustix::fs::AtFlags::EACCESS,
            )
            .map_err(|e| file_error(std::io::Error::from(e)))?;
        }
        Ok(())
    }

    /// `writer_type` and `writer_mode`, each overridden by its environment variable when
    /// [`use_env`](Self::use_env) is on: `LOGXIDE_WRITER_TYPE` (or, when that is unset,
    /// `LOGXPY_WRITER_TYPE`) and `LOGXIDE_WRITER_MODE` (or `LOGXPY_WRITER_MODE`). Empty or
    /// blank is unset; an invalid value is an error naming the variable.
    fn io_settings(&self) -> Result<IoSettings, InitError> {
        fn from_env<T: std::str::FromStr>(
            names: [&'static str; 2],
        ) -> Result<Option<(T, &'static str)>, InitError>
        where
            T::Err: fmt::Display,
        {
            for var in names {
                if let Some(v) = env_var(var)?.filter(|v| !v.trim().is_empty()) {
                    return v
                        .parse()
                        .map(|value| Some((value, var)))
                        .map_err(|e| option_error(var, e));
                }
            }
            Ok(None)
        }
        let (writer_type, writer_mode) = match self.use_env {
            true => (
                from_env(["LOGXIDE_WRITER_TYPE", "LOGXPY_WRITER_TYPE"])?,
                from_env(["LOGXIDE_WRITER_MODE", "LOGXPY_WRITER_MODE"])?,
            ),
            false => (None, None),
        };
        Ok(IoSettings {
            writer_type: writer_type.map_or(self.writer_type, |(t, _)| t),
            writer_type_from: writer_type.map_or("writer_type", |(_, var)| var),
            writer_mode: writer_mode.map_or(self.writer_mode, |(m, _)| m),
            writer_mode_from: writer_mode.map(|(_, var)| var),
        })
    }

    fn check_options(&self) -> Result<Checked, InitError> {
        let mut level = self.level;
        let mut force_sync = !self.async_;
        if self.use_env {
            for var in ["LOGXIDE_SYNC", "LOGXPY_SYNC"] {
                if let Some(v) = env_var(var)? {
                    match v.trim().to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" | "on" => force_sync = true,
                        "" | "0" | "false" | "no" | "off" => {}
                        _ => {
                            return Err(option_error(
                                var,
                                format!(
                                    "invalid value {v:?}: expected 1, true, yes or on (synchronous writes) or 0, false, no, off or empty (any case)"
                                ),
                            ))
                        }
                    }
                }
            }
            // Empty (or blank) is unset, as an empty `LOGXIDE_SYNC` is off.
            if let Some(v) = env_var("LOGXIDE_LEVEL")?.filter(|v| !v.trim().is_empty()) {
                level = v
                    .parse()
                    .map_err(|e: ParseLevelError| option_error("LOGXIDE_LEVEL", e))?;
            }
        }
        let IoSettings {
            writer_type,
            writer_type_from,
            writer_mode,
            writer_mode_from,
        } = self.io_settings()?;
        let mut builder = Writer::builder().capacity(self.queue);
        if let Some(size) = self.size {
            builder = builder.batch_size(size);
        }
        let mut builder = builder
            .flush_interval(self.flush)
            .policy(self.policy)
            .mode(writer_mode)
            .tick(self.tick);
        if let Some(d) = self.deadline {
            builder = builder.deadline(d);
        }
        if let Some(b) = self.max_bytes {
            builder = builder.max_bytes(b);
        }
        if let Some(t) = self.block_timeout {
            builder = builder.block_timeout(t);
        }
        if let Some(r) = self.max_restarts {
            builder = builder.max_restarts(r);
        }
        if let Some(name) = &self.thread_name {
            builder = builder.thread_name(name.clone());
        }
        if let Some(hook) = &self.warn_hook {
            let hook = Arc::clone(hook);
            builder = builder.on_drop_warning(move |w| hook(w));
        }
        // A placeholder sink lets the writer check its settings before the file exists.
        let probe = builder
            .clone_settings()
            .sink(crate::sink::MemorySink::new());
        probe.validate().map_err(|e| {
            let mode_from_env = match (&e, writer_mode_from) {
                (BuildError::Invalid { option: "tick", .. }, Some(var)) => Some(var),
                _ => None,
            };
            match (init_names(e, &self.given), mode_from_env) {
                // The mode that needs a tick is not the builder's own: say where it is from.
                (InitError::Option { option, message }, Some(var)) => InitError::Option {
                    option,
                    message: format!("{message} (the {writer_mode} mode comes from {var})"),
                },
                (e, _) => e,
            }
        })?;
        let path = self.resolved_target();
        // As `set("target", "")` refuses it; the open would fail on a file named "".
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(option_error("target", "the target path is empty"));
        }
        if path.is_none() && self.sinks.is_empty() {
            return Err(InitError::Writer(BuildError::NoSink));
        }
        let file_options = self
            .file_options
            .clone()
            .strategy(writer_type)
            .open_mode(self.mode);
        if let Some(path) = &path {
            // Found here, before `clean` or a re-init onto the same file changes anything;
            // `O_NOFOLLOW` still refuses a link that appears later.
            if !file_options.follows_symlinks()
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            {
                return Err(InitError::Symlink { path: path.clone() });
            }
        }
        if path.is_some() {
            file_options
                .validate()
                .map_err(|err| option_error("file_options", err))?;
        }
        let rotate = self.rotate.clone().map(|r| r.file(file_options.clone()));
        if let Some(rotate) = &rotate {
            let Some(path) = &path else {
                return Err(option_error(
                    "rotate_size",
                    "rotation (rotate_size, rotate_every, keep, max_age, compress) applies to the target file, and this logger has none: set a target, or leave rotation out",
                ));
            };
            if !rotate.rotates() {
                return Err(option_error(
                    "rotate_size",
                    "keep, max_age and compress apply to rotated files, and no rotation is set: set rotate_size or rotate_every too (without either the file never rotates)",
                ));
            }
            if writer_type == IoStrategy::Mmap {
                return Err(option_error(
                    writer_type_from,
                    "the `mmap` I/O strategy cannot be used with rotation (rotate_size, rotate_every, ...): use `line` or `block`",
                ));
            }
            rotate
                .validate()
                .map_err(|err| option_error("rotate_size", err))?;
            // The rotated files' names are made from the name of the file rotated — a
            // symbolic link's destination, as the open resolves it: it must be UTF-8. Found
            // here, before `clean` deletes that file.
            let file_error = |error| InitError::File {
                path: path.clone(),
                error,
            };
            let rotated = match file_options.follows_symlinks() {
                true => crate::sink::rotate::resolve_links(path).map_err(file_error)?,
                false => path.clone(),
            };
            rotate.check(&rotated).map_err(file_error)?;
        }
        Ok(Checked {
            level,
            force_sync,
            builder,
            path,
            file_options,
            rotate,
        })
    }

    /// Validates everything, then creates the logger (its own writer; not global): the file
    /// is cleaned (with [`clean`](Self::clean)) and opened, the writer thread started. The
    /// macros do not see it: pass it with `logger:` (or use [`init`](Self::init)). Dropping
    /// the last clone of the logger drains its writer; [`Logger::shutdown`] does it
    /// explicitly and returns the final counts.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = logxide::Logger::builder()
    ///     .use_env(false)
    ///     .target(dir.path().join("app.log"))
    ///     .build()?;
    /// logxide::info!(logger: log, "built", workers = 4);
    /// let report = log.shutdown(None).unwrap();
    /// assert_eq!(report.metrics.written, 1);
    /// let text = std::fs::read_to_string(dir.path().join("app.log"))?;
    /// assert!(text.ends_with(r#""msg":"built","workers":4}
    /// "#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`InitError`]; for an invalid option nothing has been changed.
    pub fn build(self) -> Result<Logger, InitError> {
        // 1. Validate: environment, then the writer's settings — before any side effect.
        let Checked {
            level,
            force_sync,
            mut builder,
            path,
            file_options,
            rotate,
        } = self.check_options()?;

        // 2. Side effects: clean, open, start.
        if let Some(path) = &path {
            // With rotation, the rotating file's open deletes it, after the steps of its own
            // that can fail (a failed open leaves the file as it was).
            if self.clean && rotate.is_none() {
                // The file the open below will reach, through any symbolic link: the link
                // itself stays (the open recreates its destination through it).
                let removed = clean_target(path).and_then(|file| match file {
                    Some(file) => std::fs::remove_file(file),
                    None => Ok(()),
                });
                match removed {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(InitError::File {
                            path: path.clone(),
                            error,
                        })
                    }
                }
            }
            let file_error = |error: std::io::Error| {
                if !file_options.follows_symlinks()
                    && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
                {
                    // A link that appeared after the check above.
                    return InitError::Symlink { path: path.clone() };
                }
                InitError::File {
                    path: path.clone(),
                    error,
                }
            };
            builder = match &rotate {
                Some(rotate) => builder.sink(
                    rotate
                        .clone()
                        .clean_active(self.clean)
                        .open(path)
                        .map_err(file_error)?,
                ),
                None => builder.sink(file_options.open(path).map_err(file_error)?),
            };
        }
        for sink in self.sinks {
            builder = builder.boxed_sink(sink);
        }
        let writer = builder.build().map_err(InitError::Writer)?;
        // Calibrate the records' tick clock now rather than in the first log call.
        crate::encode::capture::clock();
        Ok(Logger::from_parts(
            writer,
            level,
            self.format,
            self.task_id_mode,
            self.mask,
            force_sync,
            path,
        ))
    }

    /// Validates everything, builds the logger and installs it as the global one (the
    /// previous global logger is drained and its thread joined).
    ///
    /// Re-initializing onto the file the current global logger writes — however the path is
    /// spelled: the same device and inode, so `..`, symbolic and hard links count — drains
    /// and closes that logger first (otherwise reopening the file would overwrite records
    /// still queued; records logged meanwhile find no global logger: they are discarded, and
    /// counted by [`metrics`](super::metrics) with the new logger's, as `dropped_by.shutdown`);
    /// before that, the file is checked to open for writing (and its directory, with
    /// `clean`, to be writable), so that a file that cannot be reopened is an error with
    /// that logger still in place. Onto the file of the logger
    /// [`logger::shutdown`](super::shutdown) stopped last, when its timeout expired and it
    /// still drains, `init` waits for that drain to end first. `init`s called from several threads at once take turns:
    /// each one's logger is in place (and the one it replaced drained) before the next begins.
    ///
    /// # Errors
    /// [`InitError`]; for an invalid option, or a file that cannot be opened, the previous
    /// global logger stays in place, untouched. (Only a file that stops being openable
    /// between that check and the open, when re-initializing onto the same file, leaves no
    /// global logger.)
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("app.log");
    /// let guard = logxide::LoggerBuilder::new().use_env(false).target(&path).init()?;
    /// logxide::info!("through the global logger");
    /// // An invalid option leaves the global logger as it was.
    /// let other = dir.path().join("other.log");
    /// assert!(logxide::LoggerBuilder::new().target(&other).queue(0).init().is_err());
    /// assert_eq!(logxide::logger::global().unwrap().path(), Some(path.as_path()));
    /// drop(guard); // drains: everything logged is in the file
    /// assert!(std::fs::read_to_string(&path)?.contains(r#""msg":"through the global logger""#));
    /// assert!(!other.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn init(self) -> Result<super::LoggerGuard, InitError> {
        super::global::install(self)
    }
}

/// `writer_type` and `writer_mode` after the environment's overrides.
struct IoSettings {
    writer_type: IoStrategy,
    /// Where `writer_type` came from, for its errors: the option, or the variable that
    /// overrode it.
    writer_type_from: &'static str,
    writer_mode: Mode,
    /// The variable that overrode `writer_mode`, if one did.
    writer_mode_from: Option<&'static str>,
}

/// What `check_options` found valid.
struct Checked {
    level: Level,
    force_sync: bool,
    builder: crate::writer::WriterBuilder,
    path: Option<PathBuf>,
    file_options: FileOptions,
    rotate: Option<crate::sink::RotateOptions>,
}

/// A new file's mode as octal text: `0640`, `640` or `0o640`; at most `0777` and with the
/// owner's write bit (a log file its owner cannot write fails at the next reopen: append,
/// rotation, a moved file).
fn parse_mode(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    let mode = (!digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten()
        .filter(|&m| m <= 0o777)
        .ok_or_else(|| {
            format!("invalid file mode {text:?}: expected octal permission bits up to 0777, e.g. 0640, 640 or 0o640")
        })?;
    if mode & 0o200 == 0 {
        return Err(format!(
            "file mode {text:?} does not let the owner write the log file: expected the owner's write bit (0200), e.g. 0640"
        ));
    }
    Ok(mode)
}

/// The file `clean` removes for the target `path`: `path` with every symbolic link resolved
/// — the file the logger opens through it, never the link itself — or `None` when there is
/// nothing to remove (no file, or a link to a missing one).
fn clean_target(path: &Path) -> std::io::Result<Option<PathBuf>> {
    match std::fs::canonicalize(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `<program name>.log` in the working directory.
fn default_target() -> PathBuf {
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "logxide".to_owned());
    PathBuf::from(format!("{name}.log"))
}
