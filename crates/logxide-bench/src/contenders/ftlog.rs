//! `ftlog`: `log` macros with key-values (`log::info!(user_id = i, ...; "request handled")`,
//! the `log` crate's `kv` feature, which ftlog enables). ftlog's default formatter ignores
//! key-values, so this contender plugs in a small `FtLogFormat` that serializes the level,
//! message and key-values to a JSON object in the caller's thread (ftlog's formatters run
//! there: they turn the record into a `Send` value the log thread prints). The log thread
//! prefixes every line with its own timestamp and delivery delay, which no option removes,
//! so the check skips to the first `{`. Channel: `bounded(100_000, true)`, i.e. the default
//! size but **blocking** — ftlog's default, `bounded(100_000, false)`, discards records when
//! the channel is full. Root writer: ftlog's `FileAppender` (a `BufWriter<File>`), UTC
//! timestamps. At the end the `LoggerGuard` is dropped, which flushes and waits for it.
//!
//! ```text
//! 2026-01-01 00:00:00.123+00 0ms {"level":"INFO","msg":"request handled","user_id":42,"latency_ms":10.5,"path":"/api/v1/items"}
//! ```

use std::fmt::Write as _;
use std::path::Path;

use ::ftlog::appender::FileAppender;
use ::ftlog::{FtLogFormat, LoggerGuard};
use ::log::kv::{Key, Value, VisitSource};
use ::log::Record;

use crate::harness::{latency_ms, Contender, Local, PATH};

/// The `ftlog` contender.
pub struct Ftlog {
    guard: LoggerGuard,
}

/// Formats a record as one JSON object: level, message, then every key-value.
struct JsonFormat;

impl FtLogFormat for JsonFormat {
    fn msg(&self, record: &Record) -> Box<dyn Send + Sync + std::fmt::Display> {
        let mut out = String::with_capacity(128);
        out.push_str("{\"level\":\"");
        out.push_str(record.level().as_str());
        out.push_str("\",\"msg\":");
        match record.args().as_str() {
            Some(s) => push_json_str(&mut out, s),
            None => push_json_str(&mut out, &record.args().to_string()),
        }
        let _ = record.key_values().visit(&mut JsonKv(&mut out));
        out.push('}');
        Box::new(out)
    }
}

struct JsonKv<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for JsonKv<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), ::log::kv::Error> {
        let out = &mut *self.0;
        out.push(',');
        push_json_str(out, key.as_str());
        out.push(':');
        if let Some(n) = value.to_u64() {
            let _ = write!(out, "{n}");
        } else if let Some(n) = value.to_i64() {
            let _ = write!(out, "{n}");
        } else if let Some(x) = value.to_f64().filter(|x| x.is_finite()) {
            let _ = write!(out, "{x}");
        } else if let Some(b) = value.to_bool() {
            let _ = write!(out, "{b}");
        } else if let Some(s) = value.to_borrowed_str() {
            push_json_str(out, s);
        } else {
            push_json_str(out, &value.to_string());
        }
        Ok(())
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON requires.
    out.push_str(&serde_json::to_string(s).expect("a str always serializes"));
}

impl Contender for Ftlog {
    const LINE_PREFIX: bool = true;

    fn setup(path: &Path) -> Result<Self, String> {
        let guard = ::ftlog::builder()
            .format(JsonFormat)
            .bounded(100_000, true)
            .utc()
            .root(FileAppender::new(path))
            .try_init()
            .map_err(|e| e.to_string())?;
        Ok(Ftlog { guard })
    }

    #[inline]
    fn log(&self, i: u64, _local: &mut Local) {
        ::log::info!(user_id = i, latency_ms = latency_ms(i), path = PATH; "request handled");
    }

    fn finish(self) -> Result<(), String> {
        ::log::logger().flush();
        drop(self.guard);
        Ok(())
    }
}
