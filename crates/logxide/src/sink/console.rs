//! [`Console`]: records as human-readable lines for a terminal.
//!
//! Each JSON record becomes one line:
//!
//! ```text
//! 22:13:21.000000 STARTED   82Qa.2/1 http:request started path=/api
//! 22:13:21.100000 INFO      82Qa.2/2 inside the request user=ada
//! 22:13:21.500000 FAILED    82Qa.2/3 http:request failed in 500.0ms: std::io::error::Error: upstream timeout
//! ```
//!
//! ```
//! # use logxide::sink::render_record;
//! # let mut out = Vec::new();
//! for record in [
//!     r#"{"ts":1700000001.0,"tid":"k3Jd82Qa.2","lvl":[1],"at":"http:request","st":"started","path":"/api"}"#,
//!     r#"{"ts":1700000001.1,"tid":"k3Jd82Qa.2","lvl":[2],"mt":"info","msg":"inside the request","user":"ada"}"#,
//!     r#"{"ts":1700000001.5,"tid":"k3Jd82Qa.2","lvl":[3],"at":"http:request","st":"failed","exc":"std::io::error::Error","reason":"upstream timeout","dur":0.5}"#,
//! ] {
//!     render_record(record.as_bytes(), false, &mut out);
//! }
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "22:13:21.000000 STARTED   82Qa.2/1 http:request started path=/api\n\
//!      22:13:21.100000 INFO      82Qa.2/2 inside the request user=ada\n\
//!      22:13:21.500000 FAILED    82Qa.2/3 http:request failed in 500.0ms: std::io::error::Error: upstream timeout\n"
//! );
//! ```
//!
//! the UTC time of day (`HH:MM:SS.ffffff`), the level (for action records: the status), the
//! task position (the last six characters of the task id, then the task level as `/1/2`),
//! the message — for actions the action type, status and duration, for failures the error
//! type and reason — and then the other fields as `key=value` (strings in quotes only when
//! they contain white space, or are empty). Both the compact and the Eliot layouts are read.
//! A line that is not a JSON object is printed as it is (escaped, see below), and so is a
//! record nested deeper than 128 levels (the JSON parser's limit, which keeps the writer
//! thread's stack bounded): nothing of it is lost. A record is an action when it has an
//! action type or status and no message type; in a message, `at`, `st` and `dur` are fields
//! like any other.
//!
//! # No terminal injection
//!
//! Everything taken from a record — messages, keys, values, task ids, even a line that does
//! not parse — is escaped before it reaches the terminal: C0 controls (NUL, ESC, CR, LF, …),
//! DEL, C1 controls (U+0080–U+009F), the line and paragraph separators U+2028/U+2029 and
//! the bidirectional-text controls (U+061C, U+200E/F, U+202A–E, U+2066–9) are written as
//! visible escapes (`\n`, `\r`, `\t`, `\x1b`, `\u009b`, `\u2028`). The only raw control
//! bytes in the output are the final `\n` of each line and, with color on, the sink's own
//! color codes. Backslashes are printed as they are, except inside a quoted value, where
//! `\` and `"` are written `\\` and `\"` (so the quotes delimit it).

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal, Write};
use std::str::FromStr;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::{flush_patiently, write_counted, Batch, Patience, Sink, SinkError, StdWriter, Stream};
use crate::encode::{Format, HeaderKeys};

/// Whether a [`Console`] colors its output.
///
/// ```
/// use logxide::sink::{ColorChoice, Console};
/// assert_eq!(ColorChoice::default(), ColorChoice::Auto);
/// assert!(Console::stderr_with(ColorChoice::Always).color());
/// assert!(!Console::stderr_with(ColorChoice::Never).color());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ColorChoice {
    /// Color when the stream is a terminal, the `NO_COLOR` environment variable is not set
    /// to a non-empty value (<https://no-color.org>), and `TERM` is set and not `dumb` (a
    /// terminal that knows no escapes, as git and `logxide view` read it). The default.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

impl ColorChoice {
    /// The decision, from the facts: whether the stream is a terminal, and the values of
    /// `NO_COLOR` and `TERM` (`None` when unset). A pure function (tests need not touch the
    /// process environment).
    ///
    /// ```
    /// use std::ffi::OsStr;
    /// use logxide::sink::ColorChoice;
    /// let xterm = Some(OsStr::new("xterm-256color"));
    /// assert!(ColorChoice::Auto.resolve(true, None, xterm));
    /// assert!(ColorChoice::Auto.resolve(true, Some(OsStr::new("")), xterm)); // set but empty: ignored
    /// assert!(!ColorChoice::Auto.resolve(true, Some(OsStr::new("1")), xterm));
    /// assert!(!ColorChoice::Auto.resolve(false, None, xterm)); // not a terminal
    /// assert!(!ColorChoice::Auto.resolve(true, None, Some(OsStr::new("dumb"))));
    /// assert!(!ColorChoice::Auto.resolve(true, None, None)); // no TERM
    /// assert!(ColorChoice::Always.resolve(false, Some(OsStr::new("1")), None));
    /// assert!(!ColorChoice::Never.resolve(true, None, xterm));
    /// ```
    pub fn resolve(
        self,
        is_terminal: bool,
        no_color: Option<&OsStr>,
        term: Option<&OsStr>,
    ) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                is_terminal
                    && no_color.map_or(true, OsStr::is_empty)
                    && term.is_some_and(|t| t != "dumb")
            }
        }
    }

    /// The decision for `stream`, reading `NO_COLOR` and `TERM` from the environment.
    ///
    /// ```
    /// use logxide::sink::ColorChoice;
    /// let file = tempfile::tempfile().unwrap(); // a file is no terminal
    /// assert!(!ColorChoice::Auto.for_stream(&file));
    /// assert!(ColorChoice::Always.for_stream(&file));
    /// ```
    pub fn for_stream(self, stream: &impl IsTerminal) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => self.resolve(
                stream.is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
                std::env::var_os("TERM").as_deref(),
            ),
        }
    }

    /// The choice's name: `auto`, `always` or `never`.
    ///
    /// ```
    /// use logxide::sink::ColorChoice;
    /// assert_eq!(ColorChoice::Never.as_str(), "never");
    /// assert_eq!(ColorChoice::Always.to_string(), "always");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ColorChoice::Auto => "auto",
            ColorChoice::Always => "always",
            ColorChoice::Never => "never",
        }
    }
}

impl fmt::Display for ColorChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not `auto`, `always` or `never`.
///
/// ```
/// use logxide::sink::ColorChoice;
/// let err = "sometimes".parse::<ColorChoice>().unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid color choice "sometimes": expected one of auto, always, never"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseColorChoiceError(String);

impl fmt::Display for ParseColorChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid color choice {:?}: expected one of auto, always, never",
            self.0
        )
    }
}

impl std::error::Error for ParseColorChoiceError {}

impl FromStr for ColorChoice {
    type Err = ParseColorChoiceError;
    /// ```
    /// use logxide::sink::ColorChoice;
    /// assert_eq!(" Never ".parse::<ColorChoice>().unwrap(), ColorChoice::Never);
    /// assert!("sometimes".parse::<ColorChoice>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ColorChoice::Auto),
            "always" => Ok(ColorChoice::Always),
            "never" => Ok(ColorChoice::Never),
            _ => Err(ParseColorChoiceError(s.to_owned())),
        }
    }
}

/// A sink for people: renders each record as one readable, colored line (see the [module
/// docs](self) for the layout and the escaping that keeps record text from controlling the
/// terminal).
///
/// Each batch is rendered into a buffer the sink reuses and written with one `write`.
/// Parsing the JSON happens on the writer thread, not in the code that logs.
///
/// By default the console asks the writer to gather 64 KiB before handing it a batch, like
/// the `block` file strategy, so that adding a console next to a file does not make the
/// file's writes smaller; lines then appear within the writer's flush interval (100 ms by
/// default). [`gather_bytes(0)`](Console::gather_bytes) hands lines over as soon as the
/// writer takes them.
///
/// ```
/// use logxide::sink::{Batch, Console, Sink};
/// let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// # struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
/// # impl std::io::Write for Shared {
/// #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
/// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// # }
/// let mut console = Console::new(Shared(out.clone()), false);
/// let line = br#"{"ts":1700000001.100000,"tid":"k3Jd82Qa.2","lvl":[2],"mt":"info","msg":"inside","user":"ada"}
/// "#;
/// console.write_batch(&Batch::new(line, &[line.len()])).unwrap();
/// assert_eq!(
///     String::from_utf8(out.lock().unwrap().clone()).unwrap(),
///     "22:13:21.100000 INFO      82Qa.2/2 inside user=ada\n"
/// );
/// ```
pub struct Console {
    name: &'static str,
    out: Box<dyn Write + Send>,
    color: bool,
    gather: usize,
    text: Vec<u8>,
    line_ends: Vec<usize>,
    /// The last batch ended inside a line (an error after a part of it): the next output
    /// first ends that line (and resets the colors).
    torn: bool,
    /// How a write that would block is waited for (standard output and error are polled).
    patience: Patience,
}

/// A rendered batch larger than this has its buffer freed afterwards.
const RETAIN_MAX: usize = 4 << 20;

impl Console {
    /// Standard output, colored per [`ColorChoice::Auto`].
    ///
    /// ```
    /// use logxide::sink::{Console, Sink};
    /// let console = Console::stdout();
    /// assert_eq!(console.name(), "stdout");
    /// ```
    pub fn stdout() -> Self {
        Self::stdout_with(ColorChoice::Auto)
    }

    /// Standard error, colored per [`ColorChoice::Auto`].
    ///
    /// ```
    /// use logxide::sink::{Console, Sink};
    /// let log = logxide::Logger::builder().use_env(false).sink(Console::stderr()).build()?;
    /// log.info("shown on standard error");
    /// assert_eq!(log.shutdown(None).unwrap().metrics.sinks[0].name, "stderr");
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn stderr() -> Self {
        Self::stderr_with(ColorChoice::Auto)
    }

    /// Standard output, colored per `color`.
    ///
    /// ```
    /// use logxide::sink::{ColorChoice, Console};
    /// assert!(!Console::stdout_with(ColorChoice::Never).color());
    /// ```
    pub fn stdout_with(color: ColorChoice) -> Self {
        let color = color.for_stream(&io::stdout());
        Self::new(StdWriter(Stream::Stdout), color).named("stdout", Stream::Stdout)
    }

    /// Standard error, colored per `color`.
    ///
    /// ```
    /// use logxide::sink::{ColorChoice, Console};
    /// assert!(Console::stderr_with(ColorChoice::Always).color());
    /// ```
    pub fn stderr_with(color: ColorChoice) -> Self {
        let color = color.for_stream(&io::stderr());
        Self::new(StdWriter(Stream::Stderr), color).named("stderr", Stream::Stderr)
    }

    /// Any writer; `color` turns the color codes on.
    ///
    /// ```
    /// use logxide::sink::{Console, Sink};
    /// let console = Console::new(Vec::new(), true);
    /// assert!(console.color());
    /// assert_eq!(console.name(), "console");
    /// ```
    pub fn new(writer: impl Write + Send + 'static, color: bool) -> Self {
        Console {
            name: "console",
            out: Box::new(writer),
            color,
            gather: 64 << 10,
            text: Vec::new(),
            line_ends: Vec::new(),
            torn: false,
            patience: Patience::new(None),
        }
    }

    fn named(mut self, name: &'static str, stream: Stream) -> Self {
        self.name = name;
        self.patience.stream = Some(stream);
        self
    }

    /// How long an output that would block (a non-blocking descriptor that is full) may
    /// take no byte before the rest of the batch fails (default
    /// [`DEFAULT_WOULD_BLOCK_TIMEOUT`](super::DEFAULT_WOULD_BLOCK_TIMEOUT); `Duration::ZERO`:
    /// fail at once). Standard output and error are polled until writable; another writer is
    /// tried again after short sleeps (see [Non-blocking outputs](super#non-blocking-outputs)).
    ///
    /// ```
    /// use std::io::{self, Write};
    /// use std::time::Duration;
    /// use logxide::sink::Console;
    /// /// A terminal that is always full.
    /// struct Full;
    /// impl Write for Full {
    ///     fn write(&mut self, _: &[u8]) -> io::Result<usize> {
    ///         Err(io::ErrorKind::WouldBlock.into())
    ///     }
    ///     fn flush(&mut self) -> io::Result<()> {
    ///         Ok(())
    ///     }
    /// }
    /// let console = Console::new(Full, false).would_block_timeout(Duration::ZERO);
    /// let log = logxide::Logger::builder().use_env(false).sink(console).build()?;
    /// log.info("never shown");
    /// log.flush(None).unwrap();
    /// assert_eq!((log.metrics().written, log.metrics().failed), (0, 1));
    /// # Ok::<(), logxide::logger::InitError>(())
    /// ```
    pub fn would_block_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.patience.timeout = timeout;
        self
    }

    /// How many bytes the writer gathers before handing this sink a batch (default 64 KiB;
    /// see [`Sink::coalesce_bytes`]). `0`: as soon as the writer takes records.
    ///
    /// ```
    /// use logxide::sink::{Console, Sink};
    /// assert_eq!(Console::new(Vec::new(), false).coalesce_bytes(), 64 << 10);
    /// assert_eq!(Console::new(Vec::new(), false).gather_bytes(0).coalesce_bytes(), 0);
    /// ```
    pub fn gather_bytes(mut self, bytes: usize) -> Self {
        self.gather = bytes;
        self
    }

    /// Whether this console writes color codes.
    ///
    /// ```
    /// use logxide::sink::Console;
    /// assert!(!Console::new(Vec::new(), false).color());
    /// ```
    pub fn color(&self) -> bool {
        self.color
    }

    /// Starts the text of a batch: if the last one ended inside a line, a reset of the
    /// colors (when on) and `\n` first. Returns the length of that prefix.
    fn start_text(&mut self) -> usize {
        self.text.clear();
        self.line_ends.clear();
        if self.torn {
            if self.color {
                self.text.extend_from_slice(RESET.as_bytes());
            }
            self.text.push(b'\n');
        }
        self.text.len()
    }

    /// Writes the rendered text (after a `prefix` of `prefix` bytes); on error, how many
    /// whole lines went out, and whether a line was left open.
    fn write_text(&mut self, prefix: usize) -> Result<(), SinkError> {
        let result = write_counted(&mut self.out, &self.text, self.patience);
        result.map_err(|(done, error)| {
            let written = self.line_ends.partition_point(|&e| e <= done);
            let complete = match written {
                0 => prefix,
                n => self.line_ends[n - 1],
            };
            // Inside the prefix, the torn line is still open; past it, a part of a line is.
            self.torn = done < prefix || done > complete;
            SinkError { written, error }
        })?;
        self.torn = false;
        Ok(())
    }
}

impl Sink for Console {
    fn name(&self) -> &str {
        self.name
    }

    fn write_batch(&mut self, batch: &Batch<'_>) -> Result<(), SinkError> {
        let prefix = self.start_text();
        for record in batch.records() {
            render_record(record, self.color, &mut self.text);
            self.line_ends.push(self.text.len());
        }
        let result = self.write_text(prefix);
        if self.text.capacity() > RETAIN_MAX {
            self.text = Vec::new();
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        flush_patiently(&mut self.out, self.patience)
    }

    fn close(&mut self) -> io::Result<()> {
        if self.torn {
            let prefix = self.start_text();
            self.write_text(prefix).map_err(|e| e.error)?;
        }
        flush_patiently(&mut self.out, self.patience)
    }

    fn coalesce_bytes(&self) -> usize {
        self.gather
    }
}

/// SGR codes: reset, and the styles by level.
const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const BOLD_RED: &str = "\x1b[1;31m";

/// The level column's width: the longest name, `SUCCEEDED`.
const LEVEL_WIDTH: usize = 9;

/// Renders one record (a JSON line, with or without its `\n`) as one human-readable line,
/// ending with `\n`, appended to `out`. See the [module docs](self) for the layout.
///
/// ```
/// use logxide::sink::render_record;
/// let mut out = Vec::new();
/// render_record(br#"{"ts":1700000000.5,"tid":"Ab.1","lvl":[1],"mt":"warning","msg":"disk \u001b[2J full","pct":97.5}"#, false, &mut out);
/// assert_eq!(String::from_utf8(out).unwrap(), "22:13:20.500000 WARNING   Ab.1/1 disk \\x1b[2J full pct=97.5\n");
/// ```
pub fn render_record(line: &[u8], color: bool, out: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    match serde_json::from_slice::<Object>(line) {
        Ok(record) => render_object(&record, color, out),
        Err(_) => {
            push_clean(out, &String::from_utf8_lossy(line));
            out.push(b'\n');
        }
    }
}

/// A JSON object's members, in the order of the line.
struct Object(Vec<(String, Value)>);

impl Object {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Object(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Keys shown in the header and message part, not repeated as fields: the action type,
/// status and duration only for an action record (elsewhere they are fields like any other).
fn is_header(keys: &HeaderKeys, key: &str, action: bool) -> bool {
    [
        keys.ts, keys.tid, keys.lvl, keys.mt, keys.msg, keys.exc, "reason",
    ]
    .contains(&key)
        || (action && [keys.at, keys.st, "dur"].contains(&key))
}

/// The layout of a record: logxide writes `ts` (compact) or `timestamp` (Eliot) first.
fn keys_of(record: &Object) -> HeaderKeys {
    let format = match record.0.first().map(|(k, _)| k.as_str()) {
        Some("ts") => Format::Compact,
        Some("timestamp") => Format::Eliot,
        _ if record.get("tid").is_none() && record.get("task_uuid").is_some() => Format::Eliot,
        _ => Format::Compact,
    };
    format.header_keys()
}

/// The level column's text and style for a level name.
fn level_style(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "debug" => ("DEBUG", DIM),
        "info" => ("INFO", ""),
        "success" => ("SUCCESS", GREEN),
        "note" => ("NOTE", CYAN),
        "warning" => ("WARNING", YELLOW),
        "error" => ("ERROR", RED),
        "critical" => ("CRITICAL", BOLD_RED),
        _ => return None,
    })
}

fn render_object(record: &Object, color: bool, out: &mut Vec<u8>) {
    let keys = keys_of(record);
    // An action record has an action type or status and no message type (a line with both,
    // not written by logxide, is a message whose `at` / `st` are fields).
    let action = match record.get(keys.mt) {
        Some(_) => None,
        None => record.get(keys.at).or_else(|| record.get(keys.st)),
    };
    let (dim, reset) = if color { (DIM, RESET) } else { ("", "") };

    // Time of day (UTC).
    out.extend_from_slice(dim.as_bytes());
    push_time(out, record.get(keys.ts));
    out.extend_from_slice(reset.as_bytes());
    out.push(b' ');

    // Level, or an action's status.
    let mut style = "";
    let mut name_chars = 0;
    let mut put_name = |out: &mut Vec<u8>, style: &str, text: &str| {
        if color && !style.is_empty() {
            out.extend_from_slice(style.as_bytes());
        }
        let start = out.len();
        push_clean(out, text);
        name_chars = std::str::from_utf8(&out[start..]).map_or(0, |s| s.chars().count());
        if color && !style.is_empty() {
            out.extend_from_slice(RESET.as_bytes());
        }
    };
    if action.is_some() {
        let status = record.get(keys.st).and_then(Value::as_str).unwrap_or("");
        if status == "failed" {
            style = RED;
        }
        put_name(out, style, &status.to_uppercase());
    } else {
        match record.get(keys.mt) {
            Some(Value::String(mt)) => match level_style(mt) {
                Some((name, s)) => {
                    style = s;
                    put_name(out, style, name);
                }
                None => put_name(out, "", mt),
            },
            Some(other) => put_name(out, "", &other.to_string()),
            None => put_name(out, "", "-"),
        }
    }
    for _ in name_chars..LEVEL_WIDTH {
        out.push(b' ');
    }
    out.push(b' ');

    // Task position.
    out.extend_from_slice(dim.as_bytes());
    push_position(out, record.get(keys.tid), record.get(keys.lvl));
    out.extend_from_slice(reset.as_bytes());

    // Message, or the action's summary; then the failure.
    let styled = color && !style.is_empty();
    let mut text = String::new();
    if let Some(at) = action {
        push_value_text(&mut text, at);
        if let Some(st) = record.get(keys.st) {
            text.push(' ');
            push_value_text(&mut text, st);
        }
        if let Some(dur) = record.get("dur") {
            text.push_str(" in ");
            push_duration(&mut text, dur);
        }
    } else if let Some(msg) = record.get(keys.msg) {
        push_value_text(&mut text, msg);
    }
    let exc = record.get(keys.exc);
    let reason = record.get("reason");
    if exc.is_some() || reason.is_some() {
        if !text.is_empty() {
            text.push_str(": ");
        }
        if let Some(exc) = exc {
            push_value_text(&mut text, exc);
            if reason.is_some() {
                text.push_str(": ");
            }
        }
        if let Some(reason) = reason {
            push_value_text(&mut text, reason);
        }
    }
    if !text.is_empty() {
        out.push(b' ');
        if styled {
            out.extend_from_slice(style.as_bytes());
        }
        push_clean(out, &text);
        if styled {
            out.extend_from_slice(RESET.as_bytes());
        }
    }

    // The other fields.
    for (key, value) in &record.0 {
        if is_header(&keys, key, action.is_some()) {
            continue;
        }
        out.push(b' ');
        push_clean(out, key);
        out.push(b'=');
        match value {
            Value::String(s) if s.is_empty() || s.chars().any(char::is_whitespace) => {
                out.push(b'"');
                let quoted = s.replace('\\', "\\\\").replace('"', "\\\"");
                push_clean(out, &quoted);
                out.push(b'"');
            }
            Value::String(s) => push_clean(out, s),
            other => push_clean(out, &other.to_string()),
        }
    }
    out.push(b'\n');
}

/// A value as text: strings without quotes, anything else as compact JSON.
fn push_value_text(text: &mut String, value: &Value) {
    match value {
        Value::String(s) => text.push_str(s),
        other => {
            let _ = write!(text, "{other}");
        }
    }
}

/// `HH:MM:SS.ffffff` (UTC) from Unix seconds, or dashes (negative, not a number, or past
/// what microseconds in a `u64` hold: 10^13 seconds, about the year 318 857).
fn push_time(out: &mut Vec<u8>, ts: Option<&Value>) {
    match ts.and_then(Value::as_f64) {
        Some(secs) if (0.0..1e13).contains(&secs) => {
            let micros = (secs * 1e6).round() as u64;
            let day = (micros / 1_000_000) % 86_400;
            let _ = write!(
                out,
                "{:02}:{:02}:{:02}.{:06}",
                day / 3600,
                day / 60 % 60,
                day % 60,
                micros % 1_000_000
            );
        }
        _ => out.extend_from_slice(b"--:--:--.------"),
    }
}

/// The last six characters of the task id, then the task level as `/1/2`.
fn push_position(out: &mut Vec<u8>, tid: Option<&Value>, lvl: Option<&Value>) {
    match tid {
        Some(Value::String(t)) => {
            let n = t.chars().count();
            let short: String = t.chars().skip(n.saturating_sub(6)).collect();
            push_clean(out, &short);
        }
        Some(other) => push_clean(out, &other.to_string()),
        None => {}
    }
    match lvl {
        Some(Value::Array(parts)) => {
            for p in parts {
                out.push(b'/');
                match p.as_u64() {
                    Some(n) => {
                        let _ = write!(out, "{n}");
                    }
                    None => push_clean(out, &p.to_string()),
                }
            }
        }
        Some(other) => {
            out.push(b'/');
            push_clean(out, &other.to_string());
        }
        None if tid.is_none() => out.push(b'-'),
        None => {}
    }
}

/// A duration in seconds, in a readable unit.
fn push_duration(text: &mut String, dur: &Value) {
    match dur.as_f64() {
        Some(s) if s.is_finite() && s >= 1.0 => {
            let _ = write!(text, "{s:.3}s");
        }
        Some(s) if s.is_finite() && s >= 1e-3 => {
            let _ = write!(text, "{:.1}ms", s * 1e3);
        }
        Some(s) if s.is_finite() && s >= 0.0 => {
            let _ = write!(text, "{:.1}us", s * 1e6);
        }
        _ => push_value_text(text, dur),
    }
}

/// Whether `c` must not reach a terminal raw.
fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `s` with every control character (see the [module docs](self)) escaped.
fn push_clean(out: &mut Vec<u8>, s: &str) {
    let mut run = 0;
    for (i, c) in s.char_indices() {
        if !is_dangerous(c) {
            continue;
        }
        out.extend_from_slice(&s.as_bytes()[run..i]);
        run = i + c.len_utf8();
        let _ = match c {
            '\n' => write!(out, "\\n"),
            '\r' => write!(out, "\\r"),
            '\t' => write!(out, "\\t"),
            '\0'..='\x7f' => write!(out, "\\x{:02x}", c as u32),
            _ => write!(out, "\\u{:04x}", c as u32),
        };
    }
    out.extend_from_slice(&s.as_bytes()[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_the_microseconds_range_are_dashes() {
        let time = |v: Value| {
            let mut out = Vec::new();
            push_time(&mut out, Some(&v));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(time(Value::from(1_700_000_000.25)), "22:13:20.250000");
        assert_eq!(time(Value::from(1e12)), "01:46:40.000000");
        // Past 1.8e13 seconds, the microseconds saturated: a wrong time (before the fix).
        assert_eq!(time(Value::from(2e13)), "--:--:--.------");
        assert_eq!(time(Value::from(1e14)), "--:--:--.------");
        assert_eq!(time(Value::from(-1.0)), "--:--:--.------");
        assert_eq!(time(Value::from("x")), "--:--:--.------");
    }

    #[test]
    fn escapes_every_control() {
        let mut out = Vec::new();
        push_clean(
            &mut out,
            "a\x1b[31mb\r\n\0\x7f\u{9b}\u{85}\u{2028}\u{2029}\u{202e}é\t",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\x1b[31mb\\r\\n\\x00\\x7f\\u009b\\u0085\\u2028\\u2029\\u202eé\\t"
        );
    }
}
