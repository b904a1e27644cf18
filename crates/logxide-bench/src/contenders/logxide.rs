//! `logxide`: each line is built by hand in the caller's thread with `write!` into the
//! thread's reused buffer, then copied into the [`Writer`]'s queue with
//! [`WriterHandle::enqueue`]. Writer defaults: capacity 10 000 records, [`Policy::Block`]
//! (lossless), a [`FileSink`] with the default `block` strategy (64 KiB `write(2)`s).
//!
//! ```text
//! {"ts":1767225600.123456,"tid":"bench.0","lvl":[1],"mt":"info","msg":"request handled","user_id":42,"latency_ms":10.5,"path":"/api/v1/items"}
//! ```
//!
//! [`Policy::Block`]: ::logxide::writer::Policy::Block
//! [`FileSink`]: ::logxide::sink::FileSink

// Replaced by the logxide::info! macro once the logger lands.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ::logxide::sink::FileOptions;
use ::logxide::writer::{Writer, WriterHandle};

use crate::harness::{latency_ms, Contender, Local, MESSAGE, PATH};

/// The `logxide` contender.
pub struct Logxide {
    writer: Writer,
    handle: WriterHandle,
    refused: AtomicU64,
}

impl Contender for Logxide {
    fn setup(path: &Path) -> Result<Self, String> {
        let sink = FileOptions::new().open(path).map_err(|e| e.to_string())?;
        let writer = Writer::builder()
            .sink(sink)
            .build()
            .map_err(|e| e.to_string())?;
        let handle = writer.handle();
        Ok(Logxide {
            writer,
            handle,
            refused: AtomicU64::new(0),
        })
    }

    #[inline]
    fn log(&self, i: u64, local: &mut Local) {
        let buf = &mut local.buf;
        buf.clear();
        let ts = crate::contenders::unix_now();
        let _ = write!(
            buf,
            r#"{{"ts":{}.{:06},"tid":"bench.{}","lvl":[1],"mt":"info","msg":"{MESSAGE}","user_id":{i},"latency_ms":{},"path":"{PATH}"}}"#,
            ts.as_secs(),
            ts.subsec_micros(),
            local.tid,
            latency_ms(i),
        );
        if self.handle.enqueue(buf).is_err() {
            self.refused.fetch_add(1, Relaxed);
        }
    }

    fn finish(self) -> Result<(), String> {
        let report = self.writer.shutdown(None);
        let refused = self.refused.load(Relaxed);
        let m = &report.metrics;
        if refused > 0 || m.dropped > 0 || m.failed > 0 || m.pending > 0 {
            return Err(format!(
                "logxide refused {refused} records; after shutdown: {m:?}"
            ));
        }
        Ok(())
    }
}
