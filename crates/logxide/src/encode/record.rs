//! The record layout: [`Format`], [`Timestamp`], [`ActionStatus`] and [`RecordEncoder`].

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::capture;
use super::json;
use super::key::Key;
use super::value::Encode;
use crate::writer::ParseError;

/// The key layout of a record.
///
/// Parsed case-insensitively (surrounding spaces ignored) from `compact` or `eliot`;
/// displayed and serialized as `compact` / `eliot`.
///
/// | | timestamp | task id | task level | log message | action | error type |
/// |---|---|---|---|---|---|---|
/// | `Compact` | `ts` | `tid` | `lvl` | `mt`, `msg` | `at`, `st` | `exc` |
/// | `Eliot` | `timestamp` | `task_uuid` | `task_level` | `message_type`, `message` | `action_type`, `action_status` | `exception` |
///
/// ```
/// use logxide::encode::Format;
/// assert_eq!(Format::default(), Format::Compact);
/// assert_eq!("Eliot".parse::<Format>().unwrap(), Format::Eliot);
/// assert_eq!(Format::Eliot.to_string(), "eliot");
/// assert_eq!(
///     "json".parse::<Format>().unwrap_err().to_string(),
///     r#"invalid format "json": expected one of compact, eliot"#
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// logxpy's compact keys: `{"ts":…,"tid":…,"lvl":[…],"mt":…,"msg":…}`.
    #[default]
    Compact,
    /// Eliot's keys: `{"timestamp":…,"task_uuid":…,"task_level":[…],"message_type":…}`.
    Eliot,
}

impl Format {
    /// The format's name: `"compact"` or `"eliot"`.
    ///
    /// ```
    /// use logxide::encode::Format;
    /// assert_eq!(Format::Compact.as_str(), "compact");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Compact => "compact",
            Format::Eliot => "eliot",
        }
    }

    /// The keys this format reserves for itself. A user field with one of these names is
    /// renamed (see [`RecordEncoder::field`]).
    ///
    /// ```
    /// use logxide::encode::Format;
    /// assert!(Format::Compact.reserved_keys().contains(&"msg"));
    /// assert!(Format::Eliot.reserved_keys().contains(&"task_uuid"));
    /// ```
    pub const fn reserved_keys(self) -> &'static [&'static str] {
        match self {
            Format::Compact => &[
                "ts", "tid", "lvl", "mt", "msg", "at", "st", "dur", "exc", "reason",
            ],
            Format::Eliot => &[
                "timestamp",
                "task_uuid",
                "task_level",
                "message_type",
                "message",
                "action_type",
                "action_status",
                "dur",
                "exception",
                "reason",
            ],
        }
    }

    /// Whether `key` is one of [`reserved_keys`](Format::reserved_keys).
    ///
    /// ```
    /// use logxide::encode::Format;
    /// assert!(Format::Compact.is_reserved("ts"));
    /// assert!(!Format::Compact.is_reserved("timestamp"));
    /// assert!(Format::Eliot.is_reserved("timestamp"));
    /// ```
    #[inline]
    pub fn is_reserved(self, key: &str) -> bool {
        match self {
            Format::Compact => matches!(
                key,
                "ts" | "tid" | "lvl" | "mt" | "msg" | "at" | "st" | "dur" | "exc" | "reason"
            ),
            Format::Eliot => matches!(
                key,
                "timestamp"
                    | "task_uuid"
                    | "task_level"
                    | "message_type"
                    | "message"
                    | "action_type"
                    | "action_status"
                    | "dur"
                    | "exception"
                    | "reason"
            ),
        }
    }

    /// Whether a user field named `key` is written with one more leading `_`: when `key`
    /// without its leading underscores is reserved (`ts`, `_ts`, `__ts`, … in compact).
    ///
    /// ```
    /// use logxide::encode::Format;
    /// assert!(Format::Compact.renames("msg"));
    /// assert!(Format::Compact.renames("_msg"));
    /// assert!(!Format::Compact.renames("msg_"));
    /// assert!(!Format::Compact.renames("user_id"));
    /// ```
    #[inline]
    pub fn renames(self, key: &str) -> bool {
        self.is_reserved(key.trim_start_matches('_'))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "compact" => Ok(Format::Compact),
            "eliot" => Ok(Format::Eliot),
            _ => Err(ParseError::new("format", s, "compact, eliot")),
        }
    }
}

/// How an action record relates to its action: its start, or its end.
///
/// ```
/// use logxide::encode::ActionStatus;
/// assert_eq!(ActionStatus::Succeeded.as_str(), "succeeded");
/// assert_eq!(ActionStatus::Failed.to_string(), "failed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// The action's start record.
    Started,
    /// The end record of an action that succeeded.
    Succeeded,
    /// The end record of an action that failed.
    Failed,
}

impl ActionStatus {
    /// The status as written: `"started"`, `"succeeded"` or `"failed"`.
    ///
    /// ```
    /// use logxide::encode::ActionStatus;
    /// assert_eq!(ActionStatus::Started.as_str(), "started");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Started => "started",
            ActionStatus::Succeeded => "succeeded",
            ActionStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for ActionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A timestamp: Unix seconds + microseconds.
///
/// Written as seconds with exactly six decimals: `1700000000.000000`. A `micros` of a
/// million or more carries into the seconds when written (past `u64::MAX` seconds, the time
/// is `18446744073709551615.999999`).
///
/// ```
/// use logxide::encode::Timestamp;
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = Timestamp::from(UNIX_EPOCH + Duration::from_nanos(1_700_000_001_100_000_999));
/// assert_eq!(t, Timestamp { secs: 1_700_000_001, micros: 100_000 });
/// assert_eq!(t.to_string(), "1700000001.100000");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since the Unix epoch.
    pub secs: u64,
    /// Microseconds within the second (0..1_000_000).
    pub micros: u32,
}

impl Timestamp {
    /// The current time: the system's real-time clock (what [`SystemTime::now`] reads),
    /// through `clock_gettime(CLOCK_REALTIME)` directly, which skips the conversions of
    /// `SystemTime` (measured: 27 ns instead of 37 per read on the development VM). A time before
    /// the Unix epoch gives `0.000000`.
    ///
    /// ```
    /// use logxide::encode::Timestamp;
    /// use std::time::{SystemTime, UNIX_EPOCH};
    /// let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    /// let now = Timestamp::now();
    /// let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    /// let micros = |d: std::time::Duration| d.as_micros() as u64;
    /// let t = now.secs * 1_000_000 + u64::from(now.micros);
    /// assert!(micros(before) <= t && t <= micros(after));
    /// ```
    #[inline]
    pub fn now() -> Self {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        match u64::try_from(t.tv_sec) {
            Ok(secs) => Timestamp {
                secs,
                // tv_nsec is in 0..1_000_000_000.
                micros: (t.tv_nsec / 1000) as u32,
            },
            Err(_) => Timestamp::default(),
        }
    }
}

impl From<SystemTime> for Timestamp {
    /// Truncates to the microsecond. A time before the Unix epoch gives `0.000000`.
    #[inline]
    fn from(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp {
            secs: d.as_secs(),
            micros: d.subsec_micros(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, micros) = json::carried(self.secs, self.micros);
        write!(f, "{secs}.{micros:06}")
    }
}

/// When a record was made: the wall-clock time, written at once, or the capture clock's
/// ticks, written as a segment that the writer thread formats (a captured record).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Time {
    Wall(Timestamp),
    Ticks(u64),
}

/// Writes one record into a caller-provided buffer (reused between calls: no allocation in
/// steady state).
///
/// A record is built in call order: [`begin`](Self::begin) (clears the buffer, writes `{`
/// and the header), at most one of [`message`](Self::message) / [`action`](Self::action),
/// then any number of fields, then [`finish`](Self::finish) (`}\n`).
///
/// ```
/// use logxide::encode::{Format, RecordEncoder, Timestamp};
/// let mut buf = Vec::new();
/// let ts = Timestamp { secs: 1_700_000_000, micros: 0 };
/// let mut rec = RecordEncoder::begin(&mut buf, Format::Compact, ts, "Ab.1", &[1]);
/// rec.message("info", "standalone message");
/// rec.field("user_id", &123);
/// rec.finish();
/// assert_eq!(
///     buf,
///     b"{\"ts\":1700000000.000000,\"tid\":\"Ab.1\",\"lvl\":[1],\"mt\":\"info\",\
///       \"msg\":\"standalone message\",\"user_id\":123}\n"
/// );
/// ```
#[derive(Debug)]
pub struct RecordEncoder<'a> {
    out: &'a mut Vec<u8>,
    format: Format,
    /// When capturing: costly values are written as segments, for the writer thread to
    /// format (see the [`capture`] module).
    segs: Option<capture::Segments>,
}

/// The names of a format's header keys (what readers of the files look for).
///
/// ```
/// use logxide::encode::Format;
/// assert_eq!(Format::Compact.header_keys().tid, "tid");
/// assert_eq!(Format::Eliot.header_keys().tid, "task_uuid");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderKeys {
    /// The timestamp (`ts` / `timestamp`).
    pub ts: &'static str,
    /// The task id (`tid` / `task_uuid`).
    pub tid: &'static str,
    /// The task level (`lvl` / `task_level`).
    pub lvl: &'static str,
    /// The message type (`mt` / `message_type`).
    pub mt: &'static str,
    /// The message text (`msg` / `message`).
    pub msg: &'static str,
    /// The action type (`at` / `action_type`).
    pub at: &'static str,
    /// The action status (`st` / `action_status`).
    pub st: &'static str,
    /// The error type of a failure (`exc` / `exception`, Eliot's name for it).
    pub exc: &'static str,
}

impl Format {
    /// The names of this format's header keys.
    ///
    /// ```
    /// use logxide::encode::Format;
    /// assert_eq!((Format::Compact.header_keys().tid, Format::Compact.header_keys().msg), ("tid", "msg"));
    /// assert_eq!((Format::Eliot.header_keys().tid, Format::Eliot.header_keys().msg), ("task_uuid", "message"));
    /// ```
    pub const fn header_keys(self) -> HeaderKeys {
        match self {
            Format::Compact => HeaderKeys {
                ts: "ts",
                tid: "tid",
                lvl: "lvl",
                mt: "mt",
                msg: "msg",
                at: "at",
                st: "st",
                exc: "exc",
            },
            Format::Eliot => HeaderKeys {
                ts: "timestamp",
                tid: "task_uuid",
                lvl: "task_level",
                mt: "message_type",
                msg: "message",
                at: "action_type",
                st: "action_status",
                exc: "exception",
            },
        }
    }
}

/// A log message's head in both formats, up to the text: compact `,"mt":"info","msg":`,
/// eliot `,"message_type":"info","message":` (see
/// [`Level::message_head`](crate::Level)). The type must need no escaping.
#[derive(Debug)]
pub(crate) struct MessageHead {
    pub(crate) compact: &'static str,
    pub(crate) eliot: &'static str,
}

/// Appends the compact or the eliot spelling of a header key. Both are literals, so each copy
/// has a length known at compile time and is inlined (no `memcpy` call per key).
macro_rules! put_key {
    ($out:expr, $format:expr, $compact:literal, $eliot:literal) => {
        match $format {
            Format::Compact => $out.extend_from_slice($compact),
            Format::Eliot => $out.extend_from_slice($eliot),
        }
    };
}

impl<'a> RecordEncoder<'a> {
    /// Starts a record: clears `out`, then writes `{` and the header keys (timestamp, task
    /// id, task level). `task_level` is the Eliot level, e.g. `&[3, 1]`.
    ///
    /// ```
    /// use logxide::encode::{Format, RecordEncoder, Timestamp};
    /// let mut buf = b"old contents".to_vec();
    /// let ts = Timestamp { secs: 1_700_000_001, micros: 200_000 };
    /// RecordEncoder::begin(&mut buf, Format::Eliot, ts, "Ab.2", &[3, 1]).finish();
    /// assert_eq!(
    ///     buf,
    ///     b"{\"timestamp\":1700000001.200000,\"task_uuid\":\"Ab.2\",\"task_level\":[3,1]}\n"
    /// );
    /// ```
    #[inline]
    pub fn begin(
        out: &'a mut Vec<u8>,
        format: Format,
        ts: Timestamp,
        task_id: &str,
        task_level: &[u64],
    ) -> Self {
        Self::begin_with(out, format, Time::Wall(ts), task_level, |out| {
            json::write_str(out, task_id)
        })
    }

    /// [`begin`](Self::begin) for a task id that needs no escaping (a
    /// [`TaskId`](crate::logger::TaskId), which is checked when it is made): copied as is.
    /// Without a timestamp (`None`), the record is *captured* (its time read from the tick
    /// clock, its floats left raw): it must go to the writer as such
    /// (`WriterHandle::enqueue_encoded`), which formats its segments.
    #[inline]
    pub(crate) fn begin_plain_id(
        out: &'a mut Vec<u8>,
        format: Format,
        ts: Time,
        task_id: &str,
        task_level: &[u64],
    ) -> Self {
        debug_assert!(json::is_plain(task_id.as_bytes()), "{task_id:?}");
        Self::begin_with(out, format, ts, task_level, |out| {
            out.push(b'"');
            out.extend_from_slice(task_id.as_bytes());
            out.push(b'"');
        })
    }

    /// [`begin_plain_id`](Self::begin_plain_id) for the first record of a new task (level
    /// `[1]`): `task_id` writes the id (plain text, as a [`TaskId`](crate::logger::TaskId)).
    #[inline]
    pub(crate) fn begin_new_task(
        out: &'a mut Vec<u8>,
        format: Format,
        ts: Time,
        task_id: impl FnOnce(&mut Vec<u8>),
    ) -> Self {
        Self::begin_with(out, format, ts, &[1], |out| {
            out.push(b'"');
            task_id(out);
            out.push(b'"');
        })
    }

    #[inline(always)]
    fn begin_with(
        out: &'a mut Vec<u8>,
        format: Format,
        ts: Time,
        task_level: &[u64],
        task_id: impl FnOnce(&mut Vec<u8>),
    ) -> Self {
        out.clear();
        put_key!(out, format, b"{\"ts\":", b"{\"timestamp\":");
        let segs = match ts {
            Time::Wall(ts) => {
                json::write_timestamp(out, ts.secs, ts.micros);
                None
            }
            Time::Ticks(ticks) => {
                let mut segs = capture::Segments::new();
                segs.ticks(out, ticks);
                Some(segs)
            }
        };
        put_key!(out, format, b",\"tid\":", b",\"task_uuid\":");
        task_id(out);
        put_key!(out, format, b",\"lvl\":[", b",\"task_level\":[");
        let mut first = true;
        for &l in task_level {
            if !first {
                out.push(b',');
            }
            first = false;
            if l < 10 {
                // Most positions: one digit.
                out.push(b'0' + l as u8);
            } else {
                json::write_int(out, l);
            }
        }
        out.push(b']');
        RecordEncoder { out, format, segs }
    }

    /// The record's format.
    ///
    /// ```
    /// use logxide::encode::{Format, RecordEncoder, Timestamp};
    /// let mut buf = Vec::new();
    /// let rec = RecordEncoder::begin(&mut buf, Format::Eliot, Timestamp::now(), "t", &[1]);
    /// assert_eq!(rec.format(), Format::Eliot);
    /// ```
    #[inline]
    pub fn format(&self) -> Format {
        self.format
    }

    /// A log message: compact `"mt":"info","msg":"text"`; eliot
    /// `"message_type":"info","message":"text"`. Call at most once, right after
    /// [`begin`](Self::begin), and not together with [`action`](Self::action).
    ///
    /// ```
    /// use logxide::encode::{Format, RecordEncoder, Timestamp};
    /// let mut buf = Vec::new();
    /// let mut rec = RecordEncoder::begin(&mut buf, Format::Eliot, Timestamp::default(), "t", &[1]);
    /// rec.message("warning", "disk \"/\" full");
    /// rec.finish();
    /// assert!(buf.ends_with(b",\"message_type\":\"warning\",\"message\":\"disk \\\"/\\\" full\"}\n"));
    /// ```
    #[inline]
    pub fn message(&mut self, level_name: &str, msg: &str) {
        put_key!(self.out, self.format, b",\"mt\":", b",\"message_type\":");
        json::write_str(self.out, level_name);
        put_key!(self.out, self.format, b",\"msg\":", b",\"message\":");
        json::write_str(self.out, msg);
    }

    /// [`message`](Self::message) with the message type and the keys around it spelled at
    /// compile time ([`MessageHead`]); a `plain_msg` (a literal checked at compile time) is
    /// copied without a check.
    #[inline]
    pub(crate) fn message_with_head(&mut self, head: &MessageHead, msg: &str, plain_msg: bool) {
        let head = match self.format {
            Format::Compact => head.compact,
            Format::Eliot => head.eliot,
        };
        self.out.extend_from_slice(head.as_bytes());
        if plain_msg {
            debug_assert!(json::is_plain(msg.as_bytes()), "{msg:?}");
            self.out.push(b'"');
            self.out.extend_from_slice(msg.as_bytes());
            self.out.push(b'"');
        } else {
            json::write_str(self.out, msg);
        }
    }

    /// [`message`](Self::message) spelled whole at compile time, in each format (a level
    /// macro's literal message that needs no escaping): copied as is.
    #[inline]
    pub(crate) fn spelled_message(&mut self, compact: &'static str, eliot: &'static str) {
        let text = match self.format {
            Format::Compact => compact,
            Format::Eliot => eliot,
        };
        self.out.extend_from_slice(text.as_bytes());
    }

    /// An action record: compact `"at":"http:request","st":"started"`; eliot
    /// `"action_type":"http:request","action_status":"started"`. Call at most once, right
    /// after [`begin`](Self::begin), and not together with [`message`](Self::message).
    ///
    /// ```
    /// use logxide::encode::{ActionStatus, Format, RecordEncoder, Timestamp};
    /// let mut buf = Vec::new();
    /// let mut rec = RecordEncoder::begin(&mut buf, Format::Compact, Timestamp::default(), "t", &[1]);
    /// rec.action("http:request", ActionStatus::Started);
    /// rec.finish();
    /// assert!(buf.ends_with(b",\"at\":\"http:request\",\"st\":\"started\"}\n"));
    /// ```
    #[inline]
    pub fn action(&mut self, action_type: &str, status: ActionStatus) {
        put_key!(self.out, self.format, b",\"at\":", b",\"action_type\":");
        json::write_str(self.out, action_type);
        put_key!(self.out, self.format, b",\"st\":", b",\"action_status\":");
        match status {
            ActionStatus::Started => self.out.extend_from_slice(b"\"started\""),
            ActionStatus::Succeeded => self.out.extend_from_slice(b"\"succeeded\""),
            ActionStatus::Failed => self.out.extend_from_slice(b"\"failed\""),
        }
    }

    /// A field, written after everything before it.
    ///
    /// Keys are escaped like strings. A key that collides with the format's reserved keys
    /// is written with one more leading `_`, so a record never has two keys of the same
    /// name however fields are named: precisely, a key which, once its leading underscores
    /// are removed, is a reserved key of the format (see [`Format::reserved_keys`]; compact:
    /// `ts tid lvl mt msg at st dur exc reason`; eliot: `timestamp task_uuid task_level
    /// message_type message action_type action_status dur exception reason` — `dur`,
    /// `exc`/`exception` and `reason` are the logger's own keys) gets a `_` prepended: `msg` →
    /// `_msg`, `_msg` → `__msg`. All other keys are written as given. (Fields are not
    /// deduplicated: passing the same key twice writes it twice.)
    ///
    /// ```
    /// use logxide::encode::{Format, RecordEncoder, Timestamp};
    /// let mut buf = Vec::new();
    /// let mut rec = RecordEncoder::begin(&mut buf, Format::Compact, Timestamp::default(), "t", &[1]);
    /// rec.message("info", "hi");
    /// rec.field("msg", "user's msg");
    /// rec.field("_msg", &1);
    /// rec.field("a\"b", &true);
    /// rec.finish();
    /// assert!(buf.ends_with(b",\"msg\":\"hi\",\"_msg\":\"user's msg\",\"__msg\":1,\"a\\\"b\":true}\n"));
    /// ```
    #[inline]
    pub fn field<'k, V: Encode + ?Sized>(&mut self, key: impl Into<Key<'k>>, value: &V) {
        self.user_key(key.into());
        self.value(value);
    }

    /// The error type of a failure, under the format's key for it (`exc` in compact,
    /// `exception` in eliot, as Eliot's tools expect).
    ///
    /// ```
    /// use logxide::encode::{ActionStatus, Format, RecordEncoder, Timestamp};
    /// let mut buf = Vec::new();
    /// let mut rec = RecordEncoder::begin(&mut buf, Format::Eliot, Timestamp::default(), "t", &[2]);
    /// rec.action("db:query", ActionStatus::Failed);
    /// rec.exception("ValueError");
    /// rec.reserved_field("reason", "boom");
    /// rec.finish();
    /// assert!(buf.ends_with(b",\"action_status\":\"failed\",\"exception\":\"ValueError\",\"reason\":\"boom\"}\n"));
    /// ```
    #[inline]
    pub fn exception(&mut self, exc: &str) {
        let key = self.format.header_keys().exc;
        self.reserved_field(key, exc);
    }

    /// A reserved field written by the logger itself (`dur`, `exc`, `reason`): the key is
    /// written as given, never renamed.
    ///
    /// ```
    /// use logxide::encode::{ActionStatus, Format, RecordEncoder, Timestamp};
    /// use std::time::Duration;
    /// let mut buf = Vec::new();
    /// let mut rec = RecordEncoder::begin(&mut buf, Format::Compact, Timestamp::default(), "t", &[3, 3]);
    /// rec.action("db:query", ActionStatus::Succeeded);
    /// rec.reserved_field("dur", &Duration::from_millis(200));
    /// rec.finish();
    /// assert!(buf.ends_with(b",\"st\":\"succeeded\",\"dur\":0.2}\n"));
    /// ```
    #[inline]
    pub fn reserved_field<V: Encode + ?Sized>(&mut self, key: &str, value: &V) {
        self.out.extend_from_slice(b",\"");
        json::escape_into(self.out, key);
        self.out.extend_from_slice(b"\":");
        self.value(value);
    }

    /// A masked field: the key (renamed like in [`field`](Self::field)), and the value
    /// `"***"`.
    ///
    /// ```
    /// use logxide::encode::{Format, RecordEncoder, Timestamp};
    /// let mut buf = Vec::new();
    /// let mut rec = RecordEncoder::begin(&mut buf, Format::Compact, Timestamp::default(), "t", &[1]);
    /// rec.masked_field("password");
    /// rec.finish();
    /// assert!(buf.ends_with(b",\"password\":\"***\"}\n"));
    /// ```
    #[inline]
    pub fn masked_field<'k>(&mut self, key: impl Into<Key<'k>>) {
        self.user_key(key.into());
        self.out.extend_from_slice(b"\"***\"");
    }

    /// Ends the record: `}\n`. The buffer now holds exactly one line.
    ///
    /// ```
    /// use logxide::encode::{Format, RecordEncoder, Timestamp};
    /// let mut buf = Vec::new();
    /// RecordEncoder::begin(&mut buf, Format::Compact, Timestamp::default(), "t", &[]).finish();
    /// assert_eq!(buf, b"{\"ts\":0.000000,\"tid\":\"t\",\"lvl\":[]}\n");
    /// ```
    #[inline]
    pub fn finish(self) {
        self.out.extend_from_slice(b"}\n");
    }

    /// Writes a value: a capture segment when capturing and the value is a
    /// [`Scalar`](capture::Scalar), else its JSON.
    #[inline(always)]
    fn value<V: Encode + ?Sized>(&mut self, value: &V) {
        if let Some(segs) = &mut self.segs {
            if let Some(scalar) = value.scalar() {
                return segs.scalar(self.out, scalar);
            }
        }
        value.encode(self.out);
    }

    /// Writes `,"key":` for a user key, renaming it if it collides with a reserved key.
    #[inline]
    fn user_key(&mut self, key: Key<'_>) {
        match key.spelled(self.format) {
            Some(spelled) => self.out.extend_from_slice(spelled.as_bytes()),
            None => self.spell_key(key.name()),
        }
    }

    /// [`user_key`](Self::user_key) for a key without a precomputed spelling.
    fn spell_key(&mut self, key: &str) {
        self.out.extend_from_slice(b",\"");
        if self.format.renames(key) {
            self.out.push(b'_');
        }
        json::escape_into(self.out, key);
        self.out.extend_from_slice(b"\":");
    }
}

deserialize_by_from_str!(Format);
