//! The record encoder: turns one log call into one finished JSON line for the
//! [writer](crate::writer).
//!
//! # The format
//!
//! A record is one JSON object (RFC 8259) on one line, terminated by `\n`, UTF-8. Keys come
//! in a fixed order: the header (timestamp, task id, task level), then either a log message
//! (message type = level name, and text) or an action (action type and status), then the
//! fields in the order they were given. Two key layouts exist ([`Format`]):
//!
//! ```text
//! compact: {"ts":1700000001.200000,"tid":"Ab.2","lvl":[3,1],"at":"db:query","st":"started","sql":"SELECT 1"}
//! eliot:   {"timestamp":1700000001.200000,"task_uuid":"Ab.2","task_level":[3,1],"action_type":"db:query","action_status":"started","sql":"SELECT 1"}
//! ```
//!
//! - The timestamp is Unix seconds with exactly six decimals.
//! - The task level is a JSON array of integers (Eliot numbering).
//! - Log messages: compact `"mt":"info","msg":"text"`, eliot
//!   `"message_type":"info","message":"text"`. Actions: compact
//!   `"at":"http:request","st":"started"`, eliot `"action_type":…,"action_status":…`, with
//!   the status one of `started`, `succeeded`, `failed` ([`ActionStatus`]).
//!
//! # Guarantees
//!
//! Whatever the input, every record is valid JSON and exactly one line:
//!
//! - Strings **and keys** are escaped: `"` and `\`, every control character U+0000–U+001F
//!   (`\b \t \n \f \r`, the rest as `\u00XX`), DEL as `\u007f`, and U+2028 / U+2029 as
//!   `\u2028` / `\u2029` (JSON allows these two raw, but JavaScript and many line-based
//!   tools take them for line breaks). Nothing else is escaped: other non-ASCII text is
//!   written as UTF-8.
//! - Non-finite floats are written as the JSON **strings** `"NaN"`, `"Infinity"` and
//!   `"-Infinity"`; inside a nested [`SerdeValue`] they become `null` (serde_json's rule),
//!   but as a map's key they make the value a serialize error (see below).
//! - A record never has two keys of the same name from the encoder's side: a user field
//!   whose key collides with a key the format reserves gets a leading `_` (see
//!   [`RecordEncoder::field`]).
//! - A nested serde value that fails to serialize is replaced by the string
//!   `"<serialize error: …>"`, never left half-written — also when its `Serialize` impl
//!   ignores the error of a part and goes on, or writes a map's keys and values out of turn,
//!   or when it nests deeper than 1023 levels (a record then nests at most 1024).
//! - A `Display` or `Debug` that fails (returns `fmt::Error` on its own) gives the string it
//!   wrote so far, whether a `%x` / `?x` capture or a string a nested serde value writes
//!   with `collect_str`; it does not panic.
//!
//! # Cost
//!
//! The encoder writes straight into a caller-provided `Vec<u8>` that is cleared and reused
//! for each record: no allocation in steady state, including for `Display` / `Debug`
//! captures (escaped as they are formatted). A string is first checked eight bytes at a time;
//! one with nothing to escape — the common case — is copied in one `extend_from_slice`, and
//! the others copy their runs of plain bytes with one call each. Keys known at compile time
//! ([`StaticKey`]) and literal messages of the macros are not checked at all.
//!
//! **Deferred formatting.** A record that a [`Logger`](crate::Logger) queues is *captured*:
//! its time (the CPU's tick counter) and its floats (every value whose [`Encode::scalar`]
//! is a float) are left raw in the record, and the writer thread formats them as it gathers
//! a batch — the caller runs neither the float nor the timestamp formatting, nor
//! `clock_gettime`. The file holds the same bytes as if the caller had encoded everything
//! (records written synchronously are). Measured (`logxide-bench hot` under callgrind,
//! `info!` with an integer, a float and a string): the caller's instructions per record fell
//! from 1 916 to 1 298, the writer's rose from 182 to 696 — work moved to the other core,
//! where it runs in parallel with the callers. What is deferred, and why, is in the
//! `capture` module's docs.
//!
//! # Example
//!
//! ```
//! use logxide::encode::{display, ActionStatus, Format, RecordEncoder, Timestamp};
//!
//! let mut buf = Vec::with_capacity(256);
//! let ts = Timestamp { secs: 1_700_000_001, micros: 500_000 };
//! let mut rec = RecordEncoder::begin(&mut buf, Format::Compact, ts, "Ab.2", &[4]);
//! rec.action("http:request", ActionStatus::Failed);
//! rec.reserved_field("exc", "ValueError");
//! rec.reserved_field("reason", &display(format_args!("bo{}", "om")));
//! rec.reserved_field("dur", &0.5);
//! rec.finish();
//! assert_eq!(
//!     std::str::from_utf8(&buf).unwrap(),
//!     "{\"ts\":1700000001.500000,\"tid\":\"Ab.2\",\"lvl\":[4],\"at\":\"http:request\",\
//!      \"st\":\"failed\",\"exc\":\"ValueError\",\"reason\":\"boom\",\"dur\":0.5}\n"
//! );
//! ```

pub(crate) mod capture;
pub(crate) mod guard;
mod json;
pub(crate) mod key;
pub(crate) mod record;
mod value;

pub mod calendar;

pub use capture::Scalar;

/// Whether a string needs no escaping in JSON, at compile time (for the macros' literal
/// messages).
#[doc(hidden)]
pub const fn __plain(s: &str) -> bool {
    json::is_plain_const(s.as_bytes())
}

/// A key's name from the `stringify!` of its identifier: without the `r#` of a raw
/// identifier (`r#type` → `type`), at compile time (for the macros' keys).
#[doc(hidden)]
pub const fn __unraw(ident: &'static str) -> &'static str {
    match ident.as_bytes() {
        [b'r', b'#', rest @ ..] => __utf8(rest),
        _ => ident,
    }
}

/// `,"name":` for `name`, at compile time (for the macros' keys): `N` must be its length,
/// `name.len() + 4`.
#[doc(hidden)]
pub const fn __quoted<const N: usize>(name: &str) -> [u8; N] {
    let name = name.as_bytes();
    assert!(N == name.len() + 4, "N is the length of `,\"name\":`");
    let mut out = [0; N];
    out[0] = b',';
    out[1] = b'"';
    let mut i = 0;
    while i < name.len() {
        out[i + 2] = name[i];
        i += 1;
    }
    out[N - 2] = b'"';
    out[N - 1] = b':';
    out
}

/// `bytes` as a `str`, at compile time: they must be UTF-8 (for the macros' keys).
#[doc(hidden)]
pub const fn __utf8(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("not UTF-8"),
    }
}

pub use key::{Key, StaticKey};
pub use record::{ActionStatus, Format, HeaderKeys, RecordEncoder, Timestamp};
pub use value::{
    bytes, debug, display, serde, Bytes, DebugValue, DisplayValue, Encode, SerdeValue,
};
